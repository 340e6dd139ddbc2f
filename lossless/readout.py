"""Readouts: the trained last layer on fixed random features (the practice chapter).

Ridge regression in closed form (plain; shift-corrected, with the ridge penalty ``γ``
lowered by the identity shift ``Δ = (τ^c_L)² − τ_L²``, the practice chapter's remedy for the
compressed network's CK identity shift; and with the ridge chosen on held-out samples),
kernel ridge regression (the infinite-width limit of the ridge readout) and multinomial
logistic regression. Features ``F`` have samples in rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
import scipy.optimize
import torch

from lossless import _checks

__all__ = [
    "class_targets",
    "Readout",
    "ridge_readout",
    "shift_corrected_readout",
    "RIDGE_GRID",
    "validated_ridge_readout",
    "kernel_ridge_predict",
    "logistic_readout",
    "ConvergenceError",
]


class ConvergenceError(RuntimeError):
    """An iterative solver stopped before converging; the message gives its residual."""


def _check_labels(labels: Any, n: int | None, n_classes: int | None = None) -> np.ndarray:
    """Class indices: a 1-D integer array of length ``n`` (any length if None) with entries
    in ``[0, K)``."""
    if labels is None or isinstance(labels, (str, bytes)):
        raise TypeError(f"labels must be an integer array of shape ({n},), got "
                        f"{_checks.describe(labels)}")
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    try:
        y = np.asarray(labels)
    except Exception as err:  # ragged lists and the like
        raise TypeError(f"labels must be an integer array of shape ({n},), got "
                        f"{_checks.describe(labels)} ({err})") from None
    if y.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers (class indices), got dtype {y.dtype}")
    if n is None:
        if y.ndim != 1:
            raise ValueError(f"labels must be a 1-D array of class indices, got shape {y.shape}")
        n = y.shape[0]
    if y.shape != (n,):
        raise ValueError(f"labels must have shape (n,) = ({n},), got {y.shape}")
    if n and y.min() < 0:
        raise ValueError(f"labels must be >= 0, got minimum {y.min()}")
    if n_classes is not None and n and y.max() >= n_classes:
        raise ValueError(f"labels must be in [0, n_classes) = [0, {n_classes}), got maximum "
                         f"{y.max()}")
    return y.astype(np.int64)


# =====================================================================================
# readouts
# =====================================================================================


def class_targets(labels: Any, n_classes: int) -> np.ndarray:
    """Centred one-hot (one-vs-rest) targets ``Y_ik = 1[y_i = k] - 1/K``.

    Centring removes the need for an intercept (the features are centred too); the
    predicted class ``argmax_k`` is unchanged by it. For ``K = 2`` the two columns are
    opposite, which is the usual ``±1/2`` coding.

    Parameters
    ----------
    labels : array_like of int, shape (n,)
    n_classes : int
        Number of classes, >= 2.

    Returns
    -------
    ndarray, shape (n, K), float64
    """
    K = _checks.integer(n_classes, "n_classes", minimum=2)
    y = _check_labels(labels, None, K)
    _checks.allocation((y.size, K), "n_classes", K, what="a targets matrix")
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
    validation_accuracy : float or None
        Held-out accuracy at the chosen penalty (:func:`validated_ridge_readout`; None
        otherwise).
    grid_edge : bool
        True when the best held-out accuracy is reached only at an end of the grid
        (the optimum may lie outside it); a plateau reaching into the grid is not an
        edge (at large ridge the predicted classes stop changing).
    """

    weights: np.ndarray
    kind: str
    penalty: float
    solver: str
    converged: bool = True
    gradient_norm: float = 0.0
    validation_accuracy: float | None = None
    grid_edge: bool = False

    def __post_init__(self) -> None:
        _checks.real_array(self.weights, "weights", ndim=2, dtype=None,
                           shape_hint="(d, K)")

    def decision(self, F: Any) -> np.ndarray:
        """Scores ``F @ weights``, shape (m, K), for features ``F`` of shape (m, d)."""
        F = _checks.feature_matrix(F)
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
    solver = _checks.choice(solver, "solver", ("auto", "primal", "dual"))
    if solver == "auto":
        solver = "primal" if d <= n else "dual"
    with np.errstate(over="ignore", invalid="ignore"):
        G = F.T @ F if solver == "primal" else F @ F.T
    return _checks.symmetrize(_checks.no_overflow(G, "F", F, "its Gram matrix")), solver


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


def _check_targets(Y: Any, n: int, name: str = "targets") -> np.ndarray:
    Y = _checks.real_array(Y, name, ndim=(1, 2), shape_hint=f"(n,) or (n, K) with n = {n}")
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.shape[0] != n:
        raise ValueError(f"{name} must have shape (n,) or (n, K) with n = {n}, got {Y.shape}")
    return Y


def ridge_readout(F: Any, targets: Any, ridge: float, *, solver: str = "auto") -> Readout:
    r"""Ridge regression of ``targets`` on the features, in closed form.

    .. math::

        W = \arg\min_W \|F W - Y\|_F^2 + \gamma \|W\|_F^2
          = (F^\top F + \gamma I_d)^{-1} F^\top Y = F^\top (F F^\top + \gamma I_n)^{-1} Y,

    solved through the smaller of the two systems (Cholesky). In the dual form the
    predictions on new features ``F'`` are ``F' F^T (K + gamma I)^{-1} Y``: kernel ridge
    regression with the empirical CK ``K = F F^T``.

    Parameters
    ----------
    F : array_like, shape (n, d)
        Training features, samples in rows.
    targets : array_like, shape (n, K) or (n,)
        E.g. :func:`class_targets`.
    ridge : float
        The penalty ``gamma`` (the book's ``γ``). Values ``<= 0`` are accepted only while
        the solved system stays positive definite, i.e. ``gamma > -lambda_min``, the
        smallest eigenvalue of the Gram matrix (``lambda_min = 0`` when it is rank
        deficient); otherwise ``ValueError``.
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
    F = _checks.feature_matrix(F)
    Y = _check_targets(targets, F.shape[0])
    ridge = _checks.real(ridge, "ridge")
    W, solver = _solve_ridge(F, Y, ridge, solver, "ridge_readout")
    return Readout(weights=W, kind="ridge", penalty=ridge, solver=solver)


def shift_corrected_readout(F: Any, targets: Any, ridge: float, shift: float, *,
                            solver: str = "auto") -> Readout:
    r"""The shift-corrected ridge of the practice chapter: ridge with ``gamma - Delta``.

    The compressed network's CK is, asymptotically, the original's plus
    ``Delta I_n`` with the identity shift ``Delta = (tau^c_L)^2 - tau_L^2``
    (:attr:`lossless.compress.CompressionPlan.shift`). The identity term enters kernel
    ridge regression only through the train Gram matrix, exactly like the ridge, and
    not through the test-train kernel, so solving with ``gamma - Delta`` on the
    compressed features reproduces the original ridge readout at ``gamma`` in that
    limit (infinite width, ``n, p`` large). At finite width the Gram matrix of ``d_L``
    features has rank ``<= d_L``, and the correction is only approximate.

    Parameters
    ----------
    F : array_like, shape (n, d)
        Features of the compressed network.
    targets : array_like, shape (n, K) or (n,)
    ridge : float
        The original readout's ``gamma``.
    shift : float
        ``Delta``.
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
    F = _checks.feature_matrix(F)
    Y = _check_targets(targets, F.shape[0])
    ridge = _checks.real(ridge, "ridge")
    shift = _checks.real(shift, "shift")
    context = (f"shift_corrected_readout (ridge - shift = {ridge:.6g} - {shift:.6g} "
               f"= gamma - Delta)")
    W, solver = _solve_ridge(F, Y, ridge - shift, solver, context)
    return Readout(weights=W, kind="shift-corrected ridge", penalty=ridge - shift, solver=solver)


#: Default ridge grid of :func:`validated_ridge_readout`, relative to ``mean_i ||f_i||^2``.
RIDGE_GRID: tuple[float, ...] = tuple(float(x) for x in 10.0 ** np.arange(-3.0, 2.01, 0.5))


def validated_ridge_readout(F: Any, labels: Any, n_classes: int, *, grid: Sequence[float] = RIDGE_GRID,
                            every: int = 5, refit: bool = True) -> Readout:
    """Ridge readout with ``gamma`` chosen by hold-out validation on the training set.

    Every ``every``-th training sample (``i % every == 0``; balanced over classes when
    the samples are ordered by class, as :class:`Task` stores them) is held out; the
    ridge is fitted on the others for each ``gamma = g * mean_i ||f_i||^2``, ``g`` in
    ``grid`` (relative to the feature scale, so networks with larger features are not
    penalised less), and the ``gamma`` with the best held-out accuracy (the largest
    one among ties) is refitted on all samples (or, with ``refit=False``, kept as
    fitted without the held-out samples, so that its ``validation_accuracy`` is that of
    the returned readout). One eigendecomposition serves the whole grid.

    Parameters
    ----------
    F : array_like, shape (n, d)
    labels : array_like of int, shape (n,)
    n_classes : int
        Number of classes.
    grid : sequence of float
        Relative ridges, > 0.
    every : int, default 5
        Hold out one sample in ``every`` (>= 2).
    refit : bool, default True
        Refit on all samples at the chosen penalty.

    Returns
    -------
    Readout
        ``kind = "ridge (validated)"``, ``penalty`` the chosen ``gamma``.
    """
    F = _checks.feature_matrix(F)
    n = F.shape[0]
    K = _checks.integer(n_classes, "n_classes", minimum=2)
    y = _check_labels(labels, n, K)
    Y = class_targets(y, K)
    every = _checks.integer(every, "every", minimum=2)
    if n < 2:
        raise ValueError(f"F must have at least 2 rows (one is held out), got {n}")
    rel = _checks.real_array(grid, "grid", ndim=1)
    if np.any(rel <= 0):
        raise ValueError(f"grid must be a non-empty sequence of positive numbers, got "
                         f"{_checks.describe(grid)}")
    scale = float(np.mean(np.einsum("ij,ij->i", F, F)))
    if scale <= 0:
        raise ValueError("F is all zeros: no ridge can be validated")
    lambdas = rel * scale
    val = np.arange(n) % every == 0
    Ff, Fv, Yf = F[~val], F[val], Y[~val]
    if Ff.shape[1] <= Ff.shape[0]:
        s, V = np.linalg.eigh(_checks.symmetrize(Ff.T @ Ff))
        B = V.T @ (Ff.T @ Yf)
        Pv = Fv @ V
        scores = [Pv @ (B / (s + lam)[:, None]) for lam in lambdas]
    else:
        s, U = np.linalg.eigh(_checks.symmetrize(Ff @ Ff.T))
        C = U.T @ Yf
        Pv = (Fv @ Ff.T) @ U
        scores = [Pv @ (C / (s + lam)[:, None]) for lam in lambdas]
    accs = np.array([np.mean(np.argmax(S, axis=1) == y[val]) for S in scores])
    best = int(np.flatnonzero(accs == accs.max())[-1])
    refit = _checks.flag(refit, "refit")
    Ffit, Yfit = (F, Y) if refit else (Ff, Yf)
    W, solver = _solve_ridge(Ffit, Yfit, float(lambdas[best]), "auto", "validated_ridge_readout")
    return Readout(weights=W, kind="ridge (validated)", penalty=float(lambdas[best]),
                   solver=solver, validation_accuracy=float(accs[best]),
                   grid_edge=bool(accs.size > 2 and accs[1:-1].max() < accs.max()))


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
    # one triangle of K_train is what a Cholesky reads: check the other before
    G = _checks.square_symmetric(K_train, "K_train")
    C = _checks.real_array(K_cross, "K_cross", ndim=2, shape_hint=f"(m, {G.shape[0]})")
    if C.shape[1] != G.shape[0]:
        raise ValueError(f"K_cross must have shape (m, {G.shape[0]}), got {C.shape}")
    Y = _check_targets(targets, G.shape[0])
    ridge = _checks.real(ridge, "ridge")
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


def logistic_readout(F: Any, labels: Any, n_classes: int, penalty: float, *,
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
    n_classes : int
        Number of classes, >= 2.
    penalty : float
        L2 penalty, > 0 (makes the problem strictly convex).
    max_iter : int, default 1000
    tol : float, default 1e-8
        Gradient tolerance of L-BFGS.

    Returns
    -------
    Readout
        ``kind = "logistic"``, ``converged = True`` and ``gradient_norm`` the largest
        ``|gradient|`` entry at the solution.

    Raises
    ------
    ConvergenceError
        If L-BFGS stops (iteration limit, failed line search, overflow) before the
        gradient is small; the message gives the gradient norm and what to change.
    """
    F = _checks.feature_matrix(F)
    K = _checks.integer(n_classes, "n_classes", minimum=2)
    y = _check_labels(labels, F.shape[0], K)
    penalty = _checks.positive(penalty, "penalty")
    max_iter = _checks.integer(max_iter, "max_iter", minimum=1)
    tol = _checks.tolerance(tol, "tol")
    Y1 = np.zeros((F.shape[0], K))
    Y1[np.arange(F.shape[0]), y] = 1.0
    with np.errstate(over="ignore", invalid="ignore"):
        res = scipy.optimize.minimize(_softmax_objective, np.zeros(F.shape[1] * K),
                                      args=(F, Y1, penalty, K), jac=True, method="L-BFGS-B",
                                      options={"maxiter": max_iter, "gtol": tol, "ftol": 0.0})
        loss, grad = _softmax_objective(res.x, F, Y1, penalty, K)
    gnorm = float(np.max(np.abs(grad)))
    finite = math.isfinite(loss) and math.isfinite(gnorm) and bool(np.all(np.isfinite(res.x)))
    converged = finite and bool(gnorm <= 10 * tol or res.success)
    if not converged:
        scale = float(np.mean(np.einsum("ij,ij->i", F, F)))
        raise ConvergenceError(
            f"logistic_readout did not converge: gradient norm {gnorm:.3g} (tol = {tol:.3g}) "
            f"after {res.nit} of max_iter = {max_iter} L-BFGS iterations, objective {loss:.6g} "
            f"({res.message}). Increase max_iter, or rescale F (mean squared row norm "
            f"{scale:.3g}) or increase penalty = {penalty:.3g} relative to it.")
    return Readout(weights=res.x.reshape(F.shape[1], K), kind="logistic", penalty=penalty,
                   solver="lbfgs", converged=True, gradient_norm=gnorm)
