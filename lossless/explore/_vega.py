"""The explorers' machinery: Vega-Lite specs over grids of states, their HTML, and the grid cache.

Each chapter's explorer (``lossless.explore.gaussian_mixture``, ``ck_ntk``, ``equivalence``,
``compression``) computes a grid of states with the package's own functions (cached in
``lossless/explore_cache/``, see :func:`cached_states`), rounds every number (four
significant digits, three for the drawn densities, eigenvector entries to 1e-3) so that
BLAS differences between machines do not change the saved page, and returns an
:class:`Explorer`: a Vega-Lite chart (built with Altair) whose parameters are bound to
range/select inputs and filter the states, so that several controls combine. In the
built HTML it runs with no kernel and no network: vega, vega-lite and vega-embed are
served from the book's ``_static/offline/`` (``make assets``).
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

__all__ = ["Explorer", "significant", "histogram_pair", "cached_states"]

#: Folder (under the built site's ``_static/``) holding vega, vega-lite, vega-embed.
OFFLINE_FOLDER = "offline/vega"
#: The Vega-Lite schema the specs are written against (Altair 6.3.0's).
VEGA_LITE_VERSION = "6.4.1"
ORIGINAL, OTHER = "#1f77b4", "#ff7f0e"
_CACHE_DIR = Path(__file__).resolve().parent.parent / "explore_cache"
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
# shared by the chapters' grids: activations by name, a pair of spectra as a state


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


# ---------------------------------------------------------------------------------
# the cache of the grids


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
