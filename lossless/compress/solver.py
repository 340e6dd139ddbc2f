"""Solving one layer's moment equations for a two-threshold ternary activation: the
closed-form Gaussian moments of the family, the matched-ratio curve, the candidates and
:func:`solve_layer` (the book's compression chapter, eq-compress-equations)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import brentq, minimize_scalar
from scipy.special import erfc

from lossless import _checks, activations
from lossless.activations import Activation, Moments


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
    tol = _checks.real(tol, "tol", low=0.0, high=1.0, low_open=True, high_open=True)
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
