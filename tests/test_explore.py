"""Tests of lossless.explore: the explorers' grids, their specs and their HTML."""

import json
import re

import numpy as np
import pytest
import torch

from lossless import activations, data, explore, kernels

RELU = activations.get("relu")


def _spec_of(html: str, name: str) -> dict:
    match = re.search(rf'<script type="application/json" id="lossless-{name}-spec">(.*?)</script>',
                      html, re.S)
    assert match, "the spec is embedded as JSON"
    return json.loads(match.group(1).replace("<\\/", "</"))


def test_significant_rounds_to_four_digits():
    assert explore.significant(0.123456) == 0.1235
    assert explore.significant([1234567.0, -0.000123456]) == [1235000.0, -0.0001235]
    assert explore.significant(0.0) == 0.0
    with pytest.raises(ValueError, match="finite"):
        explore.significant(float("nan"))
    with pytest.raises(ValueError, match="digits"):
        explore.significant(1.0, 0)


def test_histogram_pair_shares_bins_and_integrates_to_the_bulk():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(400), rng.standard_normal(400) + 0.1
    h = explore.histogram_pair(a, b, 20, n_spikes=1)
    assert len(h["lo"]) == len(h["hi"]) == len(h["ha"]) == len(h["hb"]) == 20
    width = h["hi"][0] - h["lo"][0]
    # densities over all n values: the bulk (n - 1 values) has mass (n - 1) / n
    assert abs(sum(h["ha"]) * width - 399 / 400) < 0.01
    assert abs(sum(h["hb"]) * width - 399 / 400) < 0.01


def test_coupled_ternary_has_the_sparse_ternary_law_and_follows_the_gaussian_draw():
    sampler = explore.coupled_ternary(0.9)
    W = sampler((400, 500), torch.Generator().manual_seed(0), torch.float64, 0.9)
    G = torch.randn((400, 500), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert abs((W == 0).double().mean().item() - 0.9) < 0.005
    assert abs(W.mean().item()) < 0.01 and abs(W.var().item() - 1) < 0.03
    nonzero = W != 0
    assert torch.equal(torch.sign(W[nonzero]), torch.sign(G[nonzero]))   # coupled to G
    assert torch.all(G.abs()[nonzero] >= G.abs()[~nonzero].max())
    with pytest.raises(ValueError, match="sparsity"):
        explore.coupled_ternary(1.0)


def test_explorer_html_loads_vega_from_the_book_and_nothing_else():
    ex = explore.gram_explorer(64, cache=False)
    html = ex.html()
    assert 'id="lossless-gram"' in html and "data-controls" in html
    # the libraries come from the book's own _static/offline/vega/ (page root at run time)
    assert 'root + "_static/offline/vega/"' in html and "vega-embed.min.js" in html
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", html)
    assert "cdn" not in html.lower()
    spec = _spec_of(html, "gram")
    assert spec["$schema"].endswith(f"v{explore.VEGA_LITE_VERSION}.json")
    assert {p["name"] for p in spec["params"]} == {"sep", "gap", "ratio"}
    assert all("bind" in p for p in spec["params"])
    # no session counters: building it twice gives the same page
    assert explore.gram_explorer(64, cache=False).html() == html
    assert repr(ex) == "Explorer('gram', 72 states)"


def test_vega_lite_schema_matches_the_pinned_npm_package():
    import altair as alt

    assert alt.SCHEMA_VERSION == f"v{explore.VEGA_LITE_VERSION}"
    from pathlib import Path

    package = json.loads((Path(__file__).resolve().parents[1] / ".ci/assets/package.json")
                         .read_text())
    assert package["dependencies"]["vega-lite"] == explore.VEGA_LITE_VERSION


def test_every_control_value_of_a_test_has_a_state():
    ex = explore.gram_explorer(64, cache=False)
    params = {p["name"]: p for p in ex.spec["params"]}
    for control in ex.controls:
        bind = params[control["name"]]["bind"]
        for value in control["values"]:
            if "options" in bind:
                assert value in bind["options"]
            else:
                assert bind["min"] <= value <= bind["max"]
    assert {c["name"] for c in ex.controls} == set(params)


def test_gram_grid_state_is_the_package_function():
    states = explore.gram_states(64, separations=(3.0,), trace_gaps=(4.0,), ratios=(2.0,))
    demo = data.gram_spectrum_demo(64, 2.0, 3.0, 4.0, seed=0)
    assert states[0]["top"] == explore.significant(demo.eigenvalues[0])
    assert "predicted spike" in states[0]["readout"]


def test_kernel_grid_error_falls_with_width():
    s = data.preset("reference", 32).sample(64, np.random.default_rng(0))
    states = explore.kernel_states(s.X, s.labels, s.tau0, activations=("relu",), depths=(2,),
                                   widths=(64, 1024))
    assert states[0]["error"] > states[1]["error"]
    exact = kernels.exact_ck(s.X, [RELU] * 2, tau0=s.tau0)
    emp = kernels.empirical_ck(s.X, [RELU] * 2, [1024] * 2, 1, torch.Generator().manual_seed(0),
                               tau0=s.tau0, dtype=torch.float32)
    err = float(np.max(np.abs(np.linalg.eigvalsh(emp - exact)))) / float(
        np.max(np.abs(np.linalg.eigvalsh(exact))))
    assert abs(states[1]["error"] - err) < 1e-3


def test_equivalence_grid_ours_beats_the_authors():
    states = explore.equivalence_states(activations=("relu",), depths=(1,), sizes=(64,))
    by = {s["which"]: s for s in states}
    assert by["ours"]["error"] < by["authors"]["error"]


def test_compression_solved_state_lines_up_and_a_moved_threshold_does_not():
    s = data.preset("reference", 64).sample(128, np.random.default_rng(0))
    states = explore.compression_states(s, [RELU] * 2, offsets=(0.0, 0.5), scales=(1.0,),
                                        sparsities=(0.5,), widths=(256,))
    exact = {(st["l"], st["dm"], st["dp"], st["pt"]): st for st in states if st["w"] == "exact"}
    solved = exact[0, 0.0, 0.0, "solved"]
    assert all(v == 0.0 or abs(v) < 1e-9 for row in solved["mismatch"] for v in row if v is not None)
    moved = exact[1, 0.0, 0.5, "solved"]
    assert moved["error"] > 3 * solved["error"]
    assert max(abs(v) for v in moved["mismatch"][0]) > 0.01
    finite = [st for st in states if st["w"] == "256"]
    assert len(finite) == 1 + 2 * 3  # the solved network, then per layer 3 moved offsets
    assert all(st["e"] == 0.5 and st["bf"] == 1.0 and st["pt"] == "solved" for st in finite)


def test_compression_explorer_filters_exactly_one_state_per_setting(tmp_path, monkeypatch):
    monkeypatch.setattr(explore, "_CACHE_DIR", tmp_path)
    monkeypatch.setattr(explore, "COMPRESSION_OFFSETS", (-0.5, 0.0, 0.5))
    monkeypatch.setattr(explore, "COMPRESSION_SCALES", (1.0,))
    monkeypatch.setattr(explore, "COMPRESSION_SPARSITIES", (0.5,))
    monkeypatch.setattr(explore, "COMPRESSION_WIDTHS", (128,))
    s = data.preset("reference", 32).sample(64, np.random.default_rng(0))
    ex = explore.compression_explorer(s, [RELU] * 3)
    assert len(list(tmp_path.glob("compression-*.json.gz"))) == 1      # cached ...
    again = explore.compression_explorer(s, [RELU] * 3)
    assert again.html() == ex.html()                                   # ... and read back
    solved = ex.state(w="exact", l=0)
    assert solved["error"] < ex.state(w="exact", l=2, dm=0.0, dp=0.5, bf=1.0, pt="solved")["error"]
    with pytest.raises(KeyError):
        ex.state(w="exact")


def test_the_chapters_grids_are_shipped_in_the_cache(monkeypatch):
    # the chapters' explorers must read their grids, not recompute them (minutes, and
    # the saved pages are compared by nbval): a changed input or key shows up here
    def no_compute(*args, **kwargs):
        raise AssertionError("grid not in lossless/explore_cache: recompute and commit it")

    for name in ("gram_states", "kernel_states", "equivalence_states", "compression_states"):
        monkeypatch.setattr(explore, name, no_compute)
    assert len(explore.gram_explorer(256, seed=0).states) == 72
    s2 = data.preset("reference", 128).sample(256, np.random.default_rng(0))
    assert len(explore.kernel_explorer(s2.X, s2.labels, s2.tau0, seed=0).states) == 60
    assert len(explore.equivalence_explorer(seed=0).states) == 126
    s4 = data.preset("reference", 256).sample(512, np.random.default_rng(0))
    assert len(explore.compression_explorer(s4, [RELU] * 3, seed=0).states) == 1032
