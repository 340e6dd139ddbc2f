"""Exact (infinite-width) and empirical CK/NTK matrices of deep fully-connected networks.

The exact part (top of this file) implements the recursion of
math-spec §2 for samples in rows, ``X`` of shape ``(n, p)``:

``K_CK,0 = X X^T``,  ``K_CK,l(i, j) = E[sigma_l^c(u) sigma_l^c(v)]``,
``K'_l(i, j) = E[sigma_l'(u) sigma_l'(v)]``,  ``K_NTK,l = K_CK,l + K_NTK,l-1 * K'_l``
(``*`` entrywise), ``(u, v) ~ N(0, [[K(i,i), K(i,j)], [K(j,i), K(j,j)]])`` with
``K = K_CK,l-1``, each activation centred at scale ``tau_{l-1}``.

The two-point expectations come from the activation objects
(:meth:`lossless.activations.Activation.dual`): closed forms for the piecewise-linear
family (ReLU, leaky ReLU, abs, identity, sign, steps, ternary, any piecewise-constant),
erf, sin, cos and polynomials, and a Mehler–Hermite series with per-sample coefficients
(truncation bounded explicitly) for tanh, sigmoid and user callables. The n x n
matrices are processed in blocks of rows over the upper triangle and updated in place,
so memory stays at one (CK) or two (NTK) n x n float64 arrays plus small blocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from lossless import activations as _act
from lossless._display import progress as progress_bar
from lossless.activations import Activation, check_layers, check_surrogates

if TYPE_CHECKING:  # for annotations only
    import torch

    from lossless.networks import MLP

__all__ = [
    "layer_scales",
    "exact_ck",
    "exact_ntk",
    "exact_kernels",
    "empirical_ck",
    "empirical_ntk",
    "compare_spectra",
    "SpectrumComparison",
]

_DIAGONAL_MODES = ("raise", "nan")


# ----------------------------------------------------------------------------------
# argument checks
# ----------------------------------------------------------------------------------
def _check_X(X: Any) -> np.ndarray:
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"X must be a real array of shape (n, p), got {type(X).__name__}"
        ) from None
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(
            f"X must have shape (n, p) with n, p >= 1 (samples in rows), got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise ValueError(f"X must be finite, got {bad} non-finite entries (NaN or inf)")
    return arr


def _tau0_from(X: np.ndarray, tau0: Any) -> float:
    if tau0 is None:
        value = math.sqrt(float(np.mean(np.einsum("ij,ij->i", X, X))))
        if not value > 0:
            raise ValueError("tau0 = sqrt(mean ||x_i||^2) is 0: X is all zeros")
        return value
    try:
        value = float(tau0)
    except (TypeError, ValueError):
        raise ValueError(f"tau0 must be None or a positive finite number, got {tau0!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"tau0 must be None or a positive finite number, got {tau0!r}")
    return value


# ----------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------
def layer_scales(layers: Sequence[Activation], tau0: float) -> list[float]:
    """Scales ``tau_0, ..., tau_L`` of the centring recursion ``tau_l^2 = v_l(tau_{l-1})``.

    Parameters
    ----------
    layers : list of Activation, length L
    tau0 : float
        Input scale (``sqrt(mean_i ||x_i||^2)`` for data ``X``), not squared.

    Returns
    -------
    list of float, length L + 1
        ``tau_l = sqrt(Var[sigma_l(tau_{l-1} xi)])``.

    Raises
    ------
    ValueError
        If ``tau0`` is not positive and finite, or a layer's output variance is 0
        (a constant activation: the next layer would have no input).
    """
    layers = check_layers(layers)
    taus = [_act._check_scale(tau0, "tau0")]
    for i, act in enumerate(layers):
        v = act.moments(taus[-1]).v
        if not (v > 0 and math.isfinite(v)):
            raise ValueError(
                f"layers[{i}] = {act!r} has output variance {v!r} at input scale {taus[-1]:.6g}; "
                "a positive finite variance is needed to feed the next layer"
            )
        taus.append(math.sqrt(v))
    return taus


def exact_ck(
    X: np.ndarray,
    layers: Sequence[Activation],
    *,
    tau0: float | None = None,
    block_size: int | None = None,
) -> np.ndarray:
    """Exact (infinite-width) conjugate kernel ``K_CK,L`` of math-spec §2.

    Parameters
    ----------
    X : ndarray, shape (n, p)
        Samples in rows (the paper's ``X^T``).
    layers : list of Activation, length L
    tau0 : float, optional
        Input scale; default ``sqrt(mean_i ||x_i||^2)``.
    block_size : int, optional
        Rows per block (default: about 2^18 entries per block).

    Returns
    -------
    ndarray, shape (n, n), float64, symmetric

    Raises
    ------
    ValueError
        Mis-shaped or non-finite ``X``, bad ``tau0``, a sample with zero pre-activation
        variance.
    TypeError
        ``layers`` not a list of Activation objects.
    """
    ck, _ = _recursion(
        X, layers, tau0=tau0, ntk=False, surrogates=None, diagonal="raise", block_size=block_size
    )
    return ck


def exact_ntk(
    X: np.ndarray,
    layers: Sequence[Activation],
    *,
    surrogates: Sequence[Activation | Callable | None] | None = None,
    diagonal: str = "raise",
    tau0: float | None = None,
    block_size: int | None = None,
) -> np.ndarray:
    """Exact (infinite-width) neural tangent kernel ``K_NTK,L`` of math-spec §2.

    Parameters
    ----------
    X : ndarray, shape (n, p)
    layers : list of Activation, length L
    surrogates : list, optional
        One entry per layer: None (use the true derivative) or an Activation/callable
        ``s`` standing for ``sigma_l'`` (straight-through), so that
        ``K'_l(i, j) = E[s(u) s(v)]``.
    diagonal : {"raise", "nan"}
        What to do when a layer has jumps and no surrogate: its derivative kernel is
        finite off the diagonal (Gaussian density terms, one per pair of jumps) but
        ``E[sigma'(u)^2] = inf`` on it. ``"raise"`` raises ValueError; ``"nan"`` returns
        the exact off-diagonal entries with NaN on the diagonal. (Pairs of identical
        samples, correlation exactly 1, are infinite as well.)
    tau0 : float, optional
        Input scale; default ``sqrt(mean_i ||x_i||^2)``.
    block_size : int, optional
        Rows per block.

    Returns
    -------
    ndarray, shape (n, n), float64, symmetric
    """
    _, ntk = _recursion(
        X,
        layers,
        tau0=tau0,
        ntk=True,
        surrogates=surrogates,
        diagonal=diagonal,
        block_size=block_size,
    )
    return ntk


def exact_kernels(
    X: np.ndarray,
    layers: Sequence[Activation],
    *,
    surrogates: Sequence[Activation | Callable | None] | None = None,
    diagonal: str = "raise",
    tau0: float | None = None,
    block_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Both ``(K_CK,L, K_NTK,L)`` in one pass (the NTK needs the CK recursion anyway).

    Parameters and conventions as in :func:`exact_ntk`.

    Returns
    -------
    ck, ntk : ndarray, shape (n, n)
    """
    return _recursion(
        X,
        layers,
        tau0=tau0,
        ntk=True,
        surrogates=surrogates,
        diagonal=diagonal,
        block_size=block_size,
    )


# ----------------------------------------------------------------------------------
# the recursion
# ----------------------------------------------------------------------------------
def _row_blocks(n: int, block_size: int | None) -> list[tuple[int, int]]:
    if block_size is None:
        block_size = max(16, (1 << 18) // max(n, 1))
    block_size = int(block_size)
    if block_size < 1:
        raise ValueError(f"block_size must be a positive integer, got {block_size}")
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


def _recursion(
    X: Any,
    layers: Any,
    *,
    tau0: Any,
    ntk: bool,
    surrogates: Any,
    diagonal: str,
    block_size: int | None,
) -> tuple[np.ndarray, np.ndarray | None]:
    X = _check_X(X)
    layers = check_layers(layers)
    if diagonal not in _DIAGONAL_MODES:
        raise ValueError(f"diagonal must be one of {_DIAGONAL_MODES}, got {diagonal!r}")
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
    taus = layer_scales(layers, tau)
    n = X.shape[0]
    blocks = _row_blocks(n, block_size)

    K = X @ X.T
    N = K.copy() if ntk else None
    nan_diagonal = False
    for li, act in enumerate(layers):
        center = act.moments(taus[li]).m
        diag = np.diagonal(K).copy()
        if not np.all(diag > 0):
            bad = int(np.argmin(diag))
            raise ValueError(
                f"sample {bad} has pre-activation variance {diag[bad]!r} at layer {li + 1}; the kernels "
                "need every sample to have a positive norm (remove zero rows of X)"
            )
        s = np.sqrt(diag)
        rho_max = _max_offdiagonal_correlation(K, s, blocks)
        dual = act.dual(s, center=center, max_correlation=rho_max)
        diag_values = dual.diagonal_values()
        if ntk:
            if surr[li] is not None:
                ddual = surr[li].dual(s, center=0.0, max_correlation=rho_max)
                dvalues = ddual.values
                diag_deriv = ddual.diagonal_values()
            else:
                dvalues = dual.derivatives
                diag_deriv = dual.diagonal_derivatives()
                if act.has_jumps:
                    nan_diagonal = True
                    diag_deriv = np.full(n, np.nan)
        for r0, r1 in blocks:
            rho = _correlation_block(K, s, r0, r1)
            rows, cols = slice(r0, r1), slice(r0, n)
            idx = np.arange(r1 - r0)
            new = dual.values(rows, cols, rho)
            new[idx, idx] = diag_values[r0:r1]
            sq = new[:, : r1 - r0]
            sq[...] = 0.5 * (sq + sq.T)
            if ntk:
                der = dvalues(rows, cols, rho)
                der[idx, idx] = diag_deriv[r0:r1]
                sq = der[:, : r1 - r0]
                sq[...] = 0.5 * (sq + sq.T)
                nb = N[r0:r1, r0:]
                nb *= der
                nb += new
                N[r0:, r0:r1] = nb.T
            K[r0:r1, r0:] = new
            K[r0:, r0:r1] = new.T
    if ntk and nan_diagonal:
        np.fill_diagonal(N, np.nan)
    return K, N


# ==================================================================================
# Empirical (finite-width) kernels. torch is imported inside the functions: the exact
# part above needs NumPy only, and `from lossless import kernels` stays light.
# ==================================================================================


def _torch_input(X, dtype) -> "torch.Tensor":
    import torch

    if isinstance(X, np.ndarray):
        return torch.from_numpy(np.require(X, requirements=["C", "W"])).to(dtype)
    return torch.as_tensor(X).to(dtype)


def _check_rows(X, name: str = "X") -> None:
    shape = tuple(X.shape)
    if len(shape) != 2 or shape[0] < 1 or shape[1] < 1:
        raise ValueError(f"{name} must have shape (n, p) with n, p >= 1 (samples in rows), got {shape}")


def empirical_ck(
    X: "np.ndarray | torch.Tensor",
    layers: Sequence[Activation],
    widths: Sequence[int],
    draws: int,
    generator: "torch.Generator",
    *,
    weights: str | Callable = "gaussian",
    sparsity: float = 0.0,
    tau0: float | None = None,
    dtype: "torch.dtype | None" = None,
    progress: bool = False,
) -> np.ndarray:
    r"""Monte Carlo estimate of the CK: :math:`\Sigma_L \Sigma_L^\top` averaged over draws.

    Each draw builds a fresh :class:`lossless.networks.MLP` (independent weights from
    ``generator``) and computes the Gram matrix of its last-layer features. With one draw
    this is the CK of one random network; its relative operator-norm distance to
    :func:`exact_ck` falls like ``d^{-1/2}`` with the width ``d``.

    Parameters
    ----------
    X : ndarray or Tensor, shape (n, p)
        Samples in rows.
    layers : sequence of Activation, length L
    widths : sequence of int, length L
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
        Computation dtype, default ``torch.float64``.
    progress : bool, default False
        Show a ``tqdm`` progress bar over the draws.

    Returns
    -------
    ndarray, shape (n, n), float64
    """
    import torch

    from lossless.networks import MLP

    dtype = torch.float64 if dtype is None else dtype
    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 1:
        raise ValueError(f"draws must be a positive integer, got {draws!r}")
    Xt = _torch_input(X, dtype)
    _check_rows(Xt)
    if not torch.isfinite(Xt).all():
        raise ValueError("X must contain only finite values")
    if tau0 is None:
        tau0 = float(torch.sqrt((Xt * Xt).sum(1).mean()))
    n = Xt.shape[0]
    total = torch.zeros(n, n, dtype=dtype)
    iterator = progress_bar(range(int(draws)), progress, "empirical CK")
    with torch.no_grad():
        for _ in iterator:
            net = MLP(
                Xt.shape[1], widths, layers, tau0, weights=weights, sparsity=sparsity,
                generator=generator, dtype=dtype,
            )
            F = net.features(Xt)
            total += F @ F.T
    return (total / draws).to(torch.float64).numpy()


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

    For :class:`lossless.networks.MLP` ``net`` (samples in rows),

    .. math::

        K = \Sigma_L \Sigma_L^\top
            + \sum_{\ell=1}^{L} (G_\ell G_\ell^\top) \circ (\Sigma_{\ell-1}\Sigma_{\ell-1}^\top),

    with ``G_l`` (``n x d_l``) the derivatives of ``f`` with respect to the
    pre-activations ``Z_l = Sigma_{l-1} W_l^T``: ``G_L = sigma_L'(Z_L) * w / sqrt(d_L)``,
    ``G_l = sigma_l'(Z_l) * (G_{l+1} W_{l+1}) / sqrt(d_l)``. This equals ``J J^T`` for
    the Jacobian ``J`` of ``f`` with respect to all parameters (``W_1..W_L`` and
    ``w``), without ever forming ``J`` (``n x P``): memory is ``O(n^2 + n sum_l d_l)``,
    work ``O(n P + n^2 sum_l d_l)``. The Gram products are done by blocks of
    ``chunk_size`` rows, only on and below the diagonal, then mirrored.

    Activations with jumps have a derivative that is zero almost everywhere, so by
    default every weight matrix up to the last layer with jumps gets a zero gradient
    (this is what autograd computes), whereas the exact NTK of such a network has an
    infinite diagonal (:func:`exact_ntk`). Pass ``surrogates`` to use a straight-through
    derivative instead, with the convention of :func:`exact_ntk`: ``s`` is evaluated in
    place of ``sigma'``, so the exact counterpart is ``exact_ntk(X, layers,
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
        Computation dtype; default the network's. ``torch.float64`` on a float32 network
        computes in double precision with the same weights.

    Returns
    -------
    ndarray, shape (n, n), float64
        The empirical NTK ``K[i, j] = <grad f(x_i), grad f(x_j)>``.
    """
    import torch

    from lossless.networks import MLP

    if not isinstance(net, MLP):
        raise TypeError(f"net must be a lossless.networks.MLP, got {type(net).__name__}")
    dtype = net.dtype if dtype is None else dtype
    Xt = _torch_input(X, dtype)
    _check_rows(Xt)
    if Xt.shape[1] != net.p:
        raise ValueError(f"X must have shape (n, p) with p = {net.p}, got {tuple(Xt.shape)}")
    if not torch.isfinite(Xt).all():
        raise ValueError("X must contain only finite values")
    n = Xt.shape[0]
    if chunk_size is None:
        chunk_size = min(n, 512)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    derivatives = _derivative_functions(net, surrogates)

    with torch.no_grad():
        Ws = [W.detach().to(dtype) for W in net.hidden]
        w = net.readout.detach().to(dtype)
        # forward: inputs H_0..H_L of every layer and sigma'(Z_l)
        H = [Xt]
        G = []
        for W, act, dsig, m, d in zip(Ws, net.layers, derivatives, net.centres, net.widths):
            Z = H[-1] @ W.T
            G.append(torch.as_tensor(dsig(Z), dtype=dtype))
            A = act(Z)
            A -= m
            A /= math.sqrt(d)
            H.append(A)
            del Z
        # backward: G_l = sigma_l'(Z_l) * (G_{l+1} W_{l+1}) / sqrt(d_l), G_L uses w
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
            K[:a, a:b] = block[:, :a].T
    return K.to(torch.float64).numpy()


@dataclass(frozen=True)
class SpectrumComparison:
    """Empirical against exact kernel spectra (the compute behind Chapter 2's widget).

    Attributes
    ----------
    exact, empirical : ndarray, shape (n,)
        Eigenvalues in decreasing order.
    exact_vectors, empirical_vectors : ndarray, shape (n, k)
        The ``k`` leading eigenvectors (columns).
    relative_error : float
        ``||K_emp - K|| / ||K||`` in operator norm.
    alignment : ndarray, shape (k,)
        ``|<u_i, u_i_emp>|`` for the ``k`` leading eigenvectors.
    """

    exact: np.ndarray
    empirical: np.ndarray
    exact_vectors: np.ndarray
    empirical_vectors: np.ndarray
    relative_error: float
    alignment: np.ndarray

    def __repr__(self) -> str:
        return (
            f"SpectrumComparison(n={self.exact.size}, relative_error={self.relative_error:.4g}, "
            f"alignment={np.round(self.alignment, 4).tolist()}, "
            f"top eigenvalues exact={self.exact[0]:.4g}, empirical={self.empirical[0]:.4g})"
        )


def compare_spectra(
    X: np.ndarray,
    layers: Sequence[Activation],
    width: int,
    generator: "torch.Generator",
    *,
    kernel: str = "ntk",
    weights: str | Callable = "gaussian",
    sparsity: float = 0.0,
    surrogates: Sequence[Activation | Callable | None] | None = None,
    n_vectors: int = 2,
) -> SpectrumComparison:
    """Spectra of the empirical and exact CK or NTK of one random network.

    Draws one :class:`lossless.networks.MLP` (all hidden widths equal to ``width``),
    computes its empirical kernel (:func:`empirical_ck` with one draw, or
    :func:`empirical_ntk`) and the exact one (:func:`exact_ck`, :func:`exact_ntk`),
    and compares eigenvalues and leading eigenvectors.

    Parameters
    ----------
    X : ndarray, shape (n, p)
    layers : sequence of Activation, length L
    width : int
        Common width ``d_1 = ... = d_L``.
    generator : torch.Generator
    kernel : {"ck", "ntk"}, default "ntk"
    weights, sparsity : see :class:`lossless.networks.MLP`
    surrogates : optional
        Straight-through derivatives, passed to both NTKs (``kernel="ntk"``).
    n_vectors : int, default 2
        Number of leading eigenvectors compared.

    Returns
    -------
    SpectrumComparison
    """
    import torch

    from lossless.networks import MLP

    if kernel not in ("ck", "ntk"):
        raise ValueError(f"kernel must be 'ck' or 'ntk', got {kernel!r}")
    X = np.asarray(X, dtype=np.float64)
    _check_rows(X)
    layers = list(layers)
    widths = [int(width)] * len(layers)
    tau0 = float(np.sqrt(np.mean(np.sum(X * X, axis=1))))
    if kernel == "ck":
        K_emp = empirical_ck(X, layers, widths, 1, generator, weights=weights, sparsity=sparsity)
        K = exact_ck(X, layers)
    else:
        net = MLP(X.shape[1], widths, layers, tau0, weights=weights, sparsity=sparsity,
                  generator=generator, dtype=torch.float64)
        K_emp = empirical_ntk(net, X, surrogates=surrogates)
        K = exact_ntk(X, layers, surrogates=surrogates)
    vals, vecs = np.linalg.eigh(K)
    vals_e, vecs_e = np.linalg.eigh(K_emp)
    k = int(n_vectors)
    U, Ue = vecs[:, ::-1][:, :k], vecs_e[:, ::-1][:, :k]
    return SpectrumComparison(
        exact=vals[::-1].copy(),
        empirical=vals_e[::-1].copy(),
        exact_vectors=U.copy(),
        empirical_vectors=Ue.copy(),
        relative_error=float(np.linalg.norm(K_emp - K, 2) / np.linalg.norm(K, 2)),
        alignment=np.abs(np.sum(U * Ue, axis=0)),
    )
