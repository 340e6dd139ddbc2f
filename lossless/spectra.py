"""Spectral helpers: eigen-decompositions, the Marchenko-Pastur law, spikes, alignments.

Normalisation used throughout (code notation, samples in rows): the Gram matrix
``X @ X.T`` of shape ``(n, n)`` with rows ``x_i = z_i / sqrt(p)``, ``z_i ~ N(0, sigma2 I_p)``
and ``ratio = n / p``. Its eigenvalue distribution is the Marchenko-Pastur law of ratio
``n/p`` (a sample covariance of dimension ``n`` from ``p`` samples); with the paper's
``c = p / n`` and samples in columns, it is the *companion* of the Marchenko-Pastur law
of the ``p x p`` matrix (``X.T @ X`` in code). ``sigma2`` is the noise variance, the
book's ``τ0²``; the bulk edges are the book's ``λ∓`` and ``theta^2 / sigma2`` its ``θ̄²``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from lossless import _checks

__all__ = [
    "eigh_desc",
    "marchenko_pastur_support",
    "marchenko_pastur_density",
    "opnorm",
    "relative_opnorm_error",
    "eigenvector_alignment",
    "label_alignment",
    "loglog_slope",
    "SpikePrediction",
    "gram_spike_predictions",
    "BulkEdge",
    "OutlierPrediction",
    "gram_bulk_edge",
    "count_outliers",
    "predict_outliers",
    "SpectralComparison",
    "compare_kernels",
]


def _unit(u, name: str) -> np.ndarray:
    """``u`` as a finite, non-zero float vector scaled to unit norm (no overflow)."""
    u = _checks.real_array(u, name, ndim=1, shape_hint="(n,)")
    big = float(np.max(np.abs(u)))
    if big == 0.0:
        raise ValueError(f"{name} must be a non-zero vector, got all zeros")
    u = u / big  # entries in [-1, 1]: the norm below cannot overflow or underflow to 0
    return u / np.linalg.norm(u)


def eigh_desc(K) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-decomposition of a symmetric matrix, eigenvalues in decreasing order.

    Parameters
    ----------
    K : array_like, shape (n, n)
        Symmetric (checked to relative tolerance 1e-8).

    Returns
    -------
    vals : ndarray, shape (n,)
        Decreasing eigenvalues.
    vecs : ndarray, shape (n, n)
        Orthonormal eigenvectors as columns, ``vecs[:, k]`` for ``vals[k]``.
    """
    A = _checks.square_symmetric(K, "K", rtol=1e-08)
    vals, vecs = np.linalg.eigh(A)
    return vals[::-1].copy(), vecs[:, ::-1].copy()


def marchenko_pastur_support(ratio: float, sigma2: float = 1.0) -> tuple[float, float]:
    """Edges ``sigma2 (1 -+ sqrt(ratio))^2`` of the bulk of ``X @ X.T`` (the book's ``λ∓``,
    eq-gmm-mp and eq-toolbox-mp).

    Parameters
    ----------
    ratio : float
        ``n / p``.
    sigma2 : float
        Noise variance per coordinate of ``z_i``.
    """
    ratio, sigma2 = _checks.positive(ratio, "ratio"), _checks.positive(sigma2, "sigma2")
    r = np.sqrt(ratio)
    with np.errstate(over="ignore"):
        edges = (sigma2 * (1 - r) ** 2, sigma2 * (1 + r) ** 2)
    name, value = ("sigma2", sigma2) if sigma2 >= ratio else ("ratio", ratio)
    _checks.no_overflow(np.array(edges), name, value, "the bulk edges")
    return edges


def marchenko_pastur_density(x, ratio: float, sigma2: float = 1.0) -> np.ndarray:
    """Density of the eigenvalues of the Gram matrix ``X @ X.T`` (continuous part; the
    book's eq-gmm-mp and eq-toolbox-mp).

    For ``X`` of shape ``(n, p)`` with rows ``x_i = z_i / sqrt(p)``, ``z_i ~ N(0,
    sigma2 I_p)``, and ``ratio = n / p``, the empirical eigenvalue distribution of the
    ``n x n`` matrix ``X @ X.T`` tends to

        f(x) = sqrt((lam_+ - x)(x - lam_-)) / (2 pi sigma2 ratio x)   on [lam_-, lam_+],
        lam_-+ = sigma2 (1 -+ sqrt(ratio))^2   (the book's λ∓, sigma2 = τ0²),

    plus, when ``ratio > 1`` (``n > p``), an atom of mass ``1 - 1/ratio`` at zero (the
    Gram matrix has rank ``p``), which this function does not include: the density
    integrates to ``min(1, 1/ratio)``. With the paper's ``c = p/n`` this is the
    companion of the Marchenko-Pastur law of ``X^T X`` (Marchenko & Pastur, 1967).

    Parameters
    ----------
    x : array_like
        Points where to evaluate.
    ratio : float
        ``n / p``.
    sigma2 : float
        Variance of the entries of ``z_i``.

    Returns
    -------
    ndarray, shape of ``x``
    """
    ratio, sigma2 = _checks.positive(ratio, "ratio"), _checks.positive(sigma2, "sigma2")
    a, b = marchenko_pastur_support(ratio, sigma2)
    x = _checks.real_array(x, "x", nonempty=False, finite=False)
    if np.any(np.isnan(x)):
        raise ValueError("x must not contain NaN")
    out = np.zeros_like(x)
    inside = (x > a) & (x < b)
    xi = x[inside]
    out[inside] = np.sqrt((b - xi) * (xi - a)) / (2 * np.pi * sigma2 * ratio * xi)
    return out


def opnorm(A) -> float:
    """Operator (spectral) norm ``max ||A v|| / ||v||`` of any real matrix.

    A symmetric matrix uses its largest ``|eigenvalue|`` (``eigvalsh`` up to 400 rows,
    Lanczos beyond, started deterministically from a fixed pseudo-random vector, so that a
    matrix annihilating the all-ones vector, such as a centred kernel, works too); a
    matrix that is symmetric up to rounding (``max |A - A^T| <= 1e-10 max |A|``) is
    symmetrized first; any other matrix, square or not, uses its largest singular value.
    The zero matrix has norm exactly 0.

    Parameters
    ----------
    A : array_like, shape (m, n)

    Returns
    -------
    float

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


def relative_opnorm_error(K, K_ref) -> float:
    """``||K - K_ref|| / ||K_ref||`` in operator (spectral) norm (:func:`opnorm`).

    Parameters
    ----------
    K, K_ref : array_like, shape (n, m)
        Same shape.
    """
    A = _checks.real_array(K, "K", ndim=2, shape_hint="(n, m)")
    B = _checks.real_array(K_ref, "K_ref", ndim=2, shape_hint="(n, m)")
    if A.shape != B.shape:
        raise ValueError(f"K and K_ref must be matrices of one shape, got {A.shape} and {B.shape}")
    ref = opnorm(B)
    if ref == 0:
        raise ValueError("K_ref has zero operator norm; the relative error is undefined")
    return opnorm(A - B) / ref


def eigenvector_alignment(u, v) -> float:
    """``|<u, v>| / (||u|| ||v||)``, i.e. ``|<u, v>|`` for unit vectors; in [0, 1].

    Parameters
    ----------
    u, v : array_like, shape (n,)
    """
    u = _unit(u, "u")
    v = _unit(v, "v")
    if u.shape != v.shape:
        raise ValueError(f"u and v must have one length, got {u.size} and {v.size}")
    return float(min(1.0, abs(u @ v)))


def label_alignment(u, labels) -> float:
    """How much of ``u`` lies in the span of the centred class indicators; in [0, 1].

    ``||P u|| / ||u||`` with ``P`` the orthogonal projector on the span of
    ``j_a - (n_a/n) 1``, ``a = 0..n_classes-1`` (class indicators with the constant vector
    removed). For two classes this is :func:`eigenvector_alignment` of ``u`` with the
    centred label vector (``+-1`` for balanced classes).

    Parameters
    ----------
    u : array_like, shape (n,)
    labels : array_like of int, shape (n,)
    """
    u = _unit(u, "u")
    labels = _checks.real_array(labels, "labels", ndim=1, dtype=None, shape_hint="(n,)")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.shape != u.shape:
        raise ValueError(f"labels must have the shape of u {u.shape}, got {labels.shape}")
    classes = np.unique(labels)
    if classes.size < 2:
        raise ValueError("labels must contain at least two classes")
    J = (labels[:, None] == classes[None, :]).astype(np.float64)
    J -= J.mean(axis=0)
    Q, _ = np.linalg.qr(J[:, :-1])  # K-1 columns span the centred indicators
    return float(min(1.0, np.linalg.norm(Q.T @ u)))


def loglog_slope(x, y) -> float:
    """Least-squares slope of ``log y`` against ``log x`` (the rate of a power law).

    Parameters
    ----------
    x, y : array_like, shape (m,)
        Positive, ``m >= 2``.
    """
    x = _checks.real_array(x, "x", ndim=1, shape_hint="(m,)")
    y = _checks.real_array(y, "y", ndim=1, shape_hint="(m,)")
    if x.shape != y.shape or x.size < 2:
        raise ValueError(f"x and y must have one length >= 2, got {x.size} and {y.size}")
    for name, a in (("x", x), ("y", y)):
        if np.any(a <= 0):
            raise ValueError(f"{name} must be positive, got minimum {a.min():g}")
    if np.ptp(np.log(x)) == 0:
        raise ValueError("x must contain at least two distinct values")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


class SpikePrediction(NamedTuple):
    """Spiked-model limits for the Gram matrix (see :func:`gram_spike_predictions`).

    Attributes
    ----------
    signals : ndarray, shape (r,)
        Signal strengths ``theta_k^2`` (decreasing), the non-zero eigenvalues of
        ``diag(pi)^{1/2} M^T M diag(pi)^{1/2}``, ``pi`` the class proportions.
    eigenvalues : ndarray, shape (r,)
        Limits of the isolated eigenvalues of ``X @ X.T``; NaN when undetectable.
    alignments : ndarray, shape (r,)
        Limits of ``|<u_hat_k, u_k>|`` between the sample eigenvector and the population
        direction ``u_k`` in the span of the class indicators; NaN when undetectable.
    """

    signals: np.ndarray
    eigenvalues: np.ndarray
    alignments: np.ndarray


def gram_spike_predictions(M, proportions, ratio: float, sigma2: float = 1.0) -> SpikePrediction:
    """Isolated eigenvalues of ``X @ X.T`` created by the class means (spiked model): the
    book's eq-gmm-spike (chapter 1) and eq-toolbox-bbp (Gaussian toolbox), with the BBP
    threshold of thm-toolbox-bbp.

    For ``X = (J M^T + sigma Z) / sqrt(p)`` with ``Z`` i.i.d. standard Gaussian (the
    mixture with covariances ``sigma2 I``), ``J M^T / sqrt(n)`` has singular values
    ``theta_k``. With ``tb_k = theta_k^2 / sigma2`` (the book's ``θ̄²``) and
    ``r = ratio = n/p``, a spike is visible iff ``tb_k > 1/sqrt(r)`` (the BBP phase
    transition); then

        lambda_k -> sigma2 r (1 + tb_k)(1 + 1/(r tb_k)),
        |<u_hat_k, u_k>|^2 -> (tb_k^2 - 1/r) / (tb_k (tb_k + 1)).

    The returned ``alignments`` are the cosines ``|<u_hat_k, u_k>|`` (the square root of
    the second limit), as in eq-gmm-spike. At the threshold ``lambda_k`` equals the bulk
    edge ``sigma2 (1 + sqrt(r))^2`` and the alignment vanishes. The limits hold as
    ``n, p -> infinity`` when the signal strengths (the eigenvalues of
    ``diag(pi)^{1/2} M^T M diag(pi)^{1/2}``) converge; the eigenvector limits need them
    also to be simple (distinct), otherwise only the projection on the eigenspace of a
    repeated value converges. For class-dependent covariances this is an approximation
    with ``sigma2 = tr C° / p``; :func:`gram_bulk_edge` gives the exact bulk edge of
    such a mixture.

    Parameters
    ----------
    M : array_like, shape (p, K)
        Unscaled means as columns.
    proportions : array_like, shape (K,)
        Class proportions ``n_a / n``.
    ratio : float
        ``n / p``.
    sigma2 : float
        Noise variance.

    Returns
    -------
    SpikePrediction
    """
    ratio, sigma2 = _checks.positive(ratio, "ratio"), _checks.positive(sigma2, "sigma2")
    M = _checks.real_array(M, "M", ndim=2, shape_hint="(p, K)")
    c = _checks.real_array(proportions, "proportions", ndim=1, shape_hint="(K,)")
    if c.shape != (M.shape[1],):
        raise ValueError(
            f"M must have shape (p, K) and proportions (K,), got {M.shape} and {c.shape}"
        )
    c = _checks.probability_vector(c, "proportions")
    d = np.sqrt(c)
    S = d[:, None] * (M.T @ M) * d[None, :]
    theta2 = np.linalg.eigvalsh(S)[::-1]
    theta2 = theta2[theta2 > 1e-12 * max(1.0, float(np.abs(theta2).max(initial=0.0)))]
    s = theta2 / sigma2
    r = ratio
    visible = s > 1 / np.sqrt(r)
    eig = np.full(s.shape, np.nan)
    align = np.full(s.shape, np.nan)
    sv = s[visible]
    eig[visible] = sigma2 * r * (1 + sv) * (1 + 1 / (r * sv))
    align[visible] = np.sqrt((sv**2 - 1 / r) / (sv * (sv + 1)))
    return SpikePrediction(signals=theta2, eigenvalues=eig, alignments=align)


# ---------------------------------------------------------------------------------
# the bulk of a mixture's Gram matrix, and the eigenvalues beyond it


class BulkEdge(NamedTuple):
    """Right edge of the deterministic-equivalent bulk of ``scale · Z Zᵀ/p + shift · I_n``
    (see :func:`gram_bulk_edge`).

    Attributes
    ----------
    edge : float
        ``scale · gram_edge + shift``: the right end of the support.
    gram_edge : float
        Right edge of the support of ``Z Zᵀ/p`` alone.
    tw_scale : float
        Tracy–Widom scale of the largest bulk eigenvalue at this edge,
        ``scale · (c n)^{-2/3}`` where the density behaves like ``(c/π) √(gram_edge − x)``
        below ``gram_edge`` (mass normalised over all ``n`` eigenvalues): the largest
        eigenvalue of the bulk fluctuates around ``edge`` by a few ``tw_scale``.
    scale, shift : float
        The affine map applied to the Gram matrix.
    n : int
        Matrix size (number of samples).
    """

    edge: float
    gram_edge: float
    tw_scale: float
    scale: float
    shift: float
    n: int


class OutlierPrediction(NamedTuple):
    """Isolated eigenvalues of a spectrum, relative to a predicted bulk edge (see
    :func:`count_outliers` and :func:`predict_outliers`).

    Attributes
    ----------
    bulk : BulkEdge
        The predicted bulk edge and its Tracy–Widom scale.
    threshold : float
        ``bulk.edge + max(margin · bulk.tw_scale, tolerance)``: eigenvalues above it are
        called isolated.
    positions : ndarray, shape (count,)
        The isolated eigenvalues, decreasing.
    count : int
        How many there are.
    margin : float
        In Tracy–Widom units.
    tolerance : float
        Absolute tolerance on the edge (the larger of the absolute and relative ones
        passed to :func:`count_outliers`).
    """

    bulk: BulkEdge
    threshold: float
    positions: np.ndarray
    count: int
    margin: float
    tolerance: float

    def beyond(self, eigvals) -> int:
        """Number of ``eigvals`` (array_like, shape (m,)) above ``threshold``, e.g. the
        spectrum of the exact kernel that the prediction is checked against."""
        vals = _checks.real_array(eigvals, "eigvals", ndim=1, shape_hint="(m,)")
        return int(np.count_nonzero(vals > self.threshold))


def _covariance_model(covs, counts, p: int):
    """Validated ``(kind, covs, counts)``: kind "diag" with covs (K, J) and weights (J,),
    or "full" with covs (K, p, p)."""
    counts = _checks.real_array(counts, "counts", ndim=1, dtype=None, shape_hint="(K,)")
    if counts.dtype.kind not in "iu":
        raise TypeError(f"counts must be integers (class sizes n_a), got dtype {counts.dtype}")
    if np.any(counts < 1):
        raise ValueError(f"counts must be positive class sizes, got {counts.tolist()}")
    counts = counts.astype(np.float64)
    K = counts.size
    covs = _checks.real_array(covs, "covs", ndim=(1, 2, 3),
                              shape_hint="(K,), (K, p) or (K, p, p)")
    if covs.shape not in ((K,), (K, p), (K, p, p)):
        raise ValueError(
            f"covs must have shape (K,)={(K,)}, (K, p)={(K, p)} or (K, p, p)={(K, p, p)} "
            f"(K = {K} entries of counts, p = {p}), got {covs.shape}"
        )
    if covs.ndim < 3:
        if np.any(covs < 0):
            raise ValueError(f"covs must be non-negative variances, got minimum {covs.min():g}")
        D = covs[:, None] if covs.ndim == 1 else covs
        weights = np.full(D.shape[1], 1.0 / D.shape[1])
        if not np.any(D > 0):
            raise ValueError("covs must not all be zero")
        return "diag", D, weights, counts
    gap = float(np.max(np.abs(covs - np.swapaxes(covs, 1, 2))))
    if gap > 1e-8 * max(1.0, float(np.max(np.abs(covs)))):
        raise ValueError(f"covs must be symmetric matrices, got max |C - C^T| = {gap:.3g}")
    covs = 0.5 * (covs + np.swapaxes(covs, 1, 2))
    if not np.any(covs != 0):
        raise ValueError("covs must not all be zero")
    return "full", covs, None, counts


def _fixed_point(x: float, delta: np.ndarray, model, p: int):
    """``F(δ)`` and its Jacobian for the deterministic equivalent at real ``x`` (outside
    the support), or None when ``x`` is not right of the spectrum of the current
    ``Σ_b w_b C_b`` (then no solution of the branch exists there)."""
    kind, covs, weights, counts = model
    if np.any(1.0 + delta <= 0):
        return None
    c = counts / p
    w = c / (1.0 + delta)
    dw = c / (1.0 + delta) ** 2          # -∂w_b/∂δ_b
    if kind == "diag":
        b = x - w @ covs                 # diagonal of x I - Σ_b w_b C_b, shape (J,)
        if np.any(b <= 0):
            return None
        q = 1.0 / b
        F = -(covs * q) @ weights
        J = ((covs * q**2 * weights) @ covs.T) * dw[None, :]
        return F, J
    B = x * np.eye(p) - np.tensordot(w, covs, axes=1)
    try:
        L = np.linalg.cholesky(B)
    except np.linalg.LinAlgError:
        return None
    Linv = np.linalg.solve(L, np.eye(p))
    # G_a = L^{-1} C_a L^{-T}: tr(C_a B^{-1}) = tr G_a, tr(C_a B^{-1} C_b B^{-1}) = <G_a, G_b>
    G = np.einsum("ij,ajk,lk->ail", Linv, covs, Linv, optimize=True)
    F = -np.einsum("aii->a", G) / p
    J = np.einsum("aij,bij->ab", G, G) / p * dw[None, :]
    return F, J


def _branch_solution(x: float, delta0: np.ndarray, model, p: int, *, maxiter: int = 200):
    """Newton from the upper solution ``delta0`` on the branch that comes from x = +inf;
    None if the branch has no solution at ``x`` (``x`` is at or left of the edge)."""
    d = delta0.copy()
    eye = np.eye(d.size)
    for _ in range(maxiter):
        out = _fixed_point(x, d, model, p)
        if out is None:
            return None
        F, J = out
        if np.max(np.abs(np.linalg.eigvals(J))) >= 1.0:
            return None
        residual = F - d
        step = np.linalg.solve(eye - J, residual)
        d = d + step
        if np.max(np.abs(residual)) <= 1e-14 * (1.0 + np.max(np.abs(d))):
            return d  # converged to rounding (Newton's last step is below 1e-13)
    return None


def gram_bulk_edge(covs, counts, p: int, *, scale: float = 1.0, shift: float = 0.0
                   ) -> BulkEdge:
    """Right edge of the bulk of ``scale · Z Zᵀ/p + shift · I_n`` for a mixture's noise,
    ``z_i ~ N(0, C_a)`` independent, ``n_a`` rows in class ``a`` (the information-free
    part of the book's eq-equiv-theorem).

    The deterministic equivalent of the resolvent of ``S = Σ_i z_i z_iᵀ / p`` is
    ``Q̄(x) = (Σ_a (n_a/p) C_a / (1 + δ_a) − x I_p)^{-1}`` with
    ``δ_a = tr(C_a Q̄)/p`` (the Marchenko–Pastur equation for a mixture of covariances;
    Silverstein and Bai 1995 for one class, Couillet and Liao 2022 for mixtures); the
    Stieltjes transform of the ``n × n`` Gram matrix is
    ``m(x) = −Σ_a n_a / (n x (1 + δ_a(x)))``. Right of the support the branch of real
    solutions that comes from ``x = +∞`` exists; the edge is where it ends (the Jacobian
    of the fixed point reaches spectral radius one), found by bisection with Newton
    steps from the solution above (the map is order preserving and concave, so the
    iterates decrease monotonically to the solution when it exists). The Tracy–Widom
    scale comes from the square-root behaviour ``m(x) − m(E) ≈ a √(x − E)`` right of the
    edge: the density is ``(|a|/π) √(E − x)`` left of it and the largest eigenvalue
    fluctuates on the scale ``(|a| n)^{-2/3}`` (for one white class this is Johnstone's
    ``(√n + √p)(1/√n + 1/√p)^{1/3} / p``).

    Parameters
    ----------
    covs : array_like, shape (K,), (K, p) or (K, p, p)
        Class covariances ``C_a`` as in :class:`lossless.data.GaussianMixture`:
        multiples of the identity, diagonals or full matrices (full ones cost
        ``O(p^3)`` per step, about 80 steps).
    counts : array_like of int, shape (K,)
        Class sizes ``n_a`` (positive); ``n = Σ_a n_a``.
    p : int
        Dimension.
    scale : float
        Positive factor (the book's ``α_{L,1}`` or ``β_{L,1}``).
    shift : float
        Identity coefficient of the equivalent.

    Returns
    -------
    BulkEdge
    """
    p = _checks.integer(p, "p", minimum=1)
    scale = _checks.positive(scale, "scale")
    shift = _checks.real(shift, "shift")
    model = _covariance_model(covs, counts, p)
    kind, C, weights, n_a = model
    n = float(n_a.sum())
    top = float(np.max(C)) if kind == "diag" else float(
        max(np.linalg.eigvalsh(Ca)[-1] for Ca in C))
    hi = 1.1 * (1.0 + math.sqrt(n / p)) ** 2 * top + 1e-300
    d_hi = None
    for _ in range(60):
        d_hi = _branch_solution(hi, np.zeros(n_a.size), model, p)
        if d_hi is not None:
            break
        hi *= 2.0
    if d_hi is None:  # pragma: no cover - the bound above is always outside the support
        raise RuntimeError("gram_bulk_edge: no point right of the support was found")
    d_top = d_hi
    lo = 0.0
    while hi - lo > 1e-12 * hi:
        mid = 0.5 * (lo + hi)
        d = _branch_solution(mid, d_hi, model, p)
        if d is None:
            lo = mid
        else:
            hi, d_hi = mid, d
    edge = hi

    def stieltjes(x: float, d: np.ndarray) -> float:
        return float(-np.sum(n_a / (1.0 + d)) / (n * x))

    m_edge = stieltjes(edge, d_hi)
    # from the largest offset down, each solve starting from the one above (an upper
    # solution: δ(x) increases with x)
    hs = edge * np.array([1.6e-3, 8e-4, 4e-4, 2e-4, 1e-4, 5e-5, 2.5e-5, 1.25e-5])
    dm, d = [], d_top
    for h in hs:
        d = _branch_solution(edge + h, d, model, p)
        if d is None:  # pragma: no cover - every edge + h is right of the edge
            raise RuntimeError("gram_bulk_edge: the branch was lost right of the edge")
        dm.append(stieltjes(edge + h, d) - m_edge)
    A = np.column_stack([np.sqrt(hs), hs, hs**1.5, hs**2])
    a = float(np.linalg.lstsq(A, np.array(dm), rcond=None)[0][0])
    tw = (abs(a) * n) ** (-2.0 / 3.0)
    return BulkEdge(edge=scale * edge + shift, gram_edge=edge, tw_scale=scale * tw,
                    scale=scale, shift=shift, n=int(n))


def count_outliers(eigvals, bulk: BulkEdge, *, margin: float = 4.0,
                   tolerance: float = 0.0, relative_tolerance: float = 0.0
                   ) -> OutlierPrediction:
    """The eigenvalues of a spectrum that lie beyond a predicted bulk edge.

    An eigenvalue is isolated when it exceeds ``bulk.edge + max(margin · tw_scale,
    tolerance, relative_tolerance · scale · gram_edge)``. With ``margin = 4`` a pure
    bulk has an eigenvalue that far out with probability about 2·10⁻⁴ (the Tracy–Widom
    GOE law: 99 % quantile 2.02, ``P(TW₁ > 4) ≈ 2·10⁻⁴``); the tolerances widen the
    margin when the spectrum is only known up to an error larger than the Tracy–Widom
    scale (an exact kernel compared with its equivalent): ``tolerance`` in absolute
    terms, ``relative_tolerance`` in units of the bulk's extent above the shift,
    ``scale · gram_edge``.

    Parameters
    ----------
    eigvals : array_like, shape (n,)
        The spectrum (any order).
    bulk : BulkEdge
        From :func:`gram_bulk_edge`.
    margin : float
        Non-negative, in Tracy–Widom units.
    tolerance : float
        Non-negative, absolute.
    relative_tolerance : float
        Non-negative, in units of ``bulk.scale * bulk.gram_edge``.

    Returns
    -------
    OutlierPrediction
        Its ``tolerance`` is the larger of the two tolerances, in absolute terms.
    """
    if not isinstance(bulk, BulkEdge):
        raise TypeError(f"bulk must be a BulkEdge (from gram_bulk_edge), got {type(bulk).__name__}")
    vals = _checks.real_array(eigvals, "eigvals", ndim=1, shape_hint="(n,)")
    margin = _checks.positive(margin, "margin", allow_zero=True)
    tolerance = _checks.positive(tolerance, "tolerance", allow_zero=True)
    relative = _checks.positive(relative_tolerance, "relative_tolerance", allow_zero=True)
    tolerance = max(tolerance, relative * bulk.scale * bulk.gram_edge)
    threshold = bulk.edge + max(margin * bulk.tw_scale, tolerance)
    out = np.sort(vals[vals > threshold])[::-1]
    return OutlierPrediction(bulk=bulk, threshold=float(threshold), positions=out,
                             count=int(out.size), margin=margin, tolerance=tolerance)


def predict_outliers(sample, layers, *, kernel: str = "ck", surrogates=None,
                     margin: float = 4.0, tolerance: float = 0.0,
                     relative_tolerance: float = 0.0, equivalent_eigvals=None,
                     first_layer_m4: float = 3.0) -> OutlierPrediction:
    """How many eigenvalues of a kernel are isolated, and where, from its equivalent K̃.

    ``K̃ = s X Xᵀ + V C Vᵀ + c I_n`` (the book's eq-equiv-theorem, built by
    :func:`lossless.theory.ck_terms` / :func:`lossless.theory.ntk_terms`) is, with
    ``X = (J Mᵀ + Z)/√p``, its information-free part ``s Z Zᵀ/p + c I_n`` plus a
    perturbation of rank at most ``3K + 1`` (the means, the trace and norm directions
    of ``V``). The bulk of K̃ is the deterministic equivalent of the first
    (:func:`gram_bulk_edge`, with the sample's class covariances and sizes); the
    prediction is the set of eigenvalues of K̃ beyond that edge by
    ``max(margin · tw_scale, tolerance, relative_tolerance · scale · gram_edge)``
    (:func:`count_outliers`).

    Parameters
    ----------
    sample : lossless.data.Sample
        With a mixture (true or estimated, :meth:`lossless.data.Sample.from_data`).
    layers : list of Activation
    kernel : {"ck", "ntk"}
    surrogates : list, optional
        NTK only, as in :func:`lossless.theory.equivalent_ntk`.
    margin, tolerance, relative_tolerance : float
        As in :func:`count_outliers`.
    equivalent_eigvals : array_like, shape (n,), optional
        The eigenvalues of K̃ if already computed (e.g.
        ``SpectralComparison.eigenvalues_b`` of
        :func:`lossless.explore.compare_equivalent_spectra`, for the same ``first_layer_m4``);
        computed here otherwise.
    first_layer_m4 : float
        Fourth moment of the first layer's weights, passed to the equivalent (3, the
        Gaussian, by default). It changes the class block of K̃ only (a term of rank at
        most K), not the bulk.

    Returns
    -------
    OutlierPrediction
        ``count`` eigenvalues of K̃ at ``positions`` beyond ``threshold``; check a
        spectrum against it with :meth:`OutlierPrediction.beyond`.
    """
    from lossless import theory

    kernel = _checks.choice(kernel, "kernel", ("ck", "ntk"))
    if getattr(sample, "mixture", None) is None:
        raise ValueError("sample must have a mixture (class covariances), got one without; "
                         "use lossless.data.Sample.from_data for real data")
    m4 = _checks.real(first_layer_m4, "first_layer_m4", low=1.0)
    extra = {} if m4 == 3.0 else {"first_layer_m4": m4}
    if kernel == "ck":
        if surrogates is not None:
            raise ValueError("surrogates apply to kernel='ntk' only, got kernel='ck'")
        terms = theory.ck_terms(sample, layers, **extra)
    else:
        terms = theory.ntk_terms(sample, layers, surrogates=surrogates, **extra)
    if not math.isfinite(terms.shift):
        raise ValueError("the NTK equivalent has an infinite diagonal (a jump without a "
                         "surrogate derivative): pass surrogates=[...]")
    if terms.scale <= 0:
        raise ValueError(f"the equivalent's Gram coefficient must be positive to have a "
                         f"Marchenko-Pastur bulk, got {terms.scale:g} (g1 = 0 in a layer)")
    bulk = gram_bulk_edge(sample.mixture.covs, sample.counts, sample.p, scale=terms.scale,
                          shift=terms.shift)
    if equivalent_eigvals is None:
        equivalent_eigvals = np.linalg.eigvalsh(terms.matrix(sample.X))
    else:
        equivalent_eigvals = _checks.real_array(equivalent_eigvals, "equivalent_eigvals",
                                                shape=(sample.n,), shape_hint="(n,)")
    return count_outliers(equivalent_eigvals, bulk, margin=margin, tolerance=tolerance,
                          relative_tolerance=relative_tolerance)


# ---------------------------------------------------------------------------------
# one kernel against a reference kernel


@dataclass(frozen=True)
class SpectralComparison:
    """A kernel ``K_b`` against a reference kernel ``K_a`` on one sample.

    The book compares three pairs, each built by :func:`compare_kernels`: empirical
    against exact kernel (:func:`lossless.explore.compare_empirical_spectra`), the
    equivalent K̃ against the exact K (:func:`lossless.explore.compare_equivalent_spectra`),
    a compressed against the original network
    (:func:`lossless.explore.compare_compressed_spectra`).

    Attributes
    ----------
    names : (str, str)
        What ``a`` (the reference) and ``b`` are, e.g. ``("exact", "empirical")``.
    kernel : {"ck", "ntk"}
    labels : ndarray, shape (n,)
        Class of each sample.
    eigenvalues_a, eigenvalues_b : ndarray, shape (n,)
        Eigenvalues in decreasing order; ``eigenvalues_b`` has ``shift`` removed when
        ``shift_corrected``.
    vectors_a, vectors_b : ndarray, shape (n, k)
        The ``k`` leading eigenvectors (columns), the signs of ``b``'s matched to ``a``'s.
    error : float
        ``||K_b - K_a|| / ||K_a||`` in operator norm (:func:`opnorm`), with ``K_b - shift I``
        when ``shift_corrected``.
    alignment : ndarray, shape (k,)
        ``|<u_i, v_i>|`` for the ``k`` leading eigenvectors.
    shift : float
        Predicted identity shift of ``K_b`` (0 unless ``b`` is a compressed network's
        kernel: ``(τ^c_L)² − τ_L²``).
    shift_corrected : bool
    error_raw, error_corrected : float
        The error without and with the shift removed (both ``error`` when ``shift = 0``).
    width : int or None
        Width of ``b``'s finite network (None: ``b`` is an infinite-width kernel).
    sparsity : float
        Fraction of zero weights of ``b``'s finite network.
    mismatch : tuple of dict
        Compressed networks only: per layer, the relative mismatch of ``g1², g2², h`` and
        both ``τ_ℓ`` (see :func:`lossless.explore.layer_mismatch`).
    """

    names: tuple
    kernel: str
    labels: np.ndarray
    eigenvalues_a: np.ndarray
    eigenvalues_b: np.ndarray
    vectors_a: np.ndarray
    vectors_b: np.ndarray
    error: float
    alignment: np.ndarray
    shift: float = 0.0
    shift_corrected: bool = False
    error_raw: float = math.nan
    error_corrected: float = math.nan
    width: int | None = None
    sparsity: float = 0.0
    mismatch: tuple = ()

    @property
    def n(self) -> int:
        """Number of samples."""
        return int(self.eigenvalues_a.shape[0])

    def spikes(self, k: int | None = None) -> np.ndarray:
        """ndarray, shape (k, 2): leading eigenvalues of ``(K_a, K_b)``, side by side."""
        k = self.vectors_a.shape[1] if k is None else int(k)
        return np.column_stack([self.eigenvalues_a[:k], self.eigenvalues_b[:k]])

    def corrected(self) -> "SpectralComparison":
        """The same comparison with the identity shift removed from ``b``'s spectrum (no
        new eigen-decomposition: ``K_b − shift I`` has the same eigenvectors)."""
        if self.shift_corrected:
            return self
        return replace(self, eigenvalues_b=self.eigenvalues_b - self.shift,
                       shift_corrected=True, error=self.error_corrected)

    def report(self) -> str:
        """A few lines of text: mismatches per layer (if any), shift, errors (rounded)."""
        from lossless.display import fmt_residual

        lines = []
        if self.mismatch:
            lines.append("layer   g1² mismatch   g2² mismatch   h mismatch      τ_ℓ    τᶜ_ℓ")
            for row in self.mismatch:  # rounding-level mismatches print as "< 1e-12"
                h = "-" if row["h"] is None else fmt_residual(row["h"])
                lines.append(f"{row['layer']:>5}   {fmt_residual(row['g1^2']):>12}   "
                             f"{fmt_residual(row['g2^2']):>12}   {h:>10}   {row['tau']:.3f}   "
                             f"{row['tau_c']:.3f}")
        where = "exact (infinite width)" if self.width is None else \
            f"width {self.width}, sparsity {self.sparsity:g}"
        lines.append(f"{self.names[1]} kernel: {where}")
        if self.shift != 0.0 or self.shift_corrected:
            lines.append(f"identity shift τᶜ_L² − τ_L² = {self.shift:.4f}")
            lines.append(f"relative error: {self.error_raw:.3f} raw, {self.error_corrected:.3f} "
                         f"shift-corrected; leading eigenvector alignment {self.alignment[0]:.3f}")
        else:
            lines.append(f"relative error: {self.error:.3f}; leading eigenvector alignment "
                         f"{self.alignment[0]:.3f}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"SpectralComparison({self.names[1]} against {self.names[0]} "
                f"{self.kernel.upper()}, n={self.n}, error={self.error:.4g}, "
                f"alignment={np.round(self.alignment, 4).tolist()}, "
                f"top eigenvalues {self.eigenvalues_a[0]:.4g} and {self.eigenvalues_b[0]:.4g})")


def compare_kernels(K_a, K_b, *, names: tuple = ("a", "b"), kernel: str = "ck",
                    labels=None, n_vectors: int = 2, shift: float = 0.0,
                    shift_corrected: bool = False, eigh_a: tuple | None = None,
                    width: int | None = None, sparsity: float = 0.0,
                    mismatch: tuple = ()) -> SpectralComparison:
    """Compare a kernel ``K_b`` with a reference ``K_a``: spectra, vectors, distances.

    Parameters
    ----------
    K_a, K_b : ndarray, shape (n, n)
        Symmetric (the callers check them).
    names : (str, str)
    kernel : {"ck", "ntk"}
    labels : array_like, shape (n,), optional
        Class of each sample (default all 0).
    n_vectors : int, default 2
        Number ``k`` of leading eigenvectors kept (at most n).
    shift : float
        Predicted identity shift of ``K_b``: ``error_corrected`` compares ``K_b - shift I``.
    shift_corrected : bool
        Report the corrected error and spectrum.
    eigh_a : (ndarray, ndarray), optional
        ``numpy.linalg.eigh(K_a)`` (ascending), to reuse between calls.
    width, sparsity, mismatch : recorded (see :class:`SpectralComparison`)

    Returns
    -------
    SpectralComparison
    """
    vals, vecs = np.linalg.eigh(K_a) if eigh_a is None else eigh_a
    norm = float(np.max(np.abs(vals)))
    D = np.array(K_b, dtype=float) - K_a
    err_raw = opnorm(D) / norm
    if shift != 0.0:
        D[np.diag_indices_from(D)] -= shift
        err_cor = opnorm(D) / norm
    else:
        err_cor = err_raw
    vals_b, vecs_b = np.linalg.eigh(K_b)
    if shift_corrected:
        vals_b = vals_b - shift
    k = min(int(n_vectors), vals.shape[0])
    u, v = vecs[:, ::-1][:, :k].copy(), vecs_b[:, ::-1][:, :k].copy()
    signs = np.sign(np.sum(u * v, axis=0))
    signs[signs == 0] = 1.0
    v = v * signs
    n = vals.shape[0]
    labels = np.zeros(n, dtype=int) if labels is None else np.asarray(labels)
    return SpectralComparison(
        names=tuple(names), kernel=kernel, labels=labels,
        eigenvalues_a=vals[::-1].copy(), eigenvalues_b=vals_b[::-1].copy(),
        vectors_a=u, vectors_b=v, error=err_cor if shift_corrected else err_raw,
        alignment=np.abs(np.sum(u * v, axis=0)), shift=float(shift),
        shift_corrected=bool(shift_corrected), error_raw=err_raw, error_corrected=err_cor,
        width=None if width is None else int(width), sparsity=float(sparsity),
        mismatch=tuple(mismatch))
