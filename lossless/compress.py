"""The ternary compression construction of the book's compression chapter
(eq-compress-ternary, eq-compress-equations).

Sparse ternary weights, two-threshold ternary activations σ^t_ℓ (the book's symbol; σ^c
is the centred activation) solved layer by layer so that the compressed network has the
same asymptotic CK, and the same NTK off its diagonal, as the original up to an identity
shift, as far as the activations go (:func:`compress` -> :class:`CompressionPlan`; the
first layer's weight law enters the limit through its fourth cumulant, the book's section
sec-first-layer-law); what the construction can and cannot reach
(:func:`low_order_share`, :func:`two_threshold_share_bound`, :func:`root_paths`,
:func:`ntk_diagonal_slopes`); and the packed network itself (:class:`CompressedMLP`) with
an honest memory account.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import time
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.optimize import brentq, minimize_scalar
from scipy.special import erfc

from lossless import _checks, activations, ternary_codec
from lossless.display import fmt_residual, fmt_sig, html_table, text_table
from lossless.activations import Activation, Moments, check_layers
from lossless.networks import ternary_weights

__all__ = [
    "ternary_weights",
    "CompressionError",
    "Candidate",
    "LayerSolution",
    "CompressionPlan",
    "solve_layer",
    "compress",
    "ternary_shape_moments",
    "hermite_energy",
    "LevelsSolution",
    "last_layer_levels",
    "low_order_share",
    "ShareBound",
    "two_threshold_share_bound",
    "RootPath",
    "root_paths",
    "ntk_diagonal_slopes",
    "MemoryReport",
    "memory_report",
    "pack_ternary",
    "unpack_ternary",
    "CompressedMLP",
]


class CompressionError(ValueError):
    """A layer's targets are out of reach of the two-threshold family (or the solver
    failed): the message says which equation fails and why."""


# =====================================================================================
# closed-form Gaussian moments of the two-threshold family
#
# At input scale τ with standardized thresholds x = s_-/τ < y = s_+/τ and a = 𝔟/τ, the
# compressed activation σ^t(t) = 𝔟 (1[t > s_+] + η 1[t < s_-]) (the book's
# eq-compress-ternary; 𝔟 is ``scale``) has (eq-equiv-moments, Stein for steps)
#     g1 = a c1,   g2 τ = a c2,   h = a² cH,   v = 𝔟² var,   m = 𝔟 mean,
# where c1, c2, cH, var, mean depend on (x, y, η) only: see `ternary_shape_moments`.
# The solver therefore works in the dimensionless targets
#     T1 = g1²,  T2 = g2² τ_c²,  TH = h      (all three scale like a²).
# =====================================================================================

_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)
_SPAN = 40.0  # bracket width on an unbounded side: the Gaussian density is 0 beyond
#: Largest |threshold| / τ considered: beyond 10 standard deviations a threshold is
#: never crossed in practice (P < 1e-23) and the closed forms lose all relative accuracy.
MAX_STANDARDIZED_THRESHOLD = 10.0


def _phi(u: np.ndarray) -> np.ndarray:
    u = np.asarray(u, dtype=float)
    with np.errstate(over="ignore", under="ignore"):
        return np.exp(-0.5 * u * u) / _SQRT2PI


def _uphi(u: np.ndarray) -> np.ndarray:
    u = np.asarray(u, dtype=float)
    with np.errstate(invalid="ignore", over="ignore", under="ignore"):
        out = u * _phi(u)
    return np.where(np.isfinite(u), out, 0.0)


def _upper(u: np.ndarray) -> np.ndarray:
    return 0.5 * erfc(np.asarray(u, dtype=float) / _SQRT2)


def _lower(u: np.ndarray) -> np.ndarray:
    return 0.5 * erfc(-np.asarray(u, dtype=float) / _SQRT2)


def ternary_shape_moments(x: Any, y: Any, odd: bool) -> dict[str, np.ndarray]:
    r"""Dimensionless Gaussian moments of the unit two-threshold step.

    For ``s(ξ) = 1[ξ > y] + η 1[ξ < x]`` with ``η = -1`` (``odd``) or ``+1``, and
    ``ξ ~ N(0, 1)``:

    - ``mean = E[s] = Q(y) + η Φ(x)``
    - ``c1 = E[ξ s] = φ(y) − η φ(x)``
    - ``c2 = E[(ξ²−1) s] = y φ(y) − η x φ(x)``
    - ``cH = E[(ξ²−1)(s − mean)²] = (y φ(y) − x φ(x)) − 2 mean c2``
    - ``var = Var s = Q(y) + Φ(x) − mean²``

    so that ``σ^t(t) = 𝔟 s(t/τ)`` (𝔟 the ``scale``) has ``g1 = (𝔟/τ) c1``,
    ``g2 = (𝔟/τ²) c2``, ``h = (𝔟/τ)² cH``, ``v = 𝔟² var``, ``m = 𝔟 mean`` at scale τ.

    Parameters
    ----------
    x, y : float or ndarray (broadcastable)
        Standardized thresholds ``s_-/τ`` and ``s_+/τ`` (``x = -inf`` or ``y = +inf``
        allowed: a single step).
    odd : bool
        Sign pattern: values ``{-1, 0, 1}`` (True) or ``{0, 1}`` (False).

    Returns
    -------
    dict of ndarray
        Keys ``c1, c2, cH, var, mean``.

    Raises
    ------
    TypeError
        ``x`` or ``y`` not real numbers/arrays, ``odd`` not a bool.
    ValueError
        NaN in ``x`` or ``y``, or shapes that do not broadcast.
    """
    x = _checks.real_array(x, "x", finite=False, nonempty=False)
    y = _checks.real_array(y, "y", finite=False, nonempty=False)
    for arr, name in ((x, "x"), (y, "y")):
        if np.isnan(arr).any():
            raise ValueError(f"{name} must not contain NaN (±inf is allowed: a single step), "
                             f"got {int(np.isnan(arr).sum())} NaN entries")
    try:
        np.broadcast_shapes(x.shape, y.shape)
    except ValueError:
        raise ValueError(f"x and y must have broadcastable shapes, got {x.shape} and "
                         f"{y.shape}") from None
    return _shape_moments(x, y, _checks.flag(odd, "odd"))


def _shape_moments(x: Any, y: Any, odd: bool) -> dict[str, np.ndarray]:
    """:func:`ternary_shape_moments` without argument checks (the solver's inner loop)."""
    eta = -1.0 if odd else 1.0
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    px, py = _phi(x), _phi(y)
    ux, uy = _uphi(x), _uphi(y)
    p_hi, p_lo = _upper(y), _lower(x)
    # middle mass without cancellation in either tail
    p_mid = np.where(y <= 0.0, _lower(y) - p_lo,
                     np.where(x >= 0.0, _upper(x) - p_hi, 1.0 - p_hi - p_lo))
    mean = p_hi + eta * p_lo
    c2 = uy - eta * ux
    # variance of the three-point law (values eta, 0, 1), as a sum of positive terms
    var = p_hi * p_mid + p_lo * p_mid + (1.0 - eta) ** 2 * p_hi * p_lo
    return {
        "c1": py - eta * px,
        "c2": c2,
        "cH": (uy - ux) - 2.0 * mean * c2,
        "var": var,
        "mean": mean,
    }


def _shape_jacobian(x: float, y: float, eta: float) -> dict[str, tuple[float, float]]:
    """(d/dx, d/dy) of c1, c2, cH, var of :func:`ternary_shape_moments` (finite x, y)."""
    px, py = float(_phi(x)), float(_phi(y))
    mean = float(_upper(y) + eta * _lower(x))
    c2 = y * py - eta * x * px
    dc1 = (eta * x * px, -y * py)
    dc2 = (-eta * (1.0 - x * x) * px, (1.0 - y * y) * py)
    dmean = (eta * px, -py)
    dd2 = (-(1.0 - x * x) * px, (1.0 - y * y) * py)
    dprob = (px, -py)
    return {
        "c1": dc1,
        "c2": dc2,
        "cH": tuple(dd2[k] - 2.0 * (dmean[k] * c2 + mean * dc2[k]) for k in range(2)),
        "var": tuple(dprob[k] - 2.0 * mean * dmean[k] for k in range(2)),
    }


# -------------------------------------------------------------------------------------
# the curve on which g1² : g2² is matched (the book's compression chapter, step 1
# "direction" after eq-compress-equations; its symbols ω, ω₀ are used here, the code
# keeps the names _Psi / psi / lam for them)
#
# With (ca, sa) the unit vector ∝ (√T1, ±√T2) (ca ≥ 0), the direction equation
# c2 ca − c1 sa = 0 reads ω(y) = η ω(x) with ω(u) = φ(u) (u ca − sa) (the book's
# ω(u) = φ(u)(u |g1| ∓ τ|g2|), divided by √(T1 + T2)), where
# x = s̄₋, y = s̄₊ are the thresholds in units of τ^c. For ca > 0, ω has
# a minimum at u1 < u0 = sa/ca and a maximum at u2 > u0 (u1 u2 = −1), with monotone
# pieces A = (−∞, u1) ↓, B = (u1, u0) ↑ (values in (ω_min, 0)) and C = (u0, u2) ↑,
# D = (u2, ∞) ↓ (values in (0, ω_max)). Every solution with x < y lies on one of the
# branches, parametrized by the level ω₀ = |ω| (``lam`` in the code):
#   even (η = +1): (x, y) ∈ A × B at level −ω₀, or C × D at level +ω₀;
#   odd  (η = −1): x ∈ A or B at level −ω₀ and y ∈ C or D at level +ω₀ (four branches).
# For ca = 0 (g1 = 0) only the even pattern works, with x = −y.
# -------------------------------------------------------------------------------------


class _Psi:
    """The book's ω(u), normalised: φ(u)(u ca − sa) with (ca, sa) the unit vector
    ∝ (|g1|, ±τ|g2|), and its monotone pieces (``psi_min``, ``psi_max`` are ω's
    extreme values)."""

    def __init__(self, ca: float, sa: float) -> None:
        self.ca, self.sa = float(ca), float(sa)
        if self.ca > 0.0:
            root = math.hypot(self.sa, 2.0 * self.ca)
            if self.sa >= 0.0:
                u2 = (self.sa + root) / (2.0 * self.ca)
                u1 = -1.0 / u2
            else:
                u1 = (self.sa - root) / (2.0 * self.ca)
                u2 = -1.0 / u1
            self.u0 = self.sa / self.ca
            self.u1, self.u2 = u1, u2
            self.psi_min = self.scalar(u1)
            self.psi_max = self.scalar(u2)
            # piece -> (lo, hi, increasing); unbounded sides cut at _SPAN
            self.pieces = {
                "A": (u1 - _SPAN, u1, False),
                "B": (u1, min(self.u0, u1 + _SPAN), True),
                "C": (max(self.u0, u2 - _SPAN), u2, True),
                "D": (u2, u2 + _SPAN, False),
            }

    def scalar(self, u: float) -> float:
        return math.exp(-0.5 * u * u) / _SQRT2PI * (u * self.ca - self.sa)

    def derivative(self, u: float) -> float:
        return math.exp(-0.5 * u * u) / _SQRT2PI * (self.ca - u * (u * self.ca - self.sa))

    def invert(self, piece: str, level: np.ndarray) -> np.ndarray:
        """Vectorized bisection for ω(u) = level on a monotone piece."""
        lo0, hi0, increasing = self.pieces[piece]
        level = np.asarray(level, dtype=float)
        lo = np.full(level.shape, lo0)
        hi = np.full(level.shape, hi0)
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            val = _phi(mid) * (mid * self.ca - self.sa)
            below = (val < level) if increasing else (val > level)
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        return 0.5 * (lo + hi)

    def invert_scalar(self, piece: str, level: float) -> float:
        lo, hi, increasing = self.pieces[piece]
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if mid == lo or mid == hi:
                break
            val = self.scalar(mid)
            if (val < level) == increasing:
                lo = mid
            else:
                hi = mid
        return 0.5 * (lo + hi)


# A fixed grid of the branch parameter w = ω₀/Λ ∈ (0, 1): geometric towards 0 (a
# threshold runs off to infinity like sqrt(2 log 1/w)) and towards 1 (turning point).
_W_GRID = np.unique(np.concatenate([
    np.geomspace(1e-40, 1e-3, 160),
    np.linspace(1e-3, 1.0 - 1e-3, 240),
    1.0 - np.geomspace(1e-3, 1e-13, 100),
]))
# For the g1 = 0 branch the parameter is the threshold y itself (x = −y).
_Y_GRID = np.concatenate([np.geomspace(1e-8, 1e-2, 40), np.linspace(1e-2, 12.0, 400)[1:]])


@dataclass(frozen=True)
class _Branch:
    """One branch of the direction curve: parameter w -> (x, y)."""

    psi: _Psi | None
    odd: bool
    x_piece: str
    y_piece: str
    x_sign: float  # ω(x) = x_sign · ω₀
    y_sign: float
    span: float  # Λ: levels ω₀ = w Λ
    grid: np.ndarray

    @property
    def label(self) -> str:
        if self.psi is None:
            return "even, x = -y"
        return f"{'odd' if self.odd else 'even'} {self.x_piece}{self.y_piece}"

    def points(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w = np.asarray(w, dtype=float)
        if self.psi is None:
            return -w, w
        lam = w * self.span
        return (self.psi.invert(self.x_piece, self.x_sign * lam),
                self.psi.invert(self.y_piece, self.y_sign * lam))

    def point(self, w: float) -> tuple[float, float]:
        if self.psi is None:
            return -float(w), float(w)
        lam = float(w) * self.span
        return (self.psi.invert_scalar(self.x_piece, self.x_sign * lam),
                self.psi.invert_scalar(self.y_piece, self.y_sign * lam))


def _branches(ca: float, sa: float, odd: bool) -> list[_Branch]:
    if ca <= 0.0:
        if odd:
            return []  # c1 = φ(y) + φ(x) > 0: the odd pattern cannot have g1 = 0
        return [_Branch(None, False, "", "", 0.0, 0.0, 1.0, _Y_GRID)]
    psi = _Psi(ca, sa)
    tiny = 1e-300
    out = []
    if odd:
        span = min(psi.psi_max, -psi.psi_min)
        if span > tiny:
            for xp in "AB":
                for yp in "CD":
                    out.append(_Branch(psi, True, xp, yp, -1.0, 1.0, span, _W_GRID))
    else:
        if -psi.psi_min > tiny:
            out.append(_Branch(psi, False, "A", "B", -1.0, -1.0, -psi.psi_min, _W_GRID))
        if psi.psi_max > tiny:
            out.append(_Branch(psi, False, "C", "D", 1.0, 1.0, psi.psi_max, _W_GRID))
    return out


def _directions(T1: float, T2: float) -> list[tuple[float, float]]:
    """Unit vectors (ca, sa) ∝ (√T1, ±√T2): the two sign choices of g2/g1."""
    norm = math.sqrt(T1 + T2)
    ca, sa = math.sqrt(T1) / norm, math.sqrt(T2) / norm
    if sa == 0.0 or ca == 0.0:
        return [(ca, sa)]
    return [(ca, sa), (ca, -sa)]


# -------------------------------------------------------------------------------------
# candidate solutions and their quality
# -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """One solution of the moment equations for one layer.

    Attributes
    ----------
    odd : bool
        Sign pattern (values ``{-scale, 0, scale}`` if True, ``{0, scale}`` otherwise).
    x, y : float
        Standardized thresholds ``s_-/τ_c``, ``s_+/τ_c``.
    scale : float
        The output scale 𝔟 of eq-compress-ternary.
    variance : float
        Output variance ``v = Var σ(τ_c ξ)`` (the compressed ``τ_ℓ²``).
    residual : float
        Largest relative residual of the matched equations.
    branch : str
        Which branch of the direction curve it lies on (diagnostic).
    """

    odd: bool
    x: float
    y: float
    scale: float
    variance: float
    residual: float
    branch: str


def _relative(achieved: float, target: float, scale: float) -> float:
    den = abs(target) if abs(target) > 1e-12 * scale else scale
    return abs(achieved - target) / den


class _Targets:
    """Dimensionless targets of one layer at the compressed input scale τ_c."""

    def __init__(self, g1sq: float, g2sq: float, h: float, tau_c: float) -> None:
        self.T1 = float(g1sq)
        self.T2 = float(g2sq) * tau_c**2
        self.TH = float(h)
        self.tau_c = float(tau_c)
        self.S = self.T1 + self.T2
        self.kappa = self.TH / self.S if self.S > 0 else math.nan

    def evaluate(self, x: float, y: float, odd: bool) -> dict[str, float] | None:
        """Scale 𝔟 and achieved dimensionless moments at thresholds (x, y) (None at a
        degenerate point where g1 = g2 = 0)."""
        mom = _shape_moments(x, y, odd)
        c1, c2, cH = float(mom["c1"]), float(mom["c2"]), float(mom["cH"])
        N = c1 * c1 + c2 * c2
        if not N > 1e-300:
            return None
        a2 = self.S / N
        return {
            "scale": math.sqrt(a2) * self.tau_c,
            "A1": a2 * c1 * c1,
            "A2": a2 * c2 * c2,
            "AH": a2 * cH,
            "g1": math.sqrt(a2) * c1,
            "g2": math.sqrt(a2) * c2 / self.tau_c,
            "variance": a2 * self.tau_c**2 * float(mom["var"]),
            "mean": math.sqrt(a2) * self.tau_c * float(mom["mean"]),
        }

    def residuals(self, ev: dict[str, float], match_h: bool) -> dict[str, float]:
        out = {
            "g1^2": _relative(ev["A1"], self.T1, self.S),
            "g2^2": _relative(ev["A2"], self.T2, self.S),
        }
        if match_h:
            out["h"] = _relative(ev["AH"], self.TH, self.S)
        return out


def _direction_and_h(x: float, y: float, odd: bool, ca: float, sa: float,
                     kappa: float) -> tuple[np.ndarray, np.ndarray]:
    """F = (c2 ca − c1 sa, cH/N − κ) and its Jacobian in (x, y)."""
    eta = -1.0 if odd else 1.0
    mom = _shape_moments(x, y, odd)
    c1, c2, cH = float(mom["c1"]), float(mom["c2"]), float(mom["cH"])
    N = c1 * c1 + c2 * c2
    if not (N > 0.0 and max(abs(x), abs(y)) <= 2.0 * MAX_STANDARDIZED_THRESHOLD):
        # degenerate point (both thresholds far in one tail)
        return np.full(2, np.nan), np.full((2, 2), np.nan)
    jac = _shape_jacobian(x, y, eta)
    F = np.array([c2 * ca - c1 * sa, cH / N - kappa])
    J = np.empty((2, 2))
    with np.errstate(all="ignore"):
        for k in range(2):
            dN = 2.0 * (c1 * jac["c1"][k] + c2 * jac["c2"][k])
            J[0, k] = jac["c2"][k] * ca - jac["c1"][k] * sa
            J[1, k] = (jac["cH"][k] * N - cH * dN) / (N * N)
    return F, J


def _polish(x: float, y: float, odd: bool, ca: float, sa: float, kappa: float,
            symmetric: bool) -> tuple[float, float]:
    """A few Newton steps on the direction and h equations (analytic Jacobian)."""
    if symmetric:  # x = −y: one unknown, the direction equation holds exactly
        for _ in range(6):
            F, J = _direction_and_h(-y, y, odd, ca, sa, kappa)
            d = J[1, 1] - J[1, 0]
            if not (math.isfinite(d) and d != 0.0 and math.isfinite(F[1])):
                break
            y_new = y - F[1] / d
            if not 0.0 < y_new < 2.0 * MAX_STANDARDIZED_THRESHOLD:
                break
            F_new = _direction_and_h(-y_new, y_new, odd, ca, sa, kappa)[0][1]
            if not abs(F_new) < abs(F[1]):
                break
            y = y_new
        return -y, y
    for _ in range(6):
        F, J = _direction_and_h(x, y, odd, ca, sa, kappa)
        if not (np.all(np.isfinite(F)) and np.all(np.isfinite(J))):
            break
        try:
            step = np.linalg.solve(J, F)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)):
            break
        xn, yn = x - step[0], y - step[1]
        if not (xn < yn) or max(abs(xn), abs(yn)) > 2.0 * MAX_STANDARDIZED_THRESHOLD:
            break
        Fn, _ = _direction_and_h(xn, yn, odd, ca, sa, kappa)
        if not np.max(np.abs(Fn)) < np.max(np.abs(F)):
            break
        x, y = xn, yn
    return x, y


def _scan_branch(branch: _Branch, targets: _Targets, match_h: bool,
                 tau_target2: float | None) -> tuple[list[tuple[float, float]], np.ndarray]:
    """Roots on one branch (hidden layer), or the best point (last layer).

    Returns the list of (x, y) found and the values of the scanned quantity (for the
    reachable-range diagnostics).
    """
    grid = branch.grid
    xs, ys = branch.points(grid)
    mom = _shape_moments(xs, ys, branch.odd)
    N = mom["c1"] ** 2 + mom["c2"] ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        if match_h:
            values = mom["cH"] / N - targets.kappa
        else:
            values = targets.S * targets.tau_c**2 * mom["var"] / N - tau_target2
    ok = (np.isfinite(values) & (xs < ys) & (np.abs(xs) <= MAX_STANDARDIZED_THRESHOLD)
          & (np.abs(ys) <= MAX_STANDARDIZED_THRESHOLD))
    found: list[tuple[float, float]] = []

    def f(w: float) -> float:
        x, y = branch.point(w)
        m = _shape_moments(x, y, branch.odd)
        n = float(m["c1"] ** 2 + m["c2"] ** 2)
        if not n > 0.0:
            return math.inf
        if match_h:
            return float(m["cH"]) / n - targets.kappa
        return targets.S * targets.tau_c**2 * float(m["var"]) / n - tau_target2

    sign_change = ok[:-1] & ok[1:] & (np.sign(values[:-1]) * np.sign(values[1:]) <= 0)
    for i in np.flatnonzero(sign_change):
        lo, hi = grid[i], grid[i + 1]
        f_lo, f_hi = f(lo), f(hi)  # the scalar path may round differently
        if f_lo == 0.0 or f_hi == 0.0 or np.sign(f_lo) == np.sign(f_hi):
            w = lo if abs(f_lo) <= abs(f_hi) else hi  # a touching zero: keep the closer end
        else:
            w = brentq(f, lo, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=200)
        found.append(branch.point(w))
    if match_h and np.any(ok):
        # a root at the end of a branch (e.g. a single step, one threshold at infinity)
        # shows no sign change: offer the closest grid point if it is an end of the
        # valid range; the residual test decides
        valid = np.flatnonzero(ok)
        i = int(valid[np.argmin(np.abs(values[valid]))])
        if i in (valid[0], valid[-1]):
            found.append(branch.point(grid[i]))
    if not match_h and not found and np.any(ok):
        # no exact match of τ_L²: the point of the branch closest to it (v > τ_L² on
        # the whole branch, so this is the minimum of v), refined between neighbours
        absval = np.where(ok, np.abs(values), np.inf)
        i = int(np.argmin(absval))
        w = grid[i]
        if 0 < i < len(grid) - 1 and np.isfinite(absval[i - 1]) and np.isfinite(absval[i + 1]):
            res = minimize_scalar(lambda t: abs(f(t)), bounds=(grid[i - 1], grid[i + 1]),
                                  method="bounded",
                                  options={"xatol": 1e-10 * grid[i] + 1e-300})
            if abs(f(res.x)) <= absval[i]:
                w = res.x
        found.append(branch.point(w))
    return found, np.where(ok, values, np.nan)


def _polish_direction(x: float, y: float, odd: bool, ca: float, sa: float) -> tuple[float, float]:
    """Newton steps on the direction equation in y alone (x fixed)."""
    if ca <= 0.0:
        return x, y
    psi = _Psi(ca, sa)
    eta = -1.0 if odd else 1.0
    for _ in range(4):
        F = psi.scalar(y) - eta * psi.scalar(x)
        d = psi.derivative(y)
        if d == 0.0 or F == 0.0:
            break
        yn = y - F / d
        if not (yn > x) or abs(psi.scalar(yn) - eta * psi.scalar(x)) >= abs(F):
            break
        y = yn
    return x, y


def _sign_mismatch(ev: dict[str, float], g1: float, g2: float) -> int:
    """How many of (g1, g2) have the opposite sign to the original's (ties: 0)."""
    return int(ev["g1"] * g1 < 0) + int(ev["g2"] * g2 < 0)


@dataclass(frozen=True)
class LayerSolution:
    """The solved two-threshold activation of one layer, with its diagnostics.

    Attributes
    ----------
    index : int
        Layer ℓ (1-based).
    original : Activation
        σ_ℓ of the original network.
    ternary : activations.Ternary
        The compressed activation σ^t_ℓ (absolute thresholds ``s_minus < s_plus``,
        ``scale`` 𝔟 and ``odd``).
    tau_in : float or None
        Original input scale τ_{ℓ−1} (where the targets are evaluated); None when
        :func:`solve_layer` was not told.
    tau_in_compressed : float
        Compressed input scale τ^c_{ℓ−1} (where the equations are solved).
    target : Moments
        ``σ_ℓ.moments(τ_{ℓ−1})``.
    achieved : dict
        ``g1, g2, h, m, v`` of the ternary activation at τ^c_{ℓ−1} (closed form).
    residuals : dict
        Relative residual of each matched equation: keys ``"g1^2"``, ``"g2^2"`` and,
        for hidden layers, ``"h"`` (relative to the target, or to ``g1² + τ_c² g2²``
        when the target vanishes).
    matched : tuple of str
        Equations imposed: ``("g1^2", "g2^2", "h")`` or ``("g1^2", "g2^2", "tau^2")``
        (last layer: τ_L² as close as possible).
    candidates : tuple of Candidate
        Every root found (both patterns, both signs of g2/g1), best first.
    """

    index: int
    original: Activation
    ternary: Any
    tau_in: float
    tau_in_compressed: float
    target: Moments
    achieved: dict
    residuals: dict
    matched: tuple
    candidates: tuple

    @property
    def max_residual(self) -> float:
        return max(self.residuals.values())

    @property
    def variance(self) -> float:
        """Output variance of the compressed layer, ``(τ^c_ℓ)²``."""
        return float(self.achieved["v"])


def solve_layer(target: Moments, tau_c: float, *, match_h: bool = True,
                tau_target: float | None = None, index: int = 1,
                original: Activation | None = None, tau_in: float | None = None,
                tol: float = 1e-10) -> LayerSolution:
    r"""Two-threshold activation σ^t_ℓ matching one layer's moments at the scale ``tau_c``.

    Solves, for both sign patterns (odd ``{-scale, 0, scale}``, even ``{0, scale}``)
    and both signs of ``g2/g1``,

    - ``g1²(σ, τ_c) = g1²``, ``g2²(σ, τ_c) = g2²``, ``h(σ, τ_c) = h`` (``match_h``), or
    - the first two, with ``Var σ(τ_c ξ)`` as close as possible to ``tau_target²``
      (``match_h=False``, the last layer),

    by reducing the direction equation ``g1 : g2`` to one-parameter branches (closed
    form, see the module comments), scanning each branch on a fixed grid, bracketing
    with ``brentq`` and polishing with Newton steps (analytic Jacobian). The scale
    𝔟 then follows in closed form. Among the feasible roots, the one with the
    smallest output variance is kept (ties: the signs of the original ``g1, g2``);
    :func:`compress` makes this choice layer by layer (greedy), and
    :func:`root_paths` enumerates the alternatives.

    Only ``g1², g2²`` and ``h²`` enter the coefficients α, β (``h`` through
    ``α_{ℓ,4}``, which appears squared in ``α_{ℓ+1,2}``), so a root with ``−h`` would
    serve as well; this function imposes ``h`` as given (pass a target with ``h``
    negated to solve for the other sign).

    Parameters
    ----------
    target : Moments
        Original moments ``σ_ℓ.moments(τ_{ℓ−1})``.
    tau_c : float
        The compressed network's input scale τ^c_{ℓ−1} > 0.
    match_h : bool, default True
        Hidden layer (three equations) or last layer (two, plus closest τ).
    tau_target : float, optional
        Original τ_ℓ (required when ``match_h=False``).
    index, original, tau_in : optional
        Layer number, original activation and original input scale (for the record
        and the error messages).
    tol : float, default 1e-10
        Largest relative residual accepted.

    Returns
    -------
    LayerSolution

    Raises
    ------
    CompressionError
        If no root has a residual below ``tol``: the message says which equation
        cannot be met and the range the family reaches.
    """
    _check_moments(target, "target")
    tau_c = _checks.positive(tau_c, "tau_c")  # a Python float: np.float32 is promoted
    match_h = _checks.flag(match_h, "match_h")
    if tau_target is not None or not match_h:
        if tau_target is None:
            raise ValueError("tau_target must be a finite number > 0 for the last layer "
                             "(match_h=False), got None")
        tau_target = _checks.positive(tau_target, "tau_target")
    index = _checks.integer(index, "index", minimum=1)
    if original is not None and not isinstance(original, Activation):
        raise TypeError(f"original must be an Activation or None, got {_checks.describe(original)}")
    if tau_in is not None:
        tau_in = _checks.positive(tau_in, "tau_in")
    tol = _check_tol(tol)
    g1, g2, h = float(target.g1), float(target.g2), float(target.h)
    name = f"layer {index}" + (f" ({_label(original)})" if original is not None else "")
    if not all(math.isfinite(v) for v in (g1, g2, h)):
        raise ValueError(f"target moments must be finite, got g1={g1}, g2={g2}, h={h}"
                         + (f" ({name}: the activation returned non-finite moments)"
                            if original is not None else ""))
    try:
        tg = _Targets(g1 * g1, g2 * g2, h, tau_c)
        finite = all(math.isfinite(v) for v in (tg.T1, tg.T2, tg.S, tau_c**2))
    except OverflowError:  # Python floats raise on ** overflow
        finite = False
        tg = _Targets(g1 * g1, 0.0, h, 1.0)  # only for the message below
        tg.T2 = math.inf
    if not finite:
        raise ValueError(
            f"{name}: target and tau_c overflow the solver: g1² = {g1 * g1:.4g}, "
            f"g2² tau_c² = {tg.T2:.4g} (tau_c = {tau_c:.4g}); the dimensionless targets must "
            "be finite")
    if tg.S <= 1e-300:
        raise CompressionError(
            f"{name}: g1 = g2 = 0 at scale {tau_in if tau_in is not None else tau_c:.4g}; "
            "a two-threshold step always has (g1, g2) != (0, 0) (for the odd pattern "
            "g1 > 0, for the even one g1 = 0 forces x = -y and then g2 != 0), so the "
            "equations for g1² and g2² cannot both hold")
    tau_target2 = None if match_h else float(tau_target) ** 2

    raw: list[tuple[float, float, bool, str]] = []
    ranges: dict[str, list[float]] = {"odd": [], "even": []}
    for ca, sa in _directions(tg.T1, tg.T2):
        for odd in (True, False):
            for branch in _branches(ca, sa, odd):
                found, values = _scan_branch(branch, tg, match_h, tau_target2)
                finite = values[np.isfinite(values)]
                if finite.size:
                    ranges["odd" if odd else "even"] += [float(finite.min()), float(finite.max())]
                for x, y in found:
                    if match_h:
                        x, y = _polish(x, y, odd, ca, sa, tg.kappa, symmetric=branch.psi is None)
                    else:
                        x, y = _polish_direction(x, y, odd, ca, sa)
                    raw.append((float(x), float(y), odd, branch.label))

    candidates = []
    for x, y, odd, label in raw:
        if not (x < y) or max(abs(x), abs(y)) > MAX_STANDARDIZED_THRESHOLD:
            continue
        ev = tg.evaluate(x, y, odd)
        if ev is None or not all(math.isfinite(v) for v in ev.values()):
            continue
        res = tg.residuals(ev, match_h)
        candidates.append((Candidate(odd, x, y, ev["scale"], ev["variance"], max(res.values()),
                                     label), ev, res))
    feasible = [c for c in candidates if c[0].residual <= tol and math.isfinite(c[0].residual)]

    if not feasible:
        raise CompressionError(_infeasible_message(name, tg, match_h, ranges, candidates))

    # the same root reached from two brackets: keep the most accurate copy
    feasible.sort(key=lambda item: item[0].residual)
    unique_items: list = []
    for item in feasible:
        c = item[0]
        if not any(c.odd == u[0].odd and abs(c.x - u[0].x) < 1e-7 and abs(c.y - u[0].y) < 1e-7
                   for u in unique_items):
            unique_items.append(item)

    def primary(item) -> float:
        cand = item[0]
        return cand.variance if match_h else abs(cand.variance - tau_target2)

    best_primary = min(primary(item) for item in unique_items)
    tol_primary = 1e-9 * max(abs(best_primary), 1e-300)
    # ties in the primary criterion (mirror images) go to the signs of the original g
    # and then to the more accurate root
    ordered = sorted(unique_items, key=lambda item: (
        primary(item) > best_primary + tol_primary, _sign_mismatch(item[1], g1, g2),
        item[0].residual, primary(item), max(abs(item[0].x), abs(item[0].y))))
    best, ev, res = ordered[0]
    unique = [item[0] for item in ordered[:1]] + sorted(
        (item[0] for item in ordered[1:]), key=lambda c: (c.variance, c.residual))
    ternary = activations.Ternary(best.x * tau_c, best.y * tau_c, best.scale, best.odd)
    achieved = {"g1": ev["g1"], "g2": ev["g2"], "h": ev["AH"], "m": ev["mean"],
                "v": ev["variance"]}
    matched = ("g1^2", "g2^2", "h") if match_h else ("g1^2", "g2^2", "tau^2")
    return LayerSolution(index=index, original=original, ternary=ternary,
                         tau_in=tau_in,
                         tau_in_compressed=float(tau_c), target=target, achieved=achieved,
                         residuals=res, matched=matched, candidates=tuple(unique))


def _label(act: Any) -> str:
    return str(getattr(act, "name", type(act).__name__))


def _check_moments(target: Any, name: str = "target") -> Moments:
    """A :class:`~lossless.activations.Moments` (``act.moments(tau)``), else TypeError."""
    if not isinstance(target, Moments):
        raise TypeError(f"{name} must be a lossless.activations.Moments (e.g. "
                        f"activation.moments(tau)), got {_checks.describe(target)}")
    return target


def _check_tol(tol: Any) -> float:
    """A relative residual tolerance in (0, 1): a residual of 1 matches nothing."""
    return _checks.real(tol, "tol", low=0.0, high=1.0, low_open=True, high_open=True)


def _infeasible_message(name: str, tg: _Targets, match_h: bool, ranges: dict,
                        candidates: list) -> str:
    best = min((c[0].residual for c in candidates), default=math.inf)
    if not match_h:
        return (f"{name}: no two-threshold activation matches g1² = {tg.T1:.4g} and "
                f"g2² τ_c² = {tg.T2:.4g} (best relative residual {best:.3g})")
    parts = []
    for pattern, vals in ranges.items():
        if vals:
            lo, hi = min(vals) + tg.kappa, max(vals) + tg.kappa
            parts.append(f"[{lo:.4g}, {hi:.4g}] ({pattern} pattern)")
        else:
            reason = ("g1 = 0 forces the even pattern" if pattern == "odd" and tg.T1 == 0
                      else "no branch")
            parts.append(f"nothing ({pattern} pattern: {reason})")
    return (
        f"{name}: equation h fails. On the curve where g1² : g2² τ_c² = "
        f"{tg.T1:.4g} : {tg.T2:.4g} is matched, two-threshold activations reach "
        f"h / (g1² + τ_c² g2²) in {' and '.join(parts)}, but the target is "
        f"{tg.kappa:.4g} (h = {tg.TH:.4g})"
        + (f"; best relative residual {best:.3g}" if math.isfinite(best) else "")
        + ". The family cannot produce this ratio of h to the linear and quadratic energies.")


# =====================================================================================
# the plan for a whole network
# =====================================================================================


_LAST_LAYER_MODES = ("closest_tau", "match_h")


@dataclass(frozen=True)
class CompressionPlan:
    """The compressed network's activations and how well they match (eq-compress-equations).

    Attributes
    ----------
    original_layers : list of Activation
        σ_1..σ_L of the original network.
    layers : list of activations.Ternary
        The compressed activations σ^t_1..σ^t_L (thresholds and scale in absolute units
        of the pre-activation, whose scale is τ^c_{ℓ−1}).
    tau0 : float
        Input scale τ_0 (shared by both networks).
    solutions : tuple of LayerSolution
        Per-layer details (targets, achieved moments, all roots found).
    tau, tau_compressed : ndarray, shape (L+1,)
        τ_0..τ_L of the original and of the compressed network (not squared).
    kappa2 : ndarray, shape (L+1,)
        κ_0²..κ_L² of the original network (``inf`` from a layer with a jump on).
    elapsed : float
        Seconds spent solving (not part of the repr).
    """

    original_layers: list
    layers: list
    tau0: float
    solutions: tuple
    tau: np.ndarray
    tau_compressed: np.ndarray
    kappa2: np.ndarray
    last_layer: str = "closest_tau"
    elapsed: float = field(default=0.0, compare=False)

    @property
    def depth(self) -> int:
        return len(self.layers)

    @property
    def residuals(self) -> np.ndarray:
        """ndarray, shape (L, 3): relative residuals of (g1², g2², h) per layer.

        NaN where an equation is not imposed (h at the last layer with
        ``last_layer="closest_tau"``).
        """
        return np.array([[s.residuals.get(k, np.nan) for k in ("g1^2", "g2^2", "h")]
                         for s in self.solutions])

    @property
    def max_residual(self) -> float:
        """Largest relative residual over all imposed equations."""
        return float(np.nanmax(self.residuals))

    @property
    def shift(self) -> float:
        """CK identity shift ``(τ^c_L)² − τ_L²``: K_CK^c ≈ K_CK + shift · I_n."""
        return float(self.tau_compressed[-1] ** 2 - self.tau[-1] ** 2)

    @property
    def tau_mismatch(self) -> np.ndarray:
        """ndarray, shape (L+1,): ``(τ^c_ℓ)² − τ_ℓ²`` at every layer."""
        return self.tau_compressed**2 - self.tau**2

    def surrogates(self) -> list[Activation]:
        """Affine straight-through derivatives ``ς_ℓ(t) = g1 + g2 t`` of the compressed
        layers (``g1, g2`` of the ternary activation at τ^c_{ℓ−1}); the book's
        compression chapter, section "The NTK: off the diagonal, and on it".

        They have ``E[ς] = g1`` and ``E[ς'] = g2``, so the NTK coefficients β of the
        compressed network equal the original's (eq-equiv-beta), and the smallest possible
        ``q = E[ς²] = g1² + τ_c² g2²`` among such surrogates (the book's exercise
        ex-compress-affine-q). Matching β controls the NTK off its diagonal only: on the
        diagonal ``K'_ℓ(i,i) = g1² + g2² ν_i²`` grows with the sample's squared norm
        (slope ``g2²``, see :func:`ntk_diagonal_slopes`). Pass them as
        ``surrogates=`` to :func:`lossless.theory.coefficients` or
        :func:`lossless.kernels.exact_ntk`.
        """
        return [activations.get("quadratic", a=0.0, b=float(s.achieved["g2"]),
                                c=float(s.achieved["g1"])) for s in self.solutions]

    def kappa2_compressed(self, surrogates: Sequence[Any] | None = None) -> np.ndarray:
        """κ_0²..κ_L² of the compressed network (``inf`` without surrogates: q = ∞).

        Parameters
        ----------
        surrogates : list, optional
            One straight-through derivative per layer (see :meth:`surrogates`); any
            Activation or callable accepted by :func:`lossless.theory.coefficients`.
        """
        from lossless import theory

        return theory.coefficients(self.layers, self.tau0, surrogates=surrogates).kappa2

    def ntk_shift(self, surrogates: Sequence[Any] | None = None) -> float:
        """NTK identity shift ``(κ^c_L)² − κ_L²`` (``inf`` without surrogates).

        Off the diagonal the NTKs agree (the β match); on the diagonal the compressed
        network's exact NTK is infinite (a step has q = E[σ'²] = ∞), and with
        straight-through derivatives its κ depends on them.
        """
        return float(self.kappa2_compressed(surrogates)[-1] - self.kappa2[-1])

    # -- conversions -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain-Python summary (JSON-serializable)."""
        def num(v: float) -> float | None:
            return None if not math.isfinite(v) else float(v)

        return {
            "tau0": self.tau0,
            "last_layer": self.last_layer,
            "original": [_label(a) for a in self.original_layers],
            "odd": [bool(t.odd) for t in self.layers],
            "s_minus": [float(t.s_minus) for t in self.layers],
            "s_plus": [float(t.s_plus) for t in self.layers],
            "scale": [float(t.scale) for t in self.layers],
            "residuals": [{k: float(v) for k, v in s.residuals.items()} for s in self.solutions],
            "tau": [float(t) for t in self.tau],
            "tau_compressed": [float(t) for t in self.tau_compressed],
            "kappa2": [num(k) for k in self.kappa2],
            "shift": self.shift,
        }

    def _rows(self) -> list[list[str]]:
        # residuals at rounding level print as "< 1e-12" (their digits depend on the
        # machine); the last layer with last_layer="closest_tau" matches g1², g2² and
        # minimises |(τ^c_L)² − τ_L²|, which the last column says
        rows = []
        for s, t in zip(self.solutions, self.layers):
            equations = [k.replace("^2", "²") for k in s.matched if k != "tau^2"]
            solved = "+".join(equations) + " matched"
            if "tau^2" in s.matched:
                solved += "; τ² minimised"
            rows.append([
                str(s.index), _label(s.original), "odd" if t.odd else "even",
                fmt_sig(t.s_minus), fmt_sig(t.s_plus), fmt_sig(t.scale),
                fmt_sig(self.tau[s.index]), fmt_sig(self.tau_compressed[s.index]),
                fmt_residual(s.max_residual), solved,
            ])
        return rows

    _HEADER = ("ℓ", "original", "pattern", "s₋", "s₊", "𝔟", "τ_ℓ", "τᶜ_ℓ", "residual",
               "equations")

    def __repr__(self) -> str:
        return text_table(f"CompressionPlan(L={self.depth}, tau0={self.tau0:.4g}, "
                          f"shift (τᶜ_L² − τ_L²) = {self.shift:.4g})", self._HEADER, self._rows())

    def _repr_html_(self) -> str:
        return html_table(f"CompressionPlan (L = {self.depth}, τ<sub>0</sub> = {self.tau0:.4g}, "
                          f"identity shift τᶜ<sub>L</sub>² − τ<sub>L</sub>² = {self.shift:.4g})",
                          self._HEADER, self._rows())


def compress(layers: Sequence[Activation], tau0: float, *,
             last_layer: str = "closest_tau", tol: float = 1e-10) -> CompressionPlan:
    r"""Solve the ternary activations σ^t_ℓ of the compressed network, layer by layer.

    Layer ℓ is solved at the compressed network's own input scale τ^c_{ℓ−1} (which
    the previous compressed layers produce), against the original moments at τ_{ℓ−1}:
    hidden layers match ``g1², g2², h``; the last layer matches ``g1², g2²`` and makes
    ``(τ^c_L)²`` as close to ``τ_L²`` as the family allows (``last_layer="closest_tau"``)
    or matches ``h`` too (``"match_h"``). Every α and β of the two networks then agree
    (eq-equiv-alpha, eq-compress-equations) and their CKs differ asymptotically by
    ``shift · I_n`` only (with Gaussian first-layer weights: a first layer with another
    weight law adds its fourth-cumulant term, the book's section sec-first-layer-law).
    At each hidden layer the root of smallest output variance is kept (greedy; that
    this minimises the final shift is not proved, :func:`root_paths` checks it for a
    given network).

    Parameters
    ----------
    layers : list of Activation, length L
        The original network's activations.
    tau0 : float
        τ_0 = sqrt(mean_i ‖x_i‖²) (not squared), > 0.
    last_layer : {"closest_tau", "match_h"}
        What the last layer matches besides ``g1², g2²``.
    tol : float, default 1e-10
        Largest relative residual accepted per equation.

    Returns
    -------
    CompressionPlan

    Raises
    ------
    CompressionError
        When some layer's targets are out of reach of the two-threshold family (the
        message names the layer and the equation).
    """
    start = time.perf_counter()
    layers = check_layers(layers)
    tau0 = _checks.positive(tau0, "tau0")
    last_layer = _checks.choice(last_layer, "last_layer", _LAST_LAYER_MODES)
    tol = _check_tol(tol)
    tau, tau_c = [tau0], [tau0]
    kappa2 = [tau0**2]
    solutions, ternaries = [], []
    L = len(layers)
    for index, act in enumerate(layers, start=1):
        target = act.moments(tau[-1])
        bad = [k for k, v in target.to_dict().items() if k != "q" and not math.isfinite(v)]
        if bad:
            raise ValueError(
                f"layer {index} ({_label(act)}) returned non-finite moments "
                f"({', '.join(f'{k} = {getattr(target, k)}' for k in bad)}) at scale "
                f"{tau[-1]:.4g}: the activation must be finite on the Gaussian's support")
        if not (math.isfinite(target.v) and target.v > 0):
            raise CompressionError(
                f"layer {index} ({_label(act)}) has output variance {target.v!r} at scale "
                f"{tau[-1]:.4g}: nothing to compress")
        tau_next = math.sqrt(target.v)
        last = index == L
        sol = solve_layer(target, tau_c[-1], match_h=not last or last_layer == "match_h",
                          tau_target=tau_next, index=index, original=act, tau_in=tau[-1],
                          tol=tol)
        solutions.append(sol)
        ternaries.append(sol.ternary)
        kappa2.append(target.v + target.q * kappa2[-1] if math.isfinite(target.q) else math.inf)
        tau.append(tau_next)
        tau_c.append(math.sqrt(sol.variance))
    return CompressionPlan(original_layers=layers, layers=ternaries, tau0=tau0,
                           solutions=tuple(solutions), tau=np.array(tau),
                           tau_compressed=np.array(tau_c), kappa2=np.array(kappa2),
                           last_layer=last_layer, elapsed=time.perf_counter() - start)


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


# =====================================================================================
# what the construction can and cannot reach (the book's compression chapter, "The
# last layer"): the share of the variance in Hermite orders 1 and 2, every path of
# roots through the layers, and the slope of the NTK diagonal in the squared norms
# =====================================================================================


def low_order_share(activation: Activation, tau: float) -> float:
    r"""Share of ``Var σ(τξ)`` carried by the Hermite orders 1 and 2 (eq-compress-hermite).

    ``𝔢(σ, τ) = (τ² g1² + τ⁴ g2²/2) / v``, in ``[0, 1]`` by Parseval; the rest,
    ``1 − 𝔢``, is the energy of the orders ≥ 3, which the equivalents see only through
    the total variance.

    Parameters
    ----------
    activation : Activation
    tau : float
        Input scale τ > 0.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If the activation is constant at this scale (``v = 0``).
    """
    if not isinstance(activation, Activation):
        raise TypeError(f"activation must be a lossless.activations.Activation, got "
                        f"{_checks.describe(activation)}")
    tau = _checks.positive(tau, "tau")
    mom = activation.moments(tau)
    if not (math.isfinite(mom.v) and mom.v > 0.0):
        raise ValueError(f"activation {_label(activation)!r} has variance {mom.v!r} at "
                         f"tau = {tau:.4g}: the share of a constant is undefined")
    return float((tau**2 * mom.g1**2 + tau**4 * mom.g2**2 / 2.0) / mom.v)


@dataclass(frozen=True)
class ShareBound:
    """The largest :func:`low_order_share` of a two-threshold step, and where it is.

    Attributes
    ----------
    share : float
        ``𝔢_⋆ = sup (c1² + c2²/2) / var`` over thresholds ``x < y`` and both patterns
        (scale-free: neither the scale 𝔟 nor τ enters).
    x, y : float
        Standardized thresholds ``s_-/τ``, ``s_+/τ`` of the maximiser.
    odd : bool
        Its sign pattern.
    """

    share: float
    x: float
    y: float
    odd: bool


def _share_xy(x: Any, y: Any, odd: bool) -> np.ndarray:
    mom = _shape_moments(x, y, odd)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (mom["c1"] ** 2 + mom["c2"] ** 2 / 2.0) / mom["var"]


def two_threshold_share_bound(*, span: float = 6.0, points: int = 481) -> ShareBound:
    r"""Largest share of the variance in Hermite orders 1 and 2 over all two-threshold steps.

    For ``σ(t) = 𝔟 (1[t > s_+] + η 1[t < s_-])`` at scale τ the share
    :func:`low_order_share` is ``(c1² + c2²/2) / var`` of :func:`ternary_shape_moments`
    at ``(x, y) = (s_-, s_+)/τ``: a function of the two standardized thresholds and the
    pattern only. It is maximised on a grid of ``[−span, span]²`` (``x < y``, both
    patterns) and refined by Nelder–Mead from the best grid point. A numerical
    maximisation, not a proof: the book calls its consequences numerical findings.

    Consequence (the book's compression chapter): a two-threshold last layer that
    matches ``g1², g2²`` at scale ``τ^c_{L−1}`` has variance at least the Hermite floor
    divided by ``𝔢_⋆``.

    Parameters
    ----------
    span : float, default 6.0
        Half-width of the grid in standardized units (beyond, the Gaussian mass is
        below 1e-8 and a threshold there is a single step, also covered).
    points : int, default 481
        Grid points per axis (>= 11).

    Returns
    -------
    ShareBound
    """
    from scipy.optimize import minimize

    span = _checks.real(span, "span", low=0.5, high=MAX_STANDARDIZED_THRESHOLD)
    points = _checks.integer(points, "points", minimum=11, maximum=4001)
    grid = np.linspace(-span, span, points)
    xx, yy = np.meshgrid(grid, grid, indexing="ij")
    best: ShareBound | None = None
    for odd in (True, False):
        share = np.where(xx < yy, _share_xy(xx, yy, odd), -np.inf)
        share = np.where(np.isfinite(share), share, -np.inf)
        i = int(np.argmax(share))
        start = np.array([xx.ravel()[i], yy.ravel()[i]])

        def negative(z: np.ndarray, odd: bool = odd) -> float:
            if not z[0] < z[1]:
                return 0.0
            value = float(_share_xy(z[0], z[1], odd))
            return -value if math.isfinite(value) else 0.0

        res = minimize(negative, start, method="Nelder-Mead",
                       options={"xatol": 1e-10, "fatol": 1e-15, "maxiter": 4000})
        z = res.x if -res.fun >= share.ravel()[i] else start
        cand = ShareBound(share=-negative(z), x=float(z[0]), y=float(z[1]), odd=odd)
        if best is None or cand.share > best.share:
            best = cand
    return best


@dataclass(frozen=True)
class RootPath:
    """One choice of root per hidden layer, and the identity shift it leads to.

    Attributes
    ----------
    variances : tuple of float
        ``(τ^c_1)², …, (τ^c_{L−1})²``: the output variance of the root chosen at each
        hidden layer.
    h_signs : tuple of int
        The sign imposed on ``h`` at each hidden layer (``+1``: ``h`` itself, as
        :func:`compress` does; ``−1``: ``−h``, which leaves every α and β unchanged
        since ``h`` enters only through ``α_{ℓ,4}²``).
    shift : float
        ``(τ^c_L)² − τ_L²`` with the last layer solved as :func:`compress` does
        (``g1², g2²`` matched, variance as close to ``τ_L²`` as the family allows).
    """

    variances: tuple
    h_signs: tuple
    shift: float


def root_paths(layers: Sequence[Activation], tau0: float, *,
               h_signs: Sequence[int] = (1, -1), tol: float = 1e-10,
               max_paths: int = 10_000) -> list[RootPath]:
    r"""Every path of roots through the hidden layers, with the shift each one gives.

    :func:`compress` is greedy: at each hidden layer it keeps the root of smallest
    output variance. Nothing proves that this minimises the final shift ``Δ``; this
    function enumerates the alternatives. At each hidden layer and for each sign in
    ``h_signs`` it solves the equations with ``g1², g2²`` and ``±h`` at the input scale
    the path has reached, keeps every distinct output variance among the roots (mirror
    images have the same variance and the same consequences downstream), and finally
    solves the last layer as :func:`compress` does.

    Parameters
    ----------
    layers : list of Activation, length L
    tau0 : float
        τ_0 > 0 (not squared).
    h_signs : sequence of {1, -1}, default (1, -1)
        Signs of ``h`` to impose at the hidden layers.
    tol : float, default 1e-10
        Largest relative residual accepted per equation.
    max_paths : int, default 10000
        Refuse (ValueError) to grow the enumeration beyond this many partial paths.

    Returns
    -------
    list of RootPath
        Sorted by ``shift`` (smallest first). Paths whose last layer has no solution
        are left out.

    Raises
    ------
    CompressionError
        If no path reaches the last layer.
    """
    layers = check_layers(layers)
    tau0 = _checks.positive(tau0, "tau0")
    tol = _check_tol(tol)
    max_paths = _checks.integer(max_paths, "max_paths", minimum=1)
    if isinstance(h_signs, (str, bytes)) or not isinstance(h_signs, Sequence) or not h_signs:
        raise ValueError(f"h_signs must be a non-empty sequence of 1 and -1, got {h_signs!r}")
    signs = []
    for s in h_signs:
        if isinstance(s, bool) or s not in (1, -1):
            raise ValueError(f"h_signs must contain only 1 and -1, got {h_signs!r}")
        signs.append(int(s))
    tau = [tau0]
    for act in layers:
        v = act.moments(tau[-1]).v
        if not (math.isfinite(v) and v > 0):
            raise CompressionError(f"layer {len(tau)} ({_label(act)}) has output variance "
                                   f"{v!r} at scale {tau[-1]:.4g}: nothing to compress")
        tau.append(math.sqrt(v))
    frontier: list[tuple[float, tuple, tuple]] = [(tau0, (), ())]
    for index, act in enumerate(layers[:-1], start=1):
        target = act.moments(tau[index - 1])
        grown = []
        for tau_c, variances, used in frontier:
            seen: dict[float, int] = {}
            for sign in signs:
                try:
                    sol = solve_layer(replace(target, h=sign * target.h), tau_c, index=index,
                                      original=act, tau_in=tau[index - 1], tol=tol)
                except CompressionError:
                    continue
                for cand in sol.candidates:
                    if not any(abs(cand.variance - v) <= 1e-9 * v for v in seen):
                        seen[cand.variance] = sign
            grown += [(math.sqrt(v), variances + (v,), used + (s,))
                      for v, s in sorted(seen.items())]
            if len(grown) > max_paths:
                raise ValueError(f"more than max_paths = {max_paths} partial paths at layer "
                                 f"{index}; raise max_paths or use fewer h_signs")
        frontier = grown
    last = layers[-1].moments(tau[-2])
    out = []
    for tau_c, variances, used in frontier:
        try:
            sol = solve_layer(last, tau_c, match_h=False, tau_target=tau[-1],
                              index=len(layers), original=layers[-1], tau_in=tau[-2], tol=tol)
        except CompressionError:
            continue
        out.append(RootPath(variances=variances, h_signs=used,
                            shift=float(sol.variance - tau[-1] ** 2)))
    if not out:
        raise CompressionError("no path of roots reaches a solvable last layer")
    return sorted(out, key=lambda path: path.shift)


def ntk_diagonal_slopes(layers: Sequence[Activation], tau0: float,
                        surrogates: Sequence[Any] | None = None, *,
                        step: float = 1e-4) -> np.ndarray:
    r"""Slopes of the NTK diagonal ``κ_ℓ²(i)`` in ``Ψ_i = ‖x_i‖² − τ_0²``, layer by layer.

    To first order in ``Ψ_i`` the CK diagonal is ``τ_ℓ² + α_{ℓ,4} Ψ_i`` and the
    derivative kernel's diagonal is ``K'_ℓ(i,i) = Q_ℓ(ν²)`` with
    ``Q_ℓ(ν²) = E[ς_ℓ(νξ)²]`` at ``ν² = τ_{ℓ−1}² + α_{ℓ−1,4} Ψ_i`` (``ς_ℓ = σ_ℓ'``
    without surrogate). From ``κ_ℓ²(i) = K_CK,ℓ(i,i) + K'_ℓ(i,i) κ_{ℓ−1}²(i)``, the
    slopes ``s_ℓ`` of ``κ_ℓ²(i)`` obey

    ``s_ℓ = α_{ℓ,4} + Q_ℓ' α_{ℓ−1,4} κ_{ℓ−1}² + q_ℓ s_{ℓ−1}``,  ``s_0 = 1``,

    with ``Q_ℓ' = dQ_ℓ/dν²`` at ``τ_{ℓ−1}`` (central difference in ``ν²``). The affine
    surrogate ``ς = g1 + g2 t`` has ``Q' = g2²``; the derivative of ReLU, a step, has
    ``Q' = 0``. The book's compression chapter uses the difference of the two networks'
    slopes to explain the diagonal part of the NTK error after the shift.

    Parameters
    ----------
    layers : list of Activation, length L
    tau0 : float
        τ_0 > 0 (not squared).
    surrogates : list of (None | Activation | callable), length L, optional
        As for :func:`lossless.theory.coefficients`.
    step : float, default 1e-4
        Relative step of the central difference in ``ν²``.

    Returns
    -------
    ndarray, shape (L+1,)
        ``s_0 = 1, s_1, …, s_L``.

    Raises
    ------
    ValueError
        If some ``q_ℓ`` is infinite (a step without surrogate: the diagonal is infinite).
    """
    from lossless import theory

    step = _checks.real(step, "step", low=1e-8, high=0.1)
    coef = theory.coefficients(layers, tau0, surrogates=surrogates)
    slopes = [1.0]
    for row, prev in zip(coef.rows[1:], coef.rows[:-1]):
        if not math.isfinite(row.derivative.q):
            raise ValueError(f"layer {row.index} ({_label(row.activation)}) has q = E[σ'²] = inf "
                             "(a jump): pass a surrogate derivative for it")
        tau2 = prev.tau**2
        surrogate = (None if surrogates is None else surrogates[row.index - 1])

        def q_at(nu2: float) -> float:
            single = theory.coefficients([row.activation], math.sqrt(nu2),
                                         surrogates=None if surrogate is None else [surrogate])
            return float(single.rows[1].derivative.q)

        dq = (q_at(tau2 * (1 + step)) - q_at(tau2 * (1 - step))) / (2 * step * tau2)
        slopes.append(row.alpha[3] + dq * prev.alpha[3] * prev.kappa2
                      + row.derivative.q * slopes[-1])
    return np.array(slopes)


# =====================================================================================
# memory accounting (count honestly: entropy bound and the authors' accounting)
# =====================================================================================


def _binary_entropy(eps: float) -> float:
    if eps <= 0.0 or eps >= 1.0:
        return 0.0
    return -eps * math.log2(eps) - (1.0 - eps) * math.log2(1.0 - eps)


@dataclass(frozen=True)
class MemoryReport:
    """Bits needed to store the hidden weights of a network, several ways.

    Attributes
    ----------
    n_weights : int
        Number of hidden weights ``Σ_ℓ d_ℓ d_{ℓ−1}`` (the readout is not included in
        the bounds; it is in the actual file sizes).
    sparsity : float
        ε.
    rows : tuple of (label, bits, kind)
        ``kind`` is ``"format"`` (a real storage format), ``"bound"`` (an
        information-theoretic bound), ``"count"`` (a count that is not a valid code)
        or ``"actual"`` (measured size of bytes actually written).
    """

    n_weights: int
    sparsity: float
    rows: tuple

    def bits(self, label_start: str) -> float:
        """Bits of the first row whose label starts with ``label_start``."""
        for label, bits, _kind in self.rows:
            if isinstance(label_start, str) and label.startswith(label_start):
                return bits
        if not isinstance(label_start, str):
            raise TypeError(f"label_start must be a string, got {_checks.describe(label_start)}")
        raise ValueError(f"label_start must be the start of a row label, got {label_start!r}; "
                         f"rows: {[r[0] for r in self.rows]}")

    def to_dict(self) -> dict[str, Any]:
        return {"n_weights": self.n_weights, "sparsity": self.sparsity,
                "rows": [{"label": lab, "bits": float(b), "kind": k,
                          "bits_per_weight": float(b) / self.n_weights}
                         for lab, b, k in self.rows]}

    def _cells(self) -> list[list[str]]:
        return [[lab, k, f"{b / self.n_weights:.4g}", f"{b / 8 / 2**20:.4g}"]
                for lab, b, k in self.rows]

    _HEADER = ("storage", "kind", "bits/weight", "MiB")

    def __repr__(self) -> str:
        return text_table(f"MemoryReport({self.n_weights} hidden weights, "
                          f"sparsity={self.sparsity:g})", self._HEADER, self._cells(), left=2)

    def _repr_html_(self) -> str:
        return html_table(f"{self.n_weights:,} hidden weights, sparsity ε = {self.sparsity:g}",
                          self._HEADER, self._cells())


def memory_report(p: int, widths: Sequence[int], sparsity: float) -> MemoryReport:
    """The storage bounds of the compression chapter for the hidden weights of a ``p``-input MLP.

    Rows: dense fp32 (32 bits/weight); dense ternary packed in 2 bits; the entropy
    bound ``H(ε) + (1 − ε)`` bits/weight of i.i.d. sparse ternary weights (no code can
    do better on average; ``log2 3`` at ε = 1/3); and the authors' count
    ``(1 − ε)`` bits/weight, which ignores where the zeros are and so is not
    achievable by any code.

    Parameters
    ----------
    p : int
        Input dimension.
    widths : sequence of int
        Hidden widths ``d_1..d_L``.
    sparsity : float
        ε in [0, 1).
    """
    dims = [_checks.integer(p, "p", minimum=1)] + _check_widths(widths)
    eps = _check_sparsity(sparsity)
    n = sum(a * b for a, b in zip(dims[:-1], dims[1:]))
    rows = (
        ("dense fp32", 32.0 * n, "format"),
        ("ternary, 2-bit packed", 2.0 * n, "format"),
        ("entropy bound H(ε) + (1 − ε)", n * (_binary_entropy(eps) + 1.0 - eps), "bound"),
        ("authors' count (1 − ε), ignores zero positions", n * (1.0 - eps), "count"),
    )
    return MemoryReport(n_weights=n, sparsity=eps, rows=rows)


def _check_widths(widths: Any) -> list[int]:
    return list(_checks.int_sequence(widths, "widths", minimum=1))


def _check_sparsity(sparsity: Any) -> float:
    return _checks.fraction(sparsity, "sparsity")


# =====================================================================================
# the packed network
# =====================================================================================

# 2-bit codes: 0 -> 0, 1 -> +1, 2 -> -1 (3 unused); four codes per byte, low bits first


def pack_ternary(values: torch.Tensor) -> torch.Tensor:
    """Pack a tensor with entries in {-1, 0, +1} (any sign-like values) into 2 bits each.

    Parameters
    ----------
    values : Tensor or array_like, any shape
        Entries in ``{-c, 0, c}`` for one magnitude ``c > 0`` (e.g. the ``±1/sqrt(1 − ε)``
        of :func:`ternary_weights`); only the sign of each entry is kept, so values of
        several magnitudes (which would be lost) and NaN/inf are refused.

    Returns
    -------
    Tensor, dtype uint8, shape (ceil(numel / 4),)
        Codes ``0 -> 0, +1 -> 1, -1 -> 2``, four per byte, first entry in the low bits.
    """
    arr = _checks.real_array(values, "values", nonempty=False, dtype=None)
    mags = np.abs(arr[arr != 0]).astype(np.float64)
    if mags.size and mags.min() < (1.0 - 1e-6) * mags.max():
        raise ValueError(f"values must be ternary, in {{-c, 0, c}} for one magnitude c (only "
                         f"the signs are packed), got non-zero magnitudes from "
                         f"{mags.min():.6g} to {mags.max():.6g}")
    arr = np.require(arr, requirements=["C", "W"])
    s = torch.sign(torch.from_numpy(arr)).reshape(-1).to(torch.int8)
    codes = torch.where(s < 0, torch.tensor(2, dtype=torch.uint8),
                        s.to(torch.uint8))  # -1 -> 2, 0 -> 0, 1 -> 1
    pad = (-codes.numel()) % 4
    if pad:
        codes = torch.cat([codes, torch.zeros(pad, dtype=torch.uint8)])
    c = codes.reshape(-1, 4)
    return c[:, 0] | (c[:, 1] << 2) | (c[:, 2] << 4) | (c[:, 3] << 6)


def unpack_ternary(packed: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Inverse of :func:`pack_ternary`: int8 tensor of ``shape`` with entries in {-1, 0, 1}.

    Raises
    ------
    TypeError
        If ``packed`` is not a torch.Tensor or ``shape`` not a sequence of integers.
    ValueError
        If ``packed`` is not a 1-D uint8 tensor of the right length or holds the unused
        code 3, or ``shape`` has a negative entry.
    """
    if not isinstance(packed, torch.Tensor):
        raise TypeError(f"packed must be a 1-D uint8 torch.Tensor (from pack_ternary), got "
                        f"{_checks.describe(packed)}")
    shape = _check_shape(shape)
    numel = math.prod(shape)
    if packed.dtype != torch.uint8 or packed.ndim != 1 or packed.numel() != -(-numel // 4):
        raise ValueError(f"packed must be a 1-D uint8 tensor of length ceil({numel}/4) = "
                         f"{-(-numel // 4)}, got dtype {packed.dtype}, shape {tuple(packed.shape)}")
    fields = torch.stack([(packed >> (2 * k)) & 3 for k in range(4)], dim=1).reshape(-1)[:numel]
    if bool((fields == 3).any()):
        raise ValueError("packed holds the unused 2-bit code 3: not a pack_ternary output")
    lut = torch.tensor([0, 1, -1, 0], dtype=torch.int8)
    return lut[fields.long()].reshape(shape)


def _check_shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, (str, bytes)) or not isinstance(shape, (Sequence, np.ndarray)):
        raise TypeError(f"shape must be a sequence of integers >= 0, got {_checks.describe(shape)}")
    return tuple(_checks.integer(d, f"shape[{i}]", minimum=0) for i, d in enumerate(shape))


#: Saved-file layout: ``_MAGIC``, one line of JSON header (format, version, payload size
#: and its SHA-256), then the payload. Version 3 (written): one line of JSON metadata
#: (sizes, thresholds, codec, the sections' shapes and byte counts), then each layer's
#: weight codes entropy-coded by :mod:`lossless.ternary_codec` (at the entropy bound), then
#: the fp32 readout (little-endian). Version 2 (still read): a ``torch.save`` of
#: :meth:`CompressedMLP.state`, 2 bits per weight.
_FORMAT = "lossless.CompressedMLP"
_FORMAT_VERSION = 3
_READ_VERSIONS = (2, 3)
_MAGIC = b"lossless.CompressedMLP\n"
_MAX_HEADER = 4096


def _check_path(path: Any) -> Path:
    return _checks.path(path)

def _pack_file(payload: bytes, version: int = _FORMAT_VERSION) -> bytes:
    header = {"format": _FORMAT, "version": version, "payload_bytes": len(payload),
              "sha256": hashlib.sha256(payload).hexdigest()}
    return _MAGIC + json.dumps(header, sort_keys=True).encode("ascii") + b"\n" + payload


def _unpack_file(data: bytes, where: str) -> tuple[int, bytes]:
    """The format version and checked payload of a saved file (``where`` names it in the
    errors)."""
    if not data.startswith(_MAGIC):
        hint = (" (a zip archive: an unversioned file of an older lossless, format 1 without "
                "checksum, or another torch.save file; re-save the model)"
                if data[:2] == b"PK" else "")
        raise ValueError(f"{where} is not a saved CompressedMLP: it does not start with the "
                         f"line {_MAGIC.decode().strip()!r}{hint}")
    end = data.find(b"\n", len(_MAGIC), len(_MAGIC) + _MAX_HEADER)
    if end < 0:
        raise ValueError(f"{where} is not a valid CompressedMLP file: its header line is "
                         "missing or truncated")
    try:
        header = json.loads(data[len(_MAGIC):end].decode("ascii"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{where} has a corrupted header: {err}") from None
    if not isinstance(header, dict) or header.get("format") != _FORMAT:
        raise ValueError(f"{where} has a corrupted header: {header!r}")
    version = header.get("version")
    if version not in _READ_VERSIONS or isinstance(version, bool):
        raise ValueError(f"{where} has format version {version!r}; this version of lossless "
                         f"reads CompressedMLP files of versions {list(_READ_VERSIONS)}")
    size, digest = header.get("payload_bytes"), header.get("sha256")
    if not (isinstance(size, int) and not isinstance(size, bool) and size >= 0
            and isinstance(digest, str) and len(digest) == 64):
        raise ValueError(f"{where} has a corrupted header: {header!r}")
    payload = data[end + 1:]
    if len(payload) != size:
        what = "truncated" if len(payload) < size else "longer than its header says"
        raise ValueError(f"{where} is {what}: the header announces {size} payload bytes, the "
                         f"file holds {len(payload)}")
    if hashlib.sha256(payload).hexdigest() != digest:
        raise ValueError(f"{where} is corrupted: the SHA-256 of its payload does not match "
                         "the one in its header")
    return version, payload


def _encode_payload(state: dict[str, Any], codes: Sequence[np.ndarray]) -> bytes:
    """Version-3 payload: a JSON line (``state`` without tensors, the codec, the sections)
    then the entropy-coded codes of each layer and the fp32 readout."""
    blobs = [ternary_codec.encode_ternary(c) for c in codes]
    readout = state["readout"].detach().cpu().numpy().astype("<f4").tobytes()
    meta = {k: v for k, v in state.items() if k not in ("packed", "readout")}
    meta["codec"] = ternary_codec.CODEC
    meta["sections"] = ([{"name": f"codes_{i + 1}", "shape": list(c.shape), "bytes": len(b)}
                         for i, (c, b) in enumerate(zip(codes, blobs))]
                        + [{"name": "readout", "dtype": "<f4",
                            "shape": [int(state["readout"].numel())], "bytes": len(readout)}])
    line = json.dumps(meta, sort_keys=True, allow_nan=False).encode("ascii")
    return line + b"\n" + b"".join(blobs) + readout


def _decode_payload(payload: bytes) -> dict[str, Any]:
    """Inverse of :func:`_encode_payload`: the :meth:`CompressedMLP.state` dict (codes
    packed to 2 bits again), for :meth:`CompressedMLP._from_state`'s range checks."""
    end = payload.find(b"\n")
    if end < 0:
        raise ValueError("its metadata line is missing")
    try:
        meta = json.loads(payload[:end].decode("ascii"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"its metadata line does not parse ({err})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"its metadata must be a JSON object, got {_checks.describe(meta)}")
    if meta.get("codec") != ternary_codec.CODEC:
        raise ValueError(f"its codes are coded with {meta.get('codec')!r}; this version of "
                         f"lossless reads {ternary_codec.CODEC!r}")
    sections = meta.pop("sections", None)
    meta.pop("codec")
    if not isinstance(sections, list) or not sections or not all(
            isinstance(sec, dict) and isinstance(sec.get("bytes"), int)
            and not isinstance(sec.get("bytes"), bool) and sec["bytes"] >= 0
            and isinstance(sec.get("shape"), list) for sec in sections):
        raise ValueError(f"its sections are malformed: {sections!r}")
    if sum(sec["bytes"] for sec in sections) != len(payload) - end - 1:
        raise ValueError(f"its sections announce {sum(sec['bytes'] for sec in sections)} bytes, "
                         f"the payload holds {len(payload) - end - 1}")
    offset, packed = end + 1, []
    for sec in sections[:-1]:
        blob = payload[offset:offset + sec["bytes"]]
        offset += sec["bytes"]
        codes = ternary_codec.decode_ternary(blob, sec["shape"])
        packed.append(pack_ternary(codes))
    last = sections[-1]
    if last.get("name") != "readout" or last.get("dtype") != "<f4" or len(last["shape"]) != 1 \
            or last["bytes"] != 4 * last["shape"][0]:
        raise ValueError(f"its last section must be the fp32 readout, got {last!r}")
    readout = np.frombuffer(payload, dtype="<f4", count=last["shape"][0], offset=offset)
    meta["packed"] = packed
    meta["readout"] = torch.from_numpy(readout.astype(np.float32))
    meta["_shapes"] = [tuple(sec["shape"]) for sec in sections[:-1]]
    return meta


def _numba_available() -> bool:
    """Whether the ternary engine (numba) can be used."""
    global _NUMBA
    if _NUMBA is None:
        try:
            import numba  # noqa: F401
            _NUMBA = True
        except ImportError:
            _NUMBA = False
    return _NUMBA


_NUMBA: bool | None = None

#: Up to this many samples, the int8 path multiplies layers ℓ ≥ 2 as sparse CSR matrices
#: instead of calling oneDNN's int8 GEMM (slow for a handful of rows).
_FEW_ROWS = 8

#: Layers ℓ ≥ 2 with fewer non-zero weights than this fraction are always multiplied as
#: CSR matrices: a dense int8 GEMM does the work of every weight, a CSR product only of
#: the non-zeros (at batch 256 and width 2000 the two cost the same near 4 %).
_INT8_MIN_DENSITY = 0.04


def _csr32(codes: torch.Tensor) -> torch.Tensor:
    """Ternary codes as a CSR matrix: float32 values ±1, int32 indices (built directly,
    without torch's int64 intermediate copies)."""
    rows, cols = torch.nonzero(codes, as_tuple=True)  # row-major: the CSR order
    crow = torch.zeros(codes.shape[0] + 1, dtype=torch.int32)
    crow[1:] = torch.cumsum(torch.bincount(rows, minlength=codes.shape[0]), 0)
    values = codes[rows, cols].to(torch.float32)
    with warnings.catch_warnings():  # "sparse CSR support is in beta state"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, cols.to(torch.int32), values, codes.shape,
                                       check_invariants=False)


def _round_f32(x: torch.Tensor, *, up: bool) -> torch.Tensor:
    """float64 ``x`` rounded to float32 upwards (``up``) or downwards: a float32 bound."""
    y = x.to(torch.float32)
    off = y.to(torch.float64) < x if up else y.to(torch.float64) > x
    return torch.where(off, torch.nextafter(y, torch.tensor(math.inf if up else -math.inf)), y)


def _csr_bytes(csr: torch.Tensor) -> int:
    return sum(t.numel() * t.element_size()
               for t in (csr.crow_indices(), csr.col_indices(), csr.values()))


class CompressedMLP(torch.nn.Module):
    r"""The compressed network: 2-bit packed ternary weights, ternary activations.

    It computes exactly what :class:`lossless.networks.MLP` computes with the same
    ternary weights and the :class:`~lossless.activations.Ternary` activations of a
    :class:`CompressionPlan` (chapter 4), but stores each ``W_ℓ`` as 2-bit codes
    (:func:`pack_ternary`) and evaluates layers ℓ ≥ 2 in integer arithmetic: with
    ``T_{ℓ−1} ∈ {−1, 0, 1}^{n×d}`` the previous layer's ternary outputs (codes) and
    ``C_ℓ`` the weight codes,

    .. math::

        W_\ell \Sigma_{\ell-1} = \alpha_\ell\, C_\ell T_{\ell-1} + \beta_\ell, \quad
        \alpha_\ell = \frac{b_{\ell-1}}{\sqrt{(1-\varepsilon) d_{\ell-1}}},\;
        \beta_\ell = -\frac{m_{\ell-1}}{\sqrt{(1-\varepsilon) d_{\ell-1}}} C_\ell \mathbf 1,

    so the centring becomes a fixed bias, folded (with α) into per-neuron integer
    thresholds ``(s_± − β)/α`` compared with the integer ``C_ℓ T_{ℓ−1}``.

    Build it with :meth:`from_plan`; weights are drawn in the same order and with the
    same sampler as ``networks.MLP(..., weights="ternary")`` (``W_1..W_L`` then the
    readout ``w``), so the same generator seed gives the same network.

    Attributes
    ----------
    p : int
    widths : tuple of int
    layers : tuple of activations.Ternary
    tau0 : float
    sparsity : float
    taus : tuple of float
        τ^c_0..τ^c_L of the compressed network (from the ternary moments).
    centres : tuple of float
        ``m_ℓ = E[σ_ℓ(τ^c_{ℓ−1} ξ)]``.
    readout : Tensor, shape (d_L,)
        The readout ``w`` (float32, stored dense).
    """

    def __init__(self, p: int, widths: Sequence[int], layers: Sequence[Any], tau0: float, *,
                 sparsity: float, packed: Sequence[torch.Tensor], readout: torch.Tensor) -> None:
        super().__init__()
        self.p = _checks.integer(p, "p", minimum=1)
        self.widths = tuple(_check_widths(widths))
        if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence):
            raise TypeError(f"layers must be a sequence of activations.Ternary, got "
                            f"{_checks.describe(layers)}")
        layers = list(layers)
        if len(layers) != len(self.widths):
            raise ValueError(f"layers must have one Ternary per width ({len(self.widths)}), "
                             f"got {len(layers)}")
        for i, act in enumerate(layers):
            if not isinstance(act, activations.Ternary):
                raise TypeError(f"layers[{i}] must be an activations.Ternary, got {act!r}")
        self.layers = tuple(layers)
        self.tau0 = _checks.positive(tau0, "tau0")
        self.sparsity = _check_sparsity(sparsity)
        dims = (self.p, *self.widths)
        if isinstance(packed, (str, bytes, torch.Tensor)) or not isinstance(packed, Sequence):
            raise TypeError(f"packed must be a sequence of uint8 tensors (one per layer), got "
                            f"{_checks.describe(packed)}")
        packed = list(packed)
        if len(packed) != len(self.widths):
            raise ValueError(f"packed must hold one tensor per layer ({len(self.widths)}), "
                             f"got {len(packed)}")
        taus = [self.tau0]
        centres = []
        for i, act in enumerate(self.layers):
            mom = act.moments(taus[-1])
            if not (math.isfinite(mom.m) and math.isfinite(mom.v) and mom.v > 0):
                raise ValueError(f"layers[{i}] ({act!r}) has output mean {mom.m} and variance "
                                 f"{mom.v} at scale {taus[-1]:.4g}: they must be finite and the "
                                 "variance > 0 (thresholds beyond the input's range?)")
            centres.append(float(mom.m))
            taus.append(math.sqrt(mom.v))
        self.taus = tuple(taus)
        self.centres = tuple(centres)
        self.weight_scale = 1.0 / math.sqrt(1.0 - self.sparsity)
        for i, buf in enumerate(packed):
            shape = (dims[i + 1], dims[i])
            try:
                unpack_ternary(buf, shape)  # validates type, length and codes
            except (TypeError, ValueError) as err:
                raise type(err)(f"packed[{i}]: {err}") from None
            self.register_buffer(f"packed_{i}", buf.clone(), persistent=True)
        if isinstance(readout, torch.Tensor) and readout.dtype == torch.float32 \
                and not readout.requires_grad:
            readout = readout.detach().reshape(-1)
            if not bool(torch.isfinite(readout).all()):
                bad = int((~torch.isfinite(readout)).sum())
                raise ValueError(f"readout must be finite, got {bad} non-finite entries "
                                 "(NaN or inf)")
        else:
            arr = _checks.real_array(readout, "readout", ndim=(1, 2), dtype=np.float64)
            arr = np.require(arr, requirements=["C", "W"])
            readout = torch.from_numpy(arr).to(torch.float32).reshape(-1)
            if not bool(torch.isfinite(readout).all()):
                raise ValueError("readout must be finite in float32 (|w| < 3.4e38), got "
                                 f"{int((~torch.isfinite(readout)).sum())} entries that overflow")
        if readout.numel() != dims[-1]:
            raise ValueError(f"readout must have d_L = {dims[-1]} entries, got {readout.numel()}")
        self.register_buffer("readout", readout.clone(), persistent=True)
        # fold centring and scales into per-neuron thresholds (float64 buffers)
        for i in range(len(self.widths)):
            act = self.layers[i]
            if i == 0:
                alpha = self.weight_scale
                beta = torch.zeros(dims[1], dtype=torch.float64)
            else:
                prev = self.layers[i - 1]
                norm = self.weight_scale / math.sqrt(dims[i])
                alpha = prev.scale * norm
                rowsum = self.codes(i).to(torch.float64).sum(dim=1)
                beta = -self.centres[i - 1] * norm * rowsum
            self.register_buffer(f"upper_{i}", (act.s_plus - beta) / alpha, persistent=False)
            self.register_buffer(f"lower_{i}", (act.s_minus - beta) / alpha, persistent=False)

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_plan(cls, plan: CompressionPlan, p: int, widths: Sequence[int], *,
                  sparsity: float = 0.0, generator: torch.Generator,
                  exact_zeros: bool = False) -> "CompressedMLP":
        """Draw sparse ternary weights for the activations of ``plan``.

        Parameters
        ----------
        plan : CompressionPlan
        p : int
            Input dimension.
        widths : sequence of int, length L
        sparsity : float
            ε in [0, 1).
        generator : torch.Generator
        exact_zeros : bool
            Exactly ``round(ε N)`` zeros per matrix (see :func:`ternary_weights`).
        """
        if not isinstance(plan, CompressionPlan):
            raise TypeError(f"plan must be a CompressionPlan, got {type(plan).__name__}")
        dims = [_checks.integer(p, "p", minimum=1)] + _check_widths(widths)
        if len(dims) - 1 != plan.depth:
            raise ValueError(f"widths must have one entry per layer of plan ({plan.depth}), "
                             f"got {len(dims) - 1}: {widths!r}")
        eps = _check_sparsity(sparsity)
        _checks.torch_generator(generator, "generator")
        exact_zeros = _checks.flag(exact_zeros, "exact_zeros")
        packed = []
        for i in range(len(dims) - 1):
            W = ternary_weights((dims[i + 1], dims[i]), eps, generator, exact_zeros=exact_zeros)
            packed.append(pack_ternary(W))
        readout = ternary_weights((dims[-1],), eps, generator, exact_zeros=exact_zeros)
        return cls(p, widths, plan.layers, plan.tau0, sparsity=eps, packed=packed,
                   readout=readout)

    # -- weights -----------------------------------------------------------------------
    @property
    def depth(self) -> int:
        return len(self.widths)

    def codes(self, layer: int) -> torch.Tensor:
        """Weight codes ``C_ℓ`` (int8, entries in {-1, 0, 1}) of layer ``layer`` (0-based),
        shape (d_ℓ, d_{ℓ−1}); the weights are ``C_ℓ / sqrt(1 − ε)``."""
        try:
            layer = _checks.integer(layer, "layer", minimum=0, maximum=self.depth - 1)
        except ValueError:
            raise ValueError(f"layer must be an integer in [0, {self.depth - 1}], "
                             f"got {layer!r}") from None
        dims = (self.p, *self.widths)
        return unpack_ternary(getattr(self, f"packed_{layer}"), (dims[layer + 1], dims[layer]))

    def weights(self, layer: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Dense weights ``W_ℓ = C_ℓ / sqrt(1 − ε)`` of layer ``layer`` (0-based)."""
        dtype = _checks.float_dtype(dtype)
        return self.codes(layer).to(dtype) * self.weight_scale

    # -- evaluation --------------------------------------------------------------------
    def _check_input(self, X: Any) -> torch.Tensor:
        return torch.from_numpy(self._check_input_array(X))

    def _check_input_array(self, X: Any) -> np.ndarray:
        # real and finite: NaN compares false with every threshold and would silently
        # become code 0
        if (type(X) is np.ndarray and X.dtype == np.float64 and X.ndim == 2
                and X.shape[1] == self.p and X.flags.c_contiguous and X.flags.writeable
                and np.isfinite(X).all()):
            return X  # what the checks below return for it, without their cost (batch 1)
        if isinstance(X, (np.ndarray, torch.Tensor)) and X.ndim == 2 and X.shape[1] != self.p:
            raise ValueError(f"X must have shape (n, p) with p = {self.p} (samples in rows), "
                             f"got {tuple(X.shape)}")
        arr = _checks.real_array(X, "X", ndim=2, shape=(None, self.p), nonempty=False,
                                 shape_hint=f"(n, p) with p = {self.p}")
        return np.require(arr, requirements=["C", "W"])  # torch wants writable

    def activation_codes(self, X: Any, *, backend: str = "auto") -> list[torch.Tensor]:
        """Ternary outputs ``T_ℓ = σ_ℓ(·)/b_ℓ`` of every layer (int8, values in {-1, 0, 1}
        for odd layers, {0, 1} for even ones), each of shape (n, d_ℓ).

        Parameters
        ----------
        X : array_like, shape (n, p)
        backend : {"auto", "ternary", "int8", "float"}
            ``"float"``: layer 1 in float64, layers ℓ ≥ 2 as float32 products of the
            codes (exact integers), the reference. ``"ternary"``: the numba engine of
            :mod:`lossless.ternary_inference` (zero-skipping and bit-plane kernels on the
            codes, layer 1 in float32 with every entry whose rounding error could cross a
            threshold recomputed in float64), exact; see :meth:`ternary_engine`.
            ``"int8"``: layer 1 as a sparse (CSR)
            float32 product with every entry whose rounding error could cross a
            threshold recomputed in float64 (a rigorous bound, so the codes are those of
            ``"float"``); layers ℓ ≥ 2 as int8 × uint8 products accumulated in int32 by
            oneDNN (``torch.ops.onednn.qlinear_pointwise``), exact; for up to 8 samples,
            or for layers with fewer than 4 % non-zero weights, as sparse (CSR) float32
            products of the codes, exact. ``"auto"``: ``"ternary"`` where numba is
            installed, else ``"int8"`` where this torch build has the oneDNN quantized
            ops, else ``"float"``.
        """
        return self._codes(X, backend, last_only=False)

    def _backend(self, backend: str) -> str:
        backend = _checks.choice(backend, "backend", ("auto", "ternary", "int8", "float"))
        if backend == "auto":
            if _numba_available():
                return "ternary"
            return "int8" if self._fast_path() is not None else "float"
        if backend == "ternary" and not _numba_available():
            raise ValueError("backend 'ternary' needs numba (pip install numba), which is not "
                             "installed; use 'int8' or 'float'")
        return backend

    def ternary_engine(self, threads: int | None = None) -> Any:
        """The :class:`lossless.ternary_inference.TernaryEngine` of this network (built on
        first use from the codes and thresholds, cached, not saved).

        Parameters
        ----------
        threads : int, optional
            Set the engine's thread count (1 to numba's pool size; default: all cores).
        """
        engine = self.__dict__.get("_ternary_engine")
        if engine is None:
            from lossless import ternary_inference

            engine = ternary_inference.TernaryEngine(
                [self.codes(i).numpy() for i in range(self.depth)],
                [getattr(self, f"upper_{i}").numpy() for i in range(self.depth)],
                [getattr(self, f"lower_{i}").numpy() for i in range(self.depth)],
                [act.odd for act in self.layers], self.layers[-1].scale, self.centres[-1],
                self.readout.to(torch.float64).numpy())
            object.__setattr__(self, "_ternary_engine", engine)
        if threads is not None:
            engine.threads = threads
        return engine

    def _codes(self, X: Any, backend: str, *, last_only: bool) -> list[torch.Tensor]:
        """:meth:`activation_codes`; with ``last_only``, the last layer's codes alone (the
        earlier layers are freed as soon as the next is computed)."""
        backend = self._backend(backend)
        if backend == "ternary":
            codes = self.ternary_engine().codes(self._check_input_array(X), last_only=last_only)
            return [torch.from_numpy(T) for T in codes]
        H = self._check_input(X)
        if backend == "int8":
            fast = self._fast_path()
            if fast is None:
                raise ValueError("backend 'int8' needs torch.ops.onednn.qlinear_pointwise, "
                                 "which this torch build does not provide; use 'float'")
            return self._codes_int8(H, fast, last_only=last_only)
        out = []
        for i, act in enumerate(self.layers):
            C = self.codes(i)
            if i == 0:
                Z = H @ C.to(torch.float64).T
            else:  # integer-valued products, exact in float32 (|Z| <= d < 2^24)
                Z = (out[-1].to(torch.float32) @ C.to(torch.float32).T).to(torch.float64)
            upper = Z > getattr(self, f"upper_{i}")
            lower = Z < getattr(self, f"lower_{i}")
            T = upper.to(torch.int8) + (-1 if act.odd else 1) * lower.to(torch.int8)
            out.append(T)
        return out

    # -- the integer inference path ------------------------------------------------------
    def _fast_path(self) -> dict | None:
        """Cached operands of the int8 path (built on first use, not saved), or None.

        Every layer's codes as a CSR matrix (float32 values ±1, int32 indices: 8 bytes per
        non-zero weight), and layers ℓ ≥ 2 with at least ``_INT8_MIN_DENSITY`` non-zero
        weights also as int8 matrices packed by oneDNN, for batches above ``_FEW_ROWS``."""
        cache = self.__dict__.get("_fast_cache", False)
        if cache is not False:
            return cache
        cache = None
        try:
            qlinear = torch.ops.onednn.qlinear_pointwise
            prepack = torch.ops.onednn.qlinear_prepack
        except (AttributeError, RuntimeError):
            qlinear = prepack = None
        if qlinear is not None:
            first = _csr32(self.codes(0))
            cache = {"first": first,
                     "first_nnz": max(1, int(first.crow_indices().diff().max())),
                     "upper_0": self.upper_0.to(torch.float64)[:, None],
                     "lower_0": self.lower_0.to(torch.float64)[:, None],
                     "layers": [], "qlinear": qlinear}
            for i in range(1, self.depth):
                d = self.widths[i]
                # Z is an integer: Z > u <=> Z > floor(u), Z < l <=> Z < ceil(l); both are
                # exact in float32 when |.| < 2^24 and beyond every reachable |Z| otherwise
                upper = torch.floor(getattr(self, f"upper_{i}")).to(torch.float32)
                lower = torch.ceil(getattr(self, f"lower_{i}")).to(torch.float32)
                codes = self.codes(i)
                csr = _csr32(codes)
                dense = csr.values().numel() >= _INT8_MIN_DENSITY * codes.numel()
                cache["layers"].append({
                    "weight": prepack(codes.contiguous(), None) if dense else None, "csr": csr,
                    "w_scale": torch.ones(d), "w_zero": torch.zeros(d, dtype=torch.int64),
                    "upper": upper, "lower": lower,
                    "upper_col": upper[:, None], "lower_col": lower[:, None]})
                del codes
            try:  # a build whose kernels disagree with the reference is not used
                probe = torch.linspace(-2.0, 2.0, 3 * self.p, dtype=torch.float64)
                probe = probe.reshape(3, self.p) * self.tau0 / math.sqrt(self.p)
                probe = torch.cat([probe, probe.flip(0).repeat(_FEW_ROWS, 1)])
                object.__setattr__(self, "_fast_cache", cache)
                ref = self.activation_codes(probe.numpy(), backend="float")
                for rows in (probe[:3], probe):  # the CSR and the oneDNN products
                    fast = self._codes_int8(rows, cache)
                    if not all(torch.equal(a, b[: rows.shape[0]]) for a, b in zip(fast, ref)):
                        cache = None
                        break
            except RuntimeError:
                cache = None
        object.__setattr__(self, "_fast_cache", cache)
        return cache

    def _codes_int8(self, H: torch.Tensor, fast: dict, *, last_only: bool = False
                    ) -> list[torch.Tensor]:
        n = H.shape[0]
        if n == 0:
            return [torch.zeros((0, d), dtype=torch.int8) for d in self.widths]
        sign = -1 if self.layers[0].odd else 1
        # layer 1, samples in columns: Z^T = C_1 X^T, a CSR product in float32
        Z = torch.sparse.mm(fast["first"], H.T.to(torch.float32).contiguous())
        # |fl32(x . c) - x . c| <= m for every row c of codes (see _first_layer_margin).
        # With the thresholds moved outwards by m and rounded outwards to float32,
        # Z > u + m means x . c > u for sure and Z <= u - m means x . c <= u (the same
        # for l): only entries between the two bounds are recomputed in float64
        m = self._first_layer_margin(H, fast["first_nnz"])
        u, l = fast["upper_0"], fast["lower_0"]
        above = Z > _round_f32(u + m, up=True)
        below = Z < _round_f32(l - m, up=False)
        close = (Z > _round_f32(u - m, up=False)).logical_xor_(above)
        close.logical_or_((Z < _round_f32(l + m, up=True)).logical_xor_(below))
        T = above.to(torch.int8)
        if sign > 0:
            T += below.to(torch.int8)
        else:
            T -= below.to(torch.int8)
        del Z, above, below
        neurons, samples = torch.nonzero(close, as_tuple=True)
        if len(neurons):
            T[neurons, samples] = self._first_layer_exact(H, neurons, samples, fast["first"])
        out, cols = [T], [True]  # codes, and whether they hold samples in columns
        for i, layer in enumerate(fast["layers"], start=1):
            odd = self.layers[i].odd
            if n <= _FEW_ROWS or layer["weight"] is None:
                # CSR product, samples in columns (exact: |Z| < 2^24)
                prev = out[-1] if cols[-1] else out[-1].T
                Z = torch.sparse.mm(layer["csr"], prev.to(torch.float32).contiguous())
                upper, lower, in_cols = layer["upper_col"], layer["lower_col"], True
            else:  # int8 x uint8 (zero point 1) in int32 by oneDNN, samples in rows
                x = (out[-1].T if cols[-1] else out[-1]).to(torch.uint8)
                x += 1
                Z = fast["qlinear"](x.contiguous(), 1.0, 1, layer["weight"], layer["w_scale"],
                                    layer["w_zero"], None, 1.0, 0, torch.float32, "none",
                                    [], "")
                upper, lower, in_cols = layer["upper"], layer["lower"], False
            cols.append(in_cols)
            T = (Z > upper).to(torch.int8)
            if odd:
                T -= (Z < lower).to(torch.int8)
            else:
                T += (Z < lower).to(torch.int8)
            out.append(T)
            if last_only:
                del out[0], cols[0]
        return [T.T.contiguous() if c else T for T, c in zip(out, cols)]

    @staticmethod
    def _first_layer_margin(H: torch.Tensor, k: int) -> float:
        """A bound ``m`` on ``|fl32(x . c) - x . c|`` over the samples ``x`` (rows of
        ``H``, float64) and the code rows ``c`` (at most ``k`` non-zeros in {-1, 1}).

        Rounding ``x`` to float32 moves each term by at most ``u |x_j|`` (``u = 2^-24``),
        the products by ±1 are exact, and a float32 sum of ``k`` terms in any order (or
        tree, with or without fused multiply-adds) is off by at most
        ``(k - 1) u / (1 - (k - 1) u)`` times the sum of their magnitudes, which is at
        most ``sqrt(k) ||x||_2`` (Cauchy-Schwarz over the ``k`` terms). So
        ``m = 1.01 (k + 1) u sqrt(k) max_x ||x||_2`` bounds the error whenever
        ``(k + 1) u < 0.005``; beyond that (rows of over 80,000 non-zeros) the margin is
        infinite and every entry is recomputed in float64.
        """
        if (k + 1) * 2.0 ** -24 >= 0.005:
            return math.inf
        norm = math.sqrt(float(torch.einsum("ij,ij->i", H, H).max()))
        return 1.01 * (k + 1) * 2.0 ** -24 * math.sqrt(k) * norm

    def _first_layer_exact(self, H: torch.Tensor, neurons: torch.Tensor, samples: torch.Tensor,
                           csr: torch.Tensor) -> torch.Tensor:
        """Codes of layer 1 at the entries ``(neurons[i], samples[i])`` recomputed in
        float64 from the CSR codes: the entries whose float32 value may be on the wrong
        side of a threshold."""
        crow = csr.crow_indices().to(torch.int64)
        starts = crow[neurons]
        counts = crow[neurons + 1] - starts
        seg = torch.repeat_interleave(torch.arange(len(neurons)), counts)
        offsets = torch.cumsum(counts, 0) - counts
        pos = starts[seg] + torch.arange(int(counts.sum())) - offsets[seg]
        cols = csr.col_indices().to(torch.int64)[pos]
        terms = H[samples[seg], cols] * csr.values()[pos].to(torch.float64)
        z = torch.zeros(len(neurons), dtype=torch.float64).index_add_(0, seg, terms)
        sign = -1 if self.layers[0].odd else 1
        return ((z > self.upper_0[neurons]).to(torch.int8)
                + sign * (z < self.lower_0[neurons]).to(torch.int8))

    def runtime_bytes(self) -> dict[str, int]:
        """Bytes held for inference: the packed codes, the ternary engine's operands once
        built (index arrays, bit planes, thresholds; :meth:`ternary_engine`), and the int8
        path's once built (CSR codes of every layer, int8 codes of the layers ℓ ≥ 2 that
        oneDNN multiplies, counted at one byte per weight, and thresholds); 0 for a path
        not built."""
        packed = sum(getattr(self, f"packed_{i}").numel() for i in range(self.depth))
        engine = self.__dict__.get("_ternary_engine")
        fast = self.__dict__.get("_fast_cache") or None
        extra = 0
        if fast is not None:
            extra = _csr_bytes(fast["first"]) + 2 * 8 * self.widths[0]
            for i, layer in enumerate(fast["layers"], start=1):
                int8 = 0 if layer["weight"] is None else self.widths[i] * self.widths[i - 1]
                extra += _csr_bytes(layer["csr"]) + int8 + 4 * 4 * self.widths[i] + 12 * self.widths[i]
        return {"packed": packed, "ternary engine": 0 if engine is None else engine.nbytes(),
                "int8 path": extra}

    def features(self, X: Any, *, backend: str = "auto") -> torch.Tensor:
        r"""Last-layer features :math:`\Sigma_L`, shape (n, d_L), float64 (``backend`` as
        in :meth:`activation_codes`)."""
        T = self._codes(X, backend, last_only=True)[-1].to(torch.float64)
        act = self.layers[-1]
        return (act.scale * T - self.centres[-1]) / math.sqrt(self.widths[-1])

    def forward(self, X: Any, *, backend: str = "auto") -> torch.Tensor:
        """Output ``f(x_i) = w^T Sigma_L(x_i)``, shape (n,), float64 (``backend`` as in
        :meth:`activation_codes`)."""
        if self._backend(backend) == "ternary":
            return torch.from_numpy(self.ternary_engine().outputs(self._check_input_array(X)))
        return self.features(X, backend=backend) @ self.readout.to(torch.float64)

    def to_reference(self, dtype: torch.dtype = torch.float64) -> Any:
        """The unpacked reference: a :class:`lossless.networks.MLP` with the same dense
        ternary weights, activations, τ_0 and readout."""
        from lossless import networks

        dtype = _checks.float_dtype(dtype)
        ref = networks.MLP(self.p, self.widths, list(self.layers), self.tau0, weights="ternary",
                           sparsity=self.sparsity, generator=torch.Generator().manual_seed(0),
                           dtype=dtype)
        with torch.no_grad():
            for i, W in enumerate(ref.hidden):
                W.copy_(self.weights(i, dtype))
            ref.readout.copy_(self.readout.to(dtype))
        return ref

    # -- persistence -------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything :meth:`save` writes (plain types, the 2-bit packed codes as uint8
        tensors and the float32 readout; the file holds the codes entropy-coded)."""
        return {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "p": self.p,
            "widths": list(self.widths),
            "tau0": self.tau0,
            "sparsity": self.sparsity,
            "layers": [{"s_minus": a.s_minus, "s_plus": a.s_plus, "scale": a.scale,
                        "odd": a.odd} for a in self.layers],
            "packed": [getattr(self, f"packed_{i}") for i in range(self.depth)],
            "readout": self.readout,
        }

    def to_bytes(self) -> bytes:
        """The bytes :meth:`save` writes.

        Layout (format version 3): the line ``lossless.CompressedMLP``, one line of JSON
        ``{"format", "version", "payload_bytes", "sha256"}``, then the payload: one line of
        JSON metadata (``p``, ``widths``, ``tau0``, ``sparsity``, the thresholds and scales
        of ``layers``, the codec, and the shape and byte count of every section), then each
        layer's weight codes entropy-coded by :func:`lossless.ternary_codec.encode_ternary`
        (ANS, within 0.1 % of the codes' entropy bound), then the fp32 readout. The
        SHA-256 of the payload lets :meth:`load` refuse a corrupted or truncated file.
        Files of version 2 (2-bit codes in a ``torch.save``) are still read.
        """
        codes = [self.codes(i).numpy() for i in range(self.depth)]
        return _pack_file(_encode_payload(self.state(), codes))

    def save(self, path: str | Path) -> int:
        """Write the model to ``path``; returns the number of bytes written."""
        path = _check_path(path)
        data = self.to_bytes()
        path.write_bytes(data)
        return len(data)

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = "<bytes>") -> "CompressedMLP":
        """Rebuild a model from :meth:`to_bytes` (``source`` names it in error messages).

        Raises
        ------
        ValueError
            Not a saved CompressedMLP, an unknown format version, a truncated or corrupted
            payload (size or SHA-256 mismatch), or a state that fails the range checks
            (finite values, codes in {0, 1, 2}, shapes consistent with ``p`` and
            ``widths``); the message names ``source``.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes, got {_checks.describe(data)}")
        data = bytes(data)
        where = f"{source!r}" if source != "<bytes>" else "data"
        version, payload = _unpack_file(data, where)
        if version == 2:
            try:
                state = torch.load(io.BytesIO(payload), weights_only=True)
            except Exception as err:  # noqa: BLE001 - any unpickling failure means bad file
                raise ValueError(f"{where} is not a saved CompressedMLP: its payload does not "
                                 f"load ({err})") from None
        else:
            try:
                state = _decode_payload(payload)
            except (TypeError, ValueError) as err:
                raise ValueError(f"{where} is not a valid CompressedMLP file: {err}") from None
            if state.get("version") != version:
                raise ValueError(f"{where} is not a valid CompressedMLP file: its metadata "
                                 f"says version {state.get('version')!r}, its header {version}")
        shapes = state.pop("_shapes", None) if version == 3 else None
        try:
            net = cls._from_state(state)
        except (TypeError, ValueError, KeyError) as err:
            raise ValueError(f"{where} holds an invalid CompressedMLP state: {err}") from None
        dims = [net.p, *net.widths]
        expected = [(dims[i + 1], dims[i]) for i in range(net.depth)]
        if shapes is not None and shapes != expected:
            raise ValueError(f"{where} holds an invalid CompressedMLP state: its code sections "
                             f"have shapes {shapes}, p and widths need {expected}")
        return net

    @classmethod
    def _from_state(cls, state: Any) -> "CompressedMLP":
        if not isinstance(state, dict):
            raise TypeError(f"the state must be a dict, got {type(state).__name__}")
        keys = {"format", "version", "p", "widths", "tau0", "sparsity", "layers", "packed",
                "readout"}
        missing = sorted(keys - set(state))
        if missing:
            raise ValueError(f"missing keys {missing}")
        if state["format"] != _FORMAT or state["version"] not in _READ_VERSIONS \
                or isinstance(state["version"], bool):
            raise ValueError(f"format {state['format']!r} version {state['version']!r}, "
                             f"expected {_FORMAT!r} version in {list(_READ_VERSIONS)}")
        layers_state = state["layers"]
        if not isinstance(layers_state, list):
            raise TypeError(f"layers must be a list, got {type(layers_state).__name__}")
        layers = []
        for i, d in enumerate(layers_state):
            if not isinstance(d, dict) or set(d) != {"s_minus", "s_plus", "scale", "odd"}:
                raise ValueError(f"layers[{i}] must be a dict with keys s_minus, s_plus, "
                                 f"scale, odd, got {_checks.describe(d)}")
            s_minus = _checks.real(d["s_minus"], f"layers[{i}].s_minus")
            s_plus = _checks.real(d["s_plus"], f"layers[{i}].s_plus")
            layers.append(activations.Ternary(
                s_minus, s_plus, _checks.positive(d["scale"], f"layers[{i}].scale"),
                _checks.flag(d["odd"], f"layers[{i}].odd")))
        readout = state["readout"]
        if not isinstance(readout, torch.Tensor) or readout.dtype != torch.float32 \
                or readout.ndim != 1:
            raise TypeError(f"readout must be a 1-D float32 tensor, got "
                            f"{_checks.describe(readout)}")
        if not isinstance(state["packed"], list):
            raise TypeError(f"packed must be a list, got {type(state['packed']).__name__}")
        return cls(state["p"], state["widths"], layers, state["tau0"],
                   sparsity=state["sparsity"], packed=state["packed"], readout=readout)

    @classmethod
    def load(cls, path: str | Path) -> "CompressedMLP":
        """Read a model written by :meth:`save` (format version 3, or 2 of older lossless).

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            If the file is not a saved CompressedMLP, has another format version, is
            truncated or corrupted (SHA-256 mismatch), or holds values that fail the range
            checks (see :meth:`from_bytes`); the message names the file.
        """
        path = _check_path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no saved CompressedMLP at {str(path)!r}")
        return cls.from_bytes(path.read_bytes(), source=str(path))

    # -- memory ------------------------------------------------------------------------
    def memory_bits(self) -> MemoryReport:
        """Actual storage of this model next to the bounds of :func:`memory_report`.

        Adds measured rows: the 2-bit packed codes held in memory; the size of what
        :meth:`save` writes (entropy-coded codes, fp32 readout, thresholds and the
        container's headers); the entropy-coded codes alone, next to the empirical entropy
        bound of these very codes (their own frequencies of 0, +1, −1); and, for
        comparison, the packed codes after zlib (deflate, level 9), a general-purpose
        compressor.
        """
        base = memory_report(self.p, self.widths, self.sparsity)
        packed_bytes = sum(getattr(self, f"packed_{i}").numel() for i in range(self.depth))
        deflated = sum(len(zlib.compress(getattr(self, f"packed_{i}").numpy().tobytes(), 9))
                       for i in range(self.depth))
        codes = [self.codes(i).numpy() for i in range(self.depth)]
        coded = sum(len(ternary_codec.encode_ternary(c)) for c in codes)
        empirical = sum(ternary_codec.entropy_bound_bits(c) for c in codes)
        rows = base.rows + (
            ("packed codes in memory (actual)", 8.0 * packed_bytes, "actual"),
            ("saved file incl. fp32 readout and headers (actual)", 8.0 * len(self.to_bytes()),
             "actual"),
            ("entropy-coded codes in the file (actual)", 8.0 * coded, "actual"),
            ("entropy bound of these codes (their own frequencies)", empirical, "bound"),
            ("packed codes + zlib deflate (actual)", 8.0 * deflated, "actual"),
        )
        return MemoryReport(n_weights=base.n_weights, sparsity=self.sparsity, rows=rows)

    def extra_repr(self) -> str:
        return (f"p={self.p}, widths={list(self.widths)}, sparsity={self.sparsity}, "
                f"tau0={self.tau0:.4g}, layers={list(self.layers)}")
