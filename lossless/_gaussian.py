"""Numerically careful Gaussian integrals shared by ``activations`` and ``kernels``.

Private helpers: standard normal densities and interval probabilities that keep their
relative accuracy in the tails, one-dimensional piecewise quadrature against the
Gaussian weight, probabilists' Hermite functions, and bivariate normal orthant
probabilities. Nothing here knows about activations.
"""

from __future__ import annotations

import math
import warnings
from typing import Callable

import numpy as np
from scipy import integrate, special

SQRT2 = math.sqrt(2.0)
SQRT2PI = math.sqrt(2.0 * math.pi)
INV_SQRT2PI = 1.0 / SQRT2PI


# ----------------------------------------------------------------------------------
# univariate
# ----------------------------------------------------------------------------------
def phi(u: np.ndarray | float) -> np.ndarray:
    """Standard normal density, 0 at +-inf (no warnings)."""
    u = np.asarray(u, dtype=float)
    with np.errstate(over="ignore", under="ignore"):
        return INV_SQRT2PI * np.exp(-0.5 * u * u)


def xphi(u: np.ndarray | float) -> np.ndarray:
    """``u * phi(u)`` with the limit 0 at +-inf."""
    u = np.asarray(u, dtype=float)
    out = np.zeros_like(u)
    finite = np.isfinite(u)
    out[finite] = u[finite] * phi(u[finite])
    return out


def interval_probability(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    """``P(a < xi < b)`` for ``xi ~ N(0, 1)``, relatively accurate also in the tails.

    Intervals inside one half-line are computed from the log tail probability of the
    end nearer to zero (no cancellation); intervals around zero from ``erf`` (a sum of
    two positive terms).
    """
    a, b = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    a = a.astype(float)
    b = b.astype(float)
    out = np.zeros(a.shape)
    straddle = (a < 0) & (b > 0)
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        out[straddle] = 0.5 * (special.erf(b[straddle] / SQRT2) - special.erf(a[straddle] / SQRT2))
        right = (a >= 0) & (b > a)
        # Q(a) - Q(b) = Q(a) (1 - exp(log Q(b) - log Q(a)))
        la = special.log_ndtr(-a[right])
        lb = special.log_ndtr(-b[right])
        out[right] = np.exp(la) * -np.expm1(lb - la)
        left = (b <= 0) & (b > a)
        # Phi(b) - Phi(a) = Phi(b) (1 - exp(log Phi(a) - log Phi(b)))
        la = special.log_ndtr(a[left])
        lb = special.log_ndtr(b[left])
        out[left] = np.exp(lb) * -np.expm1(la - lb)
    return out


def density_difference(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    """``phi(a) - phi(b)`` without cancellation (``a``, ``b`` may be infinite)."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    out = np.empty(a.shape)
    fa, fb = phi(a), phi(b)
    small_a = np.abs(a) <= np.abs(b)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        # |a| <= |b|: phi(a) (1 - exp((a^2 - b^2)/2)); otherwise -phi(b) (1 - exp((b^2 - a^2)/2))
        ea = -np.expm1(0.5 * (a - b) * (a + b))
        eb = -np.expm1(0.5 * (b - a) * (b + a))
        out = np.where(small_a, fa * ea, -fb * eb)
    inf = ~(np.isfinite(a) & np.isfinite(b))
    out[inf] = (fa - fb)[inf]
    return out


def truncated_moments(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``M_k = int_a^b xi^k phi(xi) d xi`` for ``k = 0, 1, 2`` (arrays of intervals)."""
    m0 = interval_probability(a, b)
    m1 = density_difference(a, b)
    m2 = m0 + xphi(a) - xphi(b)
    return m0, m1, m2


def gaussian_integral(
    g: Callable[[np.ndarray], np.ndarray], a: float, b: float, *, epsrel: float = 1e-13
) -> float:
    """``int_a^b g(xi) phi(xi) d xi`` by adaptive quadrature, relatively accurate in tails.

    The interval is split at 0; on a piece ``[a, b]`` with ``0 <= a`` the density is
    factored out, ``phi(a) int_0^{b-a} g(a + t) exp(-a t - t^2/2) dt``, so that pieces far
    in a tail keep their relative accuracy (no underflow before the final product).
    Pieces left of 0 are mirrored. ``g`` must accept NumPy arrays (it is called with
    scalars) and be smooth on ``(a, b)``.
    """
    a = float(a)
    b = float(b)
    if not a < b:
        return 0.0
    if a < 0.0 < b:
        return gaussian_integral(g, a, 0.0, epsrel=epsrel) + gaussian_integral(
            g, 0.0, b, epsrel=epsrel
        )
    if b <= 0.0:
        return gaussian_integral(lambda s: g(-s), -b, -a, epsrel=epsrel)
    scale = float(phi(a))
    if scale == 0.0:
        return 0.0
    length = b - a

    def integrand(t: float) -> float:
        return float(g(np.float64(a + t))) * math.exp(-a * t - 0.5 * t * t)

    # beyond t_star the weight exp(-a t - t^2/2) is below e^-40 of its value at t = 0
    t_star = -a + math.sqrt(a * a + 80.0)
    cuts = [0.0, min(length, t_star)]
    if length > t_star:
        cuts.append(length)
    total = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        for lo, hi in zip(cuts[:-1], cuts[1:]):
            val, _err = integrate.quad(integrand, lo, hi, epsabs=0.0, epsrel=epsrel, limit=400)
            total += val
    return scale * total


# ----------------------------------------------------------------------------------
# Hermite
# ----------------------------------------------------------------------------------
def hermite_gauss(n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Hermite nodes and weights for ``E[f(xi)]``, ``xi ~ N(0, 1)`` (weights sum to 1)."""
    x, w = np.polynomial.hermite_e.hermegauss(n_nodes)
    return x, w / SQRT2PI


def normalized_hermite_table(
    x: np.ndarray, order: int, weights: np.ndarray | None = None
) -> np.ndarray:
    """``He_k(x) / sqrt(k!)`` for ``k = 0..order`` times ``weights`` (stable recurrence).

    Parameters
    ----------
    x : ndarray, shape (...,)
    order : int
    weights : ndarray broadcastable to ``x``, optional
        Multiplies every row; passing ``sqrt`` of a quadrature weight keeps the values
        bounded for large ``x`` and ``order``.

    Returns
    -------
    ndarray, shape (order + 1, ...)
    """
    x = np.asarray(x, dtype=float)
    out = np.empty((order + 1,) + x.shape)
    out[0] = 1.0 if weights is None else weights
    if order >= 1:
        out[1] = x * out[0]
    for k in range(1, order):
        out[k + 1] = (x * out[k] - math.sqrt(k) * out[k - 1]) / math.sqrt(k + 1)
    return out


# ----------------------------------------------------------------------------------
# bivariate
# ----------------------------------------------------------------------------------
_GL_CACHE: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    if n not in _GL_CACHE:
        _GL_CACHE[n] = np.polynomial.legendre.leggauss(n)
    return _GL_CACHE[n]


def _bvn_lower_owen(h: np.ndarray, k: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """``P(xi < h, eta < k)`` by Owen's T function (1-D arrays of equal length)."""
    h = h + 0.0  # -0.0 -> +0.0 (the branch rule below needs the sign of zero right)
    k = k + 0.0
    out = np.empty(h.shape)
    both_zero = (h == 0) & (k == 0)
    out[both_zero] = 0.25 + np.arcsin(rho[both_zero]) / (2.0 * np.pi)
    one = rho >= 1.0
    out[one & ~both_zero] = special.ndtr(np.minimum(h, k))[one & ~both_zero]
    minus_one = rho <= -1.0
    sel = minus_one & ~both_zero
    out[sel] = np.maximum(special.ndtr(h[sel]) - special.ndtr(-k[sel]), 0.0)
    rest = ~(both_zero | one | minus_one)
    if np.any(rest):
        hr, kr, rr = h[rest], k[rest], rho[rest]
        omega = np.sqrt((1.0 - rr) * (1.0 + rr))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            ah = (kr - rr * hr) / (hr * omega)
            ak = (hr - rr * kr) / (kr * omega)
        beta = np.where((hr * kr > 0) | ((hr * kr == 0) & (hr + kr >= 0)), 0.0, 0.5)
        val = (
            0.5 * special.ndtr(hr)
            + 0.5 * special.ndtr(kr)
            - special.owens_t(hr, ah)
            - special.owens_t(kr, ak)
            - beta
        )
        out[rest] = np.clip(val, 0.0, 1.0)
    return out


def orthant_covariance(x: np.ndarray, y: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """``Cov(1[xi > x], 1[eta > y]) = P(xi > x, eta > y) - Q(x) Q(y)`` for corr ``rho``.

    Parameters
    ----------
    x : ndarray, shape (b, 1) (or broadcastable to ``rho``)
    y : ndarray, shape (1, c)
    rho : ndarray, shape (b, c)
        Correlations in ``[-1, 1]``.

    Returns
    -------
    ndarray, shape (b, c)

    Notes
    -----
    For ``|rho| < 0.925`` Plackett's identity in the form of Drezner–Wesolowsky/Genz,
    ``(1/2pi) int_0^{asin rho} exp(-(x^2 + y^2 - 2 x y sin t) / (2 cos^2 t)) dt``, by
    Gauss–Legendre with 6, 12 or 20 nodes according to the largest ``|rho|`` (about
    1e-15 absolute); for larger ``|rho|`` Owen's T function. The covariance, not the
    probability, is returned so that small correlations keep their relative accuracy.
    """
    rho = np.asarray(rho, dtype=float)
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if not np.any(x) and not np.any(y):
        return np.arcsin(rho) / (2.0 * np.pi)
    out = np.empty(rho.shape)
    small = np.abs(rho) < 0.925
    all_small = bool(small.all())
    if all_small:
        hs = 0.5 * (x * x + y * y)
        hk = x * y
        rs = rho
    else:
        xb, yb = np.broadcast_arrays(x, y, rho)[:2]
        hs = 0.5 * (xb[small] ** 2 + yb[small] ** 2)
        hk = xb[small] * yb[small]
        rs = rho[small]
    if rs.size:
        hs, hk = np.broadcast_arrays(hs, hk, rs)[:2]
        rmax = float(np.max(np.abs(rs)))
        n_nodes = 6 if rmax < 0.3 else (12 if rmax < 0.75 else 20)
        t, w = _legendre(n_nodes)
        asr = np.arcsin(rs)
        acc = np.zeros(rs.shape)
        sn = np.empty(rs.shape)
        tmp = np.empty(rs.shape)
        with np.errstate(under="ignore"):
            for tg, wg in zip(t, w):
                np.multiply(asr, 0.5 * (tg + 1.0), out=sn)
                np.sin(sn, out=sn)
                np.multiply(sn, hk, out=tmp)
                tmp -= hs
                np.multiply(sn, sn, out=sn)
                np.subtract(1.0, sn, out=sn)
                np.divide(tmp, sn, out=tmp)
                np.exp(tmp, out=tmp)
                tmp *= wg
                acc += tmp
        acc *= asr
        acc *= 0.25 / np.pi  # (asin rho / 2) / (2 pi)
        if all_small:
            return acc
        out[small] = acc
    big = ~small
    xb, yb = np.broadcast_arrays(x, y, rho)[:2]
    xs, ys = xb[big], yb[big]
    prob = _bvn_lower_owen(-xs, -ys, rho[big])
    out[big] = prob - special.ndtr(-xs) * special.ndtr(-ys)
    return out
