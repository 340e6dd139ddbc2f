"""Gaussian toolbox of the book: one-dimensional Gaussian quadrature split at the
breakpoints of an activation, signed Hermite coefficients and the Mehler series.

These are the three computations behind the Gaussian moments of
:mod:`lossless.activations` and the one-layer equivalent of :mod:`lossless.theory`,
exposed so that a chapter can check Stein's lemma (the book's lem-toolbox-stein,
eq-toolbox-moments), the Hermite expansion (lem-toolbox-hermite, eq-toolbox-zeta) and
Mehler's formula (lem-toolbox-mehler, eq-toolbox-mehler) independently of the closed
forms::

    from lossless import activations, toolbox
    relu = activations.get("relu")
    zeta = toolbox.hermite_coefficients(relu, tau=1.0, order=20)   # sigma(tau xi) = sum zeta_r He_r(xi)
    toolbox.mehler_series(zeta, zeta, 0.3)                         # E[sigma(u) sigma(v)], corr 0.3
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from lossless import _checks, _dual
from lossless.activations import Activation

__all__ = ["gaussian_quadrature", "gaussian_expectation", "hermite_coefficients", "mehler_series"]


def gaussian_quadrature(breakpoints: Sequence[float] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for ``E[f(xi)]``, ``xi ~ N(0, 1)``, exact for piecewise-smooth ``f``.

    Composite Gauss–Legendre on ``[-13, 13]`` (panels of width 0.5, 20 nodes each), with
    extra panel edges at ``breakpoints`` so that a kink or a jump of ``f`` falls on an
    edge; outside ``[-13, 13]`` the Gaussian weight is below ``1e-37``.

    Parameters
    ----------
    breakpoints : sequence of float, shape (B,)
        Points, in units of ``xi``, where ``f`` is not smooth (for ``f(xi) = sigma(tau xi)``
        these are ``r / tau`` for the breakpoints ``r`` of ``sigma``).

    Returns
    -------
    nodes, weights : ndarray, shape (M,)
        ``sum(weights * f(nodes))`` approximates ``E[f(xi)]``; ``weights`` include the
        standard normal density and sum to 1 up to ``1e-15``.

    Raises
    ------
    TypeError, ValueError
        ``breakpoints`` not a one-dimensional array of finite real numbers.
    """
    bp = _checks.real_array(breakpoints, "breakpoints", ndim=(0, 1), nonempty=False).ravel()
    nodes, weights = _dual.composite_nodes(bp[None, :])
    return nodes[0], weights[0]


def gaussian_expectation(func: Callable[[np.ndarray], Any], *,
                         breakpoints: Sequence[float] = ()) -> float:
    """``E[func(xi)]`` for ``xi ~ N(0, 1)`` by :func:`gaussian_quadrature`.

    Parameters
    ----------
    func : callable
        Vectorised function of ``xi`` (an ndarray of nodes in, same shape out).
    breakpoints : sequence of float
        Where ``func`` is not smooth, in units of ``xi``.

    Returns
    -------
    float

    Raises
    ------
    TypeError
        ``func`` not callable.
    ValueError
        ``func`` returns values of the wrong shape or not finite.
    """
    if not callable(func):
        raise TypeError(f"func must be a callable of xi, got {_checks.describe(func)}")
    nodes, weights = gaussian_quadrature(breakpoints)
    values = np.asarray(func(nodes), dtype=float)
    if values.shape != nodes.shape:
        raise ValueError(
            f"func must return an array of the shape of its input {nodes.shape}, got {values.shape}"
        )
    if not np.all(np.isfinite(values)):
        raise ValueError("func returned NaN or inf on the quadrature nodes (|xi| <= 13)")
    return float(weights @ values)


def hermite_coefficients(activation: Activation, tau: Any, order: int) -> np.ndarray:
    """Signed Hermite coefficients ``zeta_r`` of ``sigma(tau xi) = sum_r zeta_r He_r(xi)``
    (the book's lem-toolbox-hermite, eq-toolbox-zeta).

    ``zeta_r = E[sigma(tau xi) He_r(xi)] / r!`` with the probabilists' Hermite polynomials
    ``He_r``; so ``zeta_0 = m``, ``zeta_1 = tau g1``, ``zeta_2 = tau^2 g2 / 2`` and
    ``Var sigma(tau xi) = sum_{r >= 1} r! zeta_r^2`` (Parseval).

    Parameters
    ----------
    activation : Activation
        Any activation (its breakpoints split the quadrature).
    tau : float or array_like, shape (m,)
        Input scale(s), > 0 (one per sample when the samples have different norms).
    order : int
        Largest ``r``, between 0 and 170.

    Returns
    -------
    ndarray, shape (order + 1,) for a scalar ``tau``, (m, order + 1) for an array

    Raises
    ------
    TypeError
        ``activation`` not an :class:`~lossless.activations.Activation`; ``order`` not an
        integer.
    ValueError
        ``tau`` not positive and finite (every entry); ``order`` outside ``[0, 170]``.

    Notes
    -----
    Computed with normalised Hermite functions ``He_r / sqrt(r!)`` (stable recurrence)
    and composite Gauss–Legendre quadrature: for a ternary step, ``sqrt(r!) zeta_r``
    agrees with the closed form ``He_{r-1}(x) phi(x)`` (per jump) to about ``1e-15`` up to
    order 160 (see the tests).
    """
    if not isinstance(activation, Activation):
        raise TypeError(
            "activation must be a lossless.activations.Activation (activations.get(name)), "
            f"got {_checks.describe(activation)}"
        )
    scalar = np.ndim(tau) == 0
    if scalar:
        taus = np.array([_checks.positive(tau, "tau")])
    else:
        taus = _checks.real_array(tau, "tau", ndim=1, shape_hint="(m,)")
        if np.any(taus <= 0):
            raise ValueError(f"tau must be positive, got minimum {taus.min():g}")
    order = _checks.integer(order, "order", minimum=0, maximum=170)
    normalised, _ = _dual.numerical_hermite_coefficients(activation, taus, order)
    root_fact = np.sqrt([float(math.factorial(r)) for r in range(order + 1)])
    out = normalised / root_fact[None, :]
    return out[0] if scalar else out


def mehler_series(zeta_f: Any, zeta_g: Any, rho: Any) -> np.ndarray:
    """``sum_r r! zeta_r(f) zeta_r(g) rho^r``: ``E[f(u) g(v)]`` by Mehler's formula (the
    book's eq-toolbox-mehler; with ``f = g = sigma^c`` it is eq-toolbox-dual).

    For ``(u, v)`` standard Gaussians with correlation ``rho``, ``f(u) = sum zeta_r(f)
    He_r(u)`` and likewise ``g``, the series is exact when summed to infinity; here it
    is truncated at the length of the coefficient vectors (the tail is at most
    ``|rho|^(R+1)`` times the geometric mean of the two leftover energies).

    Parameters
    ----------
    zeta_f, zeta_g : array_like, shape (R + 1,)
        Hermite coefficients ``zeta_0..zeta_R`` (as from :func:`hermite_coefficients`).
    rho : float or array_like
        Correlations in ``[-1, 1]``.

    Returns
    -------
    ndarray, shape of ``rho``

    Raises
    ------
    ValueError
        Coefficient vectors of different lengths, or ``|rho| > 1``.
    """
    a = _checks.real_array(zeta_f, "zeta_f", ndim=1, shape_hint="(R + 1,)")
    b = _checks.real_array(zeta_g, "zeta_g", ndim=1, shape_hint="(R + 1,)")
    if a.shape != b.shape:
        raise ValueError(f"zeta_f and zeta_g must have one length, got {a.size} and {b.size}")
    rho = _checks.real_array(rho, "rho", nonempty=False)
    if np.any(np.abs(rho) > 1):
        raise ValueError(f"rho must lie in [-1, 1], got values up to {np.abs(rho).max():g}")
    fact = np.array([math.factorial(r) for r in range(a.size)], dtype=float)
    terms = fact * a * b
    return np.polynomial.polynomial.polyval(rho, terms)
