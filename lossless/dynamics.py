"""Gradient descent on the NTK: the linearised prediction and the measured training.

Full-batch gradient descent with learning rate ``lr`` on the squared loss
``L = ||f(X) - y||^2 / 2`` of a model linear in its parameters moves the residual
``r = f(X) - y`` by ``r_{t+1} = (I_n - lr K) r_t`` with ``K`` its (constant) NTK (the
book's eq-dyn-gd, eq-dyn-residual and prop-dyn-linear, chapter "Training on the NTK");
:func:`linearized_residuals` and :func:`linearized_loss_curve` compute that prediction
in the eigenbasis of ``K``. :func:`train_full_batch` trains an actual
:class:`lossless.networks.MLP` (all layers and the readout) the same way and records
its residuals, with straight-through derivatives (:func:`straight_through`) for step
activations. Samples are in rows: ``X`` has shape ``(n, p)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import torch

from lossless import _checks
from lossless.display import progress as progress_bar
from lossless.activations import check_surrogates
from lossless.networks import propagate, straight_through

if TYPE_CHECKING:  # for annotations only
    from lossless.networks import MLP

__all__ = [
    "linearized_residuals",
    "linearized_loss_curve",
    "mode_energies",
    "effective_rates",
    "straight_through",
    "network_output",
    "TrainingRun",
    "train_full_batch",
]


# ----------------------------------------------------------------------------------
# argument checks
# ----------------------------------------------------------------------------------
def _check_vector(value: Any, name: str, n: int) -> np.ndarray:
    arr = _checks.real_array(value, name, ndim=1, shape_hint=f"of shape ({n},)")
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) to match K of shape ({n}, {n}), "
                         f"got {arr.shape}")
    return arr


# ----------------------------------------------------------------------------------
# the linearised prediction
# ----------------------------------------------------------------------------------
def _decay_factors(eigvals: np.ndarray, lr: float, steps: int) -> np.ndarray:
    """``(1 - lr lambda_k)^t`` for t = 0..steps, shape (steps + 1, n)."""
    t = np.arange(steps + 1, dtype=float)[:, None]
    base = 1.0 - lr * eigvals[None, :]
    # sign-safe power (a negative base alternates; |base| ** t keeps the magnitude exact)
    return np.sign(base) ** t * np.abs(base) ** t


def linearized_residuals(K: np.ndarray, residual0: np.ndarray, lr: float,
                         steps: int) -> np.ndarray:
    r"""Residuals of gradient descent on the linearised model, ``r_t = (I - lr K)^t r_0``
    (the book's eq-dyn-residual).

    Parameters
    ----------
    K : ndarray, shape (n, n)
        The NTK on the training set, symmetric (positive semi-definite for a true NTK).
    residual0 : ndarray, shape (n,)
        Initial residual ``r_0 = f_0(X) - y``.
    lr : float
        Learning rate, ``> 0``. The iteration contracts every mode iff
        ``lr < 2 / lambda_max(K)``; larger values are allowed (the prediction then
        diverges, as the linear model does).
    steps : int
        Number of gradient steps ``T >= 0``.

    Returns
    -------
    ndarray, shape (steps + 1, n)
        Row ``t`` is ``r_t``, computed in the eigenbasis of ``K``:
        ``r_t = sum_k (1 - lr lambda_k)^t (u_k^T r_0) u_k``.
    """
    K = _checks.square_symmetric(K, "K")
    n = K.shape[0]
    r0 = _check_vector(residual0, "residual0", n)
    lr, steps = _checks.positive(lr, "lr"), _checks.integer(steps, "steps", minimum=0)
    _checks.allocation((steps + 1, n), "steps", steps, what="the decay factors")
    vals, vecs = np.linalg.eigh(K)
    coeffs = vecs.T @ r0
    return (_decay_factors(vals, lr, steps) * coeffs[None, :]) @ vecs.T


def linearized_loss_curve(K: np.ndarray, residual0: np.ndarray, lr: float,
                          steps: int) -> np.ndarray:
    r"""Training loss of gradient descent on the linearised model (the book's eq-dyn-loss).

    .. math::

        L_t = \tfrac12 \|r_t\|^2 = \tfrac12 \sum_k (1 - \mathrm{lr}\,\lambda_k)^{2t}
        (u_k^\top r_0)^2 ,

    with ``(lambda_k, u_k)`` the eigenpairs of ``K``.

    Parameters
    ----------
    K : ndarray, shape (n, n)
    residual0 : ndarray, shape (n,)
    lr : float
    steps : int
        As in :func:`linearized_residuals`.

    Returns
    -------
    ndarray, shape (steps + 1,)
        ``L_0, ..., L_T``.
    """
    K = _checks.square_symmetric(K, "K")
    n = K.shape[0]
    r0 = _check_vector(residual0, "residual0", n)
    lr, steps = _checks.positive(lr, "lr"), _checks.integer(steps, "steps", minimum=0)
    _checks.allocation((steps + 1, n), "steps", steps, what="the decay factors")
    vals, vecs = np.linalg.eigh(K)
    with np.errstate(over="ignore"):
        energy = _checks.no_overflow((vecs.T @ r0) ** 2, "residual0", r0,
                                     "its squared coefficients")
    return mode_loss_curve(vals, energy, lr, steps)


def mode_loss_curve(eigenvalues: np.ndarray, energies: np.ndarray, lr: float,
                    steps: int) -> np.ndarray:
    r"""The sum of eq-dyn-loss from the modes: ``L_t = 1/2 sum_k (1 - lr lambda_k)^{2t} c_k``.

    The step shared by :func:`linearized_loss_curve` (which computes ``lambda_k`` and
    ``c_k = (u_k^T r_0)^2`` from ``K``) and the dynamics chapter's explorer (which stores
    them). Inputs are trusted (checked by the callers).

    Returns
    -------
    ndarray, shape (steps + 1,)
        ``L_0, ..., L_T``; a learning rate beyond ``2 / lambda_max`` diverges (documented):
        ``inf`` once it overflows.
    """
    with np.errstate(over="ignore"):
        return 0.5 * (_decay_factors(eigenvalues, lr, steps) ** 2) @ energies


def mode_energies(residuals: np.ndarray, vectors: np.ndarray, groups: Sequence[Sequence[int]]
                  ) -> np.ndarray:
    """Energy of residuals in groups of eigen-directions, ``sum_{k in group} (u_k^T r_t)^2``.

    Parameters
    ----------
    residuals : ndarray, shape (T + 1, n)
        Residuals ``r_0..r_T`` (rows), measured or predicted.
    vectors : ndarray, shape (n, m)
        Orthonormal directions ``u_1..u_m`` (columns), e.g. eigenvectors of an NTK.
    groups : sequence of sequences of int
        Column indices of ``vectors`` summed together (e.g. bands of eigenvalues).

    Returns
    -------
    ndarray, shape (T + 1, len(groups))
    """
    R = _checks.real_array(residuals, "residuals", ndim=2, shape_hint="(T + 1, n)")
    U = _checks.real_array(vectors, "vectors", ndim=2, shape_hint="(n, m)")
    if U.shape[0] != R.shape[1]:
        raise ValueError(f"vectors must have {R.shape[1]} rows (one per sample, as residuals has "
                         f"columns), got shape {U.shape}")
    if isinstance(groups, (str, bytes)) or not isinstance(groups, Sequence) or not groups:
        raise TypeError(f"groups must be a non-empty sequence of index sequences, got "
                        f"{_checks.describe(groups)}")
    idx = [np.asarray(_checks.int_sequence(g, f"groups[{i}]", minimum=0))
           for i, g in enumerate(groups)]
    for i, g in enumerate(idx):
        if g.max() >= U.shape[1]:
            raise ValueError(f"groups[{i}] must index columns of vectors (< {U.shape[1]}), "
                             f"got {int(g.max())}")
    proj = (R @ U) ** 2
    return np.stack([proj[:, g].sum(axis=1) for g in idx], axis=1)


def effective_rates(energies: np.ndarray, lr: float, steps: int) -> np.ndarray:
    r"""Effective eigenvalues ``lambda_hat`` that decay each energy as much in ``steps`` steps.

    An energy decaying like one mode, ``E_t = (1 - lr lambda)^{2t} E_0``, gives back
    ``lambda``: ``lambda_hat = (1 - (E_T / E_0)^{1/(2T)}) / lr``. For a group of modes
    it is a weighted average of their eigenvalues (weights shifting to the slow ones
    as ``T`` grows), so compare measured and predicted energies with the same ``T``.
    It assumes ``lr lambda <= 1`` for the modes involved (a factor ``1 - lr lambda < 0``
    is read as its absolute value).

    Parameters
    ----------
    energies : ndarray, shape (T_total + 1,) or (T_total + 1, m)
        Energies ``E_0, E_1, ...`` (e.g. from :func:`mode_energies`), positive at 0.
    lr : float
    steps : int
        ``1 <= T <= T_total``.

    Returns
    -------
    ndarray, shape () or (m,)
    """
    E = _checks.real_array(energies, "energies", ndim=(1, 2), shape_hint="(T + 1,) or (T + 1, m)")
    lr = _checks.positive(lr, "lr")
    steps = _checks.integer(steps, "steps", minimum=1, maximum=E.shape[0] - 1)
    if np.any(E[0] <= 0):
        raise ValueError("energies must be positive at t = 0")
    ratio = np.maximum(E[steps] / E[0], 0.0)
    return (1.0 - ratio ** (1.0 / (2 * steps))) / lr


def _check_net(net: Any) -> "MLP":
    from lossless.networks import MLP

    if not isinstance(net, MLP):
        raise TypeError(f"net must be a lossless.networks.MLP, got {type(net).__name__}")
    return net


def network_output(net: "MLP", X: torch.Tensor, *,
                   surrogates: Sequence[Callable | None] | None = None) -> torch.Tensor:
    """``net(X)`` with straight-through derivatives in the layers that have a surrogate.

    The forward values equal ``net(X)`` exactly. The backward pass multiplies by
    ``sigma_l'(Z_l)`` (the activation's almost-everywhere ``derivative``), or by
    ``surrogates[l](Z_l)`` where one is given: the convention of
    :func:`lossless.kernels.empirical_ntk`, so that the gradient of this output is the
    Jacobian whose Gram matrix that function computes. For piecewise-linear and smooth
    activations this is the gradient autograd computes through ``net(X)``.

    Parameters
    ----------
    net : lossless.networks.MLP
    X : Tensor, shape (n, p)
        Samples in rows, in ``net``'s dtype.
    surrogates : list of (None | callable), length L, optional

    Returns
    -------
    Tensor, shape (n,)
    """
    net = _check_net(net)
    surr = check_surrogates(surrogates, net.depth)  # raises on a malformed list
    # unchecked for overflow: a diverging training run reports its learning rate instead
    H = propagate(net._as_input(X), net.widths, net.layers, net.hidden, net.centres,
                  surrogates=[act.derivative if s is None else s
                              for act, s in zip(net.layers, surr)])
    return H @ net.readout


# ----------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainingRun:
    """Record of full-batch gradient descent on ``L = ||f(X) - y||^2 / 2``.

    Attributes
    ----------
    residuals : ndarray, shape (steps + 1, n)
        ``r_t = f_t(X) - y`` before step ``t + 1`` (row 0 is the initialisation).
    lr : float
    surrogates : bool
        Whether straight-through derivatives were used.
    readout_only : bool
        Whether only the readout was trained.
    """

    residuals: np.ndarray
    lr: float
    surrogates: bool
    readout_only: bool = False

    @property
    def loss(self) -> np.ndarray:
        """ndarray, shape (steps + 1,): ``L_t = ||r_t||^2 / 2``."""
        return 0.5 * np.sum(self.residuals**2, axis=1)

    @property
    def residual0(self) -> np.ndarray:
        """ndarray, shape (n,): the initial residual ``r_0``."""
        return self.residuals[0].copy()

    @property
    def steps(self) -> int:
        return self.residuals.shape[0] - 1


def train_full_batch(net: "MLP", X: Any, y: Any, lr: float, steps: int, *,
                     surrogates: Sequence[Callable | None] | None = None,
                     readout_only: bool = False,
                     progress: bool = False) -> TrainingRun:
    r"""Train ``net`` by full-batch gradient descent, in place.

    ``theta <- theta - lr * grad L(theta)`` for ``L = ||f(X) - y||^2 / 2`` (a sum over
    samples, not a mean: the residual then moves by ``-lr K r`` to first order, with
    ``K`` the NTK of :func:`lossless.kernels.empirical_ntk`), for all of
    ``W_1..W_L`` and the readout ``w`` (or for ``w`` alone with ``readout_only``: then
    ``f`` is linear in the trained parameters and ``K`` is the empirical CK
    ``Sigma_L Sigma_L^T``, exactly). Deterministic: no randomness is drawn.

    Parameters
    ----------
    net : lossless.networks.MLP
        Trained in place (its parameters change).
    X : ndarray or Tensor, shape (n, p)
        Training inputs, samples in rows.
    y : ndarray or Tensor, shape (n,)
        Targets.
    lr : float
        Learning rate, ``> 0``.
    steps : int
        Number of gradient steps, ``>= 0``.
    surrogates : list of (None | callable), length L, optional
        Straight-through derivatives per layer (see :func:`network_output`); needed for
        step activations, whose true derivative is zero almost everywhere.
    readout_only : bool, default False
        Train only the readout ``w`` (random features: the hidden layers stay fixed).
    progress : bool, default False
        Show a ``tqdm`` bar over the steps.

    Returns
    -------
    TrainingRun
        The residuals at every step (and the loss curve ``.loss``).

    Raises
    ------
    ValueError
        If the loss becomes non-finite (a learning rate above ``2 / lambda_max`` makes
        gradient descent diverge); the message gives the step.
    """
    net = _check_net(net)
    Xa = _checks.real_array(X, "X", ndim=2, shape_hint=f"of shape (n, {net.p})")
    if Xa.shape[1] != net.p:
        raise ValueError(f"X must have shape (n, {net.p}), got {Xa.shape}")
    n = Xa.shape[0]
    ya = _checks.real_array(y, "y", ndim=1, shape_hint=f"of shape ({n},)")
    if ya.shape != (n,):
        raise ValueError(f"y must have shape ({n},) to match X of shape {Xa.shape}, "
                         f"got {ya.shape}")
    lr, steps = _checks.positive(lr, "lr"), _checks.integer(steps, "steps", minimum=0)
    progress = _checks.flag(progress, "progress")
    readout_only = _checks.flag(readout_only, "readout_only")
    check_surrogates(surrogates, net.depth)
    Xt = torch.from_numpy(np.array(Xa)).to(net.dtype)
    yt = torch.from_numpy(np.array(ya)).to(net.dtype)
    params = [net.readout] if readout_only else list(net.parameters())
    residuals = np.empty((steps + 1, n))
    for t in progress_bar(range(steps + 1), progress, "gradient descent"):
        r = network_output(net, Xt, surrogates=surrogates) - yt
        residuals[t] = r.detach().to(torch.float64).numpy()
        if not np.all(np.isfinite(residuals[t])):
            raise ValueError(f"the loss is not finite after {t} steps of gradient descent with "
                             f"lr = {lr:g}; lower lr (below 2 / lambda_max of the NTK)")
        if t == steps:
            break
        grads = torch.autograd.grad(0.5 * (r**2).sum(), params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p -= lr * g
    return TrainingRun(residuals=residuals, lr=lr, surrogates=surrogates is not None,
                       readout_only=readout_only)
