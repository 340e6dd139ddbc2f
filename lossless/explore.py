"""The book's explorers: precomputed grids of states drawn by Vega-Lite, and live widgets.

Each chapter's explorer is one call (``gram_explorer``, ``kernel_explorer``,
``equivalence_explorer``, ``compression_explorer``). It computes a grid of states with
the package's own functions (cached in ``lossless/explore_cache/``, see
:func:`cached_states`), rounds every number (four significant digits, three for the
drawn densities, eigenvector entries to 1e-3) so that BLAS differences between machines
do not change the saved page, and returns an
:class:`Explorer`: a Vega-Lite chart (built with Altair) whose parameters are bound to
range/select inputs and filter the states, so that several controls combine. In the
built HTML it runs with no kernel and no network: vega, vega-lite and vega-embed are
served from the book's ``_static/offline/`` (``make assets``). The ``*_widget``
functions are the live ipywidgets of the same computations, for JupyterLab.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

__all__ = [
    "Explorer",
    "significant",
    "histogram_pair",
    "gram_states",
    "gram_explorer",
    "gram_widget",
    "kernel_states",
    "kernel_explorer",
    "kernel_widget",
    "equivalence_states",
    "equivalence_explorer",
    "equivalence_widget",
    "coupled_ternary",
    "compression_states",
    "compression_explorer",
    "compression_widget",
    "cached_states",
]

#: Folder (under the built site's ``_static/``) holding vega, vega-lite, vega-embed.
OFFLINE_FOLDER = "offline/vega"
#: The Vega-Lite schema the specs are written against (Altair 6.3.0's).
VEGA_LITE_VERSION = "6.4.1"
ORIGINAL, OTHER = "#1f77b4", "#ff7f0e"
_CACHE_DIR = Path(__file__).resolve().parent / "explore_cache"
#: Part of every cache key: bump it when the content of a state changes.
GRID_VERSION = 1


# ---------------------------------------------------------------------------------
# rounding and histograms


def significant(values: Any, digits: int = 4) -> Any:
    """Round to ``digits`` significant digits (floats, or nested lists of floats).

    Parameters
    ----------
    values : float or array_like
    digits : int, default 4

    Returns
    -------
    float or list
        Plain Python numbers, so that ``json.dumps`` prints them short.
    """
    if isinstance(digits, bool) or not isinstance(digits, int) or digits < 1:
        raise ValueError(f"digits must be a positive integer, got {digits!r}")
    if np.ndim(values) == 0:
        x = float(values)
        if not math.isfinite(x):
            raise ValueError(f"values must be finite, got {x}")
        return 0.0 if x == 0 else float(f"{x:.{digits}g}")
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 1:
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"values must be finite, got {arr[~np.isfinite(arr)][:3]}")
        return [0.0 if x == 0 else float(f"{x:.{digits}g}") for x in arr.tolist()]
    return [significant(v, digits) for v in arr]


def histogram_pair(a: np.ndarray, b: np.ndarray, bins: int = 40, *, n_spikes: int = 1
                   ) -> dict[str, list]:
    """Two spectra as densities on the same bins (over the bulk of both).

    The ``n_spikes`` largest values of each are left out of the bin range (they are
    drawn as markers); values outside the range are dropped.

    Parameters
    ----------
    a, b : ndarray, shape (n,)
    bins : int
    n_spikes : int

    Returns
    -------
    dict
        ``lo, hi`` (bin edges, length ``bins``), ``ha, hb`` (densities), rounded.
    """
    a = np.sort(np.asarray(a, dtype=float))
    b = np.sort(np.asarray(b, dtype=float))
    bulk_a, bulk_b = a[: a.size - n_spikes], b[: b.size - n_spikes]
    lo = min(bulk_a.min(), bulk_b.min())
    hi = max(bulk_a.max(), bulk_b.max())
    if hi <= lo:
        hi = lo + 1e-6
    edges = np.linspace(lo, hi, bins + 1)
    width = edges[1] - edges[0]
    ha = np.histogram(bulk_a, edges)[0] / (a.size * width)
    hb = np.histogram(bulk_b, edges)[0] / (b.size * width)
    return {"lo": significant(edges[:-1]), "hi": significant(edges[1:]),
            "ha": significant(ha), "hb": significant(hb)}


def _subsample(n: int, k: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(int))


def _signed(u: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return u if float(u @ reference) >= 0 else -u


def _opnorm(A: np.ndarray) -> float:
    return float(np.max(np.abs(np.linalg.eigvalsh(A))))


# ---------------------------------------------------------------------------------
# the explorer object and its HTML


@dataclass
class Explorer:
    """A client-side explorer: a Vega-Lite spec over a grid of states.

    Attributes
    ----------
    name : str
        Used for the element id (``lossless-<name>``); deterministic.
    spec : dict
        The Vega-Lite specification (data inline).
    states : list of dict
        The grid (what the spec filters), with the rounded numbers it shows.
    controls : list of dict
        For each input: ``name``, two ``values`` a test can set, and a ``context``
        (values of other inputs under which this one changes the picture).
    """

    name: str
    spec: dict
    states: list = field(repr=False)
    controls: list = field(repr=False)

    def state(self, **key: Any) -> dict:
        """The one state whose fields equal ``key`` (floats compared to 1e-9)."""
        found = [s for s in self.states if all(
            (abs(s[k] - v) < 1e-9) if isinstance(v, (int, float)) and not isinstance(v, bool)
            and isinstance(s.get(k), (int, float)) else s.get(k) == v for k, v in key.items())]
        if len(found) != 1:
            raise KeyError(f"{len(found)} states match {key}")
        return found[0]

    def html(self) -> str:
        """The HTML fragment: a div, the spec as JSON, and the offline loader call."""
        return _embed_html(self.name, self.spec, self.controls)

    def _repr_html_(self) -> str:
        return self.html()

    def __repr__(self) -> str:
        return f"Explorer({self.name!r}, {len(self.states)} states)"


_LOADER = r"""(function () {
  var el = document.getElementById(%(id)s);
  var spec = JSON.parse(document.getElementById(%(id)s + "-spec").textContent);
  var root = document.documentElement.getAttribute("data-content_root");
  if (root === null) {
    var doc = document.querySelector('script[src*="documentation_options.js"]');
    root = doc ? doc.getAttribute("src").replace(/_static\/documentation_options\.js.*$/, "") : null;
  }
  if (root === null) {
    el.querySelector(".lossless-explorer-note").textContent =
      "This explorer runs in the built book (make book); in JupyterLab use the live widget.";
    return;
  }
  var base = new URL(root + "_static/%(folder)s/", document.baseURI).href;
  var files = ["vega.min.js", "vega-lite.min.js", "vega-embed.min.js"];
  var done = function () {
    window.vegaEmbed(el.querySelector(".lossless-explorer-chart"), spec,
      {mode: "vega-lite", renderer: "svg", actions: false})
      .then(function () { el.setAttribute("data-rendered", "true"); el.querySelector(".lossless-explorer-note").remove(); })
      .catch(function (err) { console.error("explorer " + %(id)s + ":", err); });
  };
  window.__losslessVega = window.__losslessVega || new Promise(function (resolve, reject) {
    // require.js (loaded for the saved ipywidgets) would capture the UMD bundles as
    // anonymous AMD modules: hide its define() while they load, one after the other.
    var amd = window.define;
    var next = function (i) {
      if (i === files.length) { window.define = amd; resolve(); return; }
      var s = document.createElement("script");
      s.src = base + files[i];
      s.onload = function () { next(i + 1); };
      s.onerror = function () { window.define = amd; reject(new Error("could not load " + s.src)); };
      window.define = undefined;
      document.head.appendChild(s);
    };
    next(0);
  });
  window.__losslessVega.then(done, function (err) { console.error(err.message); });
})();"""


def _embed_html(name: str, spec: dict, controls: list) -> str:
    eid = f"lossless-{name}"
    # "</" cannot appear inside a <script> element
    spec_json = json.dumps(spec, separators=(",", ":"), sort_keys=True).replace("</", "<\\/")
    loader = _LOADER % {"id": json.dumps(eid), "folder": OFFLINE_FOLDER}
    return (
        f'<div class="lossless-explorer" id="{eid}" '
        f'data-controls="{html.escape(json.dumps(controls, separators=(",", ":")))}">'
        '<p class="lossless-explorer-note">Loading the explorer (it needs JavaScript).</p>'
        '<div class="lossless-explorer-chart"></div></div>\n'
        f'<script type="application/json" id="{eid}-spec">{spec_json}</script>\n'
        f"<script>{loader}</script>"
    )


def _finish(chart: Any, name: str, validate: bool = False, datasets: dict | None = None
            ) -> dict:
    """Altair chart -> dict with deterministic names (no counters from the session), with
    ``datasets`` (inline rows, referenced by name in the chart) attached."""
    spec = chart.to_dict(validate=validate)
    text = json.dumps(spec, sort_keys=True)
    views = []
    for match in re.findall(r'"(view_\d+)"', text):
        if match not in views:
            views.append(match)
    for k, old in enumerate(views):
        text = text.replace(f'"{old}"', f'"{name}_view{k + 1}"')
    spec = json.loads(text)
    if datasets:
        spec["datasets"] = {**spec.get("datasets", {}), **datasets}
    return spec


# ---------------------------------------------------------------------------------
# the common chart: spectra on shared bins, leading eigenvectors, a printed readout


def _close(field: str, param: str) -> str:
    return f"abs(datum.{field} - {param}) < 1e-6"


#: Eigenvector entries are stored as round(1000 u) (integers keep the page small).
VECTOR_SCALE = 1000


def _chart_row(state: dict, fields: Sequence[str], readout: bool) -> dict:
    """The compact row the chart filters: the key fields, the bin start and width, the
    densities (3 significant digits), the eigenvectors as integers."""
    row = {k: state[k] for k in fields}
    lo, hi = state["lo"], state["hi"]
    row["b0"], row["bw"] = lo[0], significant(hi[0] - lo[0])
    for key in ("ha", "hb"):
        if key in state:
            row[key] = significant(state[key], 3)
    for key in ("sa", "sb"):
        row[key] = state.get(key)
    for key in ("ua", "ub"):
        if key in state:
            row[key] = [None if v is None else int(round(VECTOR_SCALE * v)) for v in state[key]]
    idx = state["i"]
    row["di"] = significant((idx[-1] - idx[0]) / max(len(idx) - 1, 1))
    for key in ("cx", "cy"):
        if key in state:
            row[key] = significant(state[key], 3)
    if readout:
        row["readout"] = state["readout"]
    return row


def _spectrum_chart(states: list, params: list, where: str, labels: tuple[str, str], *,
                    name: str, fields: Sequence[str], curve: bool = False, single: bool = False,
                    text: str = "datum.readout",
                    xtitle: str = "eigenvalue", vector_title: str = "leading eigenvector",
                    width: int = 330) -> dict:
    import altair as alt

    rows = [_chart_row(s, fields, text == "datum.readout") for s in states]
    data = alt.NamedData(name="states")  # the rows are attached after to_dict (fast)
    base = alt.Chart(data).transform_filter(where)
    series = alt.Color("series:N", scale=alt.Scale(domain=list(labels), range=[ORIGINAL, OTHER]),
                       legend=alt.Legend(orient="top", title=None))
    label = f"datum.key == 'ha' || datum.key == 'ua' || datum.key == 'sa' ? '{labels[0]}' : '{labels[1]}'"
    folded = ["ha"] if single else ["ha", "hb"]
    hist = (base.transform_flatten(folded)
            .transform_window(k="row_number()")
            .transform_calculate(lo="datum.b0 + (datum.k - 1) * datum.bw",
                                 hi="datum.b0 + datum.k * datum.bw")
            .transform_fold(folded, as_=["key", "density"])
            .transform_calculate(series=label)
            .mark_bar(opacity=0.5, binSpacing=0)
            .encode(x=alt.X("lo:Q", title=xtitle, scale=alt.Scale(zero=False)), x2="hi:Q",
                    y=alt.Y("density:Q", stack=None, title="density"), y2=alt.datum(0),
                    color=series))
    spikes = (base.transform_fold(["sa", "sb"], as_=["key", "value"])
              .transform_calculate(series=label, y0="0")
              .mark_point(shape="triangle-up", filled=True, size=70)
              .encode(x="value:Q", y=alt.Y("y0:Q"), color=series))
    layers = [hist, spikes]
    if curve:
        layers.append(base.transform_flatten(["cx", "cy"]).mark_line(color="black", strokeWidth=1.2)
                      .encode(x="cx:Q", y="cy:Q"))
    left = alt.layer(*layers).properties(width=width, height=220)
    vectors = ["ua"] if single else ["ua", "ub"]
    right = (base.transform_flatten(vectors)
             .transform_window(k="row_number()")
             .transform_fold(vectors, as_=["key", "scaled"])
             .transform_calculate(series=label, i="round((datum.k - 1) * datum.di)",
                                  entry=f"datum.scaled / {VECTOR_SCALE}")
             .mark_point(size=12, filled=True, opacity=0.8)
             .encode(x=alt.X("i:Q", title="sample (ordered by class)"),
                     y=alt.Y("entry:Q", title=vector_title), color=series)
             .properties(width=220, height=220))
    readout = (base.transform_calculate(text=text)
               .mark_text(align="left", baseline="top", fontSize=11, lineBreak="\n", dx=2)
               .encode(text="text:N", x=alt.value(0), y=alt.value(0))
               .properties(width=width + 250, height=60))
    chart = alt.vconcat(readout, alt.hconcat(left, right)).add_params(*params).configure_view(
        stroke=None)
    return _finish(chart, name, datasets={"states": rows})


def _radio(name: str, options: Sequence, value: Any, label: str) -> Any:
    import altair as alt

    return alt.param(name=name, value=value, bind=alt.binding_radio(options=list(options), name=label))


def _select(name: str, options: Sequence, value: Any, label: str) -> Any:
    import altair as alt

    return alt.param(name=name, value=value, bind=alt.binding_select(options=list(options), name=label))


def _range(name: str, lo: float, hi: float, step: float, value: float, label: str) -> Any:
    import altair as alt

    return alt.param(name=name, value=value,
                     bind=alt.binding_range(min=lo, max=hi, step=step, name=label))


# ---------------------------------------------------------------------------------
# chapter 1: Gram spectrum of a two-class mixture against Marchenko-Pastur


GRAM_SEPARATIONS = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)
GRAM_TRACE_GAPS = (0.0, 4.0, 8.0)
GRAM_RATIOS = (0.5, 1.0, 2.0, 4.0)


def _gram_state(p: int, ratio: float, separation: float, trace_gap: float, seed: int) -> dict:
    from lossless import data

    demo = data.gram_spectrum_demo(p, ratio, separation, trace_gap, seed=seed)
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
    readout = (f"largest eigenvalue {significant(vals[0])} (predicted spike "
               f"{'none: below the transition' if predicted is None else significant(predicted)}), "
               f"bulk edge {significant(demo.edge)}\n"
               f"alignment of the top eigenvector with the classes {significant(demo.alignment, 3)} "
               f"(predicted {'0' if pred_al is None else significant(pred_al, 3)})\n"
               f"mean ||x||^2, class 2 minus class 1: {significant(gap, 3)}\nthe Gram spectrum "
               f"sees the trace gap only through the mean variance tr C°/p = "
               f"{significant(demo.sigma2)}")
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
    """Grid of chapter-1 states: :func:`lossless.data.gram_spectrum_demo` for every
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
    spec = _spectrum_chart(states, params, where, ("Gram eigenvalues", "predicted spike"),
                           name=name, fields=("sep", "gap", "ratio"), curve=True, single=True,
                           vector_title="top eigenvector entry")
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

    from lossless import data, plotting

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
        demo = data.gram_spectrum_demo(p, ratio, separation, trace_gap, seed=seed)
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
        plotting.gram_demo_plot(axes, demo)
        fig.tight_layout()
        plt.show()

    output = widgets.interactive_output(draw, controls)
    return widgets.VBox([widgets.HBox([controls["p"], controls["ratio"]]),
                         widgets.HBox([controls["separation"], controls["trace_gap"]]), output])


# ---------------------------------------------------------------------------------
# chapter 3: empirical against exact kernel of one random network


KERNEL_ACTIVATIONS = ("relu", "tanh", "erf", "abs", "leaky_relu")
KERNEL_DEPTHS = (1, 2, 3, 4)
KERNEL_WIDTHS = (256, 1024, 4096)


def _activation(name: str) -> Any:
    from lossless import activations

    if name == "leaky_relu":
        return activations.get("leaky_relu", slope=0.1)
    if name == "ternary":
        return activations.get("ternary", s_minus=-0.4, s_plus=0.6, scale=1.0, odd=True)
    if name == "quadratic":
        return activations.get("quadratic", a=0.2, b=0.5, c=0.0)
    return activations.get(name)


def _pair_state(eig_a: np.ndarray, vec_a: np.ndarray, eig_b: np.ndarray, vec_b: np.ndarray,
                idx: np.ndarray) -> dict:
    state = histogram_pair(eig_a, eig_b, 40)
    state.update({"sa": significant(np.max(eig_a)), "sb": significant(np.max(eig_b)),
                  "i": idx.tolist(), "ua": significant(vec_a[idx]),
                  "ub": significant(_signed(vec_b, vec_a)[idx])})
    return state


def kernel_states(X: np.ndarray, labels: np.ndarray, tau0: float, *, kernel: str = "ck",
                  activations: Sequence[str] = KERNEL_ACTIVATIONS,
                  depths: Sequence[int] = KERNEL_DEPTHS, widths: Sequence[int] = KERNEL_WIDTHS,
                  seed: int = 0) -> list[dict]:
    """Grid of chapter-3 states: one random network per activation × depth × width
    against the exact kernel (:func:`lossless.kernels.compare_spectra`).

    Parameters
    ----------
    X : ndarray, shape (n, p)
        Samples ordered by class.
    labels : ndarray, shape (n,)
    tau0 : float
        Input scale (centring of the first layer).
    kernel : {"ck", "ntk"}
    activations : sequence of str
        Names for :func:`lossless.activations.get` (``leaky_relu`` with slope 0.1).
    depths, widths : sequence of int
    seed : int
        Each network is drawn from ``torch.Generator().manual_seed(seed)``.

    Returns
    -------
    list of dict
        Keys ``act, depth, width``, the histograms, eigenvectors, ``error``,
        ``alignment`` and ``readout``.
    """
    import torch

    from lossless import kernels

    X = np.asarray(X, dtype=float)
    idx = _subsample(X.shape[0], 128)
    states = []
    for name in activations:
        act = _activation(name)
        for depth in depths:
            exact = (kernels.exact_ck(X, [act] * depth, tau0=tau0) if kernel == "ck"
                     else kernels.exact_ntk(X, [act] * depth, tau0=tau0))
            vals, vecs = np.linalg.eigh(exact)
            norm = float(np.max(np.abs(vals)))
            for width in widths:
                net_layers = [act] * depth
                gen = torch.Generator().manual_seed(seed)
                if kernel == "ck":
                    emp = kernels.empirical_ck(X, net_layers, [width] * depth, 1, gen, tau0=tau0,
                                               dtype=torch.float32)
                else:
                    from lossless.networks import MLP

                    net = MLP(X.shape[1], [width] * depth, net_layers, tau0, generator=gen,
                              dtype=torch.float32)
                    emp = kernels.empirical_ntk(net, X)
                evals, evecs = np.linalg.eigh(emp)
                err = _opnorm(emp - exact) / norm
                align = abs(float(evecs[:, -1] @ vecs[:, -1]))
                state = _pair_state(vals, vecs[:, -1], evals, evecs[:, -1], idx)
                state.update({
                    "act": name, "depth": int(depth), "width": int(width),
                    "error": significant(err), "alignment": significant(align),
                    "readout": (f"{name}, L = {depth}, width {width}: relative operator-norm error "
                                f"||K_emp - K|| / ||K|| = {significant(err, 3)}\n"
                                f"leading eigenvector alignment {significant(align, 3)}; largest "
                                f"eigenvalue exact {significant(vals[-1])}, empirical "
                                f"{significant(evals[-1])}"),
                })
                states.append(state)
    return states


def kernel_explorer(X: np.ndarray, labels: np.ndarray, tau0: float, *, kernel: str = "ck",
                    seed: int = 0, name: str = "kernels", cache: bool = True) -> Explorer:
    """Chapter 3's explorer: activation × depth × width, empirical against exact kernel.

    Parameters
    ----------
    X, labels, tau0, kernel, seed : see :func:`kernel_states`
    name : str
    cache : bool
        Read or store the grid with :func:`cached_states` (about a minute to compute).

    Returns
    -------
    Explorer
    """
    key = _cache_key(np.asarray(X), float(tau0), kernel, seed, KERNEL_ACTIVATIONS, KERNEL_DEPTHS,
                     KERNEL_WIDTHS)
    states = cached_states("kernels", key, lambda: kernel_states(X, labels, tau0, kernel=kernel,
                                                                 seed=seed), cache=cache)
    params = [
        _select("act", KERNEL_ACTIVATIONS, "relu", "activation "),
        _range("depth", min(KERNEL_DEPTHS), max(KERNEL_DEPTHS), 1, 3, "depth L "),
        _radio("d", KERNEL_WIDTHS, 1024, "width d "),
    ]
    where = "datum.act == act && datum.depth == depth && datum.width == d"
    spec = _spectrum_chart(states, params, where, (f"exact {kernel.upper()}", f"empirical {kernel.upper()}"),
                           name=name, fields=("act", "depth", "width"))
    controls = [
        {"name": "act", "values": ["tanh", "abs"], "context": {}},
        {"name": "depth", "values": [1, 4], "context": {}},
        {"name": "d", "values": [256, 4096], "context": {}},
    ]
    return Explorer(name, spec, states, controls)


def kernel_widget(X: np.ndarray, labels: np.ndarray, *, seed: int = 0, depth: int = 3,
                  width: int = 1024) -> Any:
    """Chapter 3's live widget (JupyterLab): any activation, depth, width and kernel.

    Returns
    -------
    ipywidgets.interactive
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    import torch

    from lossless import kernels, plotting

    names = ("relu", "tanh", "erf", "abs", "sin", "leaky_relu")

    def show(activation="relu", depth=depth, width=width, kernel="ntk"):
        comparison = kernels.compare_spectra(X, [_activation(activation)] * depth, width,
                                             torch.Generator().manual_seed(seed), kernel=kernel)
        fig, axes = plt.subplots(1, 2, figsize=(9.6, 3.6), layout="constrained")
        plotting.spectrum_comparison_plot(axes, comparison, labels)
        plt.show()
        print(f"relative operator-norm error {comparison.relative_error:.3f}, "
              f"leading eigenvector alignment {comparison.alignment[0]:.3f}")

    return widgets.interactive(
        show,
        activation=widgets.Dropdown(options=list(names), value="relu"),
        depth=widgets.IntSlider(value=depth, min=1, max=5),
        width=widgets.SelectionSlider(options=[64, 128, 256, 512, 1024, 2048, 4096], value=width),
        kernel=widgets.ToggleButtons(options=["ck", "ntk"], value="ntk"),
    )


# ---------------------------------------------------------------------------------
# chapter 4: exact kernel against its equivalent (ours and the authors')


EQUIVALENCE_ACTIVATIONS = ("relu", "leaky_relu", "abs", "tanh", "erf", "quadratic", "ternary")
EQUIVALENCE_DEPTHS = (1, 2, 3)
EQUIVALENCE_SIZES = (64, 128, 256)


def equivalence_states(*, activations: Sequence[str] = EQUIVALENCE_ACTIVATIONS,
                       depths: Sequence[int] = EQUIVALENCE_DEPTHS,
                       sizes: Sequence[int] = EQUIVALENCE_SIZES, seed: int = 0) -> list[dict]:
    """Grid of chapter-4 states: exact CK against K̃ and the authors' K̃.

    For every activation × depth × p, on the reference mixture (``n = 2p``, drawn
    with ``numpy.random.default_rng(seed)``), the exact CK
    (:func:`lossless.kernels.exact_ck`), the equivalent
    (:func:`lossless.theory.equivalent_ck`) and the authors' version
    (:func:`lossless.theory.authors_equivalent_ck`).

    Returns
    -------
    list of dict
        Keys ``act, depth, p, which`` (``"ours"`` or ``"authors"``), histograms,
        eigenvectors, ``error``, ``alignment``, ``readout``.
    """
    from lossless import data, kernels, theory

    states = []
    for p in sizes:
        sample = data.preset("reference", int(p)).sample(2 * int(p), np.random.default_rng(seed))
        idx = _subsample(sample.n, 128)
        for name in activations:
            act = _activation(name)
            for depth in depths:
                layers = [act] * depth
                K = kernels.exact_ck(sample.X, layers, tau0=sample.tau0)
                vals, vecs = np.linalg.eigh(K)
                norm = float(np.max(np.abs(vals)))
                tilde = {"ours": theory.equivalent_ck(sample, layers),
                         "authors": theory.authors_equivalent_ck(sample, layers)}
                errors = {k: _opnorm(v - K) / norm for k, v in tilde.items()}
                for which, Kt in tilde.items():
                    tvals, tvecs = np.linalg.eigh(Kt)
                    align = abs(float(tvecs[:, -1] @ vecs[:, -1]))
                    state = _pair_state(vals, vecs[:, -1], tvals, tvecs[:, -1], idx)
                    state.update({
                        "act": name, "depth": int(depth), "p": int(p), "which": which,
                        "error": significant(errors[which]), "alignment": significant(align),
                        "readout": (f"{name}, L = {depth}, p = {p}, n = {2 * p}: "
                                    f"||K - K~|| / ||K|| = {significant(errors[which], 3)} "
                                    f"({'our' if which == 'ours' else 'the authors'} K~; "
                                    f"{'authors' if which == 'ours' else 'ours'}: "
                                    f"{significant(errors['authors' if which == 'ours' else 'ours'], 3)})\n"
                                    f"leading eigenvector alignment {significant(align, 4)}"),
                    })
                    states.append(state)
    return states


def equivalence_explorer(*, seed: int = 0, name: str = "equivalence", cache: bool = True
                         ) -> Explorer:
    """Chapter 4's explorer: activation × depth × p, K against K̃ (ours or the authors').

    The grid (:func:`equivalence_states`) is read or stored by :func:`cached_states`.

    Returns
    -------
    Explorer
    """
    key = _cache_key(seed, EQUIVALENCE_ACTIVATIONS, EQUIVALENCE_DEPTHS, EQUIVALENCE_SIZES)
    states = cached_states("equivalence", key, lambda: equivalence_states(seed=seed), cache=cache)
    params = [
        _select("act", EQUIVALENCE_ACTIVATIONS, "relu", "activation "),
        _range("depth", min(EQUIVALENCE_DEPTHS), max(EQUIVALENCE_DEPTHS), 1, 3, "depth L "),
        _radio("p", EQUIVALENCE_SIZES, 256, "p "),
        _radio("which", ["ours", "authors"], "ours", "equivalent "),
    ]
    where = "datum.act == act && datum.depth == depth && datum.p == p && datum.which == which"
    spec = _spectrum_chart(states, params, where, ("exact K", "equivalent K~"), name=name,
                           fields=("act", "depth", "p", "which"))
    controls = [
        {"name": "act", "values": ["tanh", "abs"], "context": {}},
        {"name": "depth", "values": [1, 2], "context": {}},
        {"name": "p", "values": [64, 128], "context": {}},
        {"name": "which", "values": ["authors", "ours"], "context": {}},
    ]
    return Explorer(name, spec, states, controls)


def equivalence_widget(activations: dict, *, seed: int = 0) -> Any:
    """Chapter 4's live widget (JupyterLab): ``activations`` maps labels to Activation.

    Returns
    -------
    ipywidgets.interactive
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    from lossless import plotting, theory

    def show(activation, depth=3, p=256, kernel="ck"):
        act = activations[activation]
        if kernel == "ntk" and act.has_jumps:
            print(f"{activation} has jumps: its NTK diagonal is infinite (see chapter 3); "
                  "showing the CK")
            kernel = "ck"
        comp = theory.reference_comparison(act, depth, p, kernel=kernel, seed=seed)
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
        plotting.equivalence_plot(axes, comp)
        plt.tight_layout()
        plt.show()
        print(f"{kernel.upper()}: error {comp.error:.3f}, alignment {comp.alignment[0]:.3f}")

    return widgets.interactive(
        show,
        activation=widgets.Dropdown(options=list(activations), value=next(iter(activations))),
        depth=widgets.IntSlider(value=3, min=1, max=4),
        p=widgets.SelectionSlider(options=[64, 128, 256, 512], value=256),
        kernel=widgets.ToggleButtons(options=["ck", "ntk"], value="ck"),
    )


# ---------------------------------------------------------------------------------
# chapter 5: original against compressed network


COMPRESSION_OFFSETS = (-0.5, -0.25, 0.0, 0.25, 0.5)
COMPRESSION_SCALES = (0.8, 1.0, 1.25)
COMPRESSION_SPARSITIES = (0.0, 0.5, 0.9, 0.99)
COMPRESSION_WIDTHS = (512, 2048)


def coupled_ternary(sparsity: float) -> Callable:
    """A weight sampler for :class:`lossless.networks.MLP`: Gaussian draws, ternarised.

    Draws ``W`` exactly as the Gaussian sampler does (same generator calls), then
    returns ``sign(W) 1[|W| > Φ⁻¹((1 + sparsity)/2)] / sqrt(1 - sparsity)``, the cut-off
    being the quantile with ``P(|W| > cut-off) = 1 - sparsity``: i.i.d. sparse ternary weights with zero mean and unit variance
    (the distribution of :func:`lossless.compress.ternary_weights`), coupled to the dense
    network drawn from the same seed: the compressed network is the ternarisation of
    that dense network.

    Parameters
    ----------
    sparsity : float
        In ``[0, 1)``.

    Returns
    -------
    callable
        ``sampler(shape, generator, dtype, sparsity)``.
    """
    eps = float(sparsity)
    if not 0.0 <= eps < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity!r}")

    def sampler(shape, generator, dtype, _sparsity=None):
        from lossless.networks import gaussian_weights

        return _ternarise(gaussian_weights(shape, generator, dtype=dtype), eps)

    return sampler


def _ternarise(W: Any, eps: float) -> Any:
    """``sign(W) 1[|W| > cut] / sqrt(1 - eps)``, ``cut = Φ⁻¹((1 + eps)/2)`` so that
    ``P(|xi| > cut) = 1 - eps`` for xi ~ N(0, 1)."""
    import torch
    from scipy.special import ndtri

    q = float(ndtri(1.0 - (1.0 - eps) / 2.0)) if eps > 0 else 0.0
    return torch.sign(W) * (W.abs() > q).to(W.dtype) / math.sqrt(1.0 - eps)


def _perturbed(plan_layers: Sequence[Any], layer: int, ds_minus: float, ds_plus: float,
               scale: float, flip: bool) -> list:
    from lossless.activations import Ternary

    out = list(plan_layers)
    t = out[layer - 1]
    lo, hi = sorted((t.s_minus + ds_minus, t.s_plus + ds_plus))
    out[layer - 1] = Ternary(lo, hi, t.scale * scale, (not t.odd) if flip else t.odd)
    return out


def _scales(layers: Sequence[Any], tau0: float) -> list[float]:
    taus = [float(tau0)]
    for act in layers:
        taus.append(math.sqrt(act.moments(taus[-1]).v))
    return taus


def _mismatch_rows(original: Sequence[Any], compressed: Sequence[Any], tau0: float) -> list:
    from lossless import compress

    rows = compress.layer_mismatch(list(original), list(compressed), tau0)
    return [[significant(r["g1^2"], 3), significant(r["g2^2"], 3),
             None if r["h"] is None else significant(r["h"], 3)] for r in rows]


def _features(X: Any, layers: Sequence[Any], weights: Sequence[Any], tau0: float,
              start: int = 0, H: Any = None) -> tuple[Any, list]:
    """Forward pass of the book's MLP from layer ``start`` (``H``: input of that layer).

    Returns the last features and the list of every layer's input (for reuse).
    """
    import torch

    taus = _scales(layers, tau0)
    H = X if H is None else H
    inputs = []
    for ell in range(start, len(layers)):
        inputs.append(H)
        act, W = layers[ell], weights[ell]
        m = float(act.moments(taus[ell]).m)
        H = (act(H @ W.T) - m) / math.sqrt(W.shape[0])
    return H, inputs


def _compression_state(K: np.ndarray, eig: tuple, Kc: np.ndarray, shift: float, idx: np.ndarray
                       ) -> dict:
    vals, vecs = eig
    norm = float(np.max(np.abs(vals)))
    D = Kc - K
    raw = _opnorm(D)
    D[np.diag_indices_from(D)] -= shift
    corrected = _opnorm(D)
    cvals, cvecs = np.linalg.eigh(Kc)
    cvals = cvals - shift
    spectral = float(np.max(np.abs(cvals - vals)))
    align = abs(float(cvecs[:, -1] @ vecs[:, -1]))
    state = _pair_state(vals, vecs[:, -1], cvals, cvecs[:, -1], idx)
    state.update({"error": significant(corrected / norm), "error_raw": significant(raw / norm),
                  "spectral": significant(spectral / norm), "alignment": significant(align),
                  "shift": significant(shift), "shift_rel": significant(shift / norm)})
    return state


def _compression_readout(s: dict, width: Any, eps: Any) -> str:
    where = ("infinite width: exact CK of the compressed network against the original one"
             if width == "exact" else
             f"width {width}, {int(round(100 * eps))} % zero weights: one compressed network "
             f"against the dense original drawn from the same seed")
    mm = " | ".join(f"layer {k + 1}: " + ", ".join(
        "-" if v is None else "0" if abs(v) < 1e-9 else f"{v:.2g}" for v in row)
                    for k, row in enumerate(s["mismatch"]))
    return (f"{where}\n"
            f"relative error after the identity shift {s['error']:.3g} (raw {s['error_raw']:.3g}), "
            f"spectral distance {s['spectral']:.3g}\nleading eigenvector alignment "
            f"{s['alignment']:.3g}; "
            f"identity shift (tau_c_L^2 - tau_L^2) {s['shift']:.3g} = {s['shift_rel']:.3g} ||K||\n"
            f"invariant mismatch (g1^2, g2^2, h): {mm}")


def compression_states(sample: Any, original: Sequence[Any], *, seed: int = 0,
                       offsets: Sequence[float] = COMPRESSION_OFFSETS,
                       scales: Sequence[float] = COMPRESSION_SCALES,
                       sparsities: Sequence[float] = COMPRESSION_SPARSITIES,
                       widths: Sequence[int] = COMPRESSION_WIDTHS,
                       finite: bool = True) -> list[dict]:
    """Grid of chapter-5 states: the original network against compressed ones.

    The compressed network is :func:`lossless.compress.compress` of ``original``, with
    one layer's activation moved: thresholds ``s_-, s_+`` offset by ``offsets``, scale
    ``b`` multiplied by ``scales``, sign pattern kept or flipped. Like with like:

    - **exact** (infinite width): the exact CK of the compressed network minus the
      predicted identity shift ``(tau^c_L)^2 - tau_L^2`` of *that* network, against
      the exact CK of the original: every layer × offsets² × scales × patterns;
    - **finite width** ``d`` and sparsity ``eps``: the CK of one compressed network
      whose weights are the ternarisation (:func:`coupled_ternary`) of the dense
      original of the same width drawn from the same seed, against that dense
      original's CK: every layer × offsets² (scale and pattern at their solved
      values) × ``sparsities`` × ``widths``.

    Parameters
    ----------
    sample : lossless.data.Sample
    original : sequence of Activation
    seed : int
        Seed of the ``torch.Generator`` of each width.
    offsets, scales, sparsities, widths : sequences
    finite : bool
        Include the finite-width states.

    Returns
    -------
    list of dict
        Keys ``w`` (``"exact"`` or the width as a string), ``e`` (ε, -1 for exact),
        ``l`` (the moved layer, 0 for the solved network), ``dm, dp, bf, pt``
        (offsets, scale factor, ``"solved"``/``"flipped"``), histograms (``lo, hi,
        ha, hb``), leading eigenvalues (``sa, sb``) and eigenvectors (``i, ua, ub``),
        ``error`` (after the shift), ``error_raw``, ``spectral`` (largest eigenvalue
        difference), ``alignment``, ``shift``, ``mismatch`` and ``readout``; numbers
        rounded to 4 significant digits.
    """
    import torch

    from lossless import compress, kernels

    original = list(original)
    X = np.asarray(sample.X, dtype=float)
    tau0 = float(sample.tau0)
    plan = compress.compress(original, tau0)
    depth = len(original)
    idx = _subsample(X.shape[0], 64)
    tau_L = _scales(original, tau0)[-1]

    keys = [(0, 0.0, 0.0, 1.0, False)]
    for layer in range(1, depth + 1):
        for dm in offsets:
            for dp in offsets:
                for bf in scales:
                    for flip in (False, True):
                        if (dm, dp, bf, flip) != (0.0, 0.0, 1.0, False):
                            keys.append((layer, float(dm), float(dp), float(bf), flip))

    def layers_of(key):
        layer, dm, dp, bf, flip = key
        return list(plan.layers) if layer == 0 else _perturbed(plan.layers, layer, dm, dp, bf, flip)

    def record(state, key, w, e, layers):
        layer, dm, dp, bf, flip = key
        state.update({"w": w, "e": e, "l": layer, "dm": dm, "dp": dp, "bf": bf,
                      "pt": "flipped" if flip else "solved",
                      "mismatch": _mismatch_rows(original, layers, tau0)})
        state["readout"] = _compression_readout(state, w, e)
        return state

    states = []
    K = kernels.exact_ck(X, original, tau0=tau0)
    eig = np.linalg.eigh(K)
    for key in keys:
        layers = layers_of(key)
        shift = _scales(layers, tau0)[-1] ** 2 - tau_L**2
        Kc = kernels.exact_ck(X, layers, tau0=tau0)
        states.append(record(_compression_state(K, eig, Kc, shift, idx), key, "exact", -1, layers))
    if not finite:
        return states

    finite_keys = [k for k in keys if k[3] == 1.0 and not k[4]]
    Xt = torch.tensor(X, dtype=torch.float32)
    with torch.no_grad():
        for width in widths:
            dims = [X.shape[1]] + [int(width)] * depth
            gen = torch.Generator().manual_seed(seed)
            from lossless.networks import gaussian_weights

            gauss = [gaussian_weights((dims[i + 1], dims[i]), gen, dtype=torch.float32)
                     for i in range(depth)]
            F, _ = _features(Xt, original, gauss, tau0)
            K_w = (F @ F.T).double().numpy()
            eig_w = np.linalg.eigh(K_w)
            for eps in sparsities:
                eps = float(eps)
                tern = [_ternarise(G, eps) for G in gauss]
                _, inputs = _features(Xt, list(plan.layers), tern, tau0)
                for key in finite_keys:
                    layers = layers_of(key)
                    start = max(key[0] - 1, 0)
                    Fc, _ = _features(Xt, layers, tern, tau0, start=start, H=inputs[start])
                    Kc = (Fc @ Fc.T).double().numpy()
                    shift = _scales(layers, tau0)[-1] ** 2 - tau_L**2
                    states.append(record(_compression_state(K_w, eig_w, Kc, shift, idx), key,
                                         str(int(width)), eps, layers))
    return states


def _cache_key(*parts: Any) -> str:
    h = hashlib.sha256()
    for part in (GRID_VERSION, *parts):
        if isinstance(part, np.ndarray):
            # 6 decimals: the same data on another CPU (BLAS) gives the same key
            h.update(np.round(np.asarray(part, dtype=float), 6).tobytes())
        else:
            h.update(json.dumps(part, sort_keys=True, default=repr).encode())
    return h.hexdigest()[:16]


def cached_states(kind: str, key: str, compute: Callable[[], list], *, cache: bool = True
                  ) -> list[dict]:
    """Read a grid of states from the package's cache, or compute and store it.

    The file is ``lossless/explore_cache/<kind>-<key>.json.gz``; ``key`` hashes every
    input of the grid (data, layers, seed, grid values), so a changed input computes
    a new grid. The cached numbers are the rounded ones the page shows, which also
    keeps the saved pages identical across machines (BLAS differences).

    Parameters
    ----------
    kind : str
    key : str
    compute : callable
        Returns the list of states.
    cache : bool, default True
        False: always compute, never write.

    Returns
    -------
    list of dict
    """
    path = _CACHE_DIR / f"{kind}-{key}.json.gz"
    if cache and path.is_file():
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            return json.load(fh)
    states = compute()
    if cache:
        path.parent.mkdir(exist_ok=True)
        with gzip.GzipFile(path, "wb", mtime=0) as fh:
            fh.write(json.dumps(states, separators=(",", ":")).encode("utf-8"))
    return json.loads(json.dumps(states))


def compression_explorer(sample: Any, original: Sequence[Any], *, seed: int = 0,
                         name: str = "compression", cache: bool = True) -> Explorer:
    """Chapter 5's explorer: move one layer's thresholds, scale and pattern, the
    sparsity and the width, and watch the two spectra (see :func:`compression_states`).

    The states take minutes to compute; they are cached by :func:`cached_states`.

    Returns
    -------
    Explorer
    """
    grid = dict(offsets=COMPRESSION_OFFSETS, scales=COMPRESSION_SCALES,
                sparsities=COMPRESSION_SPARSITIES, widths=COMPRESSION_WIDTHS)
    key = _cache_key(np.asarray(sample.X), [repr(a) for a in original], seed, grid)
    states = cached_states("compression", key,
                           lambda: compression_states(sample, original, seed=seed, **grid),
                           cache=cache)
    return _compression_chart(states, name)


_COMPRESSION_READOUT = (
    "(datum.w == 'exact' ? 'infinite width: exact CK of the compressed network against the "
    "original one' : 'width ' + datum.w + ', ' + format(100 * datum.e, '.0f') + ' % zero weights: "
    "one compressed network against the dense original drawn from the same seed') + '\\n' + "
    "'relative error after the identity shift ' + format(datum.error, '.3g') + ' (raw ' + "
    "format(datum.error_raw, '.3g') + '), spectral distance ' + format(datum.spectral, '.3g') + "
    "'\\nleading eigenvector alignment ' + format(datum.alignment, '.3g') + '; ' + "
    "'identity shift (tau_c_L^2 - tau_L^2) ' + format(datum.shift, '.3g') + ' = ' + "
    "format(datum.shift_rel, '.3g') + ' ||K||\\ninvariant mismatch (g1^2, g2^2, h): layer 1: ' + "
    "format(datum.mm[0], '.2g') + ', ' + format(datum.mm[1], '.2g') + ', ' + format(datum.mm[2], '.2g') + "
    "' | layer 2: ' + format(datum.mm[3], '.2g') + ', ' + format(datum.mm[4], '.2g') + ', ' + "
    "format(datum.mm[5], '.2g') + ' | layer 3: ' + format(datum.mm[6], '.2g') + ', ' + "
    "format(datum.mm[7], '.2g')"
)


def _compression_chart(states: list, name: str) -> Explorer:
    offsets = COMPRESSION_OFFSETS
    widths = ["exact"] + [str(w) for w in COMPRESSION_WIDTHS]
    params = [
        _radio("wd", widths, "exact", "width "),
        _radio("eps", COMPRESSION_SPARSITIES, 0.9, "sparsity ε (finite width) "),
        _radio("layer", [1, 2, 3], 1, "layer "),
        _range("dsm", min(offsets), max(offsets), offsets[1] - offsets[0], 0.0, "s₋ offset "),
        _range("dsp", min(offsets), max(offsets), offsets[1] - offsets[0], 0.0, "s₊ offset "),
        _radio("bf", COMPRESSION_SCALES, 1.0, "scale 𝔟 × "),
        _radio("pattern", ["solved", "flipped"], "solved", "sign pattern "),
    ]
    where = " && ".join([
        "datum.w == wd",
        "(wd == 'exact' || abs(datum.e - eps) < 1e-6)",
        "(datum.l == 0 ? (abs(dsm) < 1e-6 && abs(dsp) < 1e-6 && (wd != 'exact' || "
        "(abs(bf - 1) < 1e-6 && pattern == 'solved'))) : datum.l == layer)",
        _close("dm", "dsm"), _close("dp", "dsp"),
        f"(wd != 'exact' || ({_close('bf', 'bf')} && datum.pt == pattern))",
    ])
    note = ("wd != 'exact' && (abs(bf - 1) > 1e-6 || pattern != 'solved') ? "
            "'[finite widths are precomputed at the solved b and pattern] ' : ''")
    for st in states:  # the invariant mismatches as one flat list (tiny values as 0)
        st["readout"] = _compression_readout(st, st["w"], st["e"])
        st["mm"] = [0.0 if v is None or abs(v) < 1e-9 else significant(v, 2)
                    for row in st["mismatch"] for v in row]
    text = f"({note}) + " + _COMPRESSION_READOUT
    spec = _spectrum_chart(states, params, where, ("original CK", "compressed CK − shift"),
                           name=name, text=text,
                           fields=("w", "e", "l", "dm", "dp", "bf", "pt", "error", "error_raw",
                                   "spectral", "alignment", "shift", "shift_rel", "mm"))
    controls = [
        {"name": "wd", "values": ["512", "2048"], "context": {}},
        {"name": "eps", "values": [0.5, 0.99], "context": {"wd": "2048"}},
        {"name": "layer", "values": [2, 3], "context": {"dsp": 0.5}},
        {"name": "dsm", "values": [-0.5, 0.5], "context": {}},
        {"name": "dsp", "values": [0.25, 0.5], "context": {}},
        {"name": "bf", "values": [0.8, 1.25], "context": {}},
        {"name": "pattern", "values": ["flipped", "solved"], "context": {"dsp": 0.25}},
    ]
    return Explorer(name, spec, states, controls)


def compression_widget(sample: Any, original: Sequence[Any], *, seed: int = 0) -> Any:
    """Chapter 5's live widget (JupyterLab): any thresholds, scale, pattern, ε, width.

    Each redraw is one :func:`lossless.compress.overlay_spectra` call (the finite
    networks with independent sparse ternary weights).

    Returns
    -------
    ipywidgets.VBox
    """
    import ipywidgets as widgets
    import torch
    from IPython.display import display
    from matplotlib.figure import Figure

    from lossless import activations, compress, kernels, plotting

    original = list(original)
    plan = compress.compress(original, sample.tau0)
    K = kernels.exact_ck(sample.X, original, tau0=sample.tau0)
    eig = np.linalg.eigh(K)
    widths = {"exact": None, "512": 512, "2048": 2048}
    state = {"layers": list(plan.layers), "busy": False}
    style = {"description_width": "70px"}
    layer_box = widgets.Dropdown(options=list(range(1, len(original) + 1)), value=1,
                                 description="layer", style=style)
    pattern = widgets.ToggleButtons(options=["odd", "even"], description="pattern", style=style)
    s_minus = widgets.FloatSlider(min=-3, max=3, step=0.01, description="s₋", style=style)
    s_plus = widgets.FloatSlider(min=-3, max=3, step=0.01, description="s₊", style=style)
    scale = widgets.FloatSlider(min=0.05, max=4, step=0.01, description="𝔟", style=style)
    sparsity = widgets.FloatSlider(value=0.9, min=0, max=0.99, step=0.01, description="ε",
                                   style=style)
    width = widgets.Dropdown(options=list(widths), value="exact", description="width", style=style)
    corrected = widgets.Checkbox(value=True, description="shift-corrected")
    snap = widgets.Button(description="snap to solved values")
    out = widgets.Output()

    def show_layer():
        t = state["layers"][layer_box.value - 1]
        state["busy"] = True
        pattern.value = "odd" if t.odd else "even"
        s_minus.value, s_plus.value, scale.value = t.s_minus, t.s_plus, t.scale
        state["busy"] = False

    def redraw(*_):
        # The kernel may deliver a slider's next value while a redraw is still computing
        # (ipykernel handles widget messages while busy): one redraw at a time, then once
        # more with the latest values. Values are compared at the sliders' resolution, so
        # the float noise of a slider echoing its value back does not recompute anything.
        if state["busy"]:
            return
        if state.get("drawing"):
            state["pending"] = True
            return
        state["drawing"] = True
        try:
            while True:
                state["pending"] = False
                _draw()
                if not state["pending"]:
                    break
        finally:
            state["drawing"] = False

    def _draw():
        lo, hi = sorted((round(s_minus.value, 2), round(s_plus.value, 2)))
        current = state["layers"][layer_box.value - 1]
        moved = (max(abs(lo - current.s_minus), abs(hi - current.s_plus),
                     abs(round(scale.value, 2) - current.scale)) > 0.006
                 or (pattern.value == "odd") != current.odd)
        if moved:
            state["layers"][layer_box.value - 1] = activations.Ternary(
                lo, hi, round(scale.value, 2), pattern.value == "odd")
        key = (repr(state["layers"]), round(sparsity.value, 2), width.value, corrected.value)
        if key == state.get("drawn"):
            return
        ov = compress.overlay_spectra(
            sample, original, state["layers"], width=widths[width.value],
            sparsity=round(sparsity.value, 2), generator=torch.Generator().manual_seed(seed),
            shift_corrected=corrected.value, K_original=K, eigh_original=eig)
        fig = Figure(figsize=(10, 3.4))        # not pyplot: no state shared between redraws
        axes = fig.subplots(1, 2)
        plotting.compression_overlay_plot(axes, ov)
        fig.tight_layout()
        with out:
            out.clear_output(wait=True)
            display(fig)
            print(ov.report())
        state["drawn"] = key

    def on_layer(_):
        show_layer()
        redraw()

    def on_snap(_):
        state["layers"] = list(plan.layers)
        show_layer()
        redraw()

    show_layer()
    layer_box.observe(on_layer, names="value")
    for control in (pattern, s_minus, s_plus, scale, sparsity, width, corrected):
        control.observe(redraw, names="value")
    snap.on_click(on_snap)
    redraw()
    return widgets.VBox([widgets.HBox([layer_box, pattern, snap]),
                         widgets.HBox([s_minus, s_plus, scale]),
                         widgets.HBox([sparsity, width, corrected]), out])
