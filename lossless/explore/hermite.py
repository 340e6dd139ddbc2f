"""The Gaussian toolbox chapter's explorer and widget: an activation's Hermite series
truncated at order N, and the one-layer kernel k(rho) against its truncated Mehler series.

The computation (:func:`hermite_truncation`) uses the package's own functions only:
:func:`lossless.toolbox.hermite_coefficients` for the signed coefficients ``zeta_r`` of
``sigma(tau xi) = sum_r zeta_r He_r(xi)`` (the book's eq-toolbox-zeta),
:func:`lossless.toolbox.mehler_series` for the truncated kernel (eq-toolbox-mehler,
eq-toolbox-dual) and :meth:`lossless.activations.Activation.dual` for the exact kernel
(closed forms for the piecewise-linear activations, the certified series with a direct
quadrature near ``|rho| = 1`` otherwise).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

import numpy as np

from lossless import _checks
from lossless.activations import Activation
from lossless.explore._vega import (ORIGINAL, OTHER, Explorer, _activation, _cache_key, _finish,
                                    _radio, _range, _select, cached_states, significant)

__all__ = ["HermiteTruncation", "hermite_truncation", "hermite_states", "hermite_explorer",
           "hermite_widget", "HERMITE_ACTIVATIONS", "HERMITE_ORDERS", "HERMITE_SCALES"]

#: The activations of the explorer (``ternary``: thresholds -0.4, 0.6, as in the chapter).
HERMITE_ACTIVATIONS = ("relu", "tanh", "sign", "ternary")
#: The truncation orders N of the explorer.
HERMITE_ORDERS = tuple(range(1, 21))
#: The input scales tau of the explorer.
HERMITE_SCALES = (0.5, 1.0, 2.0)
#: The range of xi drawn in the activation panel.
XI_RANGE = 3.0
#: Off-diagonal correlations of a high-dimensional kernel live in |rho| <= this (shaded).
SMALL_RHO = 0.1
#: Relative size below which a printed or stored number is rounding noise (shown as 0).
NOISE = 1e-12


# ---------------------------------------------------------------------------------
# the computation (also drawn by the live widget)


class HermiteTruncation(NamedTuple):
    """Everything the toolbox explorer draws (see :func:`hermite_truncation`).

    Attributes
    ----------
    name : str
        The activation's name.
    tau : float
        Input scale.
    order : int
        Truncation order ``N``.
    xi : ndarray, shape (G,)
        Grid on ``[-3, 3]``.
    values : ndarray, shape (G,)
        ``sigma(tau xi)``.
    truncated : ndarray, shape (G,)
        ``sum_{r <= N} zeta_r He_r(xi)``.
    rho : ndarray, shape (R,)
        Grid on ``[-1, 1]``.
    kernel : ndarray, shape (R,)
        Exact ``k(rho) = E[sigma^c(tau xi_1) sigma^c(tau xi_2)]``, ``sigma^c = sigma - m``
        (eq-toolbox-dual), from :meth:`Activation.dual`.
    kernel_truncated : ndarray, shape (R,)
        ``sum_{1 <= r <= N} r! zeta_r^2 rho^r`` (:func:`lossless.toolbox.mehler_series`).
    zeta : ndarray, shape (N + 1,)
        ``zeta_0 .. zeta_N`` (``zeta_0 = m``).
    variance : float
        ``v = Var sigma(tau xi) = k(1)``.
    kept : float
        ``sum_{1 <= r <= N} r! zeta_r^2``, the energy of the orders kept.
    low_order : float
        ``1! zeta_1^2 + 2! zeta_2^2 = tau^2 g1^2 + tau^4 g2^2 / 2``.
    """

    name: str
    tau: float
    order: int
    xi: np.ndarray
    values: np.ndarray
    truncated: np.ndarray
    rho: np.ndarray
    kernel: np.ndarray
    kernel_truncated: np.ndarray
    zeta: np.ndarray
    variance: float
    kept: float
    low_order: float

    @property
    def leftover(self) -> float:
        """``v - kept``: the energy beyond order ``N``; equal to ``k(1) - k_N(1)`` and to
        the mean-square error ``E[(sigma(tau xi) - sigma_N(xi))^2]`` (Parseval)."""
        return max(self.variance - self.kept, 0.0)

    @property
    def small_rho_gap(self) -> float:
        """``max |k - k_N|`` over ``|rho| <= 0.1``, where off-diagonal entries live."""
        small = np.abs(self.rho) <= SMALL_RHO + 1e-12
        return float(np.max(np.abs(self.kernel - self.kernel_truncated)[small]))


def _resolve(activation: Any) -> tuple[str, Activation]:
    if isinstance(activation, Activation):
        return activation.name, activation
    if not isinstance(activation, str):
        raise TypeError("activation must be one of the names "
                        f"{HERMITE_ACTIVATIONS} or an Activation, got "
                        f"{_checks.describe(activation)}")
    name = _checks.choice(activation, "activation", HERMITE_ACTIVATIONS)
    return name, _activation(name)


def hermite_truncation(activation: Any = "relu", order: int = 2, tau: float = 1.0, *,
                       grid_size: int = 121, rho_size: int = 81) -> HermiteTruncation:
    """An activation's Hermite series and its kernel's Mehler series, truncated at ``order``.

    Parameters
    ----------
    activation : str or Activation
        A name of :data:`HERMITE_ACTIVATIONS` (``ternary``: thresholds ``-0.4, 0.6``) or
        any :class:`~lossless.activations.Activation`.
    order : int
        Truncation order ``N``, between 0 and 170.
    tau : float
        Input scale, positive: the pre-activation is ``tau xi``.
    grid_size : int
        Points of the ``xi`` grid on ``[-3, 3]`` (at least 2, at most 10,001).
    rho_size : int
        Points of the ``rho`` grid on ``[-1, 1]`` (at least 2, at most 10,001).

    Returns
    -------
    HermiteTruncation

    Raises
    ------
    TypeError
        ``activation`` neither a name nor an Activation; ``order`` not an integer.
    ValueError
        Unknown name; ``order`` outside ``[0, 170]``; ``tau`` not positive and finite;
        grid sizes out of range.
    """
    from numpy.polynomial import hermite_e

    from lossless import toolbox

    name, act = _resolve(activation)
    order = _checks.integer(order, "order", minimum=0, maximum=170)
    tau = _checks.positive(tau, "tau")
    grid_size = _checks.integer(grid_size, "grid_size", minimum=2, maximum=10_001)
    rho_size = _checks.integer(rho_size, "rho_size", minimum=2, maximum=10_001)
    zeta = toolbox.hermite_coefficients(act, tau, order)
    xi = np.linspace(-XI_RANGE, XI_RANGE, grid_size)
    truncated = hermite_e.hermeval(xi, zeta)            # sum_{r <= N} zeta_r He_r(xi)
    rho = np.linspace(-1.0, 1.0, rho_size)
    centred = zeta.copy()
    centred[0] = 0.0                                    # sigma^c = sigma - m: no order 0
    kernel_truncated = toolbox.mehler_series(centred, centred, rho)
    moments = act.moments(tau)
    dual = act.dual(np.array([tau, tau]), centre=moments.m, max_correlation=1.0)
    kernel = dual.values(np.zeros(rho_size, dtype=int), np.array([1]), rho[:, None])[:, 0]
    fact = np.array([float(math.factorial(r)) for r in range(order + 1)])
    energy = fact * centred**2
    # the orders 1 and 2 whatever N (at N = 1 the order 2 is not among the kept ones)
    low = zeta if order >= 2 else toolbox.hermite_coefficients(act, tau, 2)
    low_order = float(low[1] ** 2 + 2.0 * low[2] ** 2)
    return HermiteTruncation(
        name=name, tau=tau, order=order, xi=xi, values=np.asarray(act(tau * xi), dtype=float),
        truncated=truncated, rho=rho, kernel=np.asarray(kernel, dtype=float),
        kernel_truncated=np.asarray(kernel_truncated, dtype=float), zeta=zeta,
        variance=float(moments.v), kept=float(energy.sum()), low_order=low_order,
    )


# ---------------------------------------------------------------------------------
# the explorer: a grid of states, drawn by Vega-Lite


def _clean(values: Any, scale: float) -> list:
    """Rounded to 4 significant digits, with summation noise (below ``NOISE`` times
    ``scale``) set to 0, so that the saved page does not depend on the machine."""
    arr = np.asarray(values, dtype=float)
    arr = np.where(np.abs(arr) < NOISE * scale, 0.0, arr)
    return significant(arr)


def _percent(x: float) -> str:
    return f"{100 * x:.1f} %"


def _readout(t: HermiteTruncation) -> str:
    v = t.variance
    gap = t.small_rho_gap
    gap_text = (f"below {NOISE:.0e}" if gap < NOISE * max(v, 1e-300)
                else str(significant(gap, 2)))
    return (f"{t.name}, tau = {t.tau:g}, N = {t.order}: orders 1..N keep "
            f"{_percent(t.kept / v)} of v = {significant(v)} "
            f"(orders 1 and 2: {_percent(t.low_order / v)})\n"
            f"energy beyond N: {significant(t.leftover, 3)} = gap at rho = 1 (the "
            f"diagonal) = mean-square error (left)\n"
            f"largest gap |k - k_N| at |rho| <= {SMALL_RHO} (off the diagonal): "
            f"{gap_text}")


def _hermite_state(name: str, tau: float, order: int) -> dict:
    t = hermite_truncation(name, order, tau)
    scale = max(float(np.max(np.abs(t.values))), t.variance, 1e-300)
    return {
        "act": name, "tau": float(tau), "N": int(order),
        "ya": _clean(t.values, scale), "yb": _clean(t.truncated, scale),
        "ka": _clean(t.kernel, scale), "kb": _clean(t.kernel_truncated, scale),
        "v": significant(t.variance), "kept": _clean(t.kept, scale),
        "low": _clean(t.low_order, scale), "leftover": _clean(t.leftover, scale),
        "gap": _clean(t.small_rho_gap, scale), "readout": _readout(t),
    }


def hermite_states(*, activations: Sequence[str] = HERMITE_ACTIVATIONS,
                   orders: Sequence[int] = HERMITE_ORDERS,
                   scales: Sequence[float] = HERMITE_SCALES) -> list[dict]:
    """Grid of the toolbox explorer's states: :func:`hermite_truncation` for every
    activation × scale × order (default grids 121 points of ``xi``, 81 of ``rho``).

    Returns
    -------
    list of dict
        One per state: keys ``act, tau, N``; ``ya``/``yb`` the activation and its
        truncation on the ``xi`` grid, ``ka``/``kb`` the exact and truncated kernel on
        the ``rho`` grid; ``v``, ``kept``, ``low`` (orders 1, 2), ``leftover``, ``gap``
        (largest gap for ``|rho| <= 0.1``) and the printed ``readout``; rounded.
    """
    return [_hermite_state(name, float(tau), int(order))
            for name in activations for tau in scales for order in orders]


def _panel(base: Any, pair: tuple[str, str], labels: tuple[str, str], lo: float,
           step: float, xtitle: str, ytitle: str, width: int) -> Any:
    import altair as alt

    label = f"datum.key == '{pair[0]}' ? '{labels[0]}' : '{labels[1]}'"
    color = alt.Color("series:N", scale=alt.Scale(domain=list(labels), range=[ORIGINAL, OTHER]),
                      legend=alt.Legend(orient="top", title=None))
    return (base.transform_flatten(list(pair))
            .transform_window(k="row_number()")
            .transform_calculate(x=f"{lo} + (datum.k - 1) * {step}")
            .transform_fold(list(pair), as_=["key", "y"])
            .transform_calculate(series=label)
            .mark_line(strokeWidth=1.8, clip=True)
            .encode(x=alt.X("x:Q", title=xtitle), y=alt.Y("y:Q", title=ytitle, axis=alt.Axis(minExtent=36)),
                    color=color,
                    strokeDash=alt.StrokeDash("series:N", legend=None, scale=alt.Scale(
                        domain=list(labels), range=[[1, 0], [6, 3]])))
            .properties(width=width, height=220))


def hermite_explorer(*, name: str = "hermite", cache: bool = True) -> Explorer:
    """The Gaussian toolbox chapter's explorer: activation, input scale and truncation
    order move the Hermite series of the activation (left) and the Mehler series of its
    one-layer kernel (right), against the exact functions.

    Parameters
    ----------
    name : str
        Element id suffix.
    cache : bool
        Read or store the grid with :func:`lossless.explore.cached_states`.

    Returns
    -------
    Explorer
    """
    import altair as alt

    # bump the first part when the content of a state changes
    key = _cache_key("hermite-2", HERMITE_ACTIVATIONS, HERMITE_ORDERS, HERMITE_SCALES, 121, 81)
    states = cached_states("hermite", key, hermite_states, cache=cache)
    params = [
        _select("act", HERMITE_ACTIVATIONS, "sign", "activation "),
        _range("N", min(HERMITE_ORDERS), max(HERMITE_ORDERS), 1, 2, "truncation order N "),
        _radio("tau", HERMITE_SCALES, 1.0, "input scale tau "),
    ]
    where = "datum.act == act && datum.N == N && abs(datum.tau - tau) < 1e-6"
    fields = ("act", "tau", "N", "ya", "yb", "ka", "kb", "readout")
    rows = [{k: s[k] for k in fields} for s in states]
    base = alt.Chart(alt.NamedData(name="states")).transform_filter(where)
    left = _panel(base, ("ya", "yb"), ("sigma(tau xi)", "orders <= N"), -XI_RANGE,
                  2 * XI_RANGE / 120, "xi", "activation", 260)
    band = (alt.Chart(alt.Data(values=[{"lo": -SMALL_RHO, "hi": SMALL_RHO}]))
            .mark_rect(color="#dddddd", opacity=0.6)
            .encode(x="lo:Q", x2="hi:Q"))
    right = alt.layer(band, _panel(base, ("ka", "kb"), ("k(rho), exact", "Mehler, orders <= N"),
                                   -1.0, 2.0 / 80, "correlation rho", "kernel k(rho)", 260))
    readout = (base.transform_calculate(text="datum.readout")
               .mark_text(align="left", baseline="top", fontSize=11, lineBreak="\n", dx=2)
               .encode(text="text:N", x=alt.value(0), y=alt.value(0))
               .properties(width=560, height=50))
    chart = (alt.vconcat(readout, alt.hconcat(left, right).resolve_scale(color="independent"))
             .add_params(*params).configure_view(stroke=None))
    spec = _finish(chart, name, datasets={"states": rows})
    controls = [
        {"name": "act", "values": ["relu", "tanh"], "context": {}},
        {"name": "N", "values": [1, 20], "context": {}},
        {"name": "tau", "values": [0.5, 2.0], "context": {"act": "ternary"}},
    ]
    return Explorer(name, spec, states, controls)


def hermite_widget(activation: str = "sign", order: int = 2, tau: float = 1.0) -> Any:
    """The toolbox chapter's live widget (JupyterLab): the same computation, any order
    up to 60 and any scale.

    Returns
    -------
    ipywidgets.interactive
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    def show(activation=activation, order=order, tau=tau):
        t = hermite_truncation(activation, order, tau)
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained")
        axes[0].plot(t.xi, t.values, color=ORIGINAL, lw=2, label=r"$\sigma(\tau\xi)$")
        axes[0].plot(t.xi, t.truncated, "--", color=OTHER, label=f"orders $\\leq {order}$")
        axes[0].set_xlabel(r"$\xi$")
        axes[0].legend(frameon=False)
        axes[1].axvspan(-SMALL_RHO, SMALL_RHO, color="0.9")
        axes[1].plot(t.rho, t.kernel, color=ORIGINAL, lw=2, label=r"$k(\rho)$, exact")
        axes[1].plot(t.rho, t.kernel_truncated, "--", color=OTHER,
                     label=f"Mehler, orders $\\leq {order}$")
        axes[1].set_xlabel(r"correlation $\rho$")
        axes[1].legend(frameon=False)
        plt.show()
        print(_readout(t))

    return widgets.interactive(
        show,
        activation=widgets.Dropdown(options=list(HERMITE_ACTIVATIONS), value=activation),
        order=widgets.IntSlider(value=order, min=0, max=60, description="order N"),
        tau=widgets.FloatSlider(value=tau, min=0.25, max=3.0, step=0.25, description="tau"),
    )
