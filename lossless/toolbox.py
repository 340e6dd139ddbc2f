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
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from lossless import _checks, _dual
from lossless.activations import Activation

__all__ = ["gaussian_quadrature", "gaussian_expectation", "hermite_coefficients", "mehler_series",
           "OrderTwoPieces", "order_two_pieces", "hermite_generating_bound"]


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
    with np.errstate(over="ignore", invalid="ignore"):
        terms = fact * a * b
        out = np.polynomial.polynomial.polyval(rho, terms)
    name, value = ("zeta_f", a) if np.max(np.abs(a)) >= np.max(np.abs(b)) else ("zeta_g", b)
    return _checks.no_overflow(out, name, value, "the series")


@dataclass(frozen=True)
class OrderTwoPieces:
    """The order-2 Mehler term of a one-layer CK, off the diagonal, split into its pieces.

    All matrices are ``(n, n)``, exactly symmetric, with zero diagonal; the book's
    chapter 2 (``02_gaussian_toolbox``), section "Why only orders 1, 2 and the total variance
    survive". With ``x_i = (mu_a + z_i)/sqrt(p)``, ``b_ij = z_i^T z_j / p`` and
    ``a_ij = (mu_a^T mu_b + mu_a^T z_j + mu_b^T z_i) / p``, so that
    ``x_i^T x_j = a_ij + b_ij``:

    Attributes
    ----------
    total : ndarray
        ``2 zeta_2(nu_i) zeta_2(nu_j) rho_ij^2 = (1/2) g2(nu_i) g2(nu_j) (x_i^T x_j)^2``.
    mean : ndarray
        ``(g2^2 / 2) T_ab / p`` (``g2`` at ``tau0``): the rank-k part the equivalent keeps.
    scale : ndarray
        ``(1/2)(g2(nu_i) g2(nu_j) - g2^2)(x_i^T x_j)^2``: the samples' scales ``nu_i``.
    noise : ndarray
        ``(g2^2/2)(b_ij^2 - T_ab/p)``: the centred noise part, nearly uncorrelated
        entries of size ``p^-1`` (norm ``O(p^-1/2)``, Wigner-like).
    means_squared : ndarray
        ``(g2^2/2)(mu_a^T mu_b)^2 / p^2``: rank ``<= k``, norm ``O(||mu||^4 / p)``.
    means_noise : ndarray
        ``(g2^2/2) 2 (mu_a^T mu_b) b_ij / p``: the noise Gram matrix weighted by the
        class means, norm ``O(||mu||^2 / p)``.
    cross : ndarray
        The rest of ``(g2^2/2)(a_ij^2 + 2 a_ij b_ij)``: terms with ``mu_a^T z_j``.
    """

    total: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    noise: np.ndarray
    means_squared: np.ndarray
    means_noise: np.ndarray
    cross: np.ndarray

    @property
    def centred(self) -> np.ndarray:
        """``total - mean``, which equals the sum of the five other pieces."""
        return self.total - self.mean


def _off_symmetric(A: np.ndarray) -> np.ndarray:
    A = 0.5 * (A + A.T)
    np.fill_diagonal(A, 0.0)
    return A


def order_two_pieces(sample: Any, activation: Activation) -> OrderTwoPieces:
    """Split the order-2 term of the one-layer CK of ``activation`` on ``sample``.

    The one-layer equivalent keeps only the mean ``(g2^2/2) T_ab / p`` of the order-2
    Mehler term ``(1/2) g2(nu_i) g2(nu_j) (x_i^T x_j)^2`` (off the diagonal). The rest is
    not structureless noise: besides the centred noise part (norm ``O(p^-1/2)``) it has
    pieces that depend on the class means, of norm ``O(||mu||^4 / p)`` and
    ``O(||mu||^2 / p)``, and a piece from the spread of the scales ``nu_i``
    (:class:`OrderTwoPieces`).

    Parameters
    ----------
    sample : lossless.data.Sample
        With its mixture (``M``, ``T``, ``Z`` and ``J`` are used).
    activation : Activation

    Returns
    -------
    OrderTwoPieces
    """
    from lossless.data import Sample

    if not isinstance(sample, Sample):
        raise TypeError(f"sample must be a lossless.data.Sample, got {_checks.describe(sample)}")
    if not isinstance(activation, Activation):
        raise TypeError("activation must be a lossless.activations.Activation, got "
                        f"{_checks.describe(activation)}")
    X, Z, J, p = sample.X, sample.Z, sample.J, sample.p
    if Z is None:
        raise ValueError("sample has no mixture: order_two_pieces needs the class means "
                         "and the noise (build the sample from a GaussianMixture)")
    gram = X @ X.T
    nu = np.sqrt(np.diag(gram))
    if np.any(nu <= 0):
        raise ValueError("every sample must have a positive norm")
    g2_nu = hermite_coefficients(activation, nu, 2)[:, 2] * 2.0 / nu**2   # g2 at each nu_i
    g2 = activation.moments(sample.tau0).g2
    c = g2**2 / 2.0
    mu = J @ sample.M.T                       # (n, p): the mean of each sample's class
    mm = mu @ mu.T / p                        # mu_a^T mu_b / p
    b = Z @ Z.T / p
    a = mm + (mu @ Z.T + Z @ mu.T) / p
    total = _off_symmetric(0.5 * np.outer(g2_nu, g2_nu) * gram**2)
    mean = _off_symmetric(c * (J @ sample.T @ J.T) / p)
    means_squared = _off_symmetric(c * mm**2)
    means_noise = _off_symmetric(c * 2.0 * mm * b)
    mean_part = _off_symmetric(c * (a**2 + 2.0 * a * b))
    noise = _off_symmetric(c * b**2) - mean
    scale = _off_symmetric(0.5 * (np.outer(g2_nu, g2_nu) - g2**2) * gram**2)
    cross = mean_part - means_squared - means_noise
    return OrderTwoPieces(total=total, mean=mean, scale=scale, noise=noise,
                          means_squared=means_squared, means_noise=means_noise, cross=cross)


def hermite_generating_bound(x: Any, t: float, order: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """Partial sums of ``sum_r |He_r(x)| t^r / r!`` and the majorant that dominates them.

    The proof of Mehler's formula (the book's lem-toolbox-mehler) exchanges an
    expectation with the double series of the Hermite generating function; dominated
    convergence justifies it with the bound

    ``sum_{r >= 0} |He_r(x)| t^r / r! <= E[exp(t (|x| + |Y|))] = 2 Phi(t) exp(t |x| + t^2 / 2)``

    for ``t >= 0``, from ``He_r(x) = E[(x + iY)^r]``, ``Y ~ N(0, 1)``, hence
    ``|He_r(x)| <= E[(|x| + |Y|)^r]``.

    Parameters
    ----------
    x : float or array_like, shape (m,)
    t : float
        ``t >= 0``.
    order : int, default 80
        Largest ``r`` of the partial sum, between 0 and 400.

    Returns
    -------
    partial : ndarray, shape of ``x``
        ``sum_{r <= order} |He_r(x)| t^r / r!`` (recurrence on ``He_r / r!``).
    majorant : ndarray, shape of ``x``
        ``2 Phi(t) exp(t |x| + t^2 / 2)``.
    """
    xs = _checks.real_array(x, "x")
    t = _checks.real(t, "t", low=0.0, high=20.0)
    order = _checks.integer(order, "order", minimum=0, maximum=400)
    h_prev, h = np.zeros_like(xs), np.ones_like(xs)       # He_{-1}/(-1)! := 0, He_0/0!
    partial = np.abs(h).copy()
    power = 1.0
    for r in range(order):
        h_prev, h = h, (xs * h - h_prev) / (r + 1)          # He_{r+1}/(r+1)!
        power *= t
        partial = partial + np.abs(h) * power
    majorant = 2.0 * 0.5 * math.erfc(-t / math.sqrt(2.0)) * np.exp(t * np.abs(xs) + t * t / 2)
    return partial, majorant
