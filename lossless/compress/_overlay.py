"""The compression chapter's widget: original against compressed spectra (moving to the
explore package)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from lossless import _checks
from lossless._display import fmt_residual
from lossless.activations import Activation, check_layers
from lossless.compress.solver import _label, _relative

# =====================================================================================
# the chapter's widget: original against compressed spectra
# =====================================================================================


@dataclass(frozen=True)
class SpectraOverlay:
    """Original against compressed CK spectra on one sample (compute of the widget).

    Attributes
    ----------
    labels : ndarray, shape (n,)
    eigvals_original, eigvals_compressed : ndarray, shape (n,)
        Decreasing eigenvalues; the compressed ones have the identity shift removed
        when ``shift_corrected``.
    vector_original, vector_compressed : ndarray, shape (n,)
        Leading eigenvectors (the compressed one's sign matched to the original's).
    shift : float
        ``(τ^c_L)² − τ_L²`` predicted from the two τ recursions.
    shift_corrected : bool
    error : float
        ``‖K_c − K‖ / ‖K‖`` (``K_c − shift I`` when ``shift_corrected``), operator norm.
    error_raw, error_corrected : float
        Both versions.
    alignment : float
        ``|⟨u, u_c⟩|`` of the leading eigenvectors.
    mismatch : list of dict
        Per layer: relative mismatch of ``g1², g2², h`` (compressed at τ^c_{ℓ−1} against
        original at τ_{ℓ−1}; ``h`` not needed at the last layer) and both τ_ℓ.
    width : int or None
        Finite width of the compressed network (None: exact, infinite width).
    sparsity : float
    """

    labels: np.ndarray
    eigvals_original: np.ndarray
    eigvals_compressed: np.ndarray
    vector_original: np.ndarray
    vector_compressed: np.ndarray
    shift: float
    shift_corrected: bool
    error: float
    error_raw: float
    error_corrected: float
    alignment: float
    mismatch: list
    width: int | None
    sparsity: float

    def corrected(self) -> "SpectraOverlay":
        """The same comparison with the identity shift removed from the compressed
        spectrum (no new eigen-decomposition: ``K_c − shift I`` has the same
        eigenvectors)."""
        if self.shift_corrected:
            return self
        return replace(self, eigvals_compressed=self.eigvals_compressed - self.shift,
                       shift_corrected=True, error=self.error_corrected)

    def report(self) -> str:
        """A few lines of text: mismatches per layer, shift, errors (rounded)."""
        lines = ["layer   g1² mismatch   g2² mismatch   h mismatch      τ_ℓ    τᶜ_ℓ"]
        for row in self.mismatch:  # rounding-level mismatches print as "< 1e-12"
            h = "-" if row["h"] is None else fmt_residual(row["h"])
            lines.append(f"{row['layer']:>5}   {fmt_residual(row['g1^2']):>12}   "
                         f"{fmt_residual(row['g2^2']):>12}   {h:>10}   {row['tau']:.3f}   "
                         f"{row['tau_c']:.3f}")
        where = "exact (infinite width)" if self.width is None else \
            f"width {self.width}, sparsity {self.sparsity:g}"
        lines.append(f"compressed kernel: {where}")
        lines.append(f"identity shift τᶜ_L² − τ_L² = {self.shift:.4f}")
        lines.append(f"relative error: {self.error_raw:.3f} raw, {self.error_corrected:.3f} "
                     f"shift-corrected; leading eigenvector alignment {self.alignment:.3f}")
        return "\n".join(lines)


def opnorm(A: np.ndarray) -> float:
    """Operator (spectral) norm ``max ||A v|| / ||v||`` of any real matrix.

    A symmetric matrix uses its largest ``|eigenvalue|`` (``eigvalsh`` up to 400 rows,
    Lanczos beyond, started deterministically from a fixed pseudo-random vector, so that a
    matrix annihilating the all-ones vector, such as a centred kernel, works too); a
    matrix that is
    symmetric up to rounding (``max |A - A^T| <= 1e-10 max |A|``) is symmetrized first;
    any other matrix, square or not, uses its largest singular value.

    Raises
    ------
    TypeError, ValueError
        ``A`` not a finite, non-empty, real 2-D array.
    """
    A = _checks.real_array(A, "A", ndim=2, shape_hint="(m, n)")
    m, n = A.shape
    if not np.any(A):
        return 0.0
    start = np.random.default_rng(0).standard_normal(min(m, n))
    if m == n:
        gap = float(np.max(np.abs(A - A.T)))
        if gap > 0.0 and gap <= 1e-10 * float(np.max(np.abs(A))):
            A, gap = _checks.symmetrize(A), 0.0
        if gap == 0.0:
            if n <= 400:
                return float(np.max(np.abs(np.linalg.eigvalsh(A))))
            from scipy.sparse.linalg import eigsh

            vals = eigsh(A, k=1, which="LM", v0=start, return_eigenvectors=False)
            return float(abs(vals[0]))
    if min(m, n) <= 400:
        return float(np.linalg.norm(A, 2))
    from scipy.sparse.linalg import svds

    vals = svds(A, k=1, v0=start, return_singular_vectors=False)
    return float(vals[0])


def layer_mismatch(original_layers: Sequence[Activation], compressed_layers: Sequence[Activation],
                   tau0: float) -> list[dict]:
    """Relative mismatch of the invariants of two networks, layer by layer.

    For each layer ℓ: ``|x_c − x| / |x|`` (or relative to ``g1² + τ_c² g2²`` when
    ``x`` vanishes) for ``x = g1², g2² τ_c², h`` (original at τ_{ℓ−1}, compressed at
    τ^c_{ℓ−1}; ``h`` is None at the last layer, where it does not enter), and the
    two output scales.

    Parameters
    ----------
    original_layers, compressed_layers : list of Activation, same length L
    tau0 : float

    Returns
    -------
    list of dict
        Keys ``layer, g1^2, g2^2, h, tau, tau_c``.
    """
    original_layers = check_layers(original_layers, "original_layers")
    compressed_layers = check_layers(compressed_layers, "compressed_layers")
    if len(original_layers) != len(compressed_layers):
        raise ValueError(f"the two networks must have the same depth, got "
                         f"{len(original_layers)} and {len(compressed_layers)}")
    tau0 = _checks.positive(tau0, "tau0")
    tau, tau_c = tau0, tau0
    out = []
    L = len(original_layers)
    for ell, (a, c) in enumerate(zip(original_layers, compressed_layers), start=1):
        mo, mc = a.moments(tau), c.moments(tau_c)
        for which, act, mom in (("original_layers", a, mo), ("compressed_layers", c, mc)):
            bad = [k for k in ("g1", "g2", "h", "v") if not math.isfinite(getattr(mom, k))]
            if bad:
                raise ValueError(f"{which}[{ell - 1}] ({_label(act)}) returned non-finite "
                                 f"moments ({', '.join(bad)}) at its input scale")
        scale = mo.g1**2 + tau_c**2 * mo.g2**2
        row = {
            "layer": ell,
            "g1^2": _relative(mc.g1**2, mo.g1**2, scale),
            "g2^2": _relative(mc.g2**2 * tau_c**2, mo.g2**2 * tau_c**2, scale),
            "h": None if ell == L else _relative(mc.h, mo.h, scale),
        }
        tau, tau_c = math.sqrt(mo.v), math.sqrt(mc.v)
        row["tau"], row["tau_c"] = tau, tau_c
        out.append(row)
    return out


def _check_kernel(K: Any, name: str, n: int) -> np.ndarray:
    """A finite symmetric (n, n) kernel matrix, returned exactly symmetric."""
    arr = _checks.real_array(K, name, ndim=2, shape_hint=f"({n}, {n})")
    if arr.shape != (n, n):
        raise ValueError(f"{name} must have shape ({n}, {n}), got {arr.shape}")
    return _checks.square_symmetric(arr, name)


def overlay_spectra(sample: Any, original_layers: Sequence[Activation],
                    compressed_layers: Sequence[Activation], *, width: int | None = None,
                    sparsity: float = 0.0, generator: torch.Generator | None = None,
                    shift_corrected: bool = False,
                    K_original: np.ndarray | None = None,
                    eigh_original: tuple[np.ndarray, np.ndarray] | None = None,
                    K_compressed: np.ndarray | None = None,
                    dtype: torch.dtype = torch.float32) -> SpectraOverlay:
    """Spectra of the original network's exact CK and of a compressed network's CK.

    The compressed kernel is the exact CK of ``compressed_layers`` (``width=None``) or
    the empirical CK of one compressed network of that width with sparse ternary
    weights (``sparsity``, drawn from ``generator``). The original is always the
    exact CK (pass ``K_original`` to reuse it between calls). The chapter's widget
    calls this on every redraw.

    Parameters
    ----------
    sample : lossless.data.Sample
        Data ``X`` (n, p), ``labels``, ``tau0``.
    original_layers, compressed_layers : list of Activation, length L
    width : int, optional
        Width of every hidden layer of the compressed network (finite-width kernel).
    sparsity : float
        ε of the ternary weights (only used with ``width``).
    generator : torch.Generator, optional
        Required with ``width``.
    shift_corrected : bool
        Subtract ``shift · I`` from the compressed kernel before comparing.
    K_original : ndarray, shape (n, n), optional
        ``kernels.exact_ck(sample.X, original_layers, tau0=sample.tau0)``.
    eigh_original : (ndarray, ndarray), optional
        ``numpy.linalg.eigh(K_original)`` (ascending), to reuse between calls.
    K_compressed : ndarray, shape (n, n), optional
        The compressed kernel, if already computed (then ``width``, ``sparsity`` and
        ``generator`` are only recorded).
    dtype : torch.dtype, default float32
        Precision of the finite-width network (its fluctuations, of order
        ``sqrt(n/width)``, dwarf float32 rounding; float32 halves the redraw time).

    Returns
    -------
    SpectraOverlay
    """
    from lossless import kernels

    if not (hasattr(sample, "X") and hasattr(sample, "tau0")):
        raise TypeError(f"sample must be a lossless.data.Sample (with X and tau0), got "
                        f"{_checks.describe(sample)}")
    X = _checks.real_array(sample.X, "sample.X", ndim=2, shape_hint="(n, p)")
    tau0 = _checks.positive(sample.tau0, "sample.tau0")
    original_layers = check_layers(original_layers, "original_layers")
    compressed_layers = check_layers(compressed_layers, "compressed_layers")
    eps = _checks.fraction(sparsity, "sparsity")
    shift_corrected = _checks.flag(shift_corrected, "shift_corrected")
    dtype = _checks.float_dtype(dtype)
    if width is not None:
        width = _checks.integer(width, "width", minimum=1)
        if K_compressed is None:
            _checks.torch_generator(generator, "generator")
    n = X.shape[0]
    if K_original is None:
        K_original = kernels.exact_ck(X, original_layers, tau0=tau0)
    K = _check_kernel(K_original, "K_original", n)
    if eigh_original is not None:
        if not isinstance(eigh_original, (tuple, list)) or len(eigh_original) != 2:
            raise TypeError("eigh_original must be the pair (eigenvalues, eigenvectors) of "
                            f"numpy.linalg.eigh(K_original), got {_checks.describe(eigh_original)}")
        eigh_original = (_checks.real_array(eigh_original[0], "eigh_original[0]", shape=(n,)),
                         _checks.real_array(eigh_original[1], "eigh_original[1]",
                                            shape=(n, n)))
    if K_compressed is not None:
        Kc = _check_kernel(K_compressed, "K_compressed", n)
    elif width is None:
        Kc = kernels.exact_ck(X, compressed_layers, tau0=tau0)
    else:
        Kc = kernels.empirical_ck(X, compressed_layers, [int(width)] * len(compressed_layers), 1,
                                  generator, weights="ternary", sparsity=eps, tau0=tau0,
                                  dtype=dtype)
    mismatch = layer_mismatch(original_layers, compressed_layers, tau0)
    shift = mismatch[-1]["tau_c"] ** 2 - mismatch[-1]["tau"] ** 2
    vals, vecs = np.linalg.eigh(K) if eigh_original is None else eigh_original
    norm = float(np.max(np.abs(vals)))
    D = Kc - K
    err_raw = opnorm(D) / norm
    D[np.diag_indices_from(D)] -= shift
    err_cor = opnorm(D) / norm
    vals_c, vecs_c = np.linalg.eigh(Kc)
    if shift_corrected:
        vals_c = vals_c - shift
    u, uc = vecs[:, -1], vecs_c[:, -1]
    if float(u @ uc) < 0:
        uc = -uc
    labels = np.asarray(getattr(sample, "labels", np.zeros(n, dtype=int)))
    return SpectraOverlay(labels=labels, eigvals_original=vals[::-1].copy(),
                          eigvals_compressed=vals_c[::-1].copy(), vector_original=u.copy(),
                          vector_compressed=uc.copy(), shift=float(shift),
                          shift_corrected=bool(shift_corrected),
                          error=err_cor if shift_corrected else err_raw, error_raw=err_raw,
                          error_corrected=err_cor, alignment=float(abs(u @ uc)),
                          mismatch=mismatch, width=None if width is None else int(width),
                          sparsity=eps)
