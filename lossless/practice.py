"""Compression in practice (Chapter 5): random features, a trained readout, honest memory.

The paper's protocol: the hidden weights of a deep fully-connected network are drawn at
random and kept fixed, and only a linear readout is trained on the last-layer features
``Sigma_L`` (ridge regression in closed form, or multinomial logistic regression), so the
accuracy is governed by the conjugate kernel (CK). This module builds the networks that
are compared at equal memory (the dense original, the compressed network of
:mod:`lossless.compress`, three baselines derived from the dense weights and a narrower
dense network), fits the
readouts (including the shift-corrected ridge ``lambda - Delta tau_L^2`` of math-spec
§5), counts bits with both accountings of math-spec §5, measures the kernel-level
agreement, and fine-tunes all layers for a second protocol. Samples are in rows.
"""

from __future__ import annotations

import csv
import math
import numbers
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg
import scipy.optimize
import torch

from lossless import compress, data, kernels, networks, spectra
from lossless._display import progress as progress_bar
from lossless.activations import Activation

__all__ = [
    "Task",
    "mixture_task",
    "fashion_mnist_task",
    "class_targets",
    "Readout",
    "ridge_readout",
    "shift_corrected_readout",
    "RIDGE_GRID",
    "validated_ridge_readout",
    "kernel_ridge_predict",
    "logistic_readout",
    "ACCOUNTINGS",
    "binary_entropy",
    "MemoryCost",
    "dense_memory",
    "ternary_memory",
    "sparse_float_memory",
    "matched_kept_fraction",
    "magnitude_prune",
    "naive_ternarize",
    "random_sparsify",
    "FeatureNetwork",
    "dense_network",
    "compressed_network",
    "pruned_network",
    "naive_ternary_network",
    "random_sparse_network",
    "narrow_widths",
    "narrow_dense_network",
    "KernelAgreement",
    "kernel_agreement",
    "BASELINES",
    "run_trial",
    "summarize",
    "curve_label",
    "accuracy_memory_curves",
    "format_table",
    "FinetuneResult",
    "finetune",
    "run_finetune_trial",
    "write_csv",
    "read_csv",
]

#: Bits of one dense float32 weight.
DENSE_BITS = 32.0


# =====================================================================================
# argument checks
# =====================================================================================


def _check_fraction(value: Any, name: str, *, low_open: bool, high_open: bool) -> float:
    """A real number in [0, 1] with the stated open ends."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    x = float(value)
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    ok = math.isfinite(x) and (x > 0 if low_open else x >= 0) and (x < 1 if high_open else x <= 1)
    if not ok:
        raise ValueError(f"{name} must be in {lo}0, 1{hi}, got {value!r}")
    return x


def _check_sparsity(value: Any) -> float:
    return _check_fraction(value, "sparsity", low_open=False, high_open=True)


def _check_kept(value: Any) -> float:
    return _check_fraction(value, "kept_fraction", low_open=True, high_open=False)


def _check_real(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    return float(value)


def _check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_generator(generator: Any) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise TypeError("generator must be a torch.Generator (e.g. "
                        "torch.Generator().manual_seed(0)), "
                        f"got {type(generator).__name__}")
    return generator


def _check_features(F: Any, name: str = "F") -> np.ndarray:
    F = np.asarray(F, dtype=np.float64)
    if F.ndim != 2 or F.shape[0] < 1 or F.shape[1] < 1:
        raise ValueError(f"{name} must be a matrix of shape (n, d) (samples in rows), "
                         f"got shape {F.shape}")
    if not np.all(np.isfinite(F)):
        raise ValueError(f"{name} must contain only finite values")
    return F


def _check_labels(labels: Any, n: int, K: int | None = None) -> np.ndarray:
    y = np.asarray(labels)
    if y.shape != (n,):
        raise ValueError(f"labels must have shape (n,) = ({n},), got {y.shape}")
    if y.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers, got dtype {y.dtype}")
    if n and y.min() < 0:
        raise ValueError(f"labels must be >= 0, got minimum {y.min()}")
    if K is not None and n and y.max() >= K:
        raise ValueError(f"labels must be in [0, K) = [0, {K}), got maximum {y.max()}")
    return y.astype(np.int64)


# =====================================================================================
# data: train/test tasks
# =====================================================================================


@dataclass(frozen=True, eq=False)
class Task:
    """A classification task: train and test samples (rows), labels in ``[0, K)``.

    Attributes
    ----------
    name : str
    X_train : ndarray, shape (n_train, p)
    y_train : ndarray of int, shape (n_train,)
    X_test : ndarray, shape (n_test, p)
    y_test : ndarray of int, shape (n_test,)
    K : int
        Number of classes.
    class_names : tuple of str
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    K: int
    class_names: tuple = ()

    @property
    def p(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_train(self) -> int:
        return int(self.X_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.X_test.shape[0])

    @property
    def tau0(self) -> float:
        """``sqrt(mean_i ||x_i||^2)`` over the training samples (used by every network)."""
        return float(np.sqrt(np.mean(np.einsum("ij,ij->i", self.X_train, self.X_train))))

    def __repr__(self) -> str:
        return (f"Task({self.name!r}, p={self.p}, K={self.K}, n_train={self.n_train}, "
                f"n_test={self.n_test}, tau0={self.tau0:.4g})")


def mixture_task(p: int, n_train: int, n_test: int, rng: np.random.Generator, *,
                 preset: str = "mixed", **params: Any) -> Task:
    """Train and test samples from a preset Gaussian mixture of :mod:`lossless.data`.

    Parameters
    ----------
    p : int
        Dimension.
    n_train, n_test : int
        Sample sizes (split into classes by :meth:`GaussianMixture.class_sizes`).
    rng : numpy.random.Generator
        Draws the training sample first, then the test sample.
    preset : str, default "mixed"
        Name passed to :func:`lossless.data.preset` (chapter 1's "mixed" mixture:
        means, traces and shapes all differ).
    **params
        Parameters of the preset (e.g. ``K``).

    Returns
    -------
    Task
    """
    mixture = data.preset(preset, p, **params)
    train = mixture.sample(_check_positive_int(n_train, "n_train"), rng)
    test = mixture.sample(_check_positive_int(n_test, "n_test"), rng)
    return Task(name=f"gmm-{preset}", X_train=train.X, y_train=train.labels, X_test=test.X,
                y_test=test.labels, K=mixture.K,
                class_names=tuple(f"C{a + 1}" for a in range(mixture.K)))


def fashion_mnist_task(classes: Sequence[int], n_train_per_class: int,
                       n_test_per_class: int | None, rng: np.random.Generator, *,
                       directory: Any = None) -> Task:
    """Fashion-MNIST classes with the split as shipped, normalised as in chapter 1.

    Training images are drawn from the ``train`` split and test images from the
    ``t10k`` split, without replacement. The training selection is centred by its mean
    image and scaled so that ``mean_i ||x_i||^2 = 1`` (:func:`lossless.data.normalize`,
    as chapter 1 does); the test images are transformed with the *training* mean and
    scale, so nothing about the test set leaks into the networks.

    Parameters
    ----------
    classes : sequence of int
        Distinct classes in 0..9; ``classes[k]`` gets label ``k``.
    n_train_per_class : int
        Training images per class.
    n_test_per_class : int or None
        Test images per class; None takes all of them (1000 per class).
    rng : numpy.random.Generator
        Draws the training images (class by class), then the test images.
    directory : str or Path, optional
        See :func:`lossless.data.load_fashion_mnist`.

    Returns
    -------
    Task
    """
    classes = [int(c) for c in np.atleast_1d(np.asarray(classes))]
    if (len(classes) < 2 or len(set(classes)) != len(classes) or min(classes) < 0
            or max(classes) > 9):
        raise ValueError(f"classes must be at least two distinct integers in 0..9, got {classes}")
    n_train_per_class = _check_positive_int(n_train_per_class, "n_train_per_class")
    if n_test_per_class is not None:
        n_test_per_class = _check_positive_int(n_test_per_class, "n_test_per_class")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    parts = {}
    for split, per_class in (("train", n_train_per_class), ("test", n_test_per_class)):
        images, labels = data.load_fashion_mnist(split, directory)
        rows, y = [], []
        for k, c in enumerate(classes):
            idx = np.flatnonzero(labels == c)
            m = idx.size if per_class is None else per_class
            if m > idx.size:
                raise ValueError(f"{split} split has {idx.size} images of class {c}, "
                                 f"asked for {m} per class")
            rows.append(np.sort(rng.choice(idx, size=m, replace=False)))
            y.append(np.full(m, k, dtype=np.int64))
        rows = np.concatenate(rows)
        y = np.concatenate(y)
        parts[split] = (images[rows].astype(np.float64), y)
    raw_train, y_train = parts["train"]
    raw_test, y_test = parts["test"]
    mean = raw_train.mean(axis=0)
    centred = raw_train - mean
    scale = float(np.sqrt(np.mean(np.einsum("ij,ij->i", centred, centred))))
    X_train = data.normalize(raw_train, mean=mean, scale=scale)
    X_test = data.normalize(raw_test, mean=mean, scale=scale)
    names = tuple(data.FASHION_MNIST_CLASSES[c] for c in classes)
    return Task(name=f"fashion-mnist-{len(classes)}", X_train=X_train, y_train=y_train,
                X_test=X_test, y_test=y_test, K=len(classes), class_names=names)


# =====================================================================================
# readouts
# =====================================================================================


def class_targets(labels: Any, K: int) -> np.ndarray:
    """Centred one-hot (one-vs-rest) targets ``Y_ik = 1[y_i = k] - 1/K``.

    Centring removes the need for an intercept (the features are centred too); the
    predicted class ``argmax_k`` is unchanged by it. For ``K = 2`` the two columns are
    opposite, which is the usual ``±1/2`` coding.

    Parameters
    ----------
    labels : array_like of int, shape (n,)
    K : int
        Number of classes, >= 2.

    Returns
    -------
    ndarray, shape (n, K), float64
    """
    K = _check_positive_int(K, "K")
    if K < 2:
        raise ValueError(f"K must be at least 2, got {K}")
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be a 1-D array of class indices, got shape {y.shape}")
    y = _check_labels(y, y.shape[0], K)
    Y = np.full((y.size, K), -1.0 / K)
    Y[np.arange(y.size), y] += 1.0
    return Y


@dataclass(frozen=True, eq=False)
class Readout:
    """A fitted linear readout ``f(x) = W^T Sigma_L(x)`` (no intercept).

    Attributes
    ----------
    weights : ndarray, shape (d, K)
    kind : str
        ``"ridge"``, ``"shift-corrected ridge"`` or ``"logistic"``.
    penalty : float
        The ridge actually used in the solved system (for the shift-corrected readout:
        ``ridge - shift``) or the logistic L2 penalty.
    solver : str
        ``"primal"`` (d x d system), ``"dual"`` (n x n system) or ``"lbfgs"``.
    converged : bool
        Always True for ridge (closed form); L-BFGS convergence for logistic.
    gradient_norm : float
        Norm of the objective's gradient at the solution (0 for ridge).
    """

    weights: np.ndarray
    kind: str
    penalty: float
    solver: str
    converged: bool = True
    gradient_norm: float = 0.0

    def decision(self, F: Any) -> np.ndarray:
        """Scores ``F @ weights``, shape (m, K), for features ``F`` of shape (m, d)."""
        F = _check_features(F)
        if F.shape[1] != self.weights.shape[0]:
            raise ValueError(f"F must have d = {self.weights.shape[0]} columns, got {F.shape[1]}")
        return F @ self.weights

    def predict(self, F: Any) -> np.ndarray:
        """Predicted classes ``argmax_k`` of the scores, shape (m,)."""
        return np.argmax(self.decision(F), axis=1)

    def accuracy(self, F: Any, labels: Any) -> float:
        """Fraction of rows of ``F`` whose predicted class equals ``labels``."""
        pred = self.predict(F)
        y = _check_labels(labels, pred.size)
        return float(np.mean(pred == y))


def _gram_system(F: np.ndarray, solver: str) -> tuple[np.ndarray, str]:
    n, d = F.shape
    if solver == "auto":
        solver = "primal" if d <= n else "dual"
    if solver == "primal":
        return F.T @ F, solver
    if solver == "dual":
        return F @ F.T, solver
    raise ValueError(f"solver must be 'auto', 'primal' or 'dual', got {solver!r}")


def _solve_shifted(G: np.ndarray, rhs: np.ndarray, ridge: float, what: str,
                   context: str) -> np.ndarray:
    """Solve ``(G + ridge I) X = rhs`` for a PSD Gram ``G``, refusing a non-PD system."""
    if ridge <= 0:
        evals = np.linalg.eigvalsh(G)
        lo, hi = float(evals[0]), float(evals[-1])
        if lo + ridge <= 1e-10 * max(hi, np.finfo(float).tiny):
            raise ValueError(
                f"{context}: the ridge system {what} is singular or indefinite with ridge = "
                f"{ridge:.6g}: the smallest eigenvalue of the Gram matrix is {lo:.6g}, so "
                f"ridge must be > {-lo:.6g}. A ridge <= 0 is allowed only while the system "
                f"stays positive definite (the ridge objective restricted to the span of the "
                f"features is then strictly convex).")
    A = G + ridge * np.eye(G.shape[0])
    try:
        factor = scipy.linalg.cho_factor(A, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        raise ValueError(f"{context}: {what} is not numerically positive definite with ridge = "
                         f"{ridge:.6g}; increase the ridge") from None
    return scipy.linalg.cho_solve(factor, rhs, check_finite=False)


def _solve_ridge(F: np.ndarray, Y: np.ndarray, ridge: float, solver: str,
                 context: str) -> tuple[np.ndarray, str]:
    G, solver = _gram_system(F, solver)
    if solver == "primal":
        W = _solve_shifted(G, F.T @ Y, ridge, "F^T F + ridge I_d (d x d)", context)
    else:
        W = F.T @ _solve_shifted(G, Y, ridge, "F F^T + ridge I_n (n x n)", context)
    return W, solver


def _check_targets(Y: Any, n: int) -> np.ndarray:
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.ndim != 2 or Y.shape[0] != n:
        raise ValueError(f"targets must have shape (n,) or (n, K) with n = {n}, got {Y.shape}")
    if not np.all(np.isfinite(Y)):
        raise ValueError("targets must contain only finite values")
    return Y


def ridge_readout(F: Any, targets: Any, ridge: float, *, solver: str = "auto") -> Readout:
    r"""Ridge regression of ``targets`` on the features, in closed form.

    .. math::

        W = \arg\min_W \|F W - Y\|_F^2 + \lambda \|W\|_F^2
          = (F^\top F + \lambda I_d)^{-1} F^\top Y = F^\top (F F^\top + \lambda I_n)^{-1} Y,

    solved through the smaller of the two systems (Cholesky). In the dual form the
    predictions on new features ``F'`` are ``F' F^T (K + lambda I)^{-1} Y``: kernel ridge
    regression with the empirical CK ``K = F F^T``.

    Parameters
    ----------
    F : array_like, shape (n, d)
        Training features, samples in rows.
    targets : array_like, shape (n, K) or (n,)
        E.g. :func:`class_targets`.
    ridge : float
        The penalty ``lambda``. Values ``<= 0`` are accepted only while the solved
        system stays positive definite, i.e. ``lambda > -lambda_min`` of the Gram matrix
        (``lambda_min = 0`` when it is rank deficient); otherwise ``ValueError``.
    solver : {"auto", "primal", "dual"}
        ``"primal"`` solves the d x d system, ``"dual"`` the n x n one; ``"auto"`` the
        smaller.

    Returns
    -------
    Readout
        ``weights`` of shape (d, K) (K = 1 for 1-D targets).

    Raises
    ------
    ValueError
        Bad shapes or values, or a singular/indefinite system.
    """
    F = _check_features(F)
    Y = _check_targets(targets, F.shape[0])
    ridge = _check_real(ridge, "ridge")
    W, solver = _solve_ridge(F, Y, ridge, solver, "ridge_readout")
    return Readout(weights=W, kind="ridge", penalty=ridge, solver=solver)


def shift_corrected_readout(F: Any, targets: Any, ridge: float, shift: float, *,
                            solver: str = "auto") -> Readout:
    r"""The shift-corrected ridge of math-spec §5: ridge with ``lambda - Delta tau_L^2``.

    The compressed network's CK is, asymptotically, the original's plus
    ``Delta tau_L^2 I_n`` with ``Delta tau_L^2 = (tau_L^c)^2 - tau_L^2``
    (:attr:`lossless.compress.CompressionPlan.shift`). The identity term enters kernel
    ridge regression only through the train Gram matrix, exactly like the ridge, and
    not through the test-train kernel, so solving with ``lambda - Delta tau_L^2`` on the
    compressed features reproduces the original ridge readout at ``lambda`` in that
    limit (infinite width, ``n, p`` large). At finite width the Gram matrix of ``d_L``
    features has rank ``<= d_L``, and the correction is only approximate.

    Parameters
    ----------
    F : array_like, shape (n, d)
        Features of the compressed network.
    targets : array_like, shape (n, K) or (n,)
    ridge : float
        The original readout's ``lambda``.
    shift : float
        ``Delta tau_L^2``.
    solver : {"auto", "primal", "dual"}

    Returns
    -------
    Readout
        ``kind = "shift-corrected ridge"``, ``penalty = ridge - shift``.

    Raises
    ------
    ValueError
        If ``ridge - shift`` makes the system singular or indefinite (it must exceed
        ``-lambda_min`` of the Gram matrix that is solved); the message gives the bound.
    """
    F = _check_features(F)
    Y = _check_targets(targets, F.shape[0])
    ridge = _check_real(ridge, "ridge")
    shift = _check_real(shift, "shift")
    context = (f"shift_corrected_readout (ridge - shift = {ridge:.6g} - {shift:.6g} "
               f"= lambda - Delta tau_L^2)")
    W, solver = _solve_ridge(F, Y, ridge - shift, solver, context)
    return Readout(weights=W, kind="shift-corrected ridge", penalty=ridge - shift, solver=solver)


#: Default ridge grid of :func:`validated_ridge_readout`, relative to ``mean_i ||f_i||^2``.
RIDGE_GRID: tuple[float, ...] = tuple(float(x) for x in 10.0 ** np.arange(-3.0, 2.01, 0.5))


def validated_ridge_readout(F: Any, labels: Any, K: int, *, grid: Sequence[float] = RIDGE_GRID,
                            every: int = 5) -> Readout:
    """Ridge readout with ``lambda`` chosen by hold-out validation on the training set.

    Every ``every``-th training sample (``i % every == 0``; balanced over classes when
    the samples are ordered by class, as :class:`Task` stores them) is held out; the
    ridge is fitted on the others for each ``lambda = g * mean_i ||f_i||^2``, ``g`` in
    ``grid`` (relative to the feature scale, so networks with larger features are not
    penalised less), and the ``lambda`` with the best held-out accuracy (the largest
    one among ties) is refitted on all samples. One eigendecomposition serves the
    whole grid.

    Parameters
    ----------
    F : array_like, shape (n, d)
    labels : array_like of int, shape (n,)
    K : int
        Number of classes.
    grid : sequence of float
        Relative ridges, > 0.
    every : int, default 5
        Hold out one sample in ``every`` (>= 2).

    Returns
    -------
    Readout
        ``kind = "ridge (validated)"``, ``penalty`` the chosen ``lambda``.
    """
    F = _check_features(F)
    n = F.shape[0]
    y = _check_labels(labels, n, K)
    Y = class_targets(y, K)
    every = _check_positive_int(every, "every")
    if every < 2:
        raise ValueError(f"every must be >= 2, got {every}")
    rel = np.array([_check_real(g, "grid value") for g in grid])
    if rel.size == 0 or np.any(rel <= 0):
        raise ValueError(f"grid must be a non-empty sequence of positive numbers, got {list(grid)}")
    scale = float(np.mean(np.einsum("ij,ij->i", F, F)))
    if scale <= 0:
        raise ValueError("F is all zeros: no ridge can be validated")
    lambdas = rel * scale
    val = np.arange(n) % every == 0
    Ff, Fv, Yf = F[~val], F[val], Y[~val]
    if Ff.shape[1] <= Ff.shape[0]:
        s, V = np.linalg.eigh(Ff.T @ Ff)
        B = V.T @ (Ff.T @ Yf)
        Pv = Fv @ V
        scores = [Pv @ (B / (s + lam)[:, None]) for lam in lambdas]
    else:
        s, U = np.linalg.eigh(Ff @ Ff.T)
        C = U.T @ Yf
        Pv = (Fv @ Ff.T) @ U
        scores = [Pv @ (C / (s + lam)[:, None]) for lam in lambdas]
    accs = np.array([np.mean(np.argmax(S, axis=1) == y[val]) for S in scores])
    best = int(np.flatnonzero(accs == accs.max())[-1])
    W, solver = _solve_ridge(F, Y, float(lambdas[best]), "auto", "validated_ridge_readout")
    return Readout(weights=W, kind="ridge (validated)", penalty=float(lambdas[best]),
                   solver=solver)


def kernel_ridge_predict(K_train: Any, K_cross: Any, targets: Any, ridge: float) -> np.ndarray:
    r"""Kernel ridge regression scores ``K_cross (K_train + ridge I)^{-1} Y``.

    The infinite-width limit of :func:`ridge_readout` on random features whose empirical
    CK converges to ``K``: use it with :func:`lossless.kernels.exact_ck`.

    Parameters
    ----------
    K_train : array_like, shape (n, n)
        Kernel between training samples (symmetric PSD).
    K_cross : array_like, shape (m, n)
        Kernel between test and training samples.
    targets : array_like, shape (n, K) or (n,)
    ridge : float
        May be <= 0 while ``K_train + ridge I`` stays positive definite.

    Returns
    -------
    ndarray, shape (m, K)
    """
    G = np.asarray(K_train, dtype=np.float64)
    C = np.asarray(K_cross, dtype=np.float64)
    if G.ndim != 2 or G.shape[0] != G.shape[1]:
        raise ValueError(f"K_train must be square, got shape {G.shape}")
    if C.ndim != 2 or C.shape[1] != G.shape[0]:
        raise ValueError(f"K_cross must have shape (m, {G.shape[0]}), got {C.shape}")
    Y = _check_targets(targets, G.shape[0])
    ridge = _check_real(ridge, "ridge")
    alpha = _solve_shifted(G, Y, ridge, "K_train + ridge I_n", "kernel_ridge_predict")
    return C @ alpha


def _softmax_objective(w: np.ndarray, F: np.ndarray, Y1: np.ndarray, penalty: float,
                       K: int) -> tuple[float, np.ndarray]:
    W = w.reshape(F.shape[1], K)
    S = F @ W
    S -= S.max(axis=1, keepdims=True)
    logZ = np.log(np.exp(S).sum(axis=1, keepdims=True))
    logP = S - logZ
    n = F.shape[0]
    loss = -np.sum(Y1 * logP) / n + 0.5 * penalty * np.sum(W * W)
    grad = F.T @ (np.exp(logP) - Y1) / n + penalty * W
    return float(loss), grad.ravel()


def logistic_readout(F: Any, labels: Any, K: int, penalty: float, *,
                     max_iter: int = 1000, tol: float = 1e-8) -> Readout:
    r"""Multinomial logistic regression (softmax, no intercept) on the features.

    Minimises ``(1/n) sum_i CE(softmax(W^T f_i), y_i) + (penalty/2) ||W||_F^2`` with
    L-BFGS from ``W = 0`` (deterministic). This is the readout of the authors'
    experiment scripts (softmax trained on frozen random features), solved to
    convergence instead of by a fixed number of Adam epochs.

    Parameters
    ----------
    F : array_like, shape (n, d)
    labels : array_like of int, shape (n,)
        Classes in ``[0, K)``.
    K : int
        Number of classes, >= 2.
    penalty : float
        L2 penalty, > 0 (makes the problem strictly convex).
    max_iter : int, default 1000
    tol : float, default 1e-8
        Gradient tolerance of L-BFGS.

    Returns
    -------
    Readout
        ``kind = "logistic"``; ``converged`` and ``gradient_norm`` report the solver's
        state (check them: no exception is raised when the iteration limit is hit).
    """
    F = _check_features(F)
    K = _check_positive_int(K, "K")
    if K < 2:
        raise ValueError(f"K must be at least 2, got {K}")
    y = _check_labels(labels, F.shape[0], K)
    penalty = _check_real(penalty, "penalty")
    if penalty <= 0:
        raise ValueError(f"penalty must be > 0, got {penalty!r}")
    max_iter = _check_positive_int(max_iter, "max_iter")
    Y1 = np.zeros((F.shape[0], K))
    Y1[np.arange(F.shape[0]), y] = 1.0
    res = scipy.optimize.minimize(_softmax_objective, np.zeros(F.shape[1] * K),
                                  args=(F, Y1, penalty, K), jac=True, method="L-BFGS-B",
                                  options={"maxiter": max_iter, "gtol": tol, "ftol": 0.0})
    _, grad = _softmax_objective(res.x, F, Y1, penalty, K)
    gnorm = float(np.max(np.abs(grad)))
    return Readout(weights=res.x.reshape(F.shape[1], K), kind="logistic", penalty=penalty,
                   solver="lbfgs", converged=bool(gnorm <= 10 * tol or res.success),
                   gradient_norm=gnorm)


# =====================================================================================
# memory: both accountings of math-spec §5
# =====================================================================================

#: The two accountings, by key (labels for tables and figures).
ACCOUNTINGS: dict[str, str] = {
    "entropy": "entropy bound: H(ε) + (1 − ε) bits/weight (positions and signs)",
    "authors": "authors' count: (1 − ε) bits/weight (non-zeros only, positions free)",
}


def _check_accounting(accounting: Any) -> str:
    if accounting not in ACCOUNTINGS:
        raise ValueError(f"accounting must be one of {sorted(ACCOUNTINGS)}, got {accounting!r}")
    return accounting


def binary_entropy(x: float) -> float:
    """``H(x) = -x log2 x - (1 - x) log2 (1 - x)`` in bits (0 at x = 0 or 1).

    Raises
    ------
    ValueError
        If ``x`` is not in [0, 1].
    """
    x = _check_fraction(x, "x", low_open=False, high_open=False)
    if x in (0.0, 1.0):
        return 0.0
    return float(-x * math.log2(x) - (1.0 - x) * math.log2(1.0 - x))


@dataclass(frozen=True)
class MemoryCost:
    """Bits needed for the hidden weights, with both accountings of math-spec §5.

    Attributes
    ----------
    n_weights : int
        Number of hidden weights ``sum_l d_l d_{l-1}`` (the readout is the same fp32
        matrix for every method and is not counted).
    entropy_bits : float
        Honest accounting: an information-theoretic bound that a code can approach
        (positions of the zeros at their entropy ``H``, plus one bit per non-zero sign
        for ternary weights or 32 bits per non-zero float).
    authors_bits : float
        The authors' count: the non-zero entries only (1 bit per ternary non-zero,
        32 bits per float non-zero), positions for free; not achievable by any code.
    description : str
    """

    n_weights: int
    entropy_bits: float
    authors_bits: float
    description: str

    @property
    def dense_bits(self) -> float:
        """Bits of the same weights stored dense in fp32 (32 per weight)."""
        return DENSE_BITS * self.n_weights

    def bits(self, accounting: str) -> float:
        """Total bits under ``accounting`` (``"entropy"`` or ``"authors"``)."""
        if _check_accounting(accounting) == "entropy":
            return self.entropy_bits
        return self.authors_bits

    def bits_per_weight(self, accounting: str) -> float:
        return self.bits(accounting) / self.n_weights

    def ratio(self, accounting: str) -> float:
        """Compression ratio ``32 n / bits`` (inf if no bits)."""
        bits = self.bits(accounting)
        return math.inf if bits == 0 else self.dense_bits / bits


def _check_n_weights(n_weights: Any) -> int:
    return _check_positive_int(n_weights, "n_weights")


def dense_memory(n_weights: int) -> MemoryCost:
    """Dense fp32: 32 bits per weight under both accountings."""
    n = _check_n_weights(n_weights)
    return MemoryCost(n, DENSE_BITS * n, DENSE_BITS * n, "dense fp32")


def ternary_memory(n_weights: int, sparsity: float) -> MemoryCost:
    """Sparse ternary weights with a fraction ``sparsity = ε`` of zeros.

    Entropy bound ``H(ε) + (1 − ε)`` bits per weight (where the zeros are, then one
    sign bit per non-zero; ``log2 3`` at ε = 1/3, 1 bit at ε = 0); the authors' count
    ``(1 − ε)``. The same numbers as :func:`lossless.compress.memory_report`.
    """
    n = _check_n_weights(n_weights)
    eps = _check_sparsity(sparsity)
    return MemoryCost(n, n * (binary_entropy(eps) + 1.0 - eps), n * (1.0 - eps),
                      f"sparse ternary, ε = {eps:g}")


def sparse_float_memory(n_weights: int, kept_fraction: float, *,
                        value_bits: float = DENSE_BITS) -> MemoryCost:
    """A fraction ``kept_fraction = k`` of float weights kept, the rest zero.

    Entropy accounting ``H(k) + 32 k`` bits per weight (positions at their entropy,
    fp32 values); the authors'-style count ``32 k`` (values only, positions free),
    the analogue of their ``(1 − ε)`` for ternary weights.
    """
    n = _check_n_weights(n_weights)
    k = _check_kept(kept_fraction)
    vb = _check_real(value_bits, "value_bits")
    return MemoryCost(n, n * (binary_entropy(k) + vb * k), n * vb * k,
                      f"sparse fp32, {k:.4g} kept")


def matched_kept_fraction(bits_per_weight: float, accounting: str, *,
                          value_bits: float = DENSE_BITS) -> float:
    """Fraction ``k`` of fp32 weights that a sparse float network may keep for a budget.

    Solves ``H(k) + 32 k = b`` (``accounting="entropy"``, increasing in ``k``; brentq to
    1e-15) or ``32 k = b`` (``"authors"``) for the budget ``b`` bits per weight.

    Raises
    ------
    ValueError
        If the budget is not positive or exceeds what keeping every weight costs.
    """
    b = _check_real(bits_per_weight, "bits_per_weight")
    accounting = _check_accounting(accounting)
    vb = _check_real(value_bits, "value_bits")
    if b <= 0 or b > vb:
        raise ValueError(f"bits_per_weight must be in (0, {vb:g}], got {b!r}")
    if accounting == "authors":
        return b / vb
    if b >= vb:
        return 1.0
    # H(k) + vb k is increasing on (0, 1) for vb >= 1 (derivative log2((1-k)/k) + vb)
    f = lambda k: binary_entropy(k) + vb * k - b  # noqa: E731
    hi = 1.0 - 1e-15
    if f(hi) < 0:
        return 1.0
    return float(scipy.optimize.brentq(f, 0.0, hi, xtol=1e-15, rtol=1e-15))


# =====================================================================================
# baselines: transforms of dense weights
# =====================================================================================


def _check_weight(W: Any) -> torch.Tensor:
    if not isinstance(W, torch.Tensor) or not W.is_floating_point():
        raise TypeError(f"W must be a floating torch.Tensor, got {type(W).__name__}")
    if W.numel() == 0:
        raise ValueError("W must have at least one entry")
    return W.detach()


def _count(fraction: float, N: int, name: str) -> int:
    m = int(round(fraction * N))
    if m < 1:
        raise ValueError(f"{name} = {fraction:.3g} keeps no weight of a matrix with {N} entries "
                         f"(round({fraction:.3g} * {N}) = 0)")
    return m


def _unit_mean_square(W: torch.Tensor) -> torch.Tensor:
    ms = float((W.double() ** 2).mean())
    return W / math.sqrt(ms)


def magnitude_prune(W: torch.Tensor, kept_fraction: float) -> torch.Tensor:
    """Keep the ``round(k N)`` entries of largest ``|w|``, zero the rest, rescale.

    Unstructured, per matrix (as ``torch.nn.utils.prune.l1_unstructured``); the result
    is rescaled so that the mean of its squared entries (zeros included) is exactly 1,
    i.e. unit variance like the weights the theory assumes.

    Parameters
    ----------
    W : Tensor, any shape
        Dense weights.
    kept_fraction : float
        ``k`` in (0, 1].

    Returns
    -------
    Tensor, shape of ``W``
    """
    W = _check_weight(W)
    k = _check_kept(kept_fraction)
    flat = W.reshape(-1)
    m = _count(k, flat.numel(), "kept_fraction")
    keep = torch.topk(flat.abs(), m, sorted=False).indices
    out = torch.zeros_like(flat)
    out[keep] = flat[keep]
    return _unit_mean_square(out).reshape(W.shape)


def naive_ternarize(W: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Sign of ``W`` with a threshold at the ``ε`` quantile of ``|w|``, scaled.

    The ``round(ε N)`` entries of smallest ``|w|`` become 0, the others ``± c`` with
    their sign, ``c = sqrt(N / #non-zeros)`` so that the mean square is exactly 1. The
    network keeps its original activations (only the weights are quantised).

    Parameters
    ----------
    W : Tensor, any shape
    sparsity : float
        ``ε`` in [0, 1).

    Returns
    -------
    Tensor, shape of ``W``, values in ``{-c, 0, c}``
    """
    W = _check_weight(W)
    eps = _check_sparsity(sparsity)
    flat = W.reshape(-1)
    N = flat.numel()
    m = N - int(round(eps * N))
    if m < 1:
        raise ValueError(f"sparsity = {eps:g} leaves no non-zero weight in a matrix with "
                         f"{N} entries")
    keep = torch.topk(flat.abs(), m, sorted=False).indices
    out = torch.zeros_like(flat)
    out[keep] = torch.sign(flat[keep]) * math.sqrt(N / m)
    return out.reshape(W.shape)


def random_sparsify(W: torch.Tensor, kept_fraction: float,
                    generator: torch.Generator) -> torch.Tensor:
    """Keep ``round(k N)`` entries at uniformly random positions, zero the rest, rescale.

    The positions come from ``torch.randperm(N, generator=generator)``; the result is
    rescaled to mean square exactly 1.

    Parameters
    ----------
    W : Tensor, any shape
    kept_fraction : float
        ``k`` in (0, 1].
    generator : torch.Generator

    Returns
    -------
    Tensor, shape of ``W``
    """
    W = _check_weight(W)
    k = _check_kept(kept_fraction)
    _check_generator(generator)
    flat = W.reshape(-1)
    m = _count(k, flat.numel(), "kept_fraction")
    keep = torch.randperm(flat.numel(), generator=generator)[:m]
    out = torch.zeros_like(flat)
    out[keep] = flat[keep]
    return _unit_mean_square(out).reshape(W.shape)


# =====================================================================================
# the networks compared
# =====================================================================================


def _n_weights(p: int, widths: Sequence[int]) -> int:
    dims = [int(p)] + [int(d) for d in widths]
    return sum(a * b for a, b in zip(dims[:-1], dims[1:]))


@dataclass(frozen=True, eq=False)
class FeatureNetwork:
    """A network with fixed hidden weights, seen through its last-layer features.

    Attributes
    ----------
    method : str
        ``"dense"``, ``"compressed"``, ``"magnitude pruning"``, ``"naive ternary"``,
        ``"random sparsification"`` or ``"narrow dense"``.
    model : torch.nn.Module
        A :class:`lossless.networks.MLP` or a :class:`lossless.compress.CompressedMLP`
        (anything with ``features(X)``, ``centres`` and ``layers``).
    memory : MemoryCost
    sparsity : float
        The target ε (compressed and naive ternary) or ``1 - k`` (pruning, random
        sparsification), 0 for dense.
    kept_fraction : float
        Measured fraction of non-zero hidden weights.
    shift : float
        Predicted CK identity shift ``(tau_L^c)^2 - tau_L^2`` (0 for networks that keep
        the original activations).
    matched : str
        Accounting under which the memory budget was matched (``"entropy"``,
        ``"authors"``) or ``"-"``.
    surrogates : tuple or None
        Straight-through derivatives for layers with jumps (used by :func:`finetune`).
    evaluator : torch.nn.Module or None
        Module used by :meth:`features` instead of ``model`` (the float32 unpacked
        reference of a :class:`~lossless.compress.CompressedMLP`, which computes the
        same network faster than the packed integer path).
    """

    method: str
    model: Any
    memory: MemoryCost
    sparsity: float = 0.0
    kept_fraction: float = 1.0
    shift: float = 0.0
    matched: str = "-"
    surrogates: tuple | None = None
    evaluator: Any = field(default=None, repr=False)

    @property
    def layers(self) -> tuple:
        return tuple(self.model.layers)

    @property
    def widths(self) -> tuple:
        return tuple(self.model.widths)

    def hidden_weights(self) -> list[torch.Tensor]:
        """Dense float32 copies of ``W_1..W_L`` (shape ``(d_l, d_{l-1})``)."""
        if isinstance(self.model, compress.CompressedMLP):
            return [self.model.weights(i, torch.float32) for i in range(self.model.depth)]
        return [W.detach().clone() for W in self.model.hidden]

    def features(self, X: Any, *, batch_size: int = 4096) -> np.ndarray:
        """Last-layer features ``Sigma_L``, shape (n, d_L), float64.

        Parameters
        ----------
        X : array_like, shape (n, p)
        batch_size : int
            Rows per forward pass.
        """
        X = np.asarray(X, dtype=np.float64)
        batch_size = _check_positive_int(batch_size, "batch_size")
        module = self.model if self.evaluator is None else self.evaluator
        out = []
        with torch.no_grad():
            for start in range(0, X.shape[0], batch_size):
                F = module.features(np.array(X[start:start + batch_size], dtype=np.float64))
                out.append(F.to(torch.float64).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.widths[-1]))

    def __repr__(self) -> str:
        return (f"FeatureNetwork({self.method!r}, sparsity={self.sparsity:.4g}, "
                f"kept={self.kept_fraction:.4g}, matched={self.matched!r}, "
                f"bits/weight: entropy {self.memory.bits_per_weight('entropy'):.4g}, "
                f"authors {self.memory.bits_per_weight('authors'):.4g}, shift={self.shift:.4g})")


def _nonzero_fraction(weights: Iterable[torch.Tensor]) -> float:
    nz = tot = 0
    for W in weights:
        nz += int(torch.count_nonzero(W))
        tot += W.numel()
    return nz / tot


def dense_network(p: int, widths: Sequence[int], layers: Sequence[Activation], tau0: float,
                  generator: torch.Generator, *,
                  dtype: torch.dtype = torch.float32) -> FeatureNetwork:
    """The original network: i.i.d. N(0, 1) hidden weights, original activations.

    Parameters
    ----------
    p : int
    widths : sequence of int, length L
    layers : sequence of Activation, length L
    tau0 : float
        Input scale of the training data (fixes the centring constants).
    generator : torch.Generator
        Draws ``W_1..W_L`` (and an unused readout) as :class:`lossless.networks.MLP` does.
    dtype : torch.dtype, default float32
    """
    model = networks.MLP(p, widths, list(layers), tau0, weights="gaussian",
                         generator=_check_generator(generator), dtype=dtype)
    return FeatureNetwork("dense", model, dense_memory(_n_weights(p, widths)))


def compressed_network(plan: compress.CompressionPlan, p: int, widths: Sequence[int],
                       sparsity: float, generator: torch.Generator) -> FeatureNetwork:
    """The compressed network of math-spec §5: sparse ternary weights, ternary activations.

    A :class:`lossless.compress.CompressedMLP` drawn by ``CompressedMLP.from_plan``
    (weights stored as 2-bit codes; i.i.d. entries with ``P(0) = ε``); its predicted CK
    identity shift is ``plan.shift`` and its straight-through derivatives
    ``plan.surrogates()``. Features are computed by its unpacked float32 reference
    (``to_reference``), the same network.

    Parameters
    ----------
    plan : CompressionPlan
        From :func:`lossless.compress.compress` at the training data's ``tau0``.
    p : int
    widths : sequence of int
    sparsity : float
        ε in [0, 1).
    generator : torch.Generator
    """
    if not isinstance(plan, compress.CompressionPlan):
        raise TypeError("plan must be a lossless.compress.CompressionPlan, got "
                        f"{type(plan).__name__}")
    eps = _check_sparsity(sparsity)
    model = compress.CompressedMLP.from_plan(plan, p, widths, sparsity=eps,
                                             generator=_check_generator(generator))
    kept = _nonzero_fraction(model.codes(i) for i in range(model.depth))
    return FeatureNetwork("compressed", model, ternary_memory(_n_weights(p, widths), eps),
                          sparsity=eps, kept_fraction=kept, shift=plan.shift,
                          surrogates=tuple(plan.surrogates()),
                          evaluator=model.to_reference(torch.float32))


def _transformed(method: str, p, widths, layers, tau0, generator, transform, memory: MemoryCost,
                 sparsity: float, matched: str) -> FeatureNetwork:
    base = dense_network(p, widths, layers, tau0, generator)
    model = base.model
    with torch.no_grad():
        for W in model.hidden:
            W.copy_(transform(W))
    kept = _nonzero_fraction(model.hidden)
    return FeatureNetwork(method, model, memory, sparsity=sparsity, kept_fraction=kept,
                          matched=matched)


def _check_matched(matched: Any) -> str:
    if matched != "-" and matched not in ACCOUNTINGS:
        raise ValueError(f"matched must be '-' or one of {sorted(ACCOUNTINGS)}, got {matched!r}")
    return matched


def pruned_network(p: int, widths: Sequence[int], layers: Sequence[Activation], tau0: float,
                   kept_fraction: float, generator: torch.Generator, *,
                   matched: str = "-") -> FeatureNetwork:
    """Magnitude pruning of the dense network's weights (:func:`magnitude_prune`).

    The dense Gaussian weights are drawn exactly as :func:`dense_network` draws them
    (same generator state, same network), then each matrix keeps its ``round(k N)``
    largest entries and is rescaled to unit mean square; original activations.
    Memory: :func:`sparse_float_memory` (fp32 values).
    """
    k = _check_kept(kept_fraction)
    return _transformed("magnitude pruning", p, widths, layers, tau0, generator,
                        lambda W: magnitude_prune(W, k),
                        sparse_float_memory(_n_weights(p, widths), k), 1.0 - k,
                        _check_matched(matched))


def naive_ternary_network(p: int, widths: Sequence[int], layers: Sequence[Activation],
                          tau0: float, sparsity: float,
                          generator: torch.Generator) -> FeatureNetwork:
    """Naive ternarisation of the dense network's weights (:func:`naive_ternarize`).

    Same dense draw as :func:`dense_network`; each matrix becomes ``c sign(W)`` with the
    ``ε`` fraction of smallest ``|w|`` set to 0; the **original** activations are kept.
    Memory: :func:`ternary_memory` (same bits as the compressed network at that ε).
    """
    eps = _check_sparsity(sparsity)
    return _transformed("naive ternary", p, widths, layers, tau0, generator,
                        lambda W: naive_ternarize(W, eps),
                        ternary_memory(_n_weights(p, widths), eps), eps, "-")


def random_sparse_network(p: int, widths: Sequence[int], layers: Sequence[Activation],
                          tau0: float, kept_fraction: float, generator: torch.Generator, *,
                          matched: str = "-") -> FeatureNetwork:
    """Random sparsification of the dense network's weights (:func:`random_sparsify`).

    Same dense draw as :func:`dense_network`, then (from the same generator) a uniformly
    random mask keeping ``round(k N)`` entries per matrix, rescaled to unit mean square;
    original activations. Memory: :func:`sparse_float_memory`.
    """
    k = _check_kept(kept_fraction)
    generator = _check_generator(generator)
    return _transformed("random sparsification", p, widths, layers, tau0, generator,
                        lambda W: random_sparsify(W, k, generator),
                        sparse_float_memory(_n_weights(p, widths), k), 1.0 - k,
                        _check_matched(matched))


def narrow_widths(p: int, widths: Sequence[int], n_weights: float) -> list[int]:
    """Widths ``max(1, round(s d_l))`` of a scaled-down network with at most ``n_weights``.

    ``s`` is the largest scale (found by bisection on the exact count) for which the
    network with widths ``round(s d_l)`` has at most ``n_weights`` hidden weights.

    Raises
    ------
    ValueError
        If even widths of 1 exceed ``n_weights``.
    """
    p = _check_positive_int(p, "p")
    widths = [_check_positive_int(d, "widths entry") for d in widths]
    target = _check_real(n_weights, "n_weights")

    def scaled(s: float) -> list[int]:
        return [max(1, int(round(s * d))) for d in widths]

    if _n_weights(p, scaled(0.0)) > target:
        raise ValueError(f"n_weights = {target:.6g} is below the {_n_weights(p, scaled(0.0))} "
                         f"weights of a network with widths 1")
    lo, hi = 0.0, 1.0
    if _n_weights(p, widths) <= target:
        return widths
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if _n_weights(p, scaled(mid)) <= target:
            lo = mid
        else:
            hi = mid
    return scaled(lo)


def narrow_dense_network(p: int, widths: Sequence[int], layers: Sequence[Activation],
                         tau0: float, bits: float, generator: torch.Generator, *,
                         matched: str = "-") -> FeatureNetwork:
    """A dense fp32 network made narrower to fit a memory budget.

    Widths from :func:`narrow_widths` with ``bits / 32`` weights, otherwise exactly
    :func:`dense_network` (Gaussian weights, original activations): the alternative to
    compressing a wide network is a smaller dense one.

    Parameters
    ----------
    bits : float
        Budget in bits for the hidden weights.
    """
    w = narrow_widths(p, widths, _check_real(bits, "bits") / DENSE_BITS)
    net = dense_network(p, w, layers, tau0, generator)
    return FeatureNetwork("narrow dense", net.model, net.memory, sparsity=0.0, kept_fraction=1.0,
                          matched=_check_matched(matched))


# =====================================================================================
# kernel-level agreement
# =====================================================================================


@dataclass(frozen=True)
class KernelAgreement:
    """Empirical CK ``F F^T`` of one network against a reference (expected) CK.

    Attributes
    ----------
    error : float
        ``||F F^T - K|| / ||K||`` (operator norm).
    error_corrected : float
        ``||F F^T - shift I - K|| / ||K||`` (equal to ``error`` when shift = 0).
    alignment : float
        ``|<u_1, v_1>|`` of the leading eigenvectors of ``F F^T`` and ``K``.
    """

    error: float
    error_corrected: float
    alignment: float


def kernel_agreement(F: Any, K_reference: Any, shift: float = 0.0) -> KernelAgreement:
    """Compare the empirical CK of features ``F`` (n, d) with ``K_reference`` (n, n).

    Parameters
    ----------
    F : array_like, shape (n, d)
    K_reference : array_like, shape (n, n)
        Typically :func:`lossless.kernels.exact_ck` of the *original* network.
    shift : float
        Identity shift subtracted for ``error_corrected``.
    """
    F = _check_features(F)
    K = np.asarray(K_reference, dtype=np.float64)
    n = F.shape[0]
    if K.shape != (n, n):
        raise ValueError(f"K_reference must have shape (n, n) = ({n}, {n}), got {K.shape}")
    shift = _check_real(shift, "shift")
    G = F @ F.T
    err = spectra.relative_opnorm_error(G, K)
    err_c = err if shift == 0 else spectra.relative_opnorm_error(G - shift * np.eye(n), K)
    _, U = np.linalg.eigh(G)
    _, V = np.linalg.eigh(K)
    return KernelAgreement(err, err_c, spectra.eigenvector_alignment(U[:, -1], V[:, -1]))


# =====================================================================================
# one trial of the paper's protocol
# =====================================================================================


def _kernel_subset(n: int, size: int) -> np.ndarray:
    size = min(size, n)
    return np.unique(np.linspace(0, n - 1, size).round().astype(int))


#: Baselines of :func:`run_trial`: ``name -> (matched to a budget?, builder)``; a matched
#: builder is called as ``builder(p, widths, layers, tau0, budget_bits, accounting,
#: generator)``, the others as ``builder(p, widths, layers, tau0, sparsity, generator)``.
BASELINES: dict[str, tuple[bool, Any]] = {
    "naive ternary": (False, lambda p, w, l, t, eps, g: naive_ternary_network(p, w, l, t, eps, g)),
    "magnitude pruning": (True, lambda p, w, l, t, bits, acc, g: pruned_network(
        p, w, l, t, matched_kept_fraction(bits / _n_weights(p, w), acc), g, matched=acc)),
    "random sparsification": (True, lambda p, w, l, t, bits, acc, g: random_sparse_network(
        p, w, l, t, matched_kept_fraction(bits / _n_weights(p, w), acc), g, matched=acc)),
    "narrow dense": (True, lambda p, w, l, t, bits, acc, g: narrow_dense_network(
        p, w, l, t, bits, g, matched=acc)),
}


def _network_builders(task: Task, layers: list, widths: list[int], seed: int,
                      sparsities: Sequence[float], baselines: Sequence[str],
                      matchings: Sequence[str]) -> list:
    """Callables building the networks of :func:`run_trial`, in order (dense first)."""
    tau0, p = task.tau0, task.p
    n_w = _n_weights(p, widths)
    plan = compress.compress(layers, tau0) if sparsities else None
    smallest = min(a * b for a, b in zip([p] + widths[:-1], widths))

    def gen() -> torch.Generator:
        return torch.Generator().manual_seed(seed)

    builders: list = [lambda: dense_network(p, widths, layers, tau0, gen())]
    for eps in sparsities:
        builders.append(lambda eps=eps: compressed_network(plan, p, widths, eps, gen()))
        budget = ternary_memory(n_w, eps)
        for name in baselines:
            matched, build = BASELINES[name]
            if not matched:
                builders.append(lambda eps=eps, build=build: build(p, widths, layers, tau0, eps,
                                                                   gen()))
                continue
            for acc in matchings:
                bits = budget.bits(acc)
                if name == "narrow dense":
                    if bits < DENSE_BITS * _n_weights(p, [1] * len(widths)):
                        continue
                elif round(bits / DENSE_BITS / n_w * smallest) < 1:
                    continue
                builders.append(lambda bits=bits, acc=acc, build=build: build(
                    p, widths, layers, tau0, bits, acc, gen()))
    return builders


def _row_base(task: Task, label: str, layers: list, widths: list[int], seed: int,
              net: FeatureNetwork) -> dict:
    full_bits = DENSE_BITS * _n_weights(task.p, widths)
    return {
        "dataset": task.name, "activation": label, "depth": len(layers),
        "widths": "x".join(map(str, widths)), "n_train": task.n_train,
        "n_test": task.n_test, "seed": seed, "method": net.method,
        "sparsity": net.sparsity, "matched": net.matched,
        "net_widths": "x".join(map(str, net.widths)),
        "kept_fraction": net.kept_fraction,
        "bits_entropy": net.memory.entropy_bits, "bits_authors": net.memory.authors_bits,
        "ratio_entropy": full_bits / net.memory.entropy_bits,
        "ratio_authors": full_bits / net.memory.authors_bits,
    }


def _check_trial_args(task, layers, widths, sparsities, baselines, matchings):
    if not isinstance(task, Task):
        raise TypeError(f"task must be a Task, got {type(task).__name__}")
    layers = list(layers)
    widths = [_check_positive_int(d, "widths entry") for d in widths]
    if len(widths) != len(layers):
        raise ValueError(f"widths must have one entry per layer ({len(layers)}), got {widths}")
    sparsities = [_check_sparsity(e) for e in sparsities]
    for name in baselines:
        if name not in BASELINES:
            raise ValueError(f"baselines must be keys of {sorted(BASELINES)}, got {name!r}")
    matchings = [_check_accounting(m) for m in matchings]
    return layers, widths, sparsities, list(baselines), matchings


def run_trial(task: Task, layers: Sequence[Activation], widths: Sequence[int], *, seed: int,
              ridges: Sequence[float | None] = (None,),
              shift_ridges: Sequence[float] = (),
              sparsities: Sequence[float] = (0.0, 0.5, 0.9, 0.95, 0.99),
              baselines: Sequence[str] = tuple(BASELINES),
              matchings: Sequence[str] = ("entropy",), logistic_penalty: float | None = None,
              n_kernel: int = 0, activation: str | None = None,
              progress: bool = False) -> list[dict]:
    """Every network of the comparison on one task and one seed, every readout.

    Networks, each drawn from ``torch.Generator().manual_seed(seed)`` (so the dense
    network and the baselines derived from it share their Gaussian draw):

    - ``dense``: the original (fp32, 32 bits per weight);
    - for each ε in ``sparsities``: ``compressed`` (:func:`compressed_network`, its
      plan solved at the training data's ``tau0``) and the ``baselines``:
      ``naive ternary`` at the same ε (same bits), and, for each accounting in
      ``matchings``, ``magnitude pruning``, ``random sparsification`` and
      ``narrow dense`` whose bits under that accounting equal the compressed
      network's (budgets too small to keep one weight per matrix, or a network of
      width 1, are skipped).

    Readouts (:class:`Readout`), for each ``lambda`` in ``ridges``: ``ridge`` at
    ``lambda`` (every network) and ``shift-corrected ridge`` at ``lambda - shift``
    (compressed networks; an infeasible correction is recorded with NaN accuracy and
    the reason in ``note``); then ``ridge (validated)``, each network with its own
    hold-out-validated ``lambda`` (:func:`validated_ridge_readout`); and ``logistic``
    (:func:`logistic_readout`) if ``logistic_penalty`` is given.

    Parameters
    ----------
    task : Task
    layers : sequence of Activation
        The original network's activations.
    widths : sequence of int
    seed : int
    ridges : sequence of (float or None), default (None,)
        The ``lambda`` of the ``ridge`` and ``shift-corrected ridge`` readouts; None
        stands for the dense network's validated ``lambda`` (every network is then read
        out with the ridge that suits the original).
    shift_ridges : sequence of float, default ()
        More ``lambda`` values, as multiples of the compressed network's identity shift
        ``Delta tau_L^2`` (from :func:`lossless.compress.compress` at the task's
        ``tau0``); a multiple above 1 keeps the shift-corrected ridge positive.
    sparsities : sequence of float
    baselines : sequence of str
        Keys of :data:`BASELINES`.
    matchings : sequence of {"entropy", "authors"}
    logistic_penalty : float, optional
        Relative L2 penalty of the logistic readout: the absolute penalty is
        ``logistic_penalty * mean_i ||f_i||^2`` (the same problem for rescaled features).
    n_kernel : int, default 0
        If positive, the empirical CK of each network on ``n_kernel`` training samples
        (evenly spaced, so every class is represented) is compared with the original
        network's exact CK (:func:`kernel_agreement`).
    activation : str, optional
        Label of the architecture in the rows (default: the first layer's name).
    progress : bool, default False
        tqdm bar over the networks.

    Returns
    -------
    list of dict
        One row per (network, readout) with keys ``dataset, activation, depth, widths,
        n_train, n_test, seed, method, sparsity, matched, net_widths, kept_fraction,
        bits_entropy, bits_authors, ratio_entropy, ratio_authors, readout, ridge_rule,
        ridge, penalty, shift, train_accuracy, test_accuracy, ck_error, ck_error_corrected,
        ck_alignment, seconds, note``; the ratios are the full-size dense network's
        fp32 bits over the row's bits.
    """
    layers, widths, sparsities, baselines, matchings = _check_trial_args(
        task, layers, widths, sparsities, baselines, matchings)
    seed = int(seed)
    ridges = [None if r is None else _check_real(r, "ridges entry") for r in ridges]
    multiples = [_check_real(m, "shift_ridges entry") for m in shift_ridges]
    if not ridges and not multiples:
        raise ValueError("ridges and shift_ridges are both empty: no ridge readout to fit")
    rules = ["dense-validated" if r is None else "fixed" for r in ridges]
    if multiples:
        shift = compress.compress(layers, task.tau0).shift
        ridges += [m * shift for m in multiples]
        rules += [f"{m:g} x shift" for m in multiples]
    if logistic_penalty is not None:
        logistic_penalty = _check_real(logistic_penalty, "logistic_penalty")
    tau0 = task.tau0
    label = activation if activation is not None else getattr(layers[0], "name", "custom")
    targets = class_targets(task.y_train, task.K)
    K_ref = subset = None
    if n_kernel:
        subset = _kernel_subset(task.n_train, _check_positive_int(n_kernel, "n_kernel"))
        K_ref = kernels.exact_ck(task.X_train[subset], layers, tau0=tau0)
    builders = _network_builders(task, layers, widths, seed, sparsities, baselines, matchings)
    iterator = progress_bar(builders, progress, f"{task.name}, seed {seed}")
    rows = []
    for build in iterator:
        start = time.perf_counter()
        net = build()
        F_train = net.features(task.X_train)
        F_test = net.features(task.X_test)
        agreement = None
        if subset is not None and net.method != "narrow dense":
            agreement = kernel_agreement(F_train[subset], K_ref, net.shift)
        validated = validated_ridge_readout(F_train, task.y_train, task.K)
        if net.method == "dense":
            ridges = [validated.penalty if r is None else r for r in ridges]
        readouts: list[tuple[str, Readout | None, float, str, str]] = []
        for lam, rule in zip(ridges, rules):
            if lam is None:
                raise ValueError("ridges contains None (the dense network's validated ridge) "
                                 "but the dense network comes first and was not built")
            readouts.append(("ridge", ridge_readout(F_train, targets, lam), lam, rule, ""))
            if net.method == "compressed":
                try:
                    readouts.append(("shift-corrected ridge", shift_corrected_readout(
                        F_train, targets, lam, net.shift), lam, rule, ""))
                except ValueError:
                    readouts.append(("shift-corrected ridge", None, lam, rule,
                                     f"infeasible: ridge - shift = {lam - net.shift:.4g} "
                                     "makes the ridge system indefinite"))
        readouts.append(("ridge (validated)", validated, validated.penalty, "own validated", ""))
        if logistic_penalty is not None:
            scale = float(np.mean(np.einsum("ij,ij->i", F_train, F_train)))
            readouts.append(("logistic", logistic_readout(F_train, task.y_train, task.K,
                                                          logistic_penalty * scale),
                             logistic_penalty, "relative penalty", ""))
        elapsed = time.perf_counter() - start
        for kind, readout, lam, rule, note in readouts:
            if readout is not None and not readout.converged:
                note = f"not converged (gradient {readout.gradient_norm:.2e})"
            rows.append({
                **_row_base(task, label, layers, widths, seed, net),
                "readout": kind, "ridge_rule": rule, "ridge": lam,
                "penalty": readout.penalty if readout is not None else lam - net.shift,
                "shift": net.shift,
                "train_accuracy": readout.accuracy(F_train, task.y_train) if readout else math.nan,
                "test_accuracy": readout.accuracy(F_test, task.y_test) if readout else math.nan,
                "ck_error": agreement.error if agreement else math.nan,
                "ck_error_corrected": agreement.error_corrected if agreement else math.nan,
                "ck_alignment": agreement.alignment if agreement else math.nan,
                "seconds": elapsed, "note": note,
            })
    return rows


def summarize(rows: Iterable[dict], keys: Sequence[str],
              value: str = "test_accuracy") -> list[dict]:
    """Mean, standard deviation, min, max and count of ``value`` per group of ``keys``.

    NaN values are left out of the statistics (``count`` says how many remain).
    Groups keep the order of their first appearance.

    Returns
    -------
    list of dict
        Each with the ``keys`` and ``mean, std, min, max, count`` (``std`` with
        ``ddof=1``, NaN for fewer than two values).
    """
    groups: dict[tuple, list[float]] = {}
    for row in rows:
        key = tuple(row[k] for k in keys)
        groups.setdefault(key, []).append(float(row[value]))
    out = []
    for key, vals in groups.items():
        v = np.array([x for x in vals if not math.isnan(x)])
        out.append({**dict(zip(keys, key)),
                    "mean": float(v.mean()) if v.size else math.nan,
                    "std": float(v.std(ddof=1)) if v.size > 1 else math.nan,
                    "min": float(v.min()) if v.size else math.nan,
                    "max": float(v.max()) if v.size else math.nan,
                    "count": int(v.size)})
    return out


def _select(rows: Iterable[dict], readout: str, ridge_rule: str | None) -> list[dict]:
    out = []
    for r in rows:
        if r.get("readout") != readout:
            continue
        if ridge_rule is not None and r.get("ridge_rule", ridge_rule) != ridge_rule:
            continue
        out.append(r)
    return out


def curve_label(method: str, matched: str) -> str:
    """Legend label of a method (matched baselines say under which accounting)."""
    return method if matched in ("-", "", None) else f"{method} ({matched}-matched)"


def accuracy_memory_curves(rows: Iterable[dict], accounting: str, *,
                           readout: str = "ridge (validated)", ridge_rule: str | None = None,
                           value: str = "test_accuracy") -> dict[str, dict]:
    """Group result rows into one accuracy-against-memory curve per method.

    Keeps the rows of one ``readout`` (and, for readouts fitted at several ridges, one
    ``ridge_rule``) and the baselines matched under ``accounting`` (plus every row with
    ``matched == "-"``: dense, compressed, naive ternary). Each curve has one point per
    memory budget: the bits under ``accounting`` and the mean, standard deviation,
    minimum, maximum and count of ``value`` over the seeds (NaNs dropped).

    Parameters
    ----------
    rows : iterable of dict
        Rows of :func:`run_trial` (or :func:`read_csv` of a benchmark file).
    accounting : {"entropy", "authors"}
    readout : str
    ridge_rule : str, optional
        E.g. ``"dense-validated"`` or ``"2 x shift"``; None keeps every rule.
    value : str

    Returns
    -------
    dict
        ``label -> {"bits", "mean", "std", "min", "max", "count"}`` (ndarrays sorted by
        bits), labels from :func:`curve_label`, in order of first appearance.
    """
    accounting = _check_accounting(accounting)
    sel = [r for r in _select(rows, readout, ridge_rule)
           if r.get("matched") in ("-", accounting)]
    bits_key = f"bits_{accounting}"
    stats = summarize(sel, ["method", "matched", bits_key], value)
    curves: dict[str, dict] = {}
    for s in stats:
        label = curve_label(s["method"], s["matched"])
        c = curves.setdefault(label, {k: [] for k in ("bits", "mean", "std", "min", "max",
                                                       "count")})
        c["bits"].append(float(s[bits_key]))
        for k in ("mean", "std", "min", "max", "count"):
            c[k].append(s[k])
    for c in curves.values():
        order = np.argsort(c["bits"])
        for k in c:
            c[k] = np.asarray(c[k], dtype=float)[order]
    return curves


def format_table(records: Sequence[dict], columns: dict[str, str]) -> str:
    """Plain-text table: ``columns`` maps each key to a format spec (``""`` for str).

    Floats that are NaN print as ``-``; columns are right-aligned to their widest cell.
    """
    cells = [list(columns)]
    for rec in records:
        row = []
        for key, spec in columns.items():
            v = rec.get(key, "")
            if isinstance(v, float) and math.isnan(v):
                row.append("-")
            else:
                row.append(format(v, spec) if spec else str(v))
        cells.append(row)
    widths = [max(len(r[j]) for r in cells) for j in range(len(columns))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells)


# =====================================================================================
# second protocol: train all layers
# =====================================================================================


class _StraightThrough(torch.autograd.Function):
    """Forward: the activation; backward: the surrogate in place of its derivative."""

    @staticmethod
    def forward(ctx, z, activation, surrogate):  # noqa: D401
        ctx.save_for_backward(z)
        ctx.surrogate = surrogate
        return activation(z)

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return grad * ctx.surrogate(z), None, None


class _Trainable(torch.nn.Module):
    def __init__(self, net: FeatureNetwork, readout: np.ndarray) -> None:
        super().__init__()
        weights = net.hidden_weights()
        self.hidden = torch.nn.ParameterList(torch.nn.Parameter(W.to(torch.float32).clone())
                                             for W in weights)
        self.masks = [None if net.kept_fraction >= 1.0 else (W != 0) for W in weights]
        self.layers = list(net.layers)
        self.centres = [float(m) for m in net.model.centres]
        self.widths = list(net.widths)
        surrogates = net.surrogates or (None,) * len(self.layers)
        self.surrogates = []
        for act, sur in zip(self.layers, surrogates):
            if act.has_jumps and sur is None:
                raise ValueError(f"layer {act!r} has jumps: finetune needs a straight-through "
                                 "derivative (FeatureNetwork.surrogates)")
            self.surrogates.append(sur if act.has_jumps else None)
        self.readout = torch.nn.Parameter(torch.as_tensor(readout, dtype=torch.float32).clone())

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        H = X
        for W, act, sur, m, d in zip(self.hidden, self.layers, self.surrogates, self.centres,
                                     self.widths):
            Z = H @ W.T
            A = act(Z) if sur is None else _StraightThrough.apply(Z, act, sur)
            H = (A - m) / math.sqrt(d)
        return H @ self.readout

    def apply_masks(self) -> None:
        with torch.no_grad():
            for W, mask in zip(self.hidden, self.masks):
                if mask is not None:
                    W.mul_(mask)


@dataclass(frozen=True)
class FinetuneResult:
    """Accuracy along training (second protocol).

    Attributes
    ----------
    test_accuracy : ndarray, shape (epochs + 1,)
        Before training (entry 0) and after each epoch.
    train_loss : ndarray, shape (epochs,)
        Mean cross-entropy over each epoch's mini-batches.
    kept_fraction : float
        Fraction of non-zero hidden weights after training (unchanged: zeros stay zero).
    seconds : float
    """

    test_accuracy: np.ndarray
    train_loss: np.ndarray
    kept_fraction: float
    seconds: float = field(default=0.0, compare=False)


def finetune(net: FeatureNetwork, task: Task, generator: torch.Generator, *,
             readout: Readout | None = None, epochs: int = 3, batch_size: int = 128,
             lr: float = 1e-3, progress: bool = False) -> FinetuneResult:
    """Train every layer of ``net`` (hidden weights and readout) with Adam on cross-entropy.

    The hidden weights start from the network's own (random, fixed so far) weights and
    are updated in floating point; zero weights stay zero (their gradients are masked
    and the masks re-applied after each step), so every sparse network keeps its
    support. Layers with jumps (the compressed network's ternary activations) keep
    their step forward and use the straight-through derivative of
    ``net.surrogates`` backward (Bengio, Léonard and Courville, 2013). The centring constants
    stay fixed. Mini-batches are shuffled with ``generator``.

    Parameters
    ----------
    net : FeatureNetwork
    task : Task
    generator : torch.Generator
        Shuffles the training set each epoch.
    readout : Readout, optional
        Initial readout (e.g. :func:`logistic_readout` on the network's features);
        zeros by default.
    epochs : int, default 3
    batch_size : int, default 128
    lr : float, default 1e-3
        Adam learning rate (all parameters).
    progress : bool, default False
        tqdm bar over the epochs.

    Returns
    -------
    FinetuneResult
    """
    if not isinstance(net, FeatureNetwork):
        raise TypeError(f"net must be a FeatureNetwork, got {type(net).__name__}")
    if not isinstance(task, Task):
        raise TypeError(f"task must be a Task, got {type(task).__name__}")
    generator = _check_generator(generator)
    epochs = _check_positive_int(epochs, "epochs")
    batch_size = _check_positive_int(batch_size, "batch_size")
    lr = _check_real(lr, "lr")
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    d_L = net.widths[-1]
    if readout is None:
        R = np.zeros((d_L, task.K))
    else:
        if not isinstance(readout, Readout) or readout.weights.shape != (d_L, task.K):
            raise ValueError(f"readout must be a Readout with weights of shape ({d_L}, {task.K})")
        R = readout.weights
    start = time.perf_counter()
    model = _Trainable(net, R)
    Xtr = torch.tensor(np.array(task.X_train), dtype=torch.float32)
    ytr = torch.tensor(np.array(task.y_train), dtype=torch.int64)
    Xte = torch.tensor(np.array(task.X_test), dtype=torch.float32)
    yte = torch.tensor(np.array(task.y_test), dtype=torch.int64)

    def test_accuracy() -> float:
        with torch.no_grad():
            return float((model(Xte).argmax(dim=1) == yte).double().mean())

    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    accs = [test_accuracy()]
    losses = []
    iterator = progress_bar(range(epochs), progress, f"finetune {net.method}")
    for _ in iterator:
        order = torch.randperm(task.n_train, generator=generator)
        total, count = 0.0, 0
        for b in range(0, task.n_train, batch_size):
            idx = order[b:b + batch_size]
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(Xtr[idx]), ytr[idx])
            loss.backward()
            for W, mask in zip(model.hidden, model.masks):
                if mask is not None and W.grad is not None:
                    W.grad.mul_(mask)
            optimizer.step()
            model.apply_masks()
            total += float(loss.detach()) * idx.numel()
            count += idx.numel()
        losses.append(total / count)
        accs.append(test_accuracy())
    kept = _nonzero_fraction(W.detach() for W in model.hidden)
    return FinetuneResult(np.array(accs), np.array(losses), kept, time.perf_counter() - start)


def run_finetune_trial(task: Task, layers: Sequence[Activation], widths: Sequence[int], *,
                       seed: int, sparsity: float = 0.9,
                       baselines: Sequence[str] = tuple(BASELINES),
                       matchings: Sequence[str] = ("entropy",), epochs: int = 3,
                       batch_size: int = 128, lr: float = 1e-2, logistic_penalty: float = 1e-3,
                       activation: str | None = None, progress: bool = False) -> list[dict]:
    """The second protocol: every network of one budget, fine-tuned in all layers.

    The networks are those of :func:`run_trial` for the single sparsity ``sparsity``
    (dense, compressed, and the baselines matched to the compressed network's budget).
    Each starts from its random weights and a logistic readout fitted on its features
    (relative penalty ``logistic_penalty``, as in :func:`run_trial`), then all layers
    are trained by :func:`finetune` (zeros stay zero, straight-through derivative for
    the compressed network's ternary activations); the generator of the mini-batch
    order is seeded with ``seed`` too.

    Returns
    -------
    list of dict
        One row per (network, epoch), epoch 0 being the start: the keys of
        :func:`run_trial`'s rows that describe the network and its memory, plus
        ``readout`` (``"fine-tuned (all layers)"``), ``epoch``, ``test_accuracy``,
        ``train_loss`` (mean over the epoch, NaN at epoch 0), ``lr``, ``seconds``.
        After training the non-zero weights are floating point: the memory columns
        describe the starting network.
    """
    layers, widths, (sparsity,), baselines, matchings = _check_trial_args(
        task, layers, widths, [sparsity], baselines, matchings)
    seed = int(seed)
    label = activation if activation is not None else getattr(layers[0], "name", "custom")
    logistic_penalty = _check_real(logistic_penalty, "logistic_penalty")
    builders = _network_builders(task, layers, widths, seed, [sparsity], baselines, matchings)
    iterator = progress_bar(builders, progress, f"fine-tune {task.name}, seed {seed}")
    rows = []
    for build in iterator:
        start = time.perf_counter()
        net = build()
        F = net.features(task.X_train)
        scale = float(np.mean(np.einsum("ij,ij->i", F, F)))
        readout = logistic_readout(F, task.y_train, task.K, logistic_penalty * scale)
        result = finetune(net, task, torch.Generator().manual_seed(seed), readout=readout,
                          epochs=epochs, batch_size=batch_size, lr=lr)
        elapsed = time.perf_counter() - start
        losses = [math.nan] + [float(x) for x in result.train_loss]
        for epoch, (acc, loss) in enumerate(zip(result.test_accuracy, losses)):
            rows.append({**_row_base(task, label, layers, widths, seed, net),
                         "readout": "fine-tuned (all layers)", "epoch": epoch,
                         "test_accuracy": float(acc), "train_loss": loss, "lr": lr,
                         "seconds": elapsed})
    return rows


# =====================================================================================
# results files
# =====================================================================================


def write_csv(rows: Sequence[dict], path: str | Path) -> Path:
    """Write rows (dicts) to a CSV file; floats with 6 significant digits.

    The columns are the union of the rows' keys in order of first appearance; a row
    without some key leaves that cell empty (read back as ``""``).
    """
    rows = list(rows)
    if not rows:
        raise ValueError("rows must not be empty")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n", restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v)
                             for k, v in row.items()})
    return path


def _parse(value: str) -> Any:
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def read_csv(path: str | Path) -> list[dict]:
    """Read a CSV written by :func:`write_csv`, converting numbers back to int/float.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no results file at {str(path)!r}")
    with path.open(newline="") as fh:
        return [{k: _parse(v) for k, v in row.items()} for row in csv.DictReader(fh)]
