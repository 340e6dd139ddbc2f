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

from typing import NamedTuple

import numpy as np

from lossless import _checks

__all__ = [
    "eigh_desc",
    "marchenko_pastur_support",
    "marchenko_pastur_density",
    "relative_opnorm_error",
    "eigenvector_alignment",
    "label_alignment",
    "loglog_slope",
    "SpikePrediction",
    "gram_spike_predictions",
]


def _square_symmetric(K, name: str) -> np.ndarray:
    return _checks.square_symmetric(K, name, rtol=1e-8)


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
    A = _square_symmetric(K, "K")
    vals, vecs = np.linalg.eigh(A)
    return vals[::-1].copy(), vecs[:, ::-1].copy()


def _check_ratio_sigma(ratio: float, sigma2: float) -> tuple[float, float]:
    return _checks.positive(ratio, "ratio"), _checks.positive(sigma2, "sigma2")


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
    ratio, sigma2 = _check_ratio_sigma(ratio, sigma2)
    r = np.sqrt(ratio)
    return sigma2 * (1 - r) ** 2, sigma2 * (1 + r) ** 2


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
    ratio, sigma2 = _check_ratio_sigma(ratio, sigma2)
    a, b = marchenko_pastur_support(ratio, sigma2)
    x = _checks.real_array(x, "x", nonempty=False, finite=False)
    if np.any(np.isnan(x)):
        raise ValueError("x must not contain NaN")
    out = np.zeros_like(x)
    inside = (x > a) & (x < b)
    xi = x[inside]
    out[inside] = np.sqrt((b - xi) * (xi - a)) / (2 * np.pi * sigma2 * ratio * xi)
    return out


def relative_opnorm_error(K, K_ref) -> float:
    """``||K - K_ref|| / ||K_ref||`` in operator (spectral) norm.

    Parameters
    ----------
    K, K_ref : array_like, shape (n, m)
        Same shape; symmetric matrices use ``eigvalsh``, others the SVD.
    """
    A = _checks.real_array(K, "K", ndim=2, shape_hint="(n, m)")
    B = _checks.real_array(K_ref, "K_ref", ndim=2, shape_hint="(n, m)")
    if A.shape != B.shape:
        raise ValueError(f"K and K_ref must be matrices of one shape, got {A.shape} and {B.shape}")

    def opnorm(C: np.ndarray) -> float:
        # exactly symmetric matrices use eigvalsh; anything else the SVD (always right)
        if C.shape[0] == C.shape[1] and np.array_equal(C, C.T):
            return float(np.abs(np.linalg.eigvalsh(C)).max())
        return float(np.linalg.norm(C, ord=2))

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
    ``j_a - (n_a/n) 1``, ``a = 0..K-1`` (class indicators with the constant vector
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
        ``D^{1/2} M^T M D^{1/2}``, ``D = diag(proportions)``.
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
    edge ``sigma2 (1 + sqrt(r))^2`` and the alignment vanishes. For class-dependent
    covariances this is an approximation
    with ``sigma2 = tr C° / p``.

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
    ratio, sigma2 = _check_ratio_sigma(ratio, sigma2)
    M = _checks.real_array(M, "M", ndim=2, shape_hint="(p, K)")
    c = _checks.real_array(proportions, "proportions", ndim=1, shape_hint="(K,)")
    if c.shape != (M.shape[1],):
        raise ValueError(
            f"M must have shape (p, K) and proportions (K,), got {M.shape} and {c.shape}"
        )
    if np.any(c < 0):
        raise ValueError(f"proportions must be non-negative, got {c.tolist()}")
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
