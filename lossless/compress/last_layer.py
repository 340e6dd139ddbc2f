"""The last layer's limit: the Hermite energy of an activation and richer piecewise-constant
level families (the book's compression chapter, "The last layer")."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lossless import _checks, activations
from lossless.activations import Activation, Moments
from lossless.compress.solver import (
    CompressionError,
    _check_moments,
    _label,
    _lower,
    _phi,
    _uphi,
    _upper,
)

# =====================================================================================
# the last-layer limit: Hermite energy, and richer piecewise-constant families
# =====================================================================================


def _gauss_panels(breakpoints: Sequence[float], half_width: float = 12.0,
                  panel: float = 0.5, order: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre nodes/weights for E[f(ξ)], ξ ~ N(0, 1), split at the
    breakpoints (where f may have a kink or a jump)."""
    cuts = {-half_width, half_width}
    cuts |= {float(b) for b in breakpoints if -half_width < b < half_width}
    cuts = sorted(cuts)
    edges = []
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        m = max(1, int(math.ceil((hi - lo) / panel)))
        edges.extend(np.linspace(lo, hi, m + 1)[:-1])
    edges = np.array(edges + [cuts[-1]])
    z, wz = np.polynomial.legendre.leggauss(order)
    mid, half = 0.5 * (edges[1:] + edges[:-1]), 0.5 * (edges[1:] - edges[:-1])
    nodes = (mid[:, None] + half[:, None] * z[None, :]).ravel()
    weights = (half[:, None] * wz[None, :]).ravel() * _phi(nodes)
    return nodes, weights


def hermite_energy(activation: Activation, tau: float, order: int = 12, *,
                   breakpoints: Sequence[float] = (0.0,)) -> np.ndarray:
    r"""Hermite energies of ``σ(τξ)``: ``e_k = E[σ(τξ) He_k(ξ)]² / k!``, k = 0..order.

    ``Var σ(τξ) = Σ_{k≥1} e_k``, ``e_1 = τ² g1²``, ``e_2 = τ⁴ g2²/2``: the equivalents
    only see ``e_1, e_2`` (and h) and the total variance. Any activation matching
    ``g1², g2²`` at the scale τ has variance at least ``e_1 + e_2`` (the Hermite floor,
    eq-compress-hermite); a two-threshold step at least ``(e_1 + e_2) / 𝔢_⋆``
    (:func:`two_threshold_share_bound`).

    Parameters
    ----------
    activation : Activation
        Any activation; a :class:`~lossless.activations.Ternary` uses the closed form
        ``E[1[ξ > y] He_k(ξ)] = He_{k−1}(y) φ(y)``.
    tau : float
        Input scale τ > 0.
    order : int, default 12
        Highest order k.
    breakpoints : sequence of float, default (0,)
        Points (in units of the pre-activation t) where σ has a kink or a jump; the
        numerical quadrature (composite Gauss–Legendre on ±12 standard deviations) is
        split there. Ignored for ternary activations.

    Returns
    -------
    ndarray, shape (order + 1,)
    """
    if not isinstance(activation, Activation):
        raise TypeError(f"activation must be a lossless.activations.Activation, got "
                        f"{_checks.describe(activation)}")
    tau = _checks.positive(tau, "tau")
    # 170! is the largest factorial a float holds
    order = _checks.integer(order, "order", minimum=0, maximum=170)
    breakpoints = _checks.real_array(breakpoints, "breakpoints", ndim=1, nonempty=False)
    from numpy.polynomial import hermite_e

    fact = np.array([math.factorial(k) for k in range(order + 1)], dtype=float)
    if isinstance(activation, activations.Ternary):
        eta = -1.0 if activation.odd else 1.0
        x, y = activation.s_minus / tau, activation.s_plus / tau
        coef = np.empty(order + 1)
        coef[0] = float(_upper(y) + eta * _lower(x))
        for k in range(1, order + 1):
            e = np.zeros(k)
            e[k - 1] = 1.0
            coef[k] = (hermite_e.hermeval(y, e) * float(_phi(y))
                       - eta * hermite_e.hermeval(x, e) * float(_phi(x)))
        coef *= activation.scale
    else:
        nodes, weights = _gauss_panels([b / tau for b in breakpoints])
        values = np.asarray(activation(tau * nodes), dtype=float)
        _checks.finite_output(values, f"activation {_label(activation)!r}")
        basis = hermite_e.hermevander(nodes, order)  # (n_nodes, order+1)
        coef = (weights * values) @ basis
    return coef**2 / fact


@dataclass(frozen=True)
class LevelsSolution:
    """A ``levels``-valued piecewise-constant last layer matching ``g1, g2`` exactly
    with the smallest output variance.

    Attributes
    ----------
    levels : int
        Number of distinct output values (``log2(levels)`` bits per activation).
    activation : activations.PiecewiseConstant or Ternary
        The activation (absolute thresholds, scale τ_c).
    thresholds : ndarray, shape (levels − 1,)
        Absolute thresholds.
    values : ndarray, shape (levels,)
        Output value on each interval (centred: ``E σ(τ_c ξ) = 0``).
    variance : float
        The smallest ``Var σ(τ_c ξ)`` with ``g1, g2`` matched.
    tau_target : float
        The original ``τ_L``.
    mismatch : float
        ``max(variance − τ_L², 0)``: the identity shift left (0 means ``τ_L`` itself
        can be matched exactly with this many levels).
    """

    levels: int
    activation: Any
    thresholds: np.ndarray
    values: np.ndarray
    variance: float
    tau_target: float
    mismatch: float

    @property
    def bits(self) -> float:
        """Bits per activation output, ``log2(levels)``."""
        return math.log2(self.levels)


def _levels_min_variance(u: np.ndarray, r: np.ndarray) -> tuple[float, np.ndarray]:
    """Smallest Σ p_j c_j² with Σ p_j c_j = 0, Σ a_j c_j = r1, Σ b_j c_j = r2."""
    edges = np.concatenate([[-np.inf], np.sort(u), [np.inf]])
    p = _lower(edges[1:]) - _lower(edges[:-1])
    ph, uph = _phi(edges), _uphi(edges)
    a = ph[:-1] - ph[1:]
    b = uph[:-1] - uph[1:]
    if np.any(p <= 1e-300):
        return math.inf, np.zeros_like(p)
    M = np.vstack([p, a, b])
    G = (M / p) @ M.T
    rhs = np.array([0.0, r[0], r[1]])
    try:
        lam = np.linalg.solve(G, rhs)
    except np.linalg.LinAlgError:
        return math.inf, np.zeros_like(p)
    c = (M.T @ lam) / p
    return float(np.sum(p * c * c)), c


def last_layer_levels(target: Moments, tau_c: float, tau_target: float,
                      levels: int) -> LevelsSolution:
    r"""Richer last layer: ``levels`` output values, ``g1, g2`` matched exactly.

    For fixed standardized thresholds ``u_1 < … < u_{k−1}`` the output values that
    minimise ``Var σ(τ_c ξ)`` under the two linear constraints ``E[ξ σ] = τ_c g1``,
    ``E[(ξ²−1) σ] = τ_c² g2`` follow in closed form (a weighted least-norm problem);
    the thresholds are then optimised (deterministic starts at Gaussian quantiles).
    As ``levels`` grows the smallest variance decreases towards the Hermite bound
    ``τ_c² g1² + τ_c⁴ g2²/2``, so the identity shift of the compressed CK shrinks,
    at a cost of ``log2(levels)`` bits per activation.

    Parameters
    ----------
    target : Moments
        Original last-layer moments at τ_{L−1}.
    tau_c : float
        Compressed input scale τ^c_{L−1}.
    tau_target : float
        Original τ_L.
    levels : int
        Number of output values, >= 2.

    Returns
    -------
    LevelsSolution
    """
    from scipy.optimize import minimize

    _check_moments(target, "target")
    tau_c = _checks.positive(tau_c, "tau_c")
    tau_target = _checks.positive(tau_target, "tau_target")
    levels = _checks.integer(levels, "levels", minimum=2)
    r = np.array([tau_c * target.g1, tau_c**2 * target.g2])
    if not np.all(np.isfinite(r)):
        raise ValueError(f"target must have finite g1, g2 (and tau_c² g2 must not overflow), "
                         f"got g1 = {target.g1}, g2 = {target.g2} at tau_c = {tau_c:.4g}")
    if not np.any(r != 0):
        raise CompressionError("g1 = g2 = 0: nothing for a piecewise-constant layer to match")
    if levels == 2:
        if r[0] == 0:
            raise CompressionError("levels=2 (a single step) cannot match g1 = 0 with g2 != 0")
        u = np.array([r[1] / r[0]])
        ph = float(_phi(u[0]))
        jump = r[0] / ph
        pu = float(_upper(u[0]))
        values = np.array([-jump * pu, jump * (1 - pu)])
        variance = jump**2 * pu * (1 - pu)
    else:
        def objective(u: np.ndarray) -> float:
            value = _levels_min_variance(u, r)[0]
            return value if math.isfinite(value) else 1e30

        best = None
        quantiles = np.arange(1, levels) / levels
        for shift in (0.0, 0.25, -0.25):  # deterministic starts near Gaussian quantiles
            u0 = np.sqrt(2.0) * _erfinv_vec(2 * quantiles - 1) + shift
            res = minimize(objective, u0, method="L-BFGS-B",
                           options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 2000})
            if best is None or res.fun < best.fun:
                best = res
            if levels <= 8:  # a derivative-free polish catches the kinks of small families
                res = minimize(objective, res.x, method="Nelder-Mead",
                               options={"xatol": 1e-10, "fatol": 1e-15, "maxiter": 2000 * levels})
                if res.fun < best.fun:
                    best = res
        u = np.sort(best.x)
        variance, values = _levels_min_variance(u, r)
    thresholds = u * tau_c
    # σ(t) = Σ_k jump_k 1[t > threshold_k]: the values up to a constant (centring
    # removes it)
    act = activations.PiecewiseConstant(thresholds=list(thresholds),
                                        jumps=list(np.diff(values)))
    return LevelsSolution(levels=levels, activation=act, thresholds=thresholds,
                          values=np.asarray(values), variance=float(variance),
                          tau_target=tau_target,
                          mismatch=max(float(variance) - tau_target**2, 0.0))


def _erfinv_vec(x: np.ndarray) -> np.ndarray:
    from scipy.special import erfinv

    return erfinv(np.asarray(x, dtype=float))
