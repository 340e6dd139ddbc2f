"""Chapter 1's explorer and widget: a two-class mixture's Gram spectrum against Marchenko-Pastur."""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np

from lossless import _checks
from lossless.explore._vega import (Explorer, _cache_key, _close, _radio, _range, _spectrum_chart,
                                    _subsample, cached_states, significant)

__all__ = ["GramDemo", "gram_spectrum_demo", "gram_states", "gram_explorer", "gram_widget",
           "GRAM_SEPARATIONS", "GRAM_TRACE_GAPS", "GRAM_RATIOS"]


# ---------------------------------------------------------------------------------
# the computation (also drawn by the live widget)


class GramDemo(NamedTuple):
    """Everything the chapter-1 widget draws (see :func:`gram_spectrum_demo`).

    Attributes
    ----------
    p, n : int
    labels : ndarray, shape (n,)
    eigenvalues : ndarray, shape (n,)
        Eigenvalues of ``X @ X.T`` in decreasing order (``n - p`` exact zeros when
        ``n > p``: the Gram matrix has rank at most ``p``).
    top_vector : ndarray, shape (n,)
        Unit top eigenvector, signed so that its class-0 entries have positive mean.
    squared_norms : ndarray, shape (n,)
        ``||x_i||^2``.
    grid, density : ndarray, shape (grid_size,)
        Marchenko-Pastur density (continuous part) of the Gram spectrum for noise
        variance ``sigma2`` and ratio ``n/p``.
    sigma2 : float
        ``tr C° / p``.
    edge : float
        Upper edge of the bulk, ``sigma2 (1 + sqrt(n/p))^2``.
    predicted_spikes, predicted_alignments : ndarray
        Spiked-model limits of the isolated eigenvalues and of the alignment of their
        eigenvectors with the class structure, one per visible mean direction (see
        :func:`lossless.spectra.gram_spike_predictions`); NaN below the phase transition.
    alignment : float
        Measured alignment of ``top_vector`` with the (centred) class indicators.
    """

    p: int
    n: int
    labels: np.ndarray
    eigenvalues: np.ndarray
    top_vector: np.ndarray
    squared_norms: np.ndarray
    grid: np.ndarray
    density: np.ndarray
    sigma2: float
    edge: float
    predicted_spikes: np.ndarray
    predicted_alignments: np.ndarray
    alignment: float


def gram_spectrum_demo(
    p: int = 256,
    ratio: float = 2.0,
    separation: float = 3.0,
    trace_gap: float = 4.0,
    seed: int = 0,
    *,
    grid_size: int = 400,
) -> GramDemo:
    """Gram spectrum of a two-class mixture, for the chapter-1 widget.

    Two equal classes with means at distance ``separation`` and covariances
    ``(1 + trace_gap * (a - 1) / sqrt(p)) I`` for the book's classes ``a = 1, 2`` (code
    labels 0 and 1): ``preset("mixed", p,
    separation=separation, trace_gap=trace_gap, shape=0)``, ``n = round(ratio * p)``.

    Parameters
    ----------
    p : int
        Dimension, at least 4.
    ratio : float
        ``n / p``, positive.
    separation : float
        ``||mu_1 - mu_2||``, non-negative.
    trace_gap : float
        ``tr C_2 / p - tr C_1 / p`` times ``sqrt(p)``.
    seed : int
        Seed of ``numpy.random.default_rng``.
    grid_size : int
        Points of the density grid.

    Returns
    -------
    GramDemo
    """
    from lossless.data import preset
    from lossless.spectra import (
        gram_spike_predictions,
        label_alignment,
        marchenko_pastur_density,
        marchenko_pastur_support,
    )

    p = _checks.integer(p, "p", minimum=4)
    ratio = _checks.positive(ratio, "ratio")
    seed = _checks.seed(seed)
    _checks.allocation(p * p, "p", p, what="a p x p Gram matrix")
    _checks.allocation(ratio * p * p, "ratio", ratio, what="a sample (n = ratio * p rows)")
    n = max(2, int(round(ratio * p)))
    grid_size = _checks.integer(grid_size, "grid_size", minimum=2)
    _checks.allocation(grid_size, "grid_size", grid_size, what="a density grid")
    mixture = preset("mixed", p, separation=separation, trace_gap=trace_gap, shape=0.0)
    sample = mixture.sample(n, np.random.default_rng(seed))
    X = sample.X
    # eigen-decompose the smaller of X X^T (n x n) and X^T X (p x p)
    if n <= p:
        vals, vecs = np.linalg.eigh(X @ X.T)
        vals, top = vals[::-1], vecs[:, -1]
    else:
        vals_p, vecs_p = np.linalg.eigh(X.T @ X)
        vals = np.concatenate([vals_p[::-1], np.zeros(n - p)])
        top = X @ vecs_p[:, -1]
        top /= np.linalg.norm(top)
    vals = np.clip(vals, 0.0, None)
    if top[sample.labels == 0].mean() < 0:
        top = -top
    sigma2 = sample.tau0_population**2
    lo, hi = marchenko_pastur_support(n / p, sigma2)
    top_x = max(hi, float(vals[0])) * 1.05
    grid = np.linspace(0.0, top_x, grid_size)
    pred = gram_spike_predictions(sample.M, sample.counts / n, n / p, sigma2)
    return GramDemo(
        p=p,
        n=n,
        labels=sample.labels,
        eigenvalues=vals,
        top_vector=top,
        squared_norms=np.einsum("ij,ij->i", X, X),
        grid=grid,
        density=marchenko_pastur_density(grid, n / p, sigma2),
        sigma2=float(sigma2),
        edge=float(hi),
        predicted_spikes=pred.eigenvalues,
        predicted_alignments=pred.alignments,
        alignment=float(label_alignment(top, sample.labels)),
    )


# ---------------------------------------------------------------------------------
# the explorer: a grid of states, drawn by Vega-Lite


GRAM_SEPARATIONS = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)
GRAM_TRACE_GAPS = (0.0, 4.0, 8.0)
GRAM_RATIOS = (0.5, 1.0, 2.0, 4.0)

#: Colours of the two classes in the explorer's eigenvector panel (not those of the
#: spectrum panel's series, which mean "measured" and "predicted").
CLASS_COLOURS = ("#2ca02c", "#9467bd")


def _class_panel(spec: dict, p: int) -> dict:
    """Edit the shared spectrum chart for chapter 1: colour the eigenvector entries by
    class (the samples are ordered by class, ``n/2`` in each), draw the zero line, and
    enlarge the two triangles (largest and predicted eigenvalue)."""
    row = spec["vconcat"][1]
    left, right = row["hconcat"]
    for layer in left["layer"]:
        if layer["mark"].get("shape") == "triangle-up":
            layer["mark"]["size"] = 160
    points = {key: right.pop(key) for key in ("encoding", "mark", "transform")}
    points["transform"].append({"calculate": f"datum.i < {p / 2} * datum.ratio ? 'class 1' : 'class 2'",
                                "as": "cls"})
    points["encoding"]["color"] = {
        "field": "cls", "type": "nominal", "legend": {"orient": "top", "title": None},
        "scale": {"domain": ["class 1", "class 2"], "range": list(CLASS_COLOURS)}}
    points["mark"]["size"] = 16
    zero = {"data": {"values": [{}]}, "mark": {"type": "rule", "color": "gray", "strokeDash": [4, 3]},
            "encoding": {"y": {"datum": 0}}}
    right["layer"] = [points, zero]
    row["resolve"] = {"scale": {"color": "independent"}}
    return spec


def _gram_state(p: int, ratio: float, separation: float, trace_gap: float, seed: int) -> dict:
    demo = gram_spectrum_demo(p, ratio, separation, trace_gap, seed=seed)
    vals = np.asarray(demo.eigenvalues, dtype=float)
    nonzero = vals[: min(demo.n, demo.p)]
    bulk = nonzero[1:]
    edges = np.linspace(0.0, max(1.15 * demo.edge, bulk.max() * 1.02), 41)
    width = edges[1] - edges[0]
    ha = np.histogram(bulk, edges)[0] / (vals.size * width)
    keep = (demo.grid > 0) & (demo.grid <= edges[-1])
    gx, gy = demo.grid[keep], demo.density[keep]
    sub = np.linspace(0, gx.size - 1, min(gx.size, 80)).round().astype(int)
    idx = _subsample(demo.n, 128)
    spikes = np.asarray(demo.predicted_spikes, dtype=float)
    alignments = np.asarray(demo.predicted_alignments, dtype=float)
    predicted = float(spikes[0]) if spikes.size and np.isfinite(spikes[0]) else None
    pred_al = float(alignments[0]) if alignments.size and np.isfinite(alignments[0]) else None
    sq = np.asarray(demo.squared_norms)
    gap = float(sq[demo.labels == 1].mean() - sq[demo.labels == 0].mean())
    # three short lines: the readout panel is 580 px wide and 60 px high
    readout = (f"largest eigenvalue {significant(vals[0], 3)}, bulk edge {significant(demo.edge, 3)}, "
               f"predicted spike {'none (below the transition)' if predicted is None else significant(predicted, 3)}\n"
               f"alignment of the top eigenvector with the classes {significant(demo.alignment, 2)} "
               f"(limit n, p -> inf: {'0' if pred_al is None else significant(pred_al, 2)})\n"
               f"mean ||x||^2, class 2 minus class 1: {significant(gap, 2)}; "
               f"noise variance tr C°/p = {significant(demo.sigma2, 4)}")
    return {
        "sep": separation, "gap": trace_gap, "ratio": ratio,
        "lo": significant(edges[:-1]), "hi": significant(edges[1:]),
        "ha": significant(ha),
        "sa": significant(vals[0]), "sb": significant(predicted) if predicted is not None else None,
        "cx": significant(gx[sub]), "cy": significant(gy[sub]),
        "i": idx.tolist(), "ua": significant(demo.top_vector[idx]),
        "top": significant(vals[0]), "predicted": None if predicted is None else significant(predicted),
        "alignment": significant(demo.alignment), "edge": significant(demo.edge),
        "sigma2": significant(demo.sigma2), "norm_gap": significant(gap),
        "readout": readout,
    }


def gram_states(p: int = 256, *, separations: Sequence[float] = GRAM_SEPARATIONS,
                trace_gaps: Sequence[float] = GRAM_TRACE_GAPS,
                ratios: Sequence[float] = GRAM_RATIOS, seed: int = 0) -> list[dict]:
    """Grid of chapter-1 states: :func:`gram_spectrum_demo` for every
    separation × trace gap × n/p.

    Parameters
    ----------
    p : int
        Dimension.
    separations, trace_gaps, ratios : sequence of float
    seed : int
        Seed of each sample (the same for every state).

    Returns
    -------
    list of dict
        One per state: keys ``sep, gap, ratio``, histogram (``lo, hi, ha``), the
        Marchenko-Pastur curve (``cx, cy``), the largest eigenvalue ``top`` and its
        prediction ``predicted`` (None below the phase transition), ``alignment``,
        the subsampled top eigenvector (``i, ua``) and the printed ``readout``.
    """
    return [_gram_state(p, float(r), float(s), float(g), seed)
            for s in separations for g in trace_gaps for r in ratios]


def gram_explorer(p: int = 256, *, seed: int = 0, name: str = "gram", cache: bool = True
                  ) -> Explorer:
    """Chapter 1's explorer: separation, trace gap and n/p move the Gram spectrum.

    The histogram of the eigenvalues of ``X X^T`` (bulk), the Marchenko-Pastur density
    of white noise of the same variance (black), the largest eigenvalue (blue
    triangle) and the predicted spike (orange triangle), and the top eigenvector.

    Parameters
    ----------
    p : int
        Dimension (the grid is :data:`GRAM_SEPARATIONS` × :data:`GRAM_TRACE_GAPS` ×
        :data:`GRAM_RATIOS`).
    seed : int
    name : str
        Element id suffix.
    cache : bool
        Read or store the grid with :func:`cached_states`.

    Returns
    -------
    Explorer
    """
    key = _cache_key(p, seed, GRAM_SEPARATIONS, GRAM_TRACE_GAPS, GRAM_RATIOS)
    states = cached_states("gram", key, lambda: gram_states(p, seed=seed), cache=cache)
    params = [
        _range("sep", min(GRAM_SEPARATIONS), max(GRAM_SEPARATIONS), 1.0, 3.0, "separation ||mu1 - mu2|| "),
        _radio("gap", GRAM_TRACE_GAPS, 4.0, "trace gap "),
        _radio("ratio", GRAM_RATIOS, 2.0, "n/p "),
    ]
    where = " && ".join([_close("sep", "sep"), _close("gap", "gap"), _close("ratio", "ratio")])
    from lossless.data import preset

    for r in GRAM_RATIOS:  # the class panel's boundary: n/2 samples per class, in order
        n = max(2, int(round(r * p)))
        if list(preset("mixed", p, shape=0.0).class_sizes(n)) != [n // 2, n - n // 2] or n % 2:
            raise ValueError(f"p={p}: n = {n} at n/p = {r} does not split into two equal classes")
    spec = _spectrum_chart(states, params, where, ("measured eigenvalues", "predicted spike"),
                           name=name, fields=("sep", "gap", "ratio"), curve=True, single=True,
                           vector_title="top eigenvector entry")
    spec = _class_panel(spec, p)
    controls = [
        {"name": "sep", "values": [1.0, 5.0], "context": {}},
        {"name": "gap", "values": [0.0, 8.0], "context": {}},
        {"name": "ratio", "values": [0.5, 4.0], "context": {}},
    ]
    return Explorer(name, spec, states, controls)


def gram_widget(p: int = 256, *, seed: int = 0) -> Any:
    """Chapter 1's live widget (JupyterLab): the same computation, any values.

    Returns
    -------
    ipywidgets.VBox
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    from lossless import plotting

    style = {"description_width": "90px"}
    controls = dict(
        p=widgets.IntSlider(value=p, min=64, max=1024, step=64, description="p", style=style),
        ratio=widgets.FloatSlider(value=2.0, min=0.25, max=4.0, step=0.25, description="n/p",
                                  style=style),
        separation=widgets.FloatSlider(value=3.0, min=0.0, max=6.0, step=0.25,
                                       description="separation", style=style),
        trace_gap=widgets.FloatSlider(value=4.0, min=0.0, max=12.0, step=0.5,
                                      description="trace gap", style=style),
    )

    def draw(p, ratio, separation, trace_gap):
        demo = gram_spectrum_demo(p, ratio, separation, trace_gap, seed=seed)
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
        plotting.gram_demo_plot(axes, demo)
        fig.tight_layout()
        plt.show()

    output = widgets.interactive_output(draw, controls)
    return widgets.VBox([widgets.HBox([controls["p"], controls["ratio"]]),
                         widgets.HBox([controls["separation"], controls["trace_gap"]]), output])
