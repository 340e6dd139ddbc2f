"""Exact (infinite-width) and empirical CK/NTK matrices of deep fully-connected networks.

The exact part (top of this file) implements the infinite-width recursion of the book's
eq-ckntk-ck-recursion and eq-ckntk-ntk-recursion (chapter "CK and NTK of deep
fully-connected networks"), with the centring of eq-ckntk-centring, for samples in rows,
``X`` of shape ``(n, p)`` (the book's ``X^T X`` is ``X X^T`` here):

``K_CK,0 = X X^T``,  ``K_CK,l(i, j) = E[sigma_l^c(u) sigma_l^c(v)]``,
``K'_l(i, j) = E[sigma_l'(u) sigma_l'(v)]``,  ``K_NTK,l = K_CK,l + K_NTK,l-1 * K'_l``
(``*`` entrywise), ``(u, v) ~ N(0, [[K(i,i), K(i,j)], [K(j,i), K(j,j)]])`` with
``K = K_CK,l-1``, each activation centred at scale ``tau_{l-1}``.

The two-point expectations come from the activation objects
(:meth:`lossless.activations.Activation.dual`): closed forms for the piecewise-linear
family (ReLU, leaky ReLU, abs, identity, sign, steps, ternary, any piecewise-constant),
erf, sin, cos and polynomials, and a Mehler–Hermite series with per-sample coefficients
(truncation bounded explicitly) for tanh, sigmoid and user callables. The n x n
matrices are processed in blocks of rows over one triangle and updated in place, so
memory stays at one (CK) or two (NTK) n x n float64 arrays plus small blocks; every
kernel returned is exactly symmetric.

The first layer's weight law: layers 2..L see Gaussian pre-activations given the first
layer's kernel (widths to infinity first), but the first layer sums over the p fixed
input coordinates, so its kernels depend on the fourth cumulant ``kappa4 = m4 - 3`` of its
weights. ``first_layer_m4`` (default 3, the Gaussian) adds the first-order Edgeworth term
of the book's eq-first-layer-kappa4 (:func:`first_layer_correction`): exact for polynomial
activations of degree <= 2, first order in ``kappa4`` otherwise.

When every layer has a simple closed form in ``(K_ij, K_ii, K_jj)`` (ReLU, leaky ReLU,
abs, identity, sign, the step at 0, erf: the activation says so through its
``fast_kernel()`` method), the recursion is entrywise and :mod:`lossless._fastkernels`
runs all layers on cache-sized strips of the lower triangle at once, on a few threads,
or with torch on a GPU (``backend="torch"``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from lossless import _checks
from lossless import _fastkernels as _fast
from lossless.activations import Activation, check_layers, check_surrogates, layer_moments
from lossless.display import progress as progress_bar

if TYPE_CHECKING:  # for annotations only
    import torch

    from lossless.networks import MLP

__all__ = [
    "exact_ck",
    "exact_ntk",
    "exact_kernels",
    "first_layer_correction",
    "empirical_ck",
    "empirical_ntk",
]

_DIAGONAL_MODES = ("raise", "nan")
_BACKENDS = ("numpy", "torch")


# ----------------------------------------------------------------------------------
# argument checks (messages from lossless._checks: they name the argument)
# ----------------------------------------------------------------------------------
def _tau0_from(X: np.ndarray, tau0: Any) -> float:
    if tau0 is None:
        value = math.sqrt(float(np.mean(np.einsum("ij,ij->i", X, X))))
        if not value > 0:
            raise ValueError("X must not be all zeros: tau0 = sqrt(mean ||x_i||^2) would be 0")
        if not math.isfinite(value):
            raise ValueError(
                "X is too large: sqrt(mean ||x_i||^2) overflows float64; rescale X or pass tau0"
            )
        lo, hi = _checks.SCALE_RANGE
        if not lo <= value <= hi:
            raise ValueError(
                f"X must have a scale sqrt(mean ||x_i||^2) in [{lo:g}, {hi:g}] (the range where "
                f"the Gaussian moments are representable in float64), got {value:.3g}; rescale X"
            )
        return value
    return _checks.input_scale(tau0, "tau0")


def _check_device(device: Any) -> Any:
    """None or a valid torch device (a ``torch.device`` or a string such as ``"cuda:0"``)."""
    import torch

    if device is None:
        return None
    if not isinstance(device, (str, torch.device)):
        raise TypeError(
            f"device must be None, a torch.device or a string such as 'cpu' or 'cuda', "
            f"got {_checks.describe(device)}"
        )
    try:
        return torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(
            f"device must name a torch device such as 'cpu' or 'cuda:0', got {device!r}"
        ) from None


def _fast_step(act: Activation) -> Any:
    """The activation's own fast closed-form step (None when it has none)."""
    method = getattr(act, "fast_kernel", None)
    return method() if callable(method) else None


# ----------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------
def _centres(layers: list[Activation], tau0: float) -> list[float]:
    """Centring constants ``m_l = E[sigma_l(tau_{l-1} xi)]`` (:func:`layer_moments`)."""
    return [m.m for m in layer_moments(layers, tau0)]


_COMMON_PARAMETERS = """    first_layer_m4 : float, default 3.0
        Fourth moment ``m4 = E[w^4]`` of the i.i.d., symmetric, unit-variance weights of
        the first layer (``3`` for Gaussian weights, ``1/(1 - eps)`` for sparse ternary
        weights with sparsity ``eps``; finite and ``>= 1``). The default ``3.0`` runs
        the Gaussian recursion unchanged (bit-identical results). Any other value adds to
        the first layer's kernels the first-order Edgeworth term in
        ``kappa4 = m4 - 3`` of the book's eq-first-layer-kappa4
        (:func:`first_layer_correction`): exact for polynomial activations of degree
        <= 2, first order in ``kappa4`` otherwise (the cumulants of order 6 and more
        and ``kappa4^2`` are dropped; their relative size is about
        ``1 / (p (1 - eps))``, the inverse number of non-zero weights per neuron).
        Layers 2..L are Gaussian given the first layer's kernel (widths to infinity),
        so the Gaussian recursion continues from the corrected kernel. It uses the
        blockwise NumPy recursion (``backend="torch"`` is refused).
    tau0 : float, optional
        Input scale; default ``sqrt(mean_i ||x_i||^2)``.
    block_size : int, optional
        Rows per block of the n x n matrices (default: blocks that fit in cache).
        Only the speed depends on it, not the result (entries are computed entrywise).
    backend : {None, "numpy", "torch"}
        ``"numpy"`` (the reference) runs on the CPU. ``"torch"`` runs the same closed
        forms with torch in float64 on ``device`` (for a GPU); it needs every layer to
        have a fast closed form (ReLU, leaky ReLU, abs, identity, sign, step at 0, erf)
        and no surrogates. ``None`` (default) picks ``"torch"`` when ``X`` is a torch
        tensor on a non-CPU device and the layers allow it, ``"numpy"`` otherwise.
    device : torch.device or str, optional
        Device of the torch backend (default: ``X``'s device, else the CPU)."""


def exact_ck(
    X: np.ndarray,
    layers: Sequence[Activation],
    *,
    first_layer_m4: float = 3.0,
    tau0: float | None = None,
    block_size: int | None = None,
    backend: str | None = None,
    device: Any = None,
) -> np.ndarray:
    """Exact (infinite-width) conjugate kernel ``K_CK,L`` (the book's eq-ckntk-ck-recursion;
    with ``first_layer_m4 != 3`` the first layer's kernel carries the weights' fourth
    cumulant, eq-first-layer-kappa4).

    Parameters
    ----------
    X : ndarray or Tensor, shape (n, p)
        Samples in rows (the paper's ``X^T``), real and finite.
    layers : list of Activation, length L
{common}

    Returns
    -------
    ndarray, shape (n, n), float64
        Exactly symmetric (``K == K.T`` bitwise).

    Raises
    ------
    ValueError
        Mis-shaped, empty or non-finite ``X``, ``tau0`` not positive, a sample with zero
        pre-activation variance, a user activation returning NaN/inf (named);
        ``first_layer_m4`` not finite or below 1, or (with ``first_layer_m4 != 3``)
        near-duplicate samples where the Mehler series of the first-layer term does not
        converge.
    TypeError
        ``X`` complex, boolean, a string or a tensor requiring grad; ``tau0`` or
        ``block_size`` of the wrong kind; ``layers`` not a list of Activation objects.
    """
    ck, _ = _recursion(
        X, layers, tau0=tau0, ntk=False, surrogates=None, diagonal="raise",
        block_size=block_size, backend=backend, device=device, first_layer_m4=first_layer_m4,
    )
    return ck


def exact_ntk(
    X: np.ndarray,
    layers: Sequence[Activation],
    *,
    surrogates: Sequence[Activation | Callable | None] | None = None,
    diagonal: str = "raise",
    first_layer_m4: float = 3.0,
    tau0: float | None = None,
    block_size: int | None = None,
    backend: str | None = None,
    device: Any = None,
) -> np.ndarray:
    """Exact (infinite-width) neural tangent kernel ``K_NTK,L`` (the book's
    eq-ckntk-ntk-recursion, with the derivative kernel of eq-ckntk-ck-recursion).

    Parameters
    ----------
    X : ndarray or Tensor, shape (n, p)
    layers : list of Activation, length L
    surrogates : list, optional
        One entry per layer: None (use the true derivative) or an Activation/callable
        ``ς_l`` (the book's varsigma) standing for ``sigma_l'`` (straight-through), so
        that ``K'_l(i, j) = E[ς_l(u) ς_l(v)]``.
    diagonal : {"raise", "nan"}
        What to do when a layer has jumps and no surrogate: its derivative kernel is
        finite off the diagonal (Gaussian density terms, one per pair of jumps) but
        ``E[sigma'(u)^2] = inf`` on it. ``"raise"`` raises ValueError; ``"nan"`` returns
        the exact off-diagonal entries with NaN on the diagonal. (Pairs of identical
        samples, correlation exactly 1, are infinite as well.)
{common}

    Returns
    -------
    ndarray, shape (n, n), float64
        Exactly symmetric.
    """
    _, ntk = _recursion(
        X, layers, tau0=tau0, ntk=True, surrogates=surrogates, diagonal=diagonal,
        block_size=block_size, backend=backend, device=device, first_layer_m4=first_layer_m4,
    )
    return ntk


def exact_kernels(
    X: np.ndarray,
    layers: Sequence[Activation],
    *,
    surrogates: Sequence[Activation | Callable | None] | None = None,
    diagonal: str = "raise",
    first_layer_m4: float = 3.0,
    tau0: float | None = None,
    block_size: int | None = None,
    backend: str | None = None,
    device: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Both ``(K_CK,L, K_NTK,L)`` in one pass (the NTK needs the CK recursion anyway).

    Parameters and conventions as in :func:`exact_ntk`.

    Returns
    -------
    ck, ntk : ndarray, shape (n, n), float64
        Exactly symmetric.
    """
    return _recursion(
        X, layers, tau0=tau0, ntk=True, surrogates=surrogates, diagonal=diagonal,
        block_size=block_size, backend=backend, device=device, first_layer_m4=first_layer_m4,
    )


for _f in (exact_ck, exact_ntk):
    _f.__doc__ = _f.__doc__.replace("{common}", _COMMON_PARAMETERS)
del _f


# ----------------------------------------------------------------------------------
# the recursion
# ----------------------------------------------------------------------------------
def _row_blocks(n: int, block_size: int | None) -> list[tuple[int, int]]:
    if block_size is None:
        block_size = max(16, (1 << 18) // max(n, 1))
    return [(r0, min(n, r0 + block_size)) for r0 in range(0, n, block_size)]


def _correlation_block(K: np.ndarray, s: np.ndarray, r0: int, r1: int) -> np.ndarray:
    rho = K[r0:r1, r0:] / s[r0:r1, None]
    rho /= s[None, r0:]
    np.clip(rho, -1.0, 1.0, out=rho)
    idx = np.arange(r1 - r0)
    rho[idx, idx] = 0.0  # diagonal entries are filled from univariate formulas
    return rho


def _max_offdiagonal_correlation(
    K: np.ndarray, s: np.ndarray, blocks: list[tuple[int, int]]
) -> float:
    best = 0.0
    for r0, r1 in blocks:
        rho = _correlation_block(K, s, r0, r1)
        if rho.size:
            best = max(best, float(np.max(np.abs(rho))))
    return best


def _symmetric_gram(X: np.ndarray) -> np.ndarray:
    """``X X^T``, exactly symmetric (lower triangle by blocks, mirrored)."""
    K = np.empty((X.shape[0], X.shape[0]))
    _fast._gram_lower(np.ascontiguousarray(X), K)
    for tile in _fast._mirror_tiles(X.shape[0]):
        _fast._mirror(K, tile)
    return K


def _layer_dual(
    act: Activation, s: np.ndarray, centre: float, rho_max: float, name: str
) -> Any:
    step = _fast_step(act)
    if step is not None:
        return step.dual(s, centre)
    try:
        return act.dual(s, centre=centre, max_correlation=rho_max)
    except ValueError as err:  # a user callable returning NaN/inf: name the argument
        raise ValueError(f"{name}: {err}") from None


def _recursion(
    X: Any,
    layers: Any,
    *,
    tau0: Any,
    ntk: bool,
    surrogates: Any,
    diagonal: Any,
    block_size: Any,
    backend: Any,
    device: Any,
    first_layer_m4: Any = 3.0,
    generic: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    X_in = X
    X = _checks.real_array(X, "X", ndim=2, shape_hint="of shape (n, p) (samples in rows)")
    layers = check_layers(layers)
    diagonal = _checks.choice(diagonal, "diagonal", _DIAGONAL_MODES)
    kappa4 = _checks.real(first_layer_m4, "first_layer_m4", low=1.0) - 3.0
    if block_size is not None:
        block_size = _checks.integer(block_size, "block_size", minimum=1)
    if backend is not None:
        backend = _checks.choice(backend, "backend", _BACKENDS)
    if device is not None:
        device = _check_device(device)
    surr = check_surrogates(surrogates, len(layers)) if ntk else [None] * len(layers)
    if ntk and diagonal == "raise":
        for i, (act, s) in enumerate(zip(layers, surr)):
            if act.has_jumps and s is None:
                raise ValueError(
                    f"layers[{i}] = {act!r} has jumps: its derivative kernel E[sigma'(u) sigma'(v)] is "
                    "finite off the diagonal but infinite on it (E[sigma'(u)^2] = inf), so the exact NTK "
                    "has an infinite diagonal. Pass diagonal='nan' for the exact off-diagonal part with "
                    f"NaN on the diagonal, or surrogates=[...] with a straight-through derivative for layer {i}."
                )
    tau = _tau0_from(X, tau0)
    centres = _centres(layers, tau)
    steps = [_fast_step(act) for act in layers]
    fused = all(st is not None for st in steps) and all(s is None for s in surr)
    if kappa4 != 0.0:
        if backend == "torch":
            raise ValueError(
                f"backend='torch' runs the Gaussian recursion only; first_layer_m4 = "
                f"{kappa4 + 3.0!r} needs the NumPy recursion (backend='numpy' or None)"
            )
        backend, fused = "numpy", False
    if generic:  # the blockwise recursion whatever the layers (first_layer_correction)
        backend, fused = "numpy", False
    if backend is None:
        on_device = _checks.is_torch(X_in) and X_in.device.type != "cpu"
        backend = "torch" if (on_device and fused) else "numpy"
        if device is None and on_device:
            device = X_in.device
    if backend == "torch":
        if not fused:
            bad = next(
                (f"layers[{i}] = {a!r} has no fast closed form" for i, (a, st) in
                 enumerate(zip(layers, steps)) if st is None),
                "surrogates are not supported",
            )
            raise ValueError(
                "backend='torch' needs every layer to have a fast closed form (ReLU, leaky ReLU, "
                f"abs, identity, sign, step at 0, erf) and no surrogates: {bad}; use backend='numpy'"
            )
        ck, nt = _fast.torch_recursion(X, steps, centres, ntk=ntk, device=device)
    elif fused:
        ck, nt = _fast.recursion(X, steps, centres, ntk=ntk, block_rows=block_size)
    else:
        ck, nt = _generic_recursion(X, layers, surr, centres, ntk, block_size, kappa4)
    if ntk and any(act.has_jumps and s is None for act, s in zip(layers, surr)):
        np.fill_diagonal(nt, np.nan)
    return ck, nt


def _generic_recursion(
    X: np.ndarray,
    layers: list[Activation],
    surr: list[Activation | None],
    centres: list[float],
    ntk: bool,
    block_size: int | None,
    kappa4: float = 0.0,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Layer after layer, by blocks of rows over the upper triangle (any activation).

    With ``kappa4 != 0`` the first layer's blocks get the first-order Edgeworth term of
    :class:`_FirstLayerCorrection` (the book's eq-first-layer-kappa4)."""
    n = X.shape[0]
    blocks = _row_blocks(n, block_size)
    K = _symmetric_gram(X)
    N = K.copy() if ntk else None
    for li, act in enumerate(layers):
        diag = np.diagonal(K).copy()
        if not np.all(diag > 0):
            bad = int(np.argmin(diag))
            raise ValueError(
                f"sample {bad} has pre-activation variance {diag[bad]!r} at layer {li + 1}; the kernels "
                "need every sample to have a positive norm (remove zero rows of X)"
            )
        s = np.sqrt(diag)
        rho_max = _max_offdiagonal_correlation(K, s, blocks)
        name = f"layers[{li}] = {act!r}"
        dual = _layer_dual(act, s, centres[li], rho_max, name)
        diag_values = _checks.finite_output(dual.diagonal_values(), name, "kernel values")
        if ntk:
            if surr[li] is not None:
                dname = f"surrogates[{li}] = {surr[li]!r}"
                ddual = _layer_dual(surr[li], s, 0.0, rho_max, dname)
                dvalues = ddual.values
                diag_deriv = _checks.finite_output(
                    ddual.diagonal_values(), dname, "derivative-kernel values"
                )
                check_deriv = True
            else:
                dname = name
                dvalues = dual.derivatives
                diag_deriv = dual.diagonal_derivatives()
                check_deriv = not act.has_jumps
                if act.has_jumps:
                    diag_deriv = np.full(n, np.nan)
        fl = None
        if li == 0 and kappa4 != 0.0:
            fl = _FirstLayerCorrection(X, act, surr[0], centres[0], kappa4, ntk, rho_max, name)
            diag_values = diag_values + fl.diagonal(False)
            if ntk:
                diag_deriv = diag_deriv + fl.diagonal(True)
        for r0, r1 in blocks:
            rho = _correlation_block(K, s, r0, r1)
            rows, cols = slice(r0, r1), slice(r0, n)
            idx = np.arange(r1 - r0)
            new = _checks.finite_output(dual.values(rows, cols, rho), name, "kernel values")
            if fl is not None:
                new += fl.block(False, r0, r1, rho)
            new[idx, idx] = diag_values[r0:r1]
            sq = new[:, : r1 - r0]
            sq[...] = 0.5 * (sq + sq.T)
            if ntk:
                der = dvalues(rows, cols, rho)
                der[idx, idx] = 0.0
                if fl is not None:
                    der += fl.block(True, r0, r1, rho)
                if check_deriv:
                    _checks.finite_output(der, dname, "derivative-kernel values")
                der[idx, idx] = diag_deriv[r0:r1]
                sq = der[:, : r1 - r0]
                sq[...] = 0.5 * (sq + sq.T)
                nb = N[r0:r1, r0:]
                nb *= der
                nb += new
                N[r0:, r0:r1] = nb.T
            K[r0:r1, r0:] = new
            K[r0:, r0:r1] = new.T
    return K, N


# ----------------------------------------------------------------------------------
# the first layer's weight law: first order in kappa4 (the book's eq-first-layer-kappa4)
# ----------------------------------------------------------------------------------
#: Largest number of Mehler terms of the first-layer correction, and its relative
#: truncation tolerance (see :class:`_FirstLayerCorrection`).
_FL_MAX_ORDER = 2048
_FL_RTOL = 1e-13


def _hermite_coefficients(act: Activation, scales: np.ndarray, order: int) -> np.ndarray:
    """``a_m(s) = E[act(s xi) He_m(xi)] / sqrt(m!)``, ``m = 0..order``.

    Shape (len(scales), order + 1).

    Exact for polynomials and the piecewise-linear family (ReLU, steps, ternary...),
    composite Gauss–Legendre quadrature otherwise (:mod:`lossless._dual`).
    """
    from lossless import _dual
    from lossless.activations import PiecewiseLinear, Polynomial

    if isinstance(act, Polynomial):
        a, _ = act._exact_hermite(scales, order, False)
        out = np.zeros((scales.size, order + 1))
        width = min(a.shape[1], order + 1)
        out[:, :width] = a[:, :width]
        return out
    if isinstance(act, PiecewiseLinear):
        a, _ = _dual.PiecewiseLinearDual(act, scales)._exact_coefficients(scales, order, False)
        return a[:, : order + 1]
    a, _ = _dual.numerical_hermite_coefficients(act, scales, order)
    return a


def _shifted(a: np.ndarray, scales: np.ndarray, shift: int, order: int) -> np.ndarray:
    """Mehler coefficients of the ``shift``-th derivative, in rows: shape (order + 1, m).

    ``E[f^(k)(s xi) He_n(xi)] / sqrt(n!) = s^-k sqrt((n + k)! / n!) a_{n+k}(s)`` (Stein's
    identity, in the distributional sense: jumps and kinks included).
    """
    nn = np.arange(order + 1, dtype=float)
    factor = np.ones(order + 1)
    for t in range(1, shift + 1):
        factor *= nn + t
    b = a[:, shift : shift + order + 1] * np.sqrt(factor)[None, :]
    b /= scales[:, None] ** shift
    return np.ascontiguousarray(b.T)


def _second_derivative_weight(f: Callable[[np.ndarray], np.ndarray], act: Activation,
                              scales: np.ndarray) -> np.ndarray:
    """``E[F''''(s xi)] = E[F(s xi) He_4(xi)] / s^4`` for ``F = f`` on each scale
    (composite Gauss–Legendre split at the activation's breakpoints)."""
    from lossless import _dual

    bp = np.asarray(act.breakpoints, dtype=float)
    breaks = bp[None, :] / scales[:, None] if bp.size else np.zeros((scales.size, 0))
    nodes, weights = _dual.composite_nodes(breaks)
    with np.errstate(over="ignore", under="ignore"):
        vals = np.asarray(f(scales[:, None] * nodes), dtype=float)
    he4 = nodes**4 - 6.0 * nodes**2 + 3.0
    return np.sum(vals * he4 * weights, axis=1) / scales**4


class _FirstLayerCorrection:
    r"""First-order (in ``kappa4``) term of the first layer's kernels, block by block.

    For ``u = w^T x_i``, ``v = w^T x_j`` with i.i.d. symmetric unit-variance weights of
    fourth cumulant ``kappa4``, the joint cumulants of order four of ``(u, v)`` are
    ``kappa4 S_r(i, j)``, ``S_r(i, j) = sum_k x_ik^r x_jk^(4-r)``, and the first-order
    Edgeworth expansion gives (the book's eq-first-layer-kappa4)

    .. math::

        \Delta K(i, j) = \frac{\kappa_4}{24} \sum_{r=0}^{4} \binom{4}{r} S_r(i, j)\,
        \mathbb E_G\bigl[f^{(r)}(u) f^{(4-r)}(v)\bigr]

    with ``f = sigma - m`` (the CK, centred at the Gaussian constant ``m``) or
    ``f = sigma'`` / the surrogate (the derivative kernel), and ``E_G`` the Gaussian
    expectation at the first layer's covariance. Off the diagonal each expectation is
    the Mehler series ``sum_n rho^n B^(r)_n(i) B^(4-r)_n(j)`` of :func:`_shifted`
    coefficients; on it (``u = v``) the five terms add up to ``E[(f^2)''''(u)]``
    (Leibniz), computed by quadrature. The series is truncated where the tail bound
    ``sum_{k > N} rho_max^k max_i |B_k(i)| max_j |B_k(j)|`` (extrapolated beyond the
    computed orders from the last 16 terms) is below ``1e-13`` times the series' scale;
    it is exact for polynomials.
    """

    def __init__(self, X: np.ndarray, act: Activation, surrogate: Activation | None,
                 centre: float, kappa4: float, derivative: bool, rho_max: float,
                 name: str) -> None:
        self.X = X
        self.powers = [np.ones_like(X), X, X * X, X * X * X, (X * X) ** 2]
        self.scales = np.sqrt(np.einsum("ij,ij->i", X, X))
        self.fourth = np.einsum("ij->i", self.powers[4])
        self.factor = kappa4 / 24.0
        self.name = name
        s = self.scales
        self._val = self._series(act, centre, 0, rho_max)
        self._diag_val = _checks.finite_output(
            _second_derivative_weight(lambda t: (act(t) - centre) ** 2, act, s), name,
            "first-layer correction values")
        self._der = None
        self._diag_der = None
        if derivative:
            if surrogate is None:
                self._der = self._series(act, 0.0, 1, rho_max)
                if act.has_jumps:
                    self._diag_der = np.full(s.size, np.nan)
                else:
                    self._diag_der = _checks.finite_output(
                        _second_derivative_weight(lambda t: act.derivative(t) ** 2, act, s),
                        name, "first-layer correction derivative values")
            else:
                self._der = self._series(surrogate, 0.0, 0, rho_max)
                self._diag_der = _checks.finite_output(
                    _second_derivative_weight(lambda t: surrogate(t) ** 2, surrogate, s),
                    f"surrogates[0] = {surrogate!r}", "first-layer correction values")

    def _series(self, act: Activation, centre: float, offset: int, rho_max: float) -> list:
        """Coefficient pairs of the five terms, truncated at a common order."""
        s = self.scales
        rho = float(min(max(rho_max, 0.0), 1.0))
        order = 64
        while True:
            a = _hermite_coefficients(act, s, order + offset + 4)
            _checks.finite_output(a, self.name, "Hermite coefficients")
            a[:, 0] -= centre
            pairs = [(_shifted(a, s, r + offset, order), _shifted(a, s, 4 - r + offset, order))
                     for r in range(5)]
            cut = self._truncation(pairs, rho, order)
            if cut is not None:
                return [(bi[: cut + 1], bj[: cut + 1]) for bi, bj in pairs]
            if order >= _FL_MAX_ORDER:
                raise ValueError(
                    f"first_layer_m4: the first-order correction of the first layer "
                    f"({self.name}) is a Mehler series that does not converge within "
                    f"{_FL_MAX_ORDER} terms at the largest off-diagonal correlation of X, "
                    f"|rho| = {rho_max:.6g} (near-duplicate samples); remove near-duplicate "
                    "rows of X, or use first_layer_m4=3"
                )
            order *= 2

    @staticmethod
    def _truncation(pairs: list, rho: float, order: int) -> int | None:
        """Smallest common order N whose tail is below the tolerance, or None."""
        powers = rho ** np.arange(order + 1)
        best = 0
        for bi, bj in pairs:
            t = np.max(np.abs(bi), axis=1) * np.max(np.abs(bj), axis=1) * powers
            scale = float(np.sum(t))
            if scale == 0.0:
                continue
            last = float(np.max(t[-16:]))
            rest = 0.0 if last == 0.0 else last * (rho / (1.0 - rho) if rho < 1.0 else math.inf)
            tail = np.concatenate([np.cumsum(t[::-1])[::-1][1:], [0.0]]) + rest
            ok = np.nonzero(tail <= _FL_RTOL * scale)[0]
            if not ok.size:
                return None
            best = max(best, int(ok[0]))
        return best

    def block(self, derivative: bool, r0: int, r1: int, rho: np.ndarray) -> np.ndarray:
        """Correction of rows ``r0:r1``, columns ``r0:n`` (diagonal entries to be overwritten)."""
        from lossless._dual import HermiteDual

        pairs = self._der if derivative else self._val
        P = self.powers
        out = np.zeros(rho.shape)
        for r, (bi, bj) in enumerate(pairs):
            E = HermiteDual._horner(bi[:, r0:r1], bj[:, r0:], rho)
            E *= P[r][r0:r1] @ P[4 - r][r0:].T
            out += math.comb(4, r) * E
        out *= self.factor
        return out

    def diagonal(self, derivative: bool) -> np.ndarray:
        """``kappa4/24 * sum_k x_ik^4 * E[(f^2)''''(nu_i xi)]``, shape (n,)."""
        weight = self._diag_der if derivative else self._diag_val
        return self.factor * self.fourth * weight


def first_layer_correction(
    X: np.ndarray,
    layers: Sequence[Activation],
    first_layer_m4: float,
    *,
    kernel: str = "ck",
    surrogates: Sequence[Activation | Callable | None] | None = None,
    diagonal: str = "raise",
    tau0: float | None = None,
    block_size: int | None = None,
) -> np.ndarray:
    r"""What the first layer's weight law changes in the exact kernel: ``K(m4) - K(3)``.

    With i.i.d. symmetric unit-variance first-layer weights of fourth moment
    ``m4 = first_layer_m4`` (``kappa4 = m4 - 3``) and samples ``x_i`` (rows of ``X``),
    the first layer's CK changes by the first-order Edgeworth term of the book's
    eq-first-layer-kappa4,

    .. math::

        \Delta K_1(i, j) = \frac{\kappa_4}{24} \sum_{r=0}^{4} \binom{4}{r}
        \Bigl(\sum_k x_{ik}^r x_{jk}^{4-r}\Bigr)
        \mathbb E\bigl[(\sigma^c)^{(r)}(u)\,(\sigma^c)^{(4-r)}(v)\bigr],

    ``(u, v)`` Gaussian with the first layer's covariance, derivatives in Stein's sense
    (exact for polynomials of degree <= 2, where it is ``kappa4 c^2 (X∘X)(X∘X)^T`` for
    ``sigma = c t^2 + ...``; first order in ``kappa4`` otherwise); the derivative kernel
    ``K'_1`` changes likewise with ``sigma'`` (or the surrogate) in place of
    ``sigma^c``. Deeper layers are Gaussian given ``K_1``. At leading order in ``p``
    only ``r = 2`` survives: off the diagonal ``Delta K_1 ≈ (kappa4 g2^2 / 4)
    (X∘X)(X∘X)^T`` (the D block of :func:`lossless.theory.equivalent_ck`).

    This is ``exact_ck(X, layers, first_layer_m4=m4) - exact_ck(X, layers)`` (or the
    NTK's), both computed by the same blockwise recursion, so the difference carries no
    rounding from two different code paths. Fast enough for the book's sizes (n = 2p
    with p = 128..512: seconds).

    Parameters
    ----------
    X : ndarray, shape (n, p)
        Samples in rows.
    layers : list of Activation, length L
    first_layer_m4 : float
        ``E w^4`` of the first layer's weights, finite and ``>= 1``.
    kernel : {"ck", "ntk"}
    surrogates, diagonal : optional
        NTK only, as in :func:`exact_ntk`.
    tau0 : float, optional
        Input scale; default ``sqrt(mean_i ||x_i||^2)``.
    block_size : int, optional

    Returns
    -------
    ndarray, shape (n, n), float64
        Exactly symmetric (NaN on the diagonal for an NTK with jumps and ``diagonal="nan"``).
    """
    kernel = _checks.choice(kernel, "kernel", ("ck", "ntk"))
    m4 = _checks.real(first_layer_m4, "first_layer_m4", low=1.0)
    ntk = kernel == "ntk"
    if not ntk and surrogates is not None:
        raise ValueError("surrogates apply to kernel='ntk' only (the CK has no derivative kernel), "
                         f"got kernel='ck' with surrogates={surrogates!r}")
    common = dict(tau0=tau0, ntk=ntk, surrogates=surrogates, diagonal=diagonal,
                  block_size=block_size, backend="numpy", device=None, generic=True)
    corrected = _recursion(X, layers, first_layer_m4=m4, **common)
    gaussian = _recursion(X, layers, first_layer_m4=3.0, **common)
    k = 1 if ntk else 0
    return corrected[k] - gaussian[k]


# ==================================================================================
# Empirical (finite-width) kernels. torch is imported inside the functions: the exact
# part above needs NumPy only, and `from lossless import kernels` stays light.
# ==================================================================================


def _torch_input(X: Any, dtype: Any) -> "torch.Tensor":
    """Validated ``X`` (real, finite, shape (n, p)) as a torch tensor of ``dtype``."""
    import torch

    arr = _checks.real_array(X, "X", ndim=2, shape_hint="of shape (n, p) (samples in rows)")
    return torch.from_numpy(np.require(arr, requirements=["C", "W"])).to(dtype)


def _check_weights(weights: Any) -> Any:
    if callable(weights):
        return weights
    if not isinstance(weights, str):
        raise TypeError(f"weights must be 'gaussian', 'ternary' or a callable, got {_checks.describe(weights)}")
    return _checks.choice(weights, "weights", ("gaussian", "ternary"))


def empirical_ck(
    X: "np.ndarray | torch.Tensor",
    widths: Sequence[int],
    layers: Sequence[Activation],
    draws: int,
    generator: "torch.Generator",
    *,
    weights: str | Callable = "gaussian",
    sparsity: float = 0.0,
    tau0: float | None = None,
    dtype: "torch.dtype | None" = None,
    progress: bool = False,
) -> np.ndarray:
    r"""Monte Carlo estimate of the CK: :math:`\Sigma_L \Sigma_L^\top` averaged over draws
    (samples in rows; the book's :math:`\Sigma_L^\top \Sigma_L` of eq-ckntk-kernels).

    Each draw builds a fresh :class:`lossless.networks.MLP` (independent weights from
    ``generator``) and computes the Gram matrix of its last-layer features. With one draw
    this is the CK of one random network; its relative operator-norm distance to
    :func:`exact_ck` falls like ``d^{-1/2}`` with the width ``d``.

    Parameters
    ----------
    X : ndarray or Tensor, shape (n, p)
        Samples in rows, real and finite.
    widths : sequence of int, length L
        Positive integers (floats are refused, not truncated).
    layers : sequence of Activation, length L
    draws : int
        Number of independent networks averaged (``>= 1``).
    generator : torch.Generator
    weights : {"gaussian", "ternary"} or callable, default "gaussian"
        Weight distribution, see :class:`lossless.networks.MLP`.
    sparsity : float, default 0.0
        Zero probability of ternary weights, in ``[0, 1)``.
    tau0 : float, optional
        Input scale; default ``sqrt(mean_i ||x_i||^2)`` from ``X``.
    dtype : torch.dtype, optional
        ``torch.float32`` or ``torch.float64`` (default).
    progress : bool, default False
        Show a ``tqdm`` progress bar over the draws.

    Returns
    -------
    ndarray, shape (n, n), float64
        Exactly symmetric.

    Raises
    ------
    TypeError
        A wrong kind of argument (a float or bool ``draws``, a string ``tau0``, a dtype
        other than float32/float64, a generator that is not a ``torch.Generator``...).
    ValueError
        A wrong value (``draws < 1``, widths not one per layer, non-finite ``X``...).
    """
    import torch

    from lossless.networks import MLP

    layers = check_layers(layers)
    widths = _checks.layer_widths(widths, len(layers))
    draws = _checks.integer(draws, "draws", minimum=1)
    _checks.torch_generator(generator, "generator")
    weights = _check_weights(weights)
    sparsity = _checks.fraction(sparsity, "sparsity")
    dtype = _checks.float_dtype(dtype, "dtype", allow_none=True) or torch.float64
    progress = _checks.flag(progress, "progress")
    Xt = _torch_input(X, dtype)
    if tau0 is None:
        tau0 = _tau0_from(Xt.to(torch.float64).numpy(), None)
    else:
        tau0 = _checks.input_scale(tau0, "tau0")
    n = Xt.shape[0]
    total = torch.zeros(n, n, dtype=dtype)
    iterator = progress_bar(range(draws), progress, "empirical CK")
    with torch.no_grad():
        for _ in iterator:
            net = MLP(
                Xt.shape[1], widths, layers, tau0, weights=weights, sparsity=sparsity,
                generator=generator, dtype=dtype,
            )
            F = net.features(Xt)
            if not bool(torch.isfinite(F).all()):
                _name_nonfinite_layer(net, Xt)
            total += F @ F.T
    # BLAS may round F F^T differently above and below the diagonal: make it exact
    return _checks.symmetrize((total / draws).to(torch.float64)).numpy()


def _name_nonfinite_layer(net: "MLP", X: "torch.Tensor") -> None:
    """Raise ValueError naming the first layer whose activation returns NaN or inf."""
    import torch

    H = X
    for i, (W, act, m, d) in enumerate(zip(net.hidden, net.layers, net.centres, net.widths)):
        A = torch.as_tensor(act(H @ W.T))
        _checks.finite_output(A, f"layers[{i}] = {act!r}", "values")
        H = (A - m) / math.sqrt(d)
    raise ValueError("the network's features are not finite (NaN or inf)")  # pragma: no cover


def _derivative_functions(net: "MLP", surrogates) -> list[Callable]:
    """Per layer, the function used for sigma' (a.e. derivative or a surrogate)."""
    checked = check_surrogates(surrogates, len(net.layers))  # raises on bad input
    raw = checked if surrogates is None else list(surrogates)  # callables as given (torch)
    return [act.derivative if s is None else r for act, s, r in zip(net.layers, checked, raw)]


def empirical_ntk(
    net: "MLP",
    X: "np.ndarray | torch.Tensor",
    *,
    surrogates: Sequence[Activation | Callable | None] | None = None,
    chunk_size: int | None = None,
    dtype: "torch.dtype | None" = None,
) -> np.ndarray:
    r"""NTK of a given network, exactly, from per-layer forward and backward quantities.

    For :class:`lossless.networks.MLP` ``net`` (samples in rows), the book's
    eq-ckntk-ntk-layers:

    .. math::

        K = \Sigma_L \Sigma_L^\top
            + \sum_{\ell=1}^{L} (\delta_\ell \delta_\ell^\top)
              \circ (\Sigma_{\ell-1}\Sigma_{\ell-1}^\top),

    with the backward signals ``δ_l`` (``n x d_l``, the transpose of the book's
    ``d_l x n`` matrix) the derivatives of ``f`` with respect to the
    pre-activations ``Z_l = Sigma_{l-1} W_l^T``: ``δ_L = sigma_L'(Z_L) * w / sqrt(d_L)``,
    ``δ_l = sigma_l'(Z_l) * (δ_{l+1} W_{l+1}) / sqrt(d_l)``. This equals ``J J^T`` for
    the Jacobian ``J`` of ``f`` with respect to all parameters (``W_1..W_L`` and
    ``w``), without ever forming ``J`` (``n x P``): memory is ``O(n^2 + n sum_l d_l)``,
    work ``O(n P + n^2 sum_l d_l)``. The Gram products are done by blocks of
    ``chunk_size`` rows, only on and below the diagonal, then mirrored: the result is
    exactly symmetric (its entries may change in the last bits with ``chunk_size``,
    as BLAS sums in another order).

    Activations with jumps have a derivative that is zero almost everywhere, so by
    default every weight matrix up to the last layer with jumps gets a zero gradient
    (this is what autograd computes), whereas the exact NTK of such a network has an
    infinite diagonal (:func:`exact_ntk`). Pass ``surrogates`` to use a straight-through
    derivative instead, with the convention of :func:`exact_ntk`: ``ς_l`` is evaluated in
    place of ``sigma_l'``, so the exact counterpart is ``exact_ntk(X, layers,
    surrogates=...)``.

    Parameters
    ----------
    net : lossless.networks.MLP
    X : ndarray or Tensor, shape (n, p)
        Samples in rows.
    surrogates : list of (None | callable), length L, optional
        Per layer, None (use ``layers[l].derivative``) or a callable (an ``Activation``
        or any function of a tensor) evaluated in place of ``sigma_l'``.
    chunk_size : int, optional
        Rows per block of the Gram products; default ``min(n, 512)``.
    dtype : torch.dtype, optional
        ``torch.float32`` or ``torch.float64``; default the network's. ``torch.float64``
        on a float32 network computes in double precision with the same weights.

    Returns
    -------
    ndarray, shape (n, n), float64
        The empirical NTK ``K[i, j] = <grad f(x_i), grad f(x_j)>``.
    """
    import torch

    from lossless.networks import MLP

    if not isinstance(net, MLP):
        raise TypeError(f"net must be a lossless.networks.MLP, got {type(net).__name__}")
    dtype = _checks.float_dtype(dtype, "dtype", allow_none=True) or net.dtype
    arr = _checks.real_array(
        X, "X", shape=(None, net.p), shape_hint=f"of shape (n, p) with p = {net.p} (samples in rows)"
    )
    Xt = torch.from_numpy(np.require(arr, requirements=["C", "W"])).to(dtype)
    n = Xt.shape[0]
    chunk_size = min(n, 512) if chunk_size is None else _checks.integer(
        chunk_size, "chunk_size", minimum=1
    )
    derivatives = _derivative_functions(net, surrogates)

    with torch.no_grad():
        Ws = [W.detach().to(dtype) for W in net.hidden]
        w = net.readout.detach().to(dtype)
        # forward: inputs H_0..H_L of every layer and sigma'(Z_l)
        H = [Xt]
        G = []
        for i, (W, act, dsig, m, d) in enumerate(
            zip(Ws, net.layers, derivatives, net.centres, net.widths)
        ):
            Z = H[-1] @ W.T
            surrogate = surrogates is not None and surrogates[i] is not None
            dname = f"surrogates[{i}]" if surrogate else f"layers[{i}] = {act!r}"
            G.append(_checks.finite_output(torch.as_tensor(dsig(Z), dtype=dtype), dname,
                                           "derivative values"))
            A = _checks.finite_output(torch.as_tensor(act(Z), dtype=dtype),
                                      f"layers[{i}] = {act!r}", "values")
            A = A - m
            A /= math.sqrt(d)
            H.append(A)
            del Z
        # backward signals δ_l (the list G, eq-ckntk-ntk-layers):
        # δ_l = sigma_l'(Z_l) * (δ_{l+1} W_{l+1}) / sqrt(d_l), δ_L uses w
        back = w.expand(n, -1)
        for ell in range(len(Ws) - 1, -1, -1):
            G[ell] = G[ell] * back
            G[ell] /= math.sqrt(net.widths[ell])
            if ell > 0:
                back = G[ell] @ Ws[ell]
        # Gram products by row blocks, lower block triangle only
        K = torch.empty(n, n, dtype=dtype)
        for a in range(0, n, int(chunk_size)):
            b = min(n, a + int(chunk_size))
            block = H[-1][a:b] @ H[-1][:b].T
            for ell in range(len(Ws)):
                gram_g = G[ell][a:b] @ G[ell][:b].T
                gram_g *= H[ell][a:b] @ H[ell][:b].T
                block += gram_g
            K[a:b, :b] = block
        # mirror the lower triangle: exactly symmetric whatever BLAS does in the blocks
        K = torch.tril(K) + torch.tril(K, -1).T
    return K.to(torch.float64).numpy()
