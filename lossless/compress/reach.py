"""What the construction can and cannot reach: the share of the variance in Hermite orders 1
and 2, every path of roots through the layers, and the slope of the NTK diagonal (the
book's compression chapter, "The last layer")."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from lossless import _checks, activations
from lossless.activations import Activation, check_layers
from lossless.compress.solver import (
    MAX_STANDARDIZED_THRESHOLD,
    CompressionError,
    _label,
    _shape_moments,
    solve_layer,
)

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
    tau0 = _checks.input_scale(tau0, "tau0")
    tol = _checks.real(tol, "tol", low=0.0, high=1.0, low_open=True, high_open=True)
    max_paths = _checks.integer(max_paths, "max_paths", minimum=1)
    if isinstance(h_signs, (str, bytes)) or not isinstance(h_signs, Sequence) or not h_signs:
        raise ValueError(f"h_signs must be a non-empty sequence of 1 and -1, got {h_signs!r}")
    signs = []
    for s in h_signs:
        if isinstance(s, bool) or s not in (1, -1):
            raise ValueError(f"h_signs must contain only 1 and -1, got {h_signs!r}")
        signs.append(int(s))
    try:
        tau = activations.layer_scales(layers, tau0)
    except ValueError as err:  # a layer with no finite positive output variance
        raise CompressionError(str(err)) from None
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
