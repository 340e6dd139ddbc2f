"""Two-point Gaussian expectations of activations ("dual kernels"), block by block.

For samples with input scales ``nu_i = sqrt(K_ii)`` and correlations ``rho_ij`` (the
book's ν_i and ρ_ij; ``u = nu_i xi``, ``v = nu_j eta``, ``corr(xi, eta) = rho_ij``)
these objects return the entries of the book's eq-ckntk-ck-recursion:

- ``values``:      ``E[(sigma(u) - c) (sigma(v) - c)]``
- ``derivatives``: ``E[sigma'(u) sigma'(v)]`` (Stein/Price sense: jumps contribute their
  Gaussian density terms, finite off the diagonal),

on rectangular blocks of the n x n matrix, plus the diagonal (``u = v``). They are built
by ``Activation.dual(scales, centre=..., max_correlation=...)`` and used by
:mod:`lossless.kernels`; closed forms live in the classes below, the generic
Mehler–Hermite method in :class:`HermiteDual`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import special

from lossless import _gaussian as G

#: A :class:`lossless.activations.Activation` (not imported: that module builds these duals).
Activation = Any

Index = slice | np.ndarray


class AccuracyWarning(UserWarning):
    """A requested accuracy could not be certified."""


class DualExpectations:
    """Base class: per-sample scales and centring constant.

    Parameters
    ----------
    scales : ndarray, shape (n,)
        Standard deviations ``nu_i = sqrt(K_ii)`` (positive; the book's ν_i).
    centre : float
        Constant ``c`` subtracted from the activation in :meth:`values`.
    """

    def __init__(self, scales: np.ndarray, centre: float = 0.0) -> None:
        self.scales = np.asarray(scales, dtype=float)
        self.centre = float(centre)

    def values(self, rows: Index, cols: Index, rho: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def derivatives(
        self, rows: Index, cols: Index, rho: np.ndarray
    ) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def diagonal_values(self) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def diagonal_derivatives(self) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    #: a short description of the method, for reports
    method: str = ""


def _omega(rho: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum((1.0 - rho) * (1.0 + rho), 0.0))


# ----------------------------------------------------------------------------------
# piecewise linear (arc-cosine family, steps, ternary, piecewise constant)
# ----------------------------------------------------------------------------------
class PiecewiseLinearDual(DualExpectations):
    """Closed forms for ``sigma(t) = a0 + b0 t + sum_k (J_k 1[t > r_k] + D_k (t - r_k)_+)``.

    Every product of two basis functions (constant, linear, step, ramp) has a closed
    Gaussian expectation in terms of the orthant covariance
    ``Cov(1[xi > x], 1[eta > y])`` (:func:`lossless._gaussian.orthant_covariance`),
    ``A = phi(x) Q((y - rho x)/omega)``, ``B = phi(y) Q((x - rho y)/omega)`` and
    ``C = omega phi(x) phi((y - rho x)/omega)``, ``omega = sqrt(1 - rho^2)``;
    breakpoints at 0 reduce to the arc-sine/arc-cosine formulas (ReLU, leaky ReLU, abs,
    sign). The derivative kernel adds, for the jumps, the bivariate density
    ``phi2(x, y; rho) / (nu_i nu_j)`` and the mixed terms ``A / nu_i``, ``B / nu_j``.
    """

    method = "closed form (bivariate normal orthants, arc-cosine/arc-sine at 0)"

    def __init__(
        self, act: Any, scales: np.ndarray, centre: float = 0.0, max_correlation: float = 1.0
    ) -> None:
        super().__init__(scales, centre)
        s = self.scales
        self.a0 = float(act._intercepts[0])
        self.b0 = float(act._slopes[0])
        self.r = np.asarray(act._bp, dtype=float)
        self.J = np.asarray(act._jumps, dtype=float)
        self.D = np.diff(np.asarray(act._slopes, dtype=float))
        self.zero = self.r == 0.0
        self.x = self.r[:, None] / s[None, :]  # (B, n) standardized breakpoints
        self.Q = special.ndtr(-self.x)
        self.phi = G.phi(self.x)
        self.ER = self.phi - self.x * self.Q  # E[(xi - x)_+]
        # mean and E[xi g(s xi)] of the non-linear part g
        self.mean = self.a0 + np.sum(
            self.J[:, None] * self.Q + self.D[:, None] * s * self.ER, axis=0
        )
        self.H = np.sum(self.J[:, None] * self.phi + self.D[:, None] * s * self.Q, axis=0)
        self.has_jumps = bool(np.any(self.J != 0))
        self._act = act
        self._index = np.arange(s.size)
        self.series: HermiteDual | None = None
        if self.r.size and max_correlation < 1.0 and self._closed_cost(max_correlation) > 40:
            series = HermiteDual(
                act,
                s,
                centre,
                max_correlation,
                coefficients=self._exact_coefficients,
                fallback=self._fallback,
                max_order=256,
            )
            if 3 * (series.order + 1) < self._closed_cost(max_correlation):
                self.series = series
                self.method = (
                    f"Mehler series with exact coefficients ({series.order + 1} terms, |rho| <= "
                    f"{series.rho_cut:.3g}), closed form above"
                )

    def _closed_cost(self, rho_max: float) -> float:
        """Rough number of passes over a block for the closed-form values."""
        n_gl = 6 if rho_max < 0.3 else (12 if rho_max < 0.75 else 20)
        cost = 3.0
        for k in range(self.r.size):
            for l in range(self.r.size):
                if self.zero[k] and self.zero[l]:
                    cost += 4
                else:
                    cost += 10 * n_gl + 8
                if self.D[k] != 0 or self.D[l] != 0:
                    cost += 25
        return cost

    def _exact_coefficients(
        self, scales: np.ndarray, order: int, derivative: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact normalized Hermite coefficients of ``sigma(s xi)`` (values only)."""
        if derivative:  # pragma: no cover - derivatives use the closed form
            raise NotImplementedError
        order = max(int(order), 1)
        x = self.r[:, None] / scales[None, :]  # (B, m)
        table = G.normalized_hermite_table(x, order, weights=G.phi(x))  # (order + 1, B, m)
        Q = special.ndtr(-x)
        ph = G.phi(x)
        a = np.zeros((scales.size, order + 1))
        a[:, 0] = self.a0 + np.sum(
            self.J[:, None] * Q + self.D[:, None] * scales * (ph - x * Q), axis=0
        )
        a[:, 1] = self.b0 * scales + np.sum(
            self.J[:, None] * ph + self.D[:, None] * scales * Q, axis=0
        )
        if order >= 2:
            k = np.arange(2, order + 1)
            jt = np.einsum("b,kbm->mk", self.J, table[1:order]) / np.sqrt(k)[None, :]
            dt = (
                np.einsum("b,kbm->mk", self.D, table[0 : order - 1])
                * scales[:, None]
                / np.sqrt(k * (k - 1.0))[None, :]
            )
            a[:, 2:] = jt + dt
        second = self._second_moment(scales, 0.0)
        return a, second

    def _fallback(
        self, ri: np.ndarray, cj: np.ndarray, rho: np.ndarray, derivative: bool
    ) -> np.ndarray:
        if derivative:
            return self._closed_derivatives(ri, cj, rho)
        return self._closed_values(ri, cj, rho)

    def _grid(self, rows: Index, cols: Index) -> tuple[np.ndarray, np.ndarray]:
        return self._index[rows][:, None], self._index[cols][None, :]

    # -- pair terms
    def _terms(
        self, k: int, l: int, ri: np.ndarray, cj: np.ndarray, rho: np.ndarray, need: str
    ) -> dict:
        """Orthant quantities for breakpoint ``k`` of the row samples, ``l`` of the columns."""
        out: dict[str, Any] = {}
        if self.zero[k] and self.zero[l]:
            if "cov" in need:
                out["cov"] = np.arcsin(rho) / (2.0 * np.pi)
            if "A" in need or "B" in need:
                out["A"] = out["B"] = 0.5 * G.INV_SQRT2PI
            if "C" in need:
                out["C"] = _omega(rho) / (2.0 * np.pi)
            if "p" in need:
                om = _omega(rho)
                with np.errstate(divide="ignore"):
                    out["p"] = 1.0 / (2.0 * np.pi * om)
            out["x"] = 0.0
            out["y"] = 0.0
            return out
        x = self.x[k][ri]
        y = self.x[l][cj]
        out["x"], out["y"] = x, y
        if "cov" in need:
            out["cov"] = G.orthant_covariance(x, y, rho)
        if any(t in need for t in "ABCp"):
            om = _omega(rho)
            safe = np.maximum(om, 1e-300)
            with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
                yx = (y - rho * x) / safe
                phix = self.phi[k][ri]
                if "A" in need:
                    out["A"] = phix * special.ndtr(-yx)
                if "B" in need:
                    xy = (x - rho * y) / safe
                    out["B"] = self.phi[l][cj] * special.ndtr(-xy)
                dens = phix * G.phi(yx)
                if "C" in need:
                    out["C"] = om * dens
                if "p" in need:
                    p = dens / safe
                    degenerate = om == 0
                    if np.any(degenerate):
                        same = np.broadcast_to(np.abs(y - rho * x) == 0, rho.shape)
                        p = np.where(degenerate, np.where(same, np.inf, 0.0), p)
                    out["p"] = p
        return out

    def values(self, rows: Index, cols: Index, rho: np.ndarray) -> np.ndarray:
        if self.series is not None:
            return self.series.values(rows, cols, rho)
        return self._closed_values(*self._grid(rows, cols), rho)

    def derivatives(self, rows: Index, cols: Index, rho: np.ndarray) -> np.ndarray:
        return self._closed_derivatives(*self._grid(rows, cols), rho)

    def _closed_values(self, ri: np.ndarray, cj: np.ndarray, rho: np.ndarray) -> np.ndarray:
        s = self.scales
        si = s[ri]
        sj = s[cj]
        c = self.centre
        out = (self.mean[ri] - c) * (self.mean[cj] - c)
        if self.b0 != 0.0:
            out = out + self.b0**2 * si * sj * rho
            out += self.b0 * rho * (si * self.H[cj] + sj * self.H[ri])
        nb = self.r.size
        for k in range(nb):
            for l in range(nb):
                Jk, Jl, Dk, Dl = self.J[k], self.J[l], self.D[k], self.D[l]
                need = "cov"
                if Dk != 0 or Dl != 0:
                    need += "AB"
                if Dk != 0 and Dl != 0:
                    need += "C"
                t = self._terms(k, l, ri, cj, rho, need)
                cov = t["cov"]
                if Jk != 0 and Jl != 0:
                    out = out + (Jk * Jl) * cov
                if Dk == 0 and Dl == 0:
                    continue
                x, y = t["x"], t["y"]
                A, B = t["A"], t["B"]
                Qx = self.Q[k][ri]
                Qy = self.Q[l][cj]
                px = self.phi[k][ri]
                py = self.phi[l][cj]
                dA = A - px * Qy  # A - phi(x) Q(y)
                dB = B - py * Qx
                if Jk != 0 and Dl != 0:  # Cov(S_x, R_y)
                    out += (Jk * Dl) * sj * (dB + rho * A - y * cov)
                if Dk != 0 and Jl != 0:  # Cov(R_x, S_y)
                    out += (Dk * Jl) * si * (dA + rho * B - x * cov)
                if Dk != 0 and Dl != 0:  # Cov(R_x, R_y)
                    L = cov + Qx * Qy
                    rr = rho * L + x * y * cov - y * dA - x * dB + t["C"] - px * py
                    out += (Dk * Dl) * si * sj * rr
        return out

    def _closed_derivatives(self, ri: np.ndarray, cj: np.ndarray, rho: np.ndarray) -> np.ndarray:
        s = self.scales
        si = s[ri]
        sj = s[cj]
        nb = self.r.size
        # slope part: E[s(u) s(v)], s = b0 + sum_k D_k 1[t > r_k]
        ms = self.b0 + np.sum(self.D[:, None] * self.Q, axis=0)
        out = ms[ri] * ms[cj] + np.zeros(rho.shape)
        for k in range(nb):
            for l in range(nb):
                Jk, Jl, Dk, Dl = self.J[k], self.J[l], self.D[k], self.D[l]
                need = ""
                if Dk != 0 and Dl != 0:
                    need += "cov"
                if Jk != 0 and Dl != 0:
                    need += "A"
                if Dk != 0 and Jl != 0:
                    need += "B"
                if Jk != 0 and Jl != 0:
                    need += "p"
                if not need:
                    continue
                t = self._terms(k, l, ri, cj, rho, need)
                if "cov" in need:
                    out += (Dk * Dl) * t["cov"]
                if "A" in need:  # delta(u - r_k) 1[v > r_l]
                    out += (Jk * Dl) * t["A"] / si
                if "B" in need:
                    out += (Dk * Jl) * t["B"] / sj
                if "p" in need:
                    out += (Jk * Jl) * t["p"] / (si * sj)
        if self.b0 != 0.0:
            for k in range(nb):
                if self.J[k] != 0:
                    out += (self.b0 * self.J[k]) * (self.phi[k][ri] / si + self.phi[k][cj] / sj)
        return out

    def diagonal_values(self) -> np.ndarray:
        return self._second_moment(self.scales, self.centre)

    def _second_moment(self, s: np.ndarray, centre: float) -> np.ndarray:
        """``E[(sigma(s xi) - centre)^2]`` for an array of scales."""
        a = np.asarray(self._act._intercepts, dtype=float) - centre
        b = np.asarray(self._act._slopes, dtype=float)
        x = self.r[:, None] / s[None, :]
        inf = np.full((1, s.size), np.inf)
        lo = np.vstack([-inf, x])
        hi = np.vstack([x, inf])
        m0, m1, m2 = G.truncated_moments(lo, hi)
        beta = b[:, None] * s[None, :]
        return np.sum(a[:, None] ** 2 * m0 + 2.0 * a[:, None] * beta * m1 + beta**2 * m2, axis=0)

    def diagonal_derivatives(self) -> np.ndarray:
        s = self.scales
        if self.has_jumps:
            return np.full(s.size, np.inf)
        b = np.asarray(self._act._slopes, dtype=float)
        nb = self.r.size
        lo = (
            np.vstack([np.full((1, s.size), -np.inf), self.x])
            if nb
            else np.full((1, s.size), -np.inf)
        )
        hi = (
            np.vstack([self.x, np.full((1, s.size), np.inf)])
            if nb
            else np.full((1, s.size), np.inf)
        )
        m0 = G.interval_probability(lo, hi)
        return np.sum(b[:, None] ** 2 * m0, axis=0)


# ----------------------------------------------------------------------------------
# erf, sin, cos
# ----------------------------------------------------------------------------------
class ErfDual(DualExpectations):
    """``E[erf(𝔰 u) erf(𝔰 v)] = (2/pi) asin(2 𝔰^2 K_ij / sqrt((1 + 2 𝔰^2 K_ii)(1 + 2 𝔰^2 K_jj)))``

    and ``E[sigma'(u) sigma'(v)] =
    (4 𝔰^2 / pi) / sqrt((1 + 2𝔰^2 K_ii)(1 + 2𝔰^2 K_jj) - 4 𝔰^4 K_ij^2)``,
    with the sharpness 𝔰 (fraktur s, ``sharpness``; the book's chapter "CK and NTK of
    deep fully-connected networks", section on steps).
    """

    method = "closed form (arc-sine)"

    def __init__(self, sharpness: float, scales: np.ndarray, centre: float = 0.0) -> None:
        super().__init__(scales, centre)
        self.b2 = float(sharpness) ** 2
        self.d = 1.0 + 2.0 * self.b2 * self.scales**2  # 1 + 2 𝔰^2 K_ii (b2 = 𝔰^2)

    def values(self, rows: Index, cols: Index, rho: np.ndarray) -> np.ndarray:
        s = self.scales
        num = (2.0 * self.b2) * np.multiply.outer(s[rows], s[cols]) * rho
        den = np.sqrt(np.multiply.outer(self.d[rows], self.d[cols]))
        out = (2.0 / np.pi) * np.arcsin(np.clip(num / den, -1.0, 1.0))
        return out + self.centre**2  # E[erf] = 0

    def derivatives(self, rows: Index, cols: Index, rho: np.ndarray) -> np.ndarray:
        s = self.scales
        k = np.multiply.outer(s[rows], s[cols]) * rho
        det = np.multiply.outer(self.d[rows], self.d[cols]) - 4.0 * self.b2**2 * k * k
        return (4.0 * self.b2 / np.pi) / np.sqrt(det)

    def diagonal_values(self) -> np.ndarray:
        z = 2.0 * self.b2 * self.scales**2
        return (2.0 / np.pi) * np.arcsin(z / (1.0 + z)) + self.centre**2

    def diagonal_derivatives(self) -> np.ndarray:
        return (4.0 * self.b2 / np.pi) / np.sqrt(1.0 + 4.0 * self.b2 * self.scales**2)


class TrigDual(DualExpectations):
    """``sin``/``cos`` of ``w t``: ``E[sin sin] = e^{-w^2 (K_ii + K_jj)/2} sinh(w^2 K_ij)``,
    ``E[cos cos] = e^{-w^2 (K_ii + K_jj)/2} cosh(w^2 K_ij)``."""

    method = "closed form (Gaussian characteristic function)"

    def __init__(
        self, frequency: float, is_cos: bool, scales: np.ndarray, centre: float = 0.0
    ) -> None:
        super().__init__(scales, centre)
        self.w2 = float(frequency) ** 2
        self.is_cos = bool(is_cos)
        self.e = np.exp(-0.5 * self.w2 * self.scales**2)  # E[cos(w u)]

    def _cc(self, rows: Index, cols: Index, rho: np.ndarray, hyper: str) -> np.ndarray:
        s = self.scales
        k = self.w2 * np.multiply.outer(s[rows], s[cols]) * rho
        ee = np.multiply.outer(self.e[rows], self.e[cols])
        if hyper == "sinh":
            return ee * np.sinh(k)
        return ee * np.cosh(k)

    def values(self, rows: Index, cols: Index, rho: np.ndarray) -> np.ndarray:
        c = self.centre
        if not self.is_cos:  # E[sin] = 0
            return self._cc(rows, cols, rho, "sinh") + c * c
        s = self.scales
        k = self.w2 * np.multiply.outer(s[rows], s[cols]) * rho
        ee = np.multiply.outer(self.e[rows], self.e[cols])
        # E[(cos u - c)(cos v - c)] = (e_i - c)(e_j - c) + e_i e_j (cosh k - 1)
        return np.multiply.outer(self.e[rows] - c, self.e[cols] - c) + ee * (
            2.0 * np.sinh(0.5 * k) ** 2
        )

    def derivatives(self, rows: Index, cols: Index, rho: np.ndarray) -> np.ndarray:
        return self.w2 * self._cc(rows, cols, rho, "sinh" if self.is_cos else "cosh")

    def diagonal_values(self) -> np.ndarray:
        c = self.centre
        x = self.w2 * self.scales**2
        if not self.is_cos:
            return -0.5 * np.expm1(-2.0 * x) + c * c
        return 0.5 * (1.0 + np.exp(-2.0 * x)) - 2.0 * c * self.e + c * c

    def diagonal_derivatives(self) -> np.ndarray:
        x = self.w2 * self.scales**2
        if self.is_cos:
            return -0.5 * self.w2 * np.expm1(-2.0 * x)
        return 0.5 * self.w2 * (1.0 + np.exp(-2.0 * x))


# ----------------------------------------------------------------------------------
# generic: Mehler–Hermite series with per-sample coefficients
# ----------------------------------------------------------------------------------
_PANEL_WIDTH = 0.5
_PANEL_NODES = 20
_XI_MAX = 13.0


def composite_nodes(breaks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss–Legendre nodes for ``E[f(xi)]`` split at per-row breakpoints.

    Parameters
    ----------
    breaks : ndarray, shape (m, B)
        Breakpoints in units of ``xi`` for each of ``m`` rows (any values; those outside
        ``[-13, 13]`` are clipped, where the Gaussian weight is below 1e-37).

    Returns
    -------
    nodes, weights : ndarray, shape (m, M)
        Weights include the standard normal density.
    """
    breaks = np.atleast_2d(np.asarray(breaks, dtype=float))
    m = breaks.shape[0]
    base = np.arange(-_XI_MAX, _XI_MAX + 0.5 * _PANEL_WIDTH, _PANEL_WIDTH)
    edges = np.concatenate(
        [np.broadcast_to(base, (m, base.size)), np.clip(breaks, -_XI_MAX, _XI_MAX)], axis=1
    )
    edges.sort(axis=1)
    lo, hi = edges[:, :-1], edges[:, 1:]
    t, w = np.polynomial.legendre.leggauss(_PANEL_NODES)
    half = 0.5 * (hi - lo)
    mid = 0.5 * (hi + lo)
    nodes = (mid[:, :, None] + half[:, :, None] * t[None, None, :]).reshape(m, -1)
    weights = (half[:, :, None] * w[None, None, :]).reshape(m, -1) * G.phi(nodes)
    return nodes, weights


def _finite(act: Activation, vals: np.ndarray, derivative: bool) -> np.ndarray:
    """``vals`` if finite; else ValueError naming the activation (no silent NaN kernels)."""
    vals = np.asarray(vals, dtype=float)
    if not np.all(np.isfinite(vals)):
        bad = int(np.count_nonzero(~np.isfinite(vals)))
        what = "derivative" if derivative else "values"
        raise ValueError(
            f"{act!r} returned {bad} non-finite {what} (NaN or inf) at the quadrature nodes "
            "of its dual kernel (|t| up to 13 times the input scale)"
        )
    return vals


def numerical_hermite_coefficients(
    act: Activation, scales: np.ndarray, order: int, *, derivative: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``a_k(s) = E[f(s xi) He_k(xi)] / sqrt(k!)`` and ``E[f(s xi)^2]`` by quadrature.

    ``f`` is the activation (or its a.e. derivative); composite Gauss–Legendre on
    ``[-13, 13]`` split at the activation's breakpoints.

    Returns
    -------
    coefficients : ndarray, shape (len(scales), order + 1)
    second_moment : ndarray, shape (len(scales),)
    """
    scales = np.asarray(scales, dtype=float)
    bp = np.asarray(act.breakpoints, dtype=float)
    func = act._numpy_derivative if derivative else act._numpy
    out = np.empty((scales.size, order + 1))
    second = np.empty(scales.size)
    chunk = max(1, 4_000_000 // ((order + 1) * 1200))
    if bp.size == 0:
        nodes, weights = composite_nodes(np.zeros((1, 0)))
        table = G.normalized_hermite_table(nodes[0], order)  # (order + 1, M)
        for start in range(0, scales.size, 256):
            sl = slice(start, start + 256)
            with np.errstate(over="ignore", under="ignore"):
                vals = _finite(act, func(scales[sl, None] * nodes), derivative)
            out[sl] = (vals * weights) @ table.T
            second[sl] = (vals * vals * weights).sum(axis=1)
        return out, second
    for start in range(0, scales.size, chunk):
        sl = slice(start, start + chunk)
        nodes, weights = composite_nodes(bp[None, :] / scales[sl, None])
        with np.errstate(over="ignore", under="ignore"):
            vals = _finite(act, func(scales[sl, None] * nodes), derivative)
        table = G.normalized_hermite_table(nodes, order)  # (order + 1, m, M)
        out[sl] = np.einsum("kmg,mg->mk", table, vals * weights)
        second[sl] = (vals * vals * weights).sum(axis=1)
    return out, second


class HermiteDual(DualExpectations):
    """Generic dual kernels by the Mehler expansion with per-sample coefficients.

    ``E[f_i(u) f_j(v)] = sum_k a_k(i) a_k(j) rho_ij^k`` with
    ``a_k(i) = E[f(nu_i xi) He_k(xi)] / sqrt(k!)`` (``f = sigma - c`` or ``sigma'``; the
    book's Mehler formula, eq-toolbox-mehler and eq-equiv-mehler).

    Truncation is chosen so that, for every pair with ``|rho_ij| <= rho_cut``, the
    neglected tail is at most ``rtol * sqrt(D_i D_j)`` (``D_i = E[f(nu_i xi)^2]``), by
    Cauchy–Schwarz and Parseval: the tail of sample ``i`` beyond order ``N`` is bounded
    by ``sum_{N < k <= Nmax} a_k(i)^2 |rho|^k + (D_i - sum_{k <= Nmax} a_k(i)^2)
    |rho|^{Nmax + 1}``. The number of computed coefficients ``Nmax`` doubles (from 32 up
    to ``max_order``) until the bound holds at the largest off-diagonal correlation;
    if it cannot, ``rho_cut`` is lowered to what the series certifies and the pairs
    above it are computed by ``fallback`` (by default a direct two-dimensional
    quadrature, composite Gauss–Legendre x Gauss–Hermite). For an activation with jumps
    the derivative coefficients come from Stein's identity
    ``E[sigma'(s xi) He_k(xi)] = E[sigma(s xi) He_{k+1}(xi)] / s`` (the jump densities
    included); there ``D_i = inf`` and the tail beyond ``Nmax`` is extrapolated from the
    last 16 coefficients (a heuristic, not a bound), relative to
    ``sum_k a_k(i)^2 rho_max^k``.

    Parameters
    ----------
    act : Activation
    scales : ndarray, shape (n,)
    centre : float
    max_correlation : float
    rtol : float
        Relative truncation tolerance (default 1e-12).
    max_order : int
        Largest number of coefficients (default 1024).
    coefficients : callable, optional
        ``coefficients(scales, order, derivative) -> (a (m, N+1), E[f^2] (m,))``: exact
        normalized coefficients (polynomials, piecewise-linear functions).
    fallback : callable, optional
        ``fallback(ri, cj, rho, derivative) -> values`` for index arrays ``ri``, ``cj`` and
        correlations ``rho`` of equal shape (1-D): the pairs beyond ``rho_cut``.

    Attributes
    ----------
    order : int
        Number of series terms used for the values.
    rho_cut : float
        Pairs with ``|rho|`` above it use ``fallback``.
    """

    method = "Mehler–Hermite series with per-sample coefficients"

    def __init__(
        self,
        act: Activation,
        scales: np.ndarray,
        centre: float = 0.0,
        max_correlation: float = 1.0,
        *,
        rtol: float = 1e-12,
        max_order: int = 1024,
        coefficients: Any = None,
        fallback: Any = None,
    ) -> None:
        super().__init__(scales, centre)
        self._act = act
        self.rtol = float(rtol)
        self.max_order = int(max_order)
        self.max_correlation = float(min(max(max_correlation, 0.0), 1.0))
        uniq, inverse = np.unique(self.scales, return_inverse=True)
        self._uniq, self._inverse = uniq, inverse
        self._coefficient_fn = coefficients
        self._fallback = fallback if fallback is not None else self._direct
        a, d, order, cut = self._build("values")
        self._a = np.ascontiguousarray(a[:, : order + 1].T)  # (order + 1, n_unique)
        self._d_val = d
        self.order, self.rho_cut = order, cut
        self._deriv: tuple | None = None

    # -- coefficients and truncation
    def _raw_coefficients(self, order: int, derivative: bool) -> tuple[np.ndarray, np.ndarray]:
        if self._coefficient_fn is not None:
            return self._coefficient_fn(self._uniq, order, derivative)
        return numerical_hermite_coefficients(self._act, self._uniq, order, derivative=derivative)

    def _raw(self, kind: str, order: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
        """Coefficients, D, missing energy, heuristic flag for ``kind`` up to ``order``."""
        act = self._act
        if kind == "values":
            a, second = self._raw_coefficients(order, False)
            a = a.copy()
            a[:, 0] -= self.centre
            c = self.centre
            d = np.maximum(second - 2.0 * c * (a[:, 0] + c) + c * c, 0.0)
            return a, d, np.maximum(d - np.sum(a * a, axis=1), 0.0), False
        if act.has_jumps and self._coefficient_fn is None:
            a, _second = self._raw_coefficients(order + 1, False)
            k = np.arange(1, a.shape[1])
            b = a[:, 1:] * np.sqrt(k)[None, :] / self._uniq[:, None]
            return b, np.full(self._uniq.size, np.inf), np.zeros(self._uniq.size), True
        b, second = self._raw_coefficients(order, True)
        if act.has_jumps:  # exact coefficients (with the jump densities), infinite energy
            return b, np.full(self._uniq.size, np.inf), np.zeros(self._uniq.size), True
        return b, second, np.maximum(second - np.sum(b * b, axis=1), 0.0), False

    def _bound(
        self, a: np.ndarray, d: np.ndarray, missing: np.ndarray, rho: float, heuristic: bool
    ) -> np.ndarray:
        """Largest relative tail over samples for every truncation order, shape (Nmax + 1,)."""
        nmax = a.shape[1] - 1
        powers = rho ** np.arange(nmax + 1)
        terms = a * a * powers[None, :]
        rev = np.cumsum(terms[:, ::-1], axis=1)[:, ::-1]
        tail = np.concatenate([rev[:, 1:], np.zeros((a.shape[0], 1))], axis=1)
        if heuristic:
            last = np.mean(a[:, -16:] ** 2, axis=1)
            tail = tail + (last * rho ** (nmax + 1) / max(1.0 - rho, 1e-300))[:, None]
            scale = np.sum(terms, axis=1)
        else:
            tail = tail + (missing * rho ** (nmax + 1))[:, None]
            scale = d
        scale = np.where(scale > 0, scale, 1.0)
        return (tail / scale[:, None]).max(axis=0)

    def _build(self, kind: str) -> tuple[np.ndarray, np.ndarray, int, float]:
        rho = self.max_correlation
        order = 32
        while True:
            a, d, missing, heuristic = self._raw(kind, order)
            bound = self._bound(a, d, missing, rho, heuristic)
            ok = np.nonzero(bound <= self.rtol)[0]
            if ok.size:
                return a, d, int(ok[0]), rho
            exact = self._coefficient_fn is not None and not heuristic and np.all(missing == 0)
            if order >= self.max_order or exact:
                break
            order = min(2 * order, self.max_order)
        # the series cannot reach rho: largest rho_cut it certifies with all terms
        lo, hi = 0.0, rho
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if self._bound(a, d, missing, mid, heuristic)[-1] <= self.rtol:
                lo = mid
            else:
                hi = mid
        nmax = a.shape[1] - 1
        ok = np.nonzero(self._bound(a, d, missing, lo, heuristic) <= self.rtol)[0]
        return a, d, int(ok[0]) if ok.size else nmax, lo

    def _derivative_setup(self) -> tuple:
        if self._deriv is None:
            b, d, order, cut = self._build("derivatives")
            self._deriv = (np.ascontiguousarray(b[:, : order + 1].T), d, order, cut)
        return self._deriv

    @property
    def derivative_order(self) -> int:
        """Number of series terms used for the derivative kernel."""
        return self._derivative_setup()[2]

    @property
    def derivative_rho_cut(self) -> float:
        """Correlation above which the derivative kernel uses ``fallback``."""
        return self._derivative_setup()[3]

    # -- evaluation
    @staticmethod
    def _horner(ai: np.ndarray, aj: np.ndarray, rho: np.ndarray) -> np.ndarray:
        """``sum_k ai[k, :, None] aj[k, None, :] rho^k`` (coefficients in rows)."""
        order = ai.shape[0] - 1
        out = np.multiply(ai[order][:, None], aj[order][None, :])
        if order == 0:
            return out
        tmp = np.empty_like(out)
        for k in range(order - 1, -1, -1):
            out *= rho
            np.multiply(ai[k][:, None], aj[k][None, :], out=tmp)
            out += tmp
        return out

    def _series(
        self,
        coef: np.ndarray,
        cut: float,
        rows: Index,
        cols: Index,
        rho: np.ndarray,
        derivative: bool,
    ) -> np.ndarray:
        out = self._horner(coef[:, self._inverse[rows]], coef[:, self._inverse[cols]], rho)
        if cut < 1.0:
            high = np.abs(rho) > cut
            if np.any(high):
                ii, jj = np.nonzero(high)
                ri = np.arange(self.scales.size)[rows][ii]
                cj = np.arange(self.scales.size)[cols][jj]
                out[ii, jj] = self._fallback(ri, cj, rho[ii, jj], derivative)
        return out

    def values(self, rows: Index, cols: Index, rho: np.ndarray) -> np.ndarray:
        return self._series(self._a, self.rho_cut, rows, cols, rho, False)

    def derivatives(self, rows: Index, cols: Index, rho: np.ndarray) -> np.ndarray:
        b, _d, _order, cut = self._derivative_setup()
        return self._series(b, cut, rows, cols, rho, True)

    def diagonal_values(self) -> np.ndarray:
        return self._d_val[self._inverse]

    def diagonal_derivatives(self) -> np.ndarray:
        if self._act.has_jumps:
            return np.full(self.scales.size, np.inf)
        _b, d, _o, _c = self._derivative_setup()
        return d[self._inverse]

    def _direct(
        self, ri: np.ndarray, cj: np.ndarray, r: np.ndarray, derivative: bool
    ) -> np.ndarray:
        """Two-dimensional quadrature for the pairs ``(ri, cj)`` with correlations ``r``."""
        act = self._act
        if act.has_jumps:
            if derivative:
                warnings.warn(
                    f"derivative kernel of {act!r} (with jumps): {r.size} pairs with |correlation| above "
                    "what the series reaches are set to NaN",
                    AccuracyWarning,
                    stacklevel=4,
                )
                return np.full(r.size, np.nan)
            warnings.warn(
                f"{r.size} pairs with |correlation| > {self.rho_cut:.4f} for {act!r} (an activation "
                "with jumps) use 2-D quadrature; expect about 1e-6 accuracy there",
                AccuracyWarning,
                stacklevel=4,
            )
        si, sj = self.scales[ri], self.scales[cj]
        func = act._numpy_derivative if derivative else act._numpy
        c = 0.0 if derivative else self.centre
        bp = np.asarray(act.breakpoints, dtype=float)
        gh_x, gh_w = G.hermite_gauss(48)
        om = _omega(r)
        out = np.empty(r.size)
        step = 64
        for start in range(0, r.size, step):
            sl = slice(start, start + step)
            if bp.size:
                with np.errstate(divide="ignore", invalid="ignore"):
                    br = np.concatenate(
                        [
                            bp[None, :] / si[sl, None],
                            np.where(
                                r[sl, None] != 0, bp[None, :] / (sj[sl, None] * r[sl, None]), 0.0
                            ),
                        ],
                        axis=1,
                    )
            else:
                br = np.zeros((r[sl].size, 0))
            nodes, weights = composite_nodes(br)
            with np.errstate(over="ignore", under="ignore"):
                fi = func(si[sl, None] * nodes) - c  # (m, M)
                arg = sj[sl, None, None] * (
                    r[sl, None, None] * nodes[:, :, None] + om[sl, None, None] * gh_x[None, None, :]
                )
                inner = (func(arg) - c) @ gh_w  # (m, M)
            out[sl] = np.sum(weights * fi * inner, axis=1)
        return out
