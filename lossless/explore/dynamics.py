"""The dynamics chapter's explorer and widget: loss curves of gradient descent on a kernel
``K`` and on ``K + shift I``, as the shift and the learning rate move.

Gradient descent on the linearised network with NTK ``K`` and squared loss, started from
``f_0 = 0`` (residual ``r_0 = -y``), has the training loss of the book's eq-dyn-loss,
``L_t = 1/2 sum_i (1 - lr lambda_i)^(2t) c_i^2`` with ``c_i = u_i^T y``; the kernel
``K + shift I`` of eq-dyn-ntk-shift has the eigenvalues ``lambda_i + shift`` and the same
``c_i`` (cor-dyn-shift). The explorer stores the pairs ``(lambda_i, c_i^2)`` only and its
Vega-Lite transforms evaluate both sums for any shift and learning rate in the page
(chapter "Training on the NTK"); :func:`loss_curves` is the same computation in Python,
and :func:`loss_widget` draws it live in JupyterLab.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np

from lossless import _checks, dynamics
from lossless.explore._vega import (ORIGINAL, OTHER, Explorer, _cache_key, _finish, _range,
                                    cached_states, significant)

__all__ = ["LossModes", "LossCurves", "loss_modes", "loss_curves", "loss_explorer",
           "modes_of", "loss_widget", "LOSS_PARTS", "LOSS_CLIP", "LOSS_FLOOR"]

#: What the loss sums over: every mode, the top one (the class spike), the others.
LOSS_PARTS = ("all", "spike", "bulk")
_PART_LABELS = ("train loss (all modes)", "class spike (top mode)", "bulk (the others)")
#: The drawn curves are clipped to [LOSS_FLOOR, LOSS_CLIP] times the initial train loss.
LOSS_CLIP = 1e2
LOSS_FLOOR = 1e-10


class LossModes(NamedTuple):
    """The eigenpairs of a kernel as gradient descent sees them (see :func:`loss_modes`).

    Attributes
    ----------
    eigenvalues : ndarray, shape (n,)
        ``lambda_i`` in increasing order (the last one is the class spike).
    energies : ndarray, shape (n,)
        ``c_i^2 = (u_i^T r_0)^2``; they sum to ``||r_0||^2``.
    """

    eigenvalues: np.ndarray
    energies: np.ndarray


class LossCurves(NamedTuple):
    """Loss curves of the original and the shifted kernel (see :func:`loss_curves`).

    Attributes
    ----------
    steps : ndarray of int
    original, shifted : ndarray
        ``L_t`` of ``K`` and of ``K + shift I`` at ``steps`` (eq-dyn-loss), not clipped.
    original_stable, shifted_stable : bool
        Whether ``lr (lambda + shift) < 2`` for every mode summed (``lr lambda < 2`` for
        the original): the curve then decreases to zero, else it diverges.
    """

    steps: np.ndarray
    original: np.ndarray
    shifted: np.ndarray
    original_stable: bool
    shifted_stable: bool


def loss_modes(K: Any, residual0: Any) -> LossModes:
    """Eigenvalues of ``K`` and the energies of ``residual0`` along its eigenvectors.

    Parameters
    ----------
    K : array_like, shape (n, n)
        Symmetric positive semi-definite kernel (the NTK).
    residual0 : array_like, shape (n,)
        Initial residual ``r_0 = f_0(X) - y`` (``-y`` for ``f_0 = 0``).

    Returns
    -------
    LossModes
    """
    K = _checks.square_symmetric(K, "K")
    n = K.shape[0]
    r0 = _checks.real_array(residual0, "residual0", ndim=1, shape_hint=f"of shape ({n},)")
    if r0.shape != (n,):
        raise ValueError(f"residual0 must have shape ({n},) to match K, got {r0.shape}")
    vals, vecs = np.linalg.eigh(K)
    if vals[0] < -1e-9 * max(abs(vals[-1]), 1.0):
        raise ValueError(f"K must be positive semi-definite, its smallest eigenvalue is "
                         f"{vals[0]:.3g}")
    return LossModes(np.clip(vals, 0.0, None), (vecs.T @ r0) ** 2)


def _part_mask(n: int, part: str) -> np.ndarray:
    part = _checks.choice(part, "part", LOSS_PARTS)
    mask = np.ones(n, dtype=bool)
    if part == "spike":
        mask[:-1] = False
    elif part == "bulk":
        mask[-1] = False
    return mask


def loss_curves(modes: LossModes, lr: float, shift: float, steps: int, *, every: int = 1,
                part: str = "all") -> LossCurves:
    r"""The training loss of the original and of the shifted kernel (eq-dyn-loss).

    .. math::

        L_t = \tfrac12 \sum_i (1 - \mathrm{lr}\,(\lambda_i + \Delta))^{2t} c_i^2 ,

    with ``Delta = 0`` for the original and ``Delta = shift`` for ``K + shift I``.

    Parameters
    ----------
    modes : LossModes
        From :func:`loss_modes` (eigenvalues in increasing order).
    lr : float
        Learning rate, > 0.
    shift : float
        ``Delta``; ``lambda_min + shift`` must be >= 0 (a kernel is positive
        semi-definite).
    steps : int
        Last step ``T`` (>= 0).
    every : int, default 1
        Spacing of the steps returned (``0, every, ..., T``; ``T`` must be a multiple).
    part : {"all", "spike", "bulk"}
        The modes summed: all (the train loss), the top one (the class spike), the rest.

    Returns
    -------
    LossCurves
        Not clipped: a diverging curve grows geometrically (``inf`` once it overflows).
    """
    lam = _checks.real_array(modes.eigenvalues, "modes.eigenvalues", ndim=1)
    c2 = _checks.real_array(modes.energies, "modes.energies", ndim=1)
    if lam.shape != c2.shape or lam.size == 0:
        raise ValueError(f"modes.eigenvalues and modes.energies must have the same non-zero "
                         f"length, got {lam.shape} and {c2.shape}")
    if np.any(np.diff(lam) < 0):
        raise ValueError("modes.eigenvalues must be in increasing order (as from loss_modes)")
    lr = _checks.positive(lr, "lr")
    shift = _checks.real(shift, "shift", low=-float(lam[0]))
    steps = _checks.integer(steps, "steps", minimum=0)
    every = _checks.integer(every, "every", minimum=1)
    if steps % every:
        raise ValueError(f"steps must be a multiple of every, got steps={steps}, every={every}")
    _checks.allocation((steps + 1) * lam.size, "steps", steps, what="the loss curves")
    keep = _part_mask(lam.size, part)

    def curve(delta: float) -> np.ndarray:
        return dynamics.mode_loss_curve(lam[keep] + delta, c2[keep], lr, steps)[::every]

    top = float(lam[keep].max())
    return LossCurves(np.arange(0, steps + 1, every), curve(0.0), curve(shift), lr * top < 2,
                      lr * (top + shift) < 2)


# ---------------------------------------------------------------------------------
# the explorer: the modes in the page, the sums in Vega-Lite


def _mode_rows(K: np.ndarray, residual0: np.ndarray) -> list[dict]:
    modes = loss_modes(K, residual0)
    n = modes.eigenvalues.size
    return [{"i": i, "lam": significant(modes.eigenvalues[i], 6),
             "c2": significant(modes.energies[i], 4), "spike": i == n - 1}
            for i in range(n)]


def loss_explorer(K: Any, y: Any, shift: float, *, lr: float | None = None, steps: int = 100,
                  shift_range: Sequence[float] = (-0.2, 0.8), name: str = "loss-curves",
                  cache: bool = True) -> Explorer:
    """The dynamics chapter's explorer: loss curves of ``K`` and ``K + Delta I``.

    Gradient descent from ``f_0 = 0`` (``r_0 = -y``) on the linearised network with
    kernel ``K`` (blue) and ``K + Delta I`` (orange), training loss on a log scale
    over ``steps`` steps. Controls: ``Delta`` (``delta``), the learning rate as a
    fraction of the original kernel's stability limit ``2 / lambda_max`` (``frac``) and
    which modes the loss sums (``part``). The page holds the pairs ``(lambda_i,
    c_i^2)``; Vega-Lite evaluates eq-dyn-loss for both kernels at every other step.
    Curves are clipped to ``[LOSS_FLOOR, LOSS_CLIP] * L_0``; clipped points of a
    diverging curve are marked with triangles.

    Parameters
    ----------
    K : array_like, shape (n, n)
        The original kernel (positive semi-definite).
    y : array_like, shape (n,)
        Targets.
    shift : float
        The measured shift, the initial position of the ``Delta`` slider (in
        ``shift_range``).
    lr : float, optional
        Initial learning rate (default: half the stability limit); its fraction of
        ``2 / lambda_max`` must be in [0.05, 1.2], the slider's range.
    steps : int, default 100
        Horizon, even, in [2, 2000].
    shift_range : (float, float)
        The slider's range; the lower end must exceed ``-lambda_min``.
    name : str
        Element id suffix.
    cache : bool
        Read or store the rounded modes with :func:`cached_states` (the saved page then
        does not depend on the machine's BLAS).

    Returns
    -------
    Explorer
        ``states``: one row per mode (``i, lam, c2, spike``), increasing ``lam``.
    """
    import altair as alt

    K = _checks.square_symmetric(K, "K")
    n = K.shape[0]
    y = _checks.real_array(y, "y", ndim=1, shape_hint=f"of shape ({n},)")
    if y.shape != (n,):
        raise ValueError(f"y must have shape ({n},) to match K, got {y.shape}")
    steps = _checks.integer(steps, "steps", minimum=2, maximum=2000)
    if steps % 2:
        raise ValueError(f"steps must be even (the page draws every other step), got {steps}")
    if len(shift_range) != 2:
        raise ValueError(f"shift_range must be (low, high), got {shift_range!r}")
    lo = _checks.real(shift_range[0], "shift_range[0]")
    hi = _checks.real(shift_range[1], "shift_range[1]", low=lo, low_open=True)
    shift = _checks.real(shift, "shift", low=lo, high=hi)
    key = _cache_key(K, y, "loss-modes")
    rows = cached_states("loss", key, lambda: _mode_rows(K, -y), cache=cache)
    lam_min, lam_max = rows[0]["lam"], rows[-1]["lam"]
    if lo <= -lam_min:
        raise ValueError(f"shift_range[0] must exceed -lambda_min = {-lam_min:.4g} (the shifted "
                         f"kernel must stay positive definite), got {lo}")
    frac = 0.5 if lr is None else _checks.positive(lr, "lr") * lam_max / 2
    if not 0.05 <= frac <= 1.2:
        raise ValueError(f"lr must be between 0.05 and 1.2 times 2/lambda_max = "
                         f"{2 / lam_max:.4g}, got {lr}")
    frac = round(frac, 2)
    loss0 = 0.5 * sum(r["c2"] for r in rows)
    cap, floor = LOSS_CLIP * loss0, LOSS_FLOOR * loss0

    params = [
        _range("delta", lo, hi, 0.002, round(shift, 3), "shift Δ "),
        _range("frac", 0.05, 1.2, 0.01, frac, "learning rate lr × λ_max / 2 "),
        alt.param(name="part", value="all", bind=alt.binding_radio(
            options=list(LOSS_PARTS), labels=list(_PART_LABELS), name="loss ")),
    ]
    eta = f"(frac * 2 / {lam_max})"
    part = "(part == 'all' || (part == 'spike') == datum.spike)"
    base = alt.Chart(alt.NamedData(name="modes")).transform_filter(part)
    series = alt.Color("series:N", scale=alt.Scale(
        domain=["original K (Δ = 0)", "shifted K + ΔI"], range=[ORIGINAL, OTHER]),
        legend=alt.Legend(orient="top", title=None))
    curves = (base.transform_calculate(t=f"sequence(0, {steps + 1}, 2)")
              .transform_flatten(["t"])
              .transform_calculate(
                  o=f"0.5 * datum.c2 * pow(pow(1 - {eta} * datum.lam, 2), datum.t)",
                  s=f"0.5 * datum.c2 * pow(pow(1 - {eta} * (datum.lam + delta), 2), datum.t)")
              .transform_fold(["o", "s"], as_=["key", "value"])
              .transform_aggregate(loss="sum(value)", groupby=["t", "key"])
              .transform_calculate(
                  series="datum.key == 'o' ? 'original K (Δ = 0)' : 'shifted K + ΔI'",
                  shown=f"clamp(datum.loss, {floor:.6g}, {cap:.6g})",
                  clipped=f"!(datum.loss < {cap:.6g})"))
    y_enc = alt.Y("shown:Q", title="training loss ½‖r‖² (log scale)",
                  axis=alt.Axis(format="~e", tickCount=7), scale=alt.Scale(type="log", domain=[float(f"{floor:.6g}"),
                                                      float(f"{cap:.6g}")]))
    x_enc = alt.X("t:Q", title="gradient step t", scale=alt.Scale(domain=[0, steps]))
    lines = curves.mark_line(strokeWidth=2).encode(x=x_enc, y=y_enc, color=series,
                                                   strokeDash=alt.StrokeDash(
                                                       "series:N", legend=None))
    marks = (curves.transform_filter("datum.clipped")
             .mark_point(shape="triangle-up", filled=True, size=40)
             .encode(x=x_enc, y=y_enc, color=series))
    chart = alt.layer(lines, marks).properties(width=520, height=260)
    worst = "datum.top * " + eta
    verdict = ("(abs(({x}) - 2) < 1e-9 ? ' = 2: oscillates, no convergence' : "
               "({x}) < 2 ? ' < 2: converges' : ' > 2: diverges')")
    text = (
        f"'lr = ' + format({eta}, '.4f') + ' = ' + format(frac, '.2f') + ' × 2/λ_max "
        f"(λ_max = {lam_max:.4g} of the original kernel); loss after {steps} steps:' + '\\n'"
        f" + 'original:  lr·λ_top = ' + format({worst}, '.3f') + "
        + verdict.format(x=worst) + f" + ', L = ' + format(datum.lo, '.3~e') + '\\n'"
        f" + 'shifted (Δ = ' + format(delta, '.3f') + '):  lr·(λ_top + Δ) = ' + "
        f"format({eta} * (datum.top + delta), '.3f') + "
        + verdict.format(x=f"{eta} * (datum.top + delta)")
        + " + ', L = ' + format(datum.ls, '.3~e')"
        " + '\\n(λ_top: the largest eigenvalue of the modes summed; L_0 = '"
        " + format(datum.l0, '.3~g') + ')'")
    readout = (base.transform_calculate(
        lo=f"0.5 * datum.c2 * pow(pow(1 - {eta} * datum.lam, 2), {steps})",
        ls=f"0.5 * datum.c2 * pow(pow(1 - {eta} * (datum.lam + delta), 2), {steps})",
        l0="0.5 * datum.c2")
        .transform_aggregate(lo="sum(lo)", ls="sum(ls)", l0="sum(l0)", top="max(lam)")
        .transform_calculate(text=text)
        .mark_text(align="left", baseline="top", fontSize=11, lineBreak="\n", dx=2)
        .encode(text="text:N", x=alt.value(0), y=alt.value(0))
        .properties(width=520, height=60))
    spec = _finish(alt.vconcat(readout, chart).add_params(*params).configure_view(stroke=None),
                   name, datasets={"modes": rows})
    controls = [
        {"name": "delta", "values": [0.0, 0.5], "context": {}},
        {"name": "frac", "values": [0.2, 1.1], "context": {}},
        {"name": "part", "values": ["all", "spike"], "context": {}},
    ]
    return Explorer(name, spec, rows, controls)


def modes_of(explorer: Explorer) -> LossModes:
    """The (rounded) modes an explorer of :func:`loss_explorer` draws from."""
    return LossModes(np.array([s["lam"] for s in explorer.states]),
                     np.array([s["c2"] for s in explorer.states]))


def loss_widget(K: Any, y: Any, shift: float, *, lr: float | None = None) -> Any:
    """The dynamics chapter's live widget (JupyterLab): :func:`loss_curves`, any values.

    Parameters are those of :func:`loss_explorer`.

    Returns
    -------
    ipywidgets.VBox
    """
    import ipywidgets as widgets
    from IPython.display import display
    from matplotlib.figure import Figure

    y = _checks.real_array(y, "y", ndim=1)
    modes = loss_modes(K, -y)
    lam_max, lam_min = float(modes.eigenvalues[-1]), float(modes.eigenvalues[0])
    loss0 = 0.5 * float(modes.energies.sum())
    frac = 0.5 if lr is None else _checks.positive(lr, "lr") * lam_max / 2
    shift = _checks.real(shift, "shift", low=-lam_min, low_open=True)
    style = {"description_width": "120px"}
    controls = dict(
        delta=widgets.FloatSlider(value=shift, min=round(-0.9 * lam_min, 3),
                                  max=max(1.0, 3 * shift), step=0.002,
                                  readout_format=".3f", description="shift Δ",
                                  style=style),
        frac=widgets.FloatSlider(value=round(frac, 2), min=0.05, max=1.2, step=0.01,
                                 description="lr × λ_max / 2", style=style),
        part=widgets.Dropdown(options=list(zip(_PART_LABELS, LOSS_PARTS)), value="all",
                              description="loss", style=style),
        steps=widgets.IntSlider(value=100, min=10, max=2000, step=10,
                                description="steps", style=style),
    )

    out = widgets.Output()
    state: dict = {}

    def draw(*_):
        # not pyplot: no figure state shared with the notebook or between redraws
        key = (round(controls["delta"].value, 3), round(controls["frac"].value, 2),
               controls["part"].value, controls["steps"].value)
        if key == state.get("drawn"):
            return
        delta, frac, part, steps = key
        lr_now = frac * 2 / lam_max
        c = loss_curves(modes, lr_now, delta, steps, part=part)
        fig = Figure(figsize=(7, 3.6))
        ax = fig.subplots()
        for values, stable, label, color in (
                (c.original, c.original_stable, "original K (Δ = 0)", ORIGINAL),
                (c.shifted, c.shifted_stable, f"shifted K + ΔI (Δ = {delta:.3f})", OTHER)):
            shown = np.clip(values, LOSS_FLOOR * loss0, LOSS_CLIP * loss0)
            ax.plot(c.steps, shown, color=color,
                    label=label + ("" if stable else ", diverges (clipped)"))
        ax.set_yscale("log")
        ax.set_ylim(LOSS_FLOOR * loss0, LOSS_CLIP * loss0)
        ax.set_xlabel("gradient step t")
        ax.set_ylabel("training loss ½‖r‖²")
        ax.set_title(f"lr = {lr_now:.4f}", fontsize=10)
        ax.legend(frameon=False, fontsize=8)
        fig.tight_layout()
        with out:
            out.clear_output(wait=True)
            display(fig)
        state["drawn"] = key

    for control in controls.values():
        control.observe(draw, names="value")
    draw()
    return widgets.VBox([widgets.HBox([controls["delta"], controls["frac"]]),
                         widgets.HBox([controls["part"], controls["steps"]]), out])
