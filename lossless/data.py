"""K-class Gaussian mixtures in the high-dimensional regime, their statistics, and data.

The model of the book's chapter 1, eq-gmm-model (samples in rows, code notation):

    x_i in class a  <=>  sqrt(p) * x_i = mu_a + z_i,   z_i ~ N(0, C_a),

so ``X`` has shape ``(n, p)`` and the Gram matrix is ``X @ X.T`` (the paper puts samples
in columns and writes ``X^T X``). :class:`GaussianMixture` describes the population,
:class:`Sample` holds drawn (or real) data with the statistics ``J, M, t, T, psi, tau0,
V`` used by the asymptotic equivalents. The second half of the module reads IDX files
(the MNIST format) and puts Fashion-MNIST classes into the same regime.
"""

from __future__ import annotations

import gzip
import math
import os
from functools import cached_property
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from lossless import _checks

__all__ = [
    "GaussianMixture",
    "Sample",
    "GrowthStatistics",
    "PRESETS",
    "preset",
    "load_idx",
    "save_idx",
    "load_fashion_mnist",
    "FASHION_MNIST_CLASSES",
    "DEFAULT_FASHION_MNIST_DIR",
    "normalize",
    "fashion_mnist_sample",
]

_PSD_RTOL = 1e-10  # relative tolerance for symmetry and for negative eigenvalues
_MAX_SCALE = 1e100  # largest |entry| of data, means and covariances (squares stay finite)


def _finite_array(value, name: str, *, ndim: tuple[int, ...] | None = None) -> np.ndarray:
    """``value`` as a finite float64 array of the allowed dimensions (see ``_checks``)."""
    return _checks.real_array(value, name, ndim=ndim, nonempty=False)


def _check_labels(labels, n: int) -> np.ndarray:
    """Integer labels of shape (n,), as int64 (a float array is refused, even if its values
    are integral: as in :mod:`lossless.readout`, labels are class indices)."""
    arr = _checks.real_array(labels, "labels", ndim=1, nonempty=False, dtype=None)
    if arr.shape != (n,):
        raise ValueError(f"labels must have shape (n,)={(n,)}, got {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise ValueError(
            f"labels must be integers (class indices), got dtype {arr.dtype} "
            f"({_checks.describe(labels)}); convert integral values with labels.astype(int)"
        )
    return arr.astype(np.int64)


def _class_sizes(n: int, weights: np.ndarray) -> np.ndarray:
    """Split ``n`` into class sizes close to ``n * weights`` (largest remainders).

    Deterministic: ties between equal remainders go to the lower class index.
    """
    raw = n * weights
    counts = np.floor(raw).astype(np.int64)
    missing = n - int(counts.sum())
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[:missing]] += 1
    return counts


class GrowthStatistics(NamedTuple):
    """Quantities that Assumption 1 requires to stay bounded as ``p`` grows.

    Attributes
    ----------
    mean_norm : float
        ``max_a ||mu_a||``.
    cov_opnorm : float
        ``max_a ||C_a||`` (operator norm).
    trace_deviation : float
        ``max_a |tr C_a°| / sqrt(p)``.
    cov_deviation : float
        ``max_{a,b} |tr(C_a° C_b°)| / p``.
    tau0_squared : float
        ``tr C° / p``, the book's ``τ0²`` (the definition; ``Sample.tau0`` is its data
        estimate ``τ̂0``).
    """

    mean_norm: float
    cov_opnorm: float
    trace_deviation: float
    cov_deviation: float
    tau0_squared: float


class GaussianMixture:
    """A K-class Gaussian mixture ``sqrt(p) x = mu_a + z``, ``z ~ N(0, C_a)``.

    Parameters
    ----------
    means : array_like, shape (K, p)
        The unscaled class means ``mu_a`` (of order one in norm under Assumption 1).
    covs : array_like, shape (K,), (K, p) or (K, p, p)
        Class covariances ``C_a``: multiples of the identity (``(K,)``), diagonals
        (``(K, p)``) or full symmetric positive semi-definite matrices (``(K, p, p)``).
        The cheaper forms are kept as they are, so statistics such as
        ``tr(C_a C_b)`` cost ``O(K^2)`` or ``O(K^2 p)`` instead of ``O(K^2 p^2)``.
    weights : array_like, shape (K,), optional
        Class proportions, positive and summing to one; uniform by default.

    Raises
    ------
    ValueError
        For mis-shaped, non-finite, non-symmetric or non-PSD covariances, and for
        weights that are not positive or do not sum to one.
    """

    def __init__(self, means, covs, weights=None):
        means = _finite_array(means, "means", ndim=(2,)).copy()
        K, p = means.shape
        if K < 1 or p < 1:
            raise ValueError(f"means must have shape (K, p) with K, p >= 1, got {means.shape}")
        _checks.magnitude(means, "means", _MAX_SCALE)
        covs = _checks.magnitude(_finite_array(covs, "covs"), "covs", _MAX_SCALE)
        allowed = f"(K,)={(K,)}, (K, p)={(K, p)} or (K, p, p)={(K, p, p)}"
        if covs.shape not in ((K,), (K, p), (K, p, p)):
            raise ValueError(f"covs must have shape {allowed}, got {covs.shape}")
        if covs.ndim == 3:
            covs = self._check_full(covs)
        else:
            covs = covs.copy()
        if covs.ndim < 3 and np.any(covs < 0):
            a = int(np.argmin(covs.reshape(K, -1).min(axis=1)))
            raise ValueError(
                f"covs must be positive semi-definite (non-negative variances), "
                f"covs[{a}] has minimum {covs[a].min():.3g}"
            )
        if weights is None:
            weights = np.full(K, 1.0 / K)
        weights = _finite_array(weights, "weights", ndim=(1,)).copy()
        if weights.shape != (K,):
            raise ValueError(f"weights must have shape (K,)={(K,)}, got {weights.shape}")
        if np.any(weights <= 0):
            raise ValueError(f"weights must be positive, got {weights.tolist()}")
        if abs(weights.sum() - 1.0) > 1e-8:
            raise ValueError(f"weights must sum to one, got sum {weights.sum():.10g}")
        self._means = means
        self._covs = covs
        self._weights = weights
        self._factors: dict[int, np.ndarray] = {}
        for arr in (self._means, self._covs, self._weights):
            arr.setflags(write=False)

    @staticmethod
    def _check_full(covs: np.ndarray) -> np.ndarray:
        out = np.empty_like(covs)
        for a, C in enumerate(covs):
            scale = max(1.0, float(np.abs(C).max()))
            asym = float(np.abs(C - C.T).max())
            if asym > _PSD_RTOL * scale * C.shape[0]:
                raise ValueError(
                    f"covs[{a}] must be symmetric, max |C - C^T| = {asym:.3g}"
                )
            C = 0.5 * (C + C.T)
            eig = np.linalg.eigvalsh(C)
            if eig[0] < -_PSD_RTOL * max(1.0, eig[-1]) * C.shape[0]:
                raise ValueError(
                    f"covs[{a}] must be positive semi-definite, its smallest "
                    f"eigenvalue is {eig[0]:.3g}"
                )
            out[a] = C
        return out

    # ------------------------------------------------------------------ basic attributes
    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return self._means.shape[0]

    @property
    def p(self) -> int:
        """Dimension."""
        return self._means.shape[1]

    @property
    def means(self) -> np.ndarray:
        """Unscaled class means ``mu_a``, shape (K, p) (read-only)."""
        return self._means

    @property
    def weights(self) -> np.ndarray:
        """Class proportions, shape (K,) (read-only)."""
        return self._weights

    @property
    def covs(self) -> np.ndarray:
        """Covariances as given: shape (K,), (K, p) or (K, p, p) (read-only)."""
        return self._covs

    def _check_class(self, a) -> int:
        a = _checks.integer(a, "a", minimum=0)
        if a >= self.n_classes:
            raise ValueError(f"class index a must be in [0, {self.n_classes}), got {a}")
        return a

    def cov(self, a: int) -> np.ndarray:
        """The covariance ``C_a`` as a dense array, shape (p, p)."""
        a = self._check_class(a)
        c = self._covs[a]
        if c.ndim == 0:
            return float(c) * np.eye(self.p)
        if c.ndim == 1:
            return np.diag(c)
        return c.copy()

    def traces(self) -> np.ndarray:
        """``tr C_a`` for every class, shape (K,)."""
        c = self._covs
        if c.ndim == 1:
            return c * self.p
        if c.ndim == 2:
            return c.sum(axis=1)
        return np.trace(c, axis1=1, axis2=2)

    def trace_products(self) -> np.ndarray:
        """``tr(C_a C_b)``, shape (K, K); no matrix product is formed."""
        c = self._covs
        if c.ndim == 1:
            return np.outer(c, c) * self.p
        if c.ndim == 2:
            return c @ c.T
        # C_b is symmetric, so tr(C_a C_b) = sum_ij C_a[i, j] C_b[i, j]
        flat = c.reshape(self.n_classes, -1)
        return flat @ flat.T

    def cov_opnorms(self) -> np.ndarray:
        """Operator norms ``||C_a||``, shape (K,)."""
        c = self._covs
        if c.ndim == 1:
            return np.abs(c)
        if c.ndim == 2:
            return np.abs(c).max(axis=1)
        return np.array([np.linalg.eigvalsh(C)[-1] for C in c])

    def growth_statistics(self, proportions=None) -> GrowthStatistics:
        """The quantities of Assumption 1 (each should stay bounded as ``p`` grows).

        Parameters
        ----------
        proportions : array_like, shape (K,), optional
            Proportions defining ``C° = sum_a c_a C_a``; the mixture weights by default.
        """
        w = self._weights if proportions is None else _checks.probability_vector(
            proportions, "proportions", self.n_classes)
        tr = self.traces()
        tp = self.trace_products()
        tr0 = w @ tr
        # tr(C_a° C_b°) = tr(C_a C_b) - tr(C_a C°) - tr(C° C_b) + tr(C° C°)
        tac = tp @ w
        cc = tp - tac[:, None] - tac[None, :] + w @ tp @ w
        return GrowthStatistics(
            mean_norm=float(np.linalg.norm(self._means, axis=1).max()),
            cov_opnorm=float(self.cov_opnorms().max()),
            trace_deviation=float(np.abs(tr - tr0).max() / np.sqrt(self.p)),
            cov_deviation=float(np.abs(cc).max() / self.p),
            tau0_squared=float(tr0 / self.p),
        )

    def _factor(self, a: int) -> np.ndarray:
        """A matrix ``F`` with ``F F^T = C_a`` (full covariances only; cached)."""
        if a not in self._factors:
            vals, vecs = np.linalg.eigh(self._covs[a])
            self._factors[a] = vecs * np.sqrt(np.clip(vals, 0.0, None))
        return self._factors[a]

    # ------------------------------------------------------------------ sampling
    def class_sizes(self, n: int) -> np.ndarray:
        """Class sizes ``n_a`` used by :meth:`sample`: ``n * weights`` rounded, sum ``n``."""
        n = _checks.integer(n, "n", minimum=1)
        if n < self.n_classes:
            raise ValueError(f"n must be at least the number of classes K={self.n_classes}, got {n}")
        counts = _class_sizes(n, self._weights)
        if np.any(counts == 0):
            raise ValueError(
                f"n={n} is too small for weights {self._weights.tolist()}: class "
                f"{int(np.argmin(counts))} would get no sample"
            )
        return counts

    def sample(self, n: int, rng: np.random.Generator) -> "Sample":
        """Draw ``n`` samples, ordered by class, with ``n_a`` from :meth:`class_sizes`.

        Parameters
        ----------
        n : int
            Number of samples, at least ``K``.
        rng : numpy.random.Generator
            Source of all random draws (class by class, in class order).

        Returns
        -------
        Sample
            ``X`` of shape (n, p) with rows ``(mu_a + z_i) / sqrt(p)``, the noise ``Z``
            and labels ``0..n_classes-1``.
        """
        rng = _checks.numpy_generator(rng, "rng")
        counts = self.class_sizes(n)
        p = self.p
        _checks.allocation((n, p), "n", n, what="a sample")
        Z = np.empty((n, p))
        start = 0
        for a, n_a in enumerate(counts):
            G = rng.standard_normal((n_a, p))
            c = self._covs[a]
            if c.ndim == 0:
                Z[start : start + n_a] = np.sqrt(c) * G
            elif c.ndim == 1:
                Z[start : start + n_a] = G * np.sqrt(c)
            else:
                Z[start : start + n_a] = G @ self._factor(a).T
            start += n_a
        labels = np.repeat(np.arange(self.n_classes), counts)
        X = (self._means[labels] + Z) / np.sqrt(p)
        sample = Sample.__new__(Sample)  # arrays are fresh and valid: no copy
        sample._set(X, labels, self, Z, self.n_classes)
        return sample

    def __repr__(self) -> str:
        kind = {1: "scalar", 2: "diagonal", 3: "full"}[self._covs.ndim]
        return (
            f"GaussianMixture(k={self.n_classes}, p={self.p}, covs={kind}, "
            f"weights={np.round(self._weights, 4).tolist()})"
        )


class Sample:
    """Data ``X`` (samples in rows) with labels and the statistics of the book's eq-gmm-stats.

    Parameters
    ----------
    X : array_like, shape (n, p)
        Rows ``x_i = (mu_a + z_i) / sqrt(p)``.
    labels : array_like of int, shape (n,)
        Class of each row, in ``[0, K)`` (label ``a - 1`` is the book's class ``a = 1..k``).
    mixture : GaussianMixture, optional
        The population. Required for the statistics ``M, t, T, psi, V`` (use
        :meth:`Sample.from_data` to estimate one from the data).
    Z : array_like, shape (n, p), optional
        The noise ``z_i``; by default derived from the mixture as
        ``sqrt(p) x_i - mu_a``.

    Notes
    -----
    Population statistics use the sample's own proportions ``n_a / n`` in
    ``C° = sum_a (n_a/n) C_a``. ``tau0`` is the data estimate ``sqrt(mean_i ||x_i||^2)``
    (the book's ``τ̂0``) of ``tau0_population = sqrt(tr C° / p)`` (the book's ``τ0``).
    """

    def __init__(self, X, labels, mixture: GaussianMixture | None = None, *, Z=None):
        X = _finite_array(X, "X", ndim=(2,))
        n, p = X.shape
        if n < 1 or p < 1:
            raise ValueError(f"X must have shape (n, p) with n, p >= 1, got {X.shape}")
        _checks.magnitude(X, "X", _MAX_SCALE)
        labels_arr = _check_labels(labels, n)
        if mixture is not None:
            if not isinstance(mixture, GaussianMixture):
                raise TypeError(
                    f"mixture must be a GaussianMixture or None, got {type(mixture).__name__}"
                )
            if mixture.p != p:
                raise ValueError(f"X has p={p} columns but mixture.p={mixture.p}")
            K = mixture.n_classes
        else:
            K = int(labels_arr.max()) + 1 if n else 0
        if labels_arr.min() < 0 or labels_arr.max() >= K:
            raise ValueError(
                f"labels must be in [0, K)=[0, {K}), got values in "
                f"[{labels_arr.min()}, {labels_arr.max()}]"
            )
        if Z is not None:
            Z = _finite_array(Z, "Z", ndim=(2,)).copy()
            if Z.shape != X.shape:
                raise ValueError(f"Z must have the shape of X {X.shape}, got {Z.shape}")
        self._set(X.copy(), labels_arr, mixture, Z, K)

    def _set(self, X, labels_arr, mixture, Z, K) -> None:
        """Store validated arrays (owned by this sample) and freeze them."""
        self._X = X
        self._labels = labels_arr
        self._mixture = mixture
        self._Z = Z
        self._K = K
        self._T_override: np.ndarray | None = None
        self._D_override: np.ndarray | None = None
        for arr in (X, labels_arr) + ((Z,) if Z is not None else ()):
            arr.setflags(write=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_data(cls, X, labels, *, debias: bool = True) -> "Sample":
        """Build a sample from real data, with an estimated mixture.

        Class means and covariances of ``sqrt(p) x_i`` are estimated (sample mean,
        unbiased sample covariance) and define ``.mixture`` (full covariances, weights
        ``n_a / n``), so that ``t, T, psi, M, V`` exist.

        Parameters
        ----------
        X : array_like, shape (n, p)
            Data in the model's scale (e.g. the output of :func:`normalize`).
        labels : array_like of int, shape (n,)
            Classes ``0..n_classes-1``, each with at least 3 samples.
        debias : bool
            If true (default), ``T_aa = tr(C_a^2)/p`` uses the estimator that is
            unbiased for Gaussian data, ``(m-1)^2/((m+1)(m-2)) [tr S^2 - (tr S)^2/(m-1)]``
            (``m = n_a``, ``S`` the sample covariance); the plug-in ``tr(S^2)`` is biased
            upwards by about ``(tr C_a)^2 / n_a``, which is of order ``p`` when ``n_a``
            is of order ``p``. Off-diagonal ``T_ab`` use independent samples and are
            unbiased as they are. Likewise ``D_aa = (m-1)/(m+1) sum_k S_kk^2 / p``
            (unbiased for Gaussian data; the plug-in is off by the factor
            ``1 + 2/(m-1)`` only).

        Returns
        -------
        Sample
        """
        X = _finite_array(X, "X", ndim=(2,))
        if X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(f"X must have shape (n, p) with n, p >= 1, got {X.shape}")
        # sqrt(p) X enters the covariances squared, which must stay below _MAX_SCALE
        _checks.magnitude(X, "X", 1e40)
        debias = _checks.flag(debias, "debias")
        labels = _check_labels(labels, X.shape[0])
        if labels.min() < 0:
            raise ValueError(f"labels must be >= 0, got minimum {labels.min()}")
        K = int(labels.max()) + 1
        n, p = X.shape
        counts = np.bincount(labels, minlength=K)
        if np.any(counts < 3):
            raise ValueError(
                f"every class needs at least 3 samples to estimate its covariance, "
                f"got class sizes {counts.tolist()}"
            )
        Y = np.sqrt(p) * X
        means = np.stack([Y[labels == a].mean(axis=0) for a in range(K)])
        covs = np.empty((K, p, p))
        for a in range(K):
            D = Y[labels == a] - means[a]
            covs[a] = D.T @ D / (counts[a] - 1)
        mixture = GaussianMixture(means, covs, counts / n)
        sample = cls(X, labels, mixture)
        if debias:
            T = mixture.trace_products()
            tr = mixture.traces()
            m = counts.astype(np.float64)
            diag = (m - 1) ** 2 / ((m + 1) * (m - 2)) * (np.diag(T) - tr**2 / (m - 1))
            T[np.diag_indices(K)] = diag
            sample._T_override = T / p
            # D_aa: E[S_kk^2] = C_kk^2 (m + 1)/(m - 1) for Gaussian data
            d = np.diagonal(covs, axis1=1, axis2=2)
            Dm = d @ d.T
            Dm[np.diag_indices(K)] *= (m - 1) / (m + 1)
            sample._D_override = Dm / p
        return sample

    # ------------------------------------------------------------------ plain attributes
    @property
    def X(self) -> np.ndarray:
        """Data, shape (n, p) (read-only)."""
        return self._X

    @property
    def labels(self) -> np.ndarray:
        """Class labels in ``[0, K)``, shape (n,) (read-only)."""
        return self._labels

    @property
    def mixture(self) -> GaussianMixture | None:
        """The population (true, or estimated by :meth:`from_data`), or None."""
        return self._mixture

    @property
    def n(self) -> int:
        return self._X.shape[0]

    @property
    def p(self) -> int:
        return self._X.shape[1]

    @property
    def n_classes(self) -> int:
        return self._K

    @cached_property
    def Z(self) -> np.ndarray | None:
        """Noise ``z_i = sqrt(p) x_i - mu_a``, shape (n, p); None without a mixture."""
        if self._Z is not None:
            return self._Z
        if self._mixture is None:
            return None
        Z = np.sqrt(self.p) * self._X - self._mixture.means[self._labels]
        Z.setflags(write=False)
        return Z

    @cached_property
    def counts(self) -> np.ndarray:
        """Class sizes ``n_a``, shape (K,)."""
        return np.bincount(self._labels, minlength=self._K)

    @cached_property
    def J(self) -> np.ndarray:
        """Class indicators ``J_ia = 1[x_i in C_a]``, shape (n, K)."""
        J = np.zeros((self.n, self._K))
        J[np.arange(self.n), self._labels] = 1.0
        return J

    @cached_property
    def tau0(self) -> float:
        """``sqrt(mean_i ||x_i||^2)`` (a float, not squared): the book's estimate ``τ̂0`` of
        ``τ0 = sqrt(tr C° / p)`` (:attr:`tau0_population`), the value every computation uses."""
        return float(np.sqrt(np.mean(np.einsum("ij,ij->i", self._X, self._X))))

    # ------------------------------------------------------------------ population statistics
    def _need_mixture(self, what: str) -> GaussianMixture:
        if self._mixture is None:
            raise ValueError(
                f"Sample.{what} needs the population: build the sample with a mixture, "
                "or use Sample.from_data(X, labels) to estimate one"
            )
        return self._mixture

    @cached_property
    def M(self) -> np.ndarray:
        """Means as columns ``[mu_1, ..., mu_K]``, shape (p, K)."""
        return self._need_mixture("M").means.T.copy()

    @cached_property
    def t(self) -> np.ndarray:
        """``t_a = tr C_a° / sqrt(p)`` with ``C° = sum_a (n_a/n) C_a``, shape (K,)."""
        tr = self._need_mixture("t").traces()
        return (tr - (self.counts / self.n) @ tr) / np.sqrt(self.p)

    @cached_property
    def T(self) -> np.ndarray:
        """``T_ab = tr(C_a C_b) / p``, shape (K, K)."""
        if self._T_override is not None:
            return self._T_override.copy()
        return self._need_mixture("T").trace_products() / self.p

    @cached_property
    def D(self) -> np.ndarray:
        """``D_ab = sum_k (C_a)_kk (C_b)_kk / p``, shape (K, K): the diagonal analogue of
        :attr:`T`, which the first layer's fourth weight cumulant reads (the book's
        eq-first-layer-equivalent). Equal to ``T`` for diagonal covariances; not invariant
        under a rotation of the inputs."""
        if self._D_override is not None:
            return self._D_override.copy()
        c = self._need_mixture("D").covs
        if c.ndim == 1:
            return np.outer(c, c)
        d = c if c.ndim == 2 else np.diagonal(c, axis1=1, axis2=2)
        return d @ d.T / self.p

    @cached_property
    def psi(self) -> np.ndarray:
        """``psi_i = ||z_i||^2/p - tr C_a/p`` for ``x_i`` in class ``a``, shape (n,)."""
        tr = self._need_mixture("psi").traces()
        Z = self.Z
        return (np.einsum("ij,ij->i", Z, Z) - tr[self._labels]) / self.p

    @cached_property
    def V(self) -> np.ndarray:
        """``V = [J / sqrt(p), psi]``, shape (n, K + 1)."""
        return np.column_stack([self.J / np.sqrt(self.p), self.psi])

    @cached_property
    def tau0_population(self) -> float:
        """``sqrt(tr C° / p)`` with the sample's proportions: the book's ``τ0``, of which
        :attr:`tau0` is the estimate (they differ by ``O(1/p)`` in squares)."""
        tr = self._need_mixture("tau0_population").traces()
        return float(np.sqrt((self.counts / self.n) @ tr / self.p))

    def __repr__(self) -> str:
        return (
            f"Sample(n={self.n}, p={self.p}, k={self.n_classes}, counts={self.counts.tolist()}, "
            f"mixture={'yes' if self._mixture is not None else 'no'})"
        )


# ---------------------------------------------------------------------------- presets
def _simplex_means(K: int, p: int, separation: float, weights: np.ndarray) -> np.ndarray:
    """Means at pairwise distance ``separation`` with weighted average zero."""
    if K > p:
        raise ValueError(f"presets need n_classes <= p, got n_classes={K}, p={p}")
    means = np.zeros((K, p))
    means[np.arange(K), np.arange(K)] = separation / np.sqrt(2.0)
    return means - weights @ means


def _mixture_from_ingredients(
    p: int, K: int, separation: float, trace_gap: float, shape: float, weights
) -> GaussianMixture:
    p = _checks.integer(p, "p", minimum=2)
    K = _checks.integer(K, "n_classes", minimum=1)
    _checks.allocation((K, p), "p", p, what="the means")
    # bounded so that the squared norms and trace products of the mixture stay finite
    separation = _checks.real(separation, "separation", low=0.0, high=_MAX_SCALE)
    trace_gap = _checks.real(trace_gap, "trace_gap", low=-_MAX_SCALE, high=_MAX_SCALE)
    shape = _checks.real(shape, "shape", low=-1.0, high=1.0, low_open=True, high_open=True)
    w = np.full(K, 1.0 / K) if weights is None else _finite_array(weights, "weights", ndim=(1,))
    if w.shape != (K,):
        raise ValueError(f"weights must have shape (K,)={(K,)}, got {w.shape}")
    scales = 1.0 + trace_gap * np.arange(K) / np.sqrt(p)
    if np.any(scales <= 0):
        raise ValueError(
            f"trace_gap={trace_gap} makes 1 + trace_gap*a/sqrt(p) <= 0 for p={p}, K={K}"
        )
    means = _simplex_means(K, p, separation, w)
    if shape == 0.0:
        covs = scales
    else:
        j = np.arange(p)
        profile = np.sin(2 * np.pi * np.outer(np.arange(K), j) / p)
        covs = scales[:, None] * (1.0 + shape * profile)
    return GaussianMixture(means, covs, w)


def _preset_mean(p, *, n_classes=2, separation=3.0, weights=None):
    return _mixture_from_ingredients(p, n_classes, separation, 0.0, 0.0, weights)


def _preset_trace(p, *, n_classes=2, trace_gap=4.0, weights=None):
    return _mixture_from_ingredients(p, n_classes, 0.0, trace_gap, 0.0, weights)


def _preset_shape(p, *, n_classes=2, shape=0.5, weights=None):
    return _mixture_from_ingredients(p, n_classes, 0.0, 0.0, shape, weights)


def _preset_mixed(p, *, n_classes=2, separation=2.0, trace_gap=3.0, shape=0.4, weights=None):
    return _mixture_from_ingredients(p, n_classes, separation, trace_gap, shape, weights)


def _preset_reference(p):
    p = _checks.integer(p, "p", minimum=2)
    _checks.allocation((2, p), "p", p, what="the means")
    means = np.zeros((2, p))
    means[0, 0], means[1, 0] = 3.0, -3.0
    covs = 1.0 + 3.0 * np.arange(2) / np.sqrt(p)
    return GaussianMixture(means, covs)


PRESETS: dict[str, Callable[..., GaussianMixture]] = {
    "mean": _preset_mean,
    "trace": _preset_trace,
    "shape": _preset_shape,
    "mixed": _preset_mixed,
    "reference": _preset_reference,
}
"""Preset builders by name; see :func:`preset`."""


def preset(name: str, p: int, **params) -> GaussianMixture:
    """A standard test mixture of dimension ``p`` satisfying Assumption 1.

    Three ingredients, each of the order Assumption 1 allows. Here the class index is
    the code's ``a = 0..n_classes-1`` (the book's class ``a + 1``; the book numbers classes
    ``1..k``):

    - means at pairwise distance ``separation`` (a regular simplex,
      ``mu_a = separation/sqrt(2) (e_a - sum_b w_b e_b)``), so ``||mu_a|| = O(1)``;
    - a trace gap: ``C_a`` scaled by ``1 + trace_gap * a / sqrt(p)``, so
      ``tr C_a° = O(sqrt(p))``;
    - a shape difference at equal trace: ``C_a`` has diagonal
      ``1 + shape * sin(2 pi a j / p)``, ``j = 0..p-1``, so ``tr(C_a° C_b°) = O(p)``.

    Parameters
    ----------
    name : {"mean", "trace", "shape", "mixed", "reference"}
        ``"mean"``: ``separation=3`` only (``C_a = I``). ``"trace"``: ``trace_gap=4``
        only. ``"shape"``: ``shape=0.5`` only. ``"mixed"``: ``separation=2,
        trace_gap=3, shape=0.4``. ``"reference"``: the book's reference mixture (chapter 1), two classes,
        ``mu_1 = -mu_2 = 3 e_1``, ``C_a = (1 + 3(a-1)/sqrt(p)) I`` (``a = 1, 2``), equal
        weights; it takes no parameters.
    p : int
        Dimension.
    **params
        Overrides of the ingredients above and ``n_classes`` (default 2), ``weights``.

    Returns
    -------
    GaussianMixture
        With scalar covariances when ``shape == 0``, diagonal ones otherwise.
    """
    if not isinstance(name, str) or name not in PRESETS:
        raise ValueError(f"name must be a preset name, one of {sorted(PRESETS)}; unknown preset {name!r}")
    try:
        return PRESETS[name](p, **params)
    except TypeError as err:  # unexpected keyword
        raise TypeError(f"preset {name!r}: {err}") from None


# ---------------------------------------------------------------------------- IDX files
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as fh:
        head = fh.read(2)
    if head == _GZIP_MAGIC:
        try:
            with gzip.open(path, "rb") as fh:
                return fh.read()
        except (OSError, EOFError) as err:
            raise ValueError(f"{path}: corrupt gzip stream ({err})") from None
    with open(path, "rb") as fh:
        return fh.read()


def load_idx(path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzip-compressed or raw.

    The format is: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16,
    0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions, then each
    dimension as a big-endian int32, then the data in C order, big-endian.

    Parameters
    ----------
    path : str or Path
        The file; compression is detected from its content, not its name.

    Returns
    -------
    ndarray
        Of the shape stored in the header, in native byte order.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the magic number, the type code or the data length is wrong.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise ValueError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(
            f"{path}: bad IDX magic number {raw[:4].hex()}; an IDX file starts with two "
            "zero bytes"
        )
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        allowed = ", ".join(f"0x{c:02X}" for c in _IDX_DTYPES)
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02X}; allowed: {allowed}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({ndim} dimensions announced)")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: IDX data length {len(raw) - header} bytes does not match the header "
            f"shape {shape} of {dtype} ({expected} bytes)"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def save_idx(path, array, *, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file (gzip-compressed if ``compress`` or a ``.gz`` name).

    Parameters
    ----------
    path : str or Path
    array : array_like
        Of dtype uint8, int8, int16, int32, float32 or float64, at most 255 dimensions.
    compress : bool, optional
        Default: compress when the name ends in ``.gz``.

    Returns
    -------
    Path
        The path written.
    """
    path = Path(path)
    if compress is not None:
        compress = _checks.flag(compress, "compress")
    if _checks.is_torch(array):
        array = array.detach().cpu().numpy()
    arr = np.asarray(array)
    codes = {dt.newbyteorder("="): code for code, dt in _IDX_DTYPES.items()}
    key = arr.dtype.newbyteorder("=")
    if key not in codes:
        raise ValueError(
            f"array dtype {arr.dtype} cannot be stored in IDX; allowed: "
            "uint8, int8, int16, int32, float32, float64"
        )
    code = codes[key]
    if arr.ndim > 255:
        raise ValueError(f"IDX stores at most 255 dimensions, got {arr.ndim}")
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(arr, dtype=_IDX_DTYPES[code]).tobytes()
    if compress is None:
        compress = path.name.endswith(".gz")
    if compress:
        with gzip.open(path, "wb") as fh:
            fh.write(payload)
    else:
        path.write_bytes(payload)
    return path


# ---------------------------------------------------------------------------- Fashion-MNIST
DEFAULT_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_ENV = "LOSSLESS_FASHION_MNIST"
FASHION_MNIST_CLASSES = (
    "t-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)
_SPLIT_PREFIX = {"train": "train", "test": "t10k"}


def _find_idx(directory: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        candidate = directory / name
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"Fashion-MNIST file {stem}[.gz] not found in {directory}. Install the data with "
        f"`apt-get install dataset-fashion-mnist` (Debian, files in "
        f"{DEFAULT_FASHION_MNIST_DIR}), or put the four IDX files in a directory and pass "
        f"it as `directory=` or set the environment variable {FASHION_MNIST_ENV}."
    )


def load_fashion_mnist(split: str = "train", directory=None) -> tuple[np.ndarray, np.ndarray]:
    """Load a Fashion-MNIST split from its IDX files.

    Parameters
    ----------
    split : {"train", "test"}
    directory : str or Path, optional
        Folder holding ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``. Default:
        the environment variable ``LOSSLESS_FASHION_MNIST``, else
        ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``).

    Returns
    -------
    images : ndarray of uint8, shape (N, 784)
        Flattened 28x28 images, one per row.
    labels : ndarray of int64, shape (N,)
        Classes 0..9 (names in :data:`FASHION_MNIST_CLASSES`).

    Raises
    ------
    FileNotFoundError
        With instructions when the files are missing.
    ValueError
        For a bad ``split`` or inconsistent files.
    """
    if not isinstance(split, str) or split not in _SPLIT_PREFIX:
        raise ValueError(f"split must be one of {sorted(_SPLIT_PREFIX)}, got {split!r}")
    if directory is None:
        directory = os.environ.get(FASHION_MNIST_ENV) or DEFAULT_FASHION_MNIST_DIR
    directory = Path(directory)
    prefix = _SPLIT_PREFIX[split]
    images = load_idx(_find_idx(directory, f"{prefix}-images-idx3-ubyte"))
    labels = load_idx(_find_idx(directory, f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"{directory}: images must be a uint8 array (N, rows, cols), got "
            f"{images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"{directory}: {labels.shape} labels for {images.shape[0]} images"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{directory}: labels must be in 0..9, got {labels.min()}..{labels.max()}")
    return images.reshape(images.shape[0], -1), labels.astype(np.int64)


def normalize(X, *, mean=None, scale=None) -> np.ndarray:
    """Centre and scale data into the model's regime: mean ``||x_i||^2`` equal to 1.

    ``x_i = (y_i - mean) / scale`` with, by default, ``mean`` the average row of ``X``
    and ``scale = sqrt(mean_i ||y_i - mean||^2)``, so the result has zero mean and
    ``(1/n) sum_i ||x_i||^2 = 1`` (``tau0 = 1``), i.e. ``sqrt(p) x_i`` has squared norm
    ``p`` on average, as ``mu_a + z_i`` does with ``tr C° = p``.

    Parameters
    ----------
    X : array_like, shape (n, p)
        Raw data (any numeric dtype), one sample per row.
    mean : array_like, shape (p,), optional
        Centre to use instead of the row average (e.g. that of a training set).
    scale : float, optional
        Scale to use instead of the one computed after centring.

    Returns
    -------
    ndarray, shape (n, p), float64
    """
    Y = _checks.real_array(X, "X", ndim=2, shape_hint="(n, p)")
    if mean is None:
        with np.errstate(over="ignore", invalid="ignore"):
            mean = _checks.no_overflow(Y.mean(axis=0), "X", Y, "its column mean")
    mean = _finite_array(mean, "mean", ndim=(1,))
    if mean.shape != (Y.shape[1],):
        raise ValueError(f"mean must have shape (p,)={(Y.shape[1],)}, got {mean.shape}")
    Y = Y - mean
    if scale is None:
        with np.errstate(over="ignore"):
            scale = float(np.sqrt(np.mean(np.einsum("ij,ij->i", Y, Y))))
        if math.isinf(scale):  # squares overflowed: rescale first
            big = float(np.max(np.abs(Y)))
            Z = Y / big
            scale = big * float(np.sqrt(np.mean(np.einsum("ij,ij->i", Z, Z))))
        if scale == 0.0:
            raise ValueError("scale of X is 0: X is constant, every centred entry is 0")
    scale = _checks.positive(scale, "scale")
    return Y / scale


def fashion_mnist_sample(
    classes,
    n_per_class: int,
    split: str,
    rng: np.random.Generator,
    directory=None,
) -> Sample:
    """Draw ``n_per_class`` images of each class, normalise, estimate the mixture.

    Parameters
    ----------
    classes : sequence of int
        Distinct Fashion-MNIST classes (0..9); class ``classes[k]`` gets label ``k``.
    n_per_class : int
        Images per class, drawn without replacement; at least 3.
    split : {"train", "test"}
    rng : numpy.random.Generator
    directory : str or Path, optional
        See :func:`load_fashion_mnist`.

    Returns
    -------
    Sample
        Rows ordered by class, normalised by :func:`normalize` over the selected images
        (global mean of the selection, mean ``||x_i||^2 = 1``), built by
        :meth:`Sample.from_data` (``p = 784``).
    """
    classes = [_checks.integer(c, f"classes[{i}]", minimum=0, maximum=9)
               for i, c in enumerate(np.atleast_1d(np.asarray(classes, dtype=object)))]
    if not classes or len(set(classes)) != len(classes) or min(classes) < 0 or max(classes) > 9:
        raise ValueError(f"classes must be distinct integers in 0..9, got {classes}")
    n_per_class = _checks.integer(n_per_class, "n_per_class", minimum=3)
    rng = _checks.numpy_generator(rng, "rng")
    images, labels = load_fashion_mnist(split, directory)
    chosen = []
    for c in classes:
        idx = np.flatnonzero(labels == c)
        if n_per_class > idx.size:
            raise ValueError(
                f"n_per_class={n_per_class} exceeds the {idx.size} images of class {c} "
                f"in the {split} split"
            )
        chosen.append(rng.choice(idx, size=n_per_class, replace=False))
    rows = np.concatenate(chosen)
    X = normalize(images[rows].astype(np.float64))
    new_labels = np.repeat(np.arange(len(classes)), n_per_class)
    return Sample.from_data(X, new_labels)
