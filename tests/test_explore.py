"""Tests of lossless.explore: the explorers' grids, their specs and their HTML (``_vega``), and
each chapter's computation (``gaussian_mixture``, ``ck_ntk``, ``equivalence``, ``compression``)."""

import json
import math
import re

import numpy as np
import pytest
import torch

from lossless import activations, compress, data, explore, kernels
from lossless.explore import _vega, compression, gaussian_mixture

RELU = activations.get("relu")


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


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
    demo = explore.gram_spectrum_demo(64, 2.0, 3.0, 4.0, seed=0)
    assert states[0]["top"] == explore.significant(demo.eigenvalues[0])
    assert "predicted spike" in states[0]["readout"]


def test_gram_cache_matches_the_code_and_the_panel_colours_the_classes():
    # a stale cache (code changed, inputs not) would show old readouts in the book
    cached = explore.gram_explorer(256, seed=0).state(sep=3.0, gap=4.0, ratio=2.0)
    fresh = explore.gram_states(256, separations=(3.0,), trace_gaps=(4.0,), ratios=(2.0,))[0]
    assert cached == fresh
    assert cached["readout"].count("\n") == 2                      # three lines
    assert max(len(line) for line in cached["readout"].split("\n")) <= 90
    ex = explore.gram_explorer(64, cache=False)
    right = ex.spec["vconcat"][1]["hconcat"][1]
    points = right["layer"][0]
    assert points["encoding"]["color"]["field"] == "cls"
    assert "datum.i < 32.0 * datum.ratio" in points["transform"][-1]["calculate"]
    # the samples are ordered by class, n/2 in each, as the panel's boundary assumes
    demo = explore.gram_spectrum_demo(64, 0.5, 3.0, 4.0, seed=0)
    assert list(demo.labels) == [0] * 16 + [1] * 16


def test_kernel_grid_error_falls_with_width():
    s = data.preset("reference", 32).sample(64, np.random.default_rng(0))
    states = explore.kernel_states(s.X, s.labels, s.tau0, activations=("relu",), depths=(2,),
                                   widths=(64, 1024))
    assert states[0]["error"] > states[1]["error"]
    exact = kernels.exact_ck(s.X, [RELU] * 2, tau0=s.tau0)
    emp = kernels.empirical_ck(s.X, [1024] * 2, [RELU] * 2, 1, torch.Generator().manual_seed(0),
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
    monkeypatch.setattr(_vega, "_CACHE_DIR", tmp_path)
    monkeypatch.setattr(compression, "COMPRESSION_OFFSETS", (-0.5, 0.0, 0.5))
    monkeypatch.setattr(compression, "COMPRESSION_SCALES", (1.0,))
    monkeypatch.setattr(compression, "COMPRESSION_SPARSITIES", (0.5,))
    monkeypatch.setattr(compression, "COMPRESSION_WIDTHS", (128,))
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

    for module, name in ((gaussian_mixture, "gram_states"), (explore.ck_ntk, "kernel_states"),
                         (explore.equivalence, "equivalence_states"),
                         (compression, "compression_states")):
        monkeypatch.setattr(module, name, no_compute)
    assert len(explore.gram_explorer(256, seed=0).states) == 72
    s2 = data.preset("reference", 128).sample(256, np.random.default_rng(0))
    assert len(explore.kernel_explorer(s2.X, s2.labels, s2.tau0, seed=0).states) == 60
    assert len(explore.equivalence_explorer(seed=0).states) == 126
    s4 = data.preset("reference", 256).sample(512, np.random.default_rng(0))
    assert len(explore.compression_explorer(s4, [RELU] * 3, seed=0).states) == 1032

# ---------------------------------------------------------------------------------
# gaussian_mixture: the Gram spectrum demo


def test_gram_spectrum_demo_matches_direct_computation():
    for ratio in (0.5, 2.0):
        d = explore.gram_spectrum_demo(p=64, ratio=ratio, separation=3.0, trace_gap=4.0, seed=1)
        s = data.preset("mixed", 64, separation=3.0, trace_gap=4.0, shape=0.0).sample(
            d.n, np.random.default_rng(1))
        vals, vecs = np.linalg.eigh(s.X @ s.X.T)
        np.testing.assert_allclose(d.eigenvalues, np.clip(vals[::-1], 0, None), atol=1e-10)
        assert abs(d.top_vector @ vecs[:, -1]) == pytest.approx(1.0, abs=1e-10)
        assert d.top_vector[d.labels == 0].mean() > 0
        np.testing.assert_allclose(d.squared_norms, np.sum(s.X**2, axis=1))
        assert d.grid.shape == d.density.shape and d.n == int(round(ratio * 64))


def test_gram_spectrum_demo_default_spike():
    d = explore.gram_spectrum_demo(p=256, ratio=2.0, separation=3.0, trace_gap=4.0, seed=0)
    # one visible spike (||mu||^2 = 2.25 > sqrt(p/n)): eigenvalue and alignment as predicted
    assert d.predicted_spikes.shape == (1,)
    assert d.eigenvalues[0] > d.edge
    assert d.eigenvalues[0] == pytest.approx(d.predicted_spikes[0], rel=0.1)
    assert d.alignment == pytest.approx(d.predicted_alignments[0], abs=0.1)
    again = explore.gram_spectrum_demo(p=256, ratio=2.0, separation=3.0, trace_gap=4.0, seed=0)
    np.testing.assert_array_equal(d.eigenvalues, again.eigenvalues)
    weak = explore.gram_spectrum_demo(p=256, ratio=2.0, separation=0.5, trace_gap=0.0, seed=0)
    assert np.all(np.isnan(weak.predicted_spikes))
    with pytest.raises(ValueError, match="ratio"):
        explore.gram_spectrum_demo(ratio=0.0)


def test_gram_spectrum_demo_names_bad_arguments():
    with pytest.raises(TypeError, match="seed"):
        explore.gram_spectrum_demo(p=8, seed=1.7)
    with pytest.raises(TypeError, match="ratio"):
        explore.gram_spectrum_demo(p=8, ratio="2")

# ---------------------------------------------------------------------------------
# ck_ntk: empirical against exact kernel


def test_compare_empirical_spectra_fields_and_consistency():
    sample = data.preset("reference", 64).sample(48, np.random.default_rng(29))
    layers = [RELU, RELU]
    res = explore.compare_empirical_spectra(sample.X, 2000, layers, gen(30), kernel="ck")
    K = kernels.exact_ck(sample.X, layers)
    np.testing.assert_allclose(res.eigenvalues_a, np.sort(np.linalg.eigvalsh(K))[::-1], rtol=1e-10)
    assert res.eigenvalues_b.shape == (48,) and np.all(np.diff(res.eigenvalues_b) <= 1e-12)
    assert 0 < res.error < 0.25
    # the class spike is isolated: its eigenvector is found at width 2000
    assert res.alignment.shape == (2,) and res.alignment[0] > 0.95
    assert res.names == ("exact", "empirical") and res.width == 2000 and res.kernel == "ck"
    ntk = explore.compare_empirical_spectra(sample.X, 2000, layers, gen(30), kernel="ntk",
                                            n_vectors=3)
    assert ntk.alignment.shape == (3,) and ntk.error < 0.2 and ntk.alignment[0] > 0.95
    with pytest.raises(ValueError, match="kernel"):
        explore.compare_empirical_spectra(sample.X, 100, layers, gen(), kernel="nngp")


def test_spectrum_comparison_plot_draws_both_spectra():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lossless import plotting

    sample = data.preset("reference", 32).sample(24, np.random.default_rng(31))
    res = explore.compare_empirical_spectra(sample.X, 256, [RELU], gen(32), kernel="ck")
    fig, axes = plt.subplots(1, 2)
    out = plotting.spectrum_comparison_plot(axes, res, sample.labels, bins=10)
    assert out is axes
    assert len(axes[0].patches) == 2  # two step-filled histograms
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["exact", "empirical"]
    assert len(axes[1].lines) >= 3  # two classes + the empirical vector
    fig2, ax = plt.subplots()
    assert plotting.spectrum_comparison_plot(ax, res) is ax
    plt.close("all")


def test_compare_empirical_spectra_arguments_are_validated_and_named():
    X = np.random.default_rng(0).standard_normal((6, 5)) / math.sqrt(5)
    layers = [RELU]
    with pytest.raises(TypeError, match="width"):
        explore.compare_empirical_spectra(X, 2.7, layers, gen())
    with pytest.raises(ValueError, match="width"):
        explore.compare_empirical_spectra(X, 0, layers, gen())
    with pytest.raises(TypeError, match="generator"):
        explore.compare_empirical_spectra(X, 8, layers, 0)
    with pytest.raises(ValueError, match="n_vectors"):
        explore.compare_empirical_spectra(X, 8, layers, gen(), n_vectors=7)
    with pytest.raises(TypeError, match="X"):
        explore.compare_empirical_spectra(X + 1j, 8, layers, gen())

# ---------------------------------------------------------------------------------
# equivalence: exact kernel against K~


def test_leading_eigenpairs_agree():
    comp = explore.reference_comparison(activations.get("relu"), depth=2, p=256, seed=3)
    spikes = comp.spikes(2)
    assert comp.error < 0.05
    np.testing.assert_allclose(spikes[:, 1], spikes[:, 0], rtol=0.03)
    assert comp.alignment[0] > 0.99
    assert np.all(np.diff(comp.eigenvalues_a) <= 0)


def test_reference_comparison_is_deterministic_and_checks_inputs():
    relu = activations.get("relu")
    a = explore.reference_comparison(relu, 1, 32, kernel="ntk", seed=5)
    b = explore.reference_comparison(relu, 1, 32, kernel="ntk", seed=5)
    assert a.n == 64 and a.kernel == "ntk"
    np.testing.assert_array_equal(a.eigenvalues_a, b.eigenvalues_a)
    with pytest.raises(ValueError, match="kernel"):
        explore.reference_comparison(relu, 1, 32, kernel="gp")
    with pytest.raises(ValueError, match="depth"):
        explore.reference_comparison(relu, 0, 32)
    with pytest.raises(ValueError, match="p must"):
        explore.reference_comparison(relu, 1, 4)
    with pytest.raises(TypeError, match="activation"):
        explore.reference_comparison("relu", 1, 32)

def test_compare_equivalent_spectra_passes_first_layer_m4_to_both_sides():
    sample = data.preset("shape", 32).sample(64, np.random.default_rng(6))
    cmp = explore.compare_equivalent_spectra(sample, [RELU], first_layer_m4=9.0)
    base = explore.compare_equivalent_spectra(sample, [RELU])
    assert cmp.eigenvalues_a[0] != base.eigenvalues_a[0]
    assert cmp.error < 0.1
    assert base.names == ("exact", "equivalent") and base.width is None and base.shift == 0.0
    np.testing.assert_array_equal(base.labels, sample.labels)


def test_equivalence_plot_draws_a_comparison():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lossless import plotting

    comp = explore.reference_comparison(RELU, 2, 32, seed=0)
    fig, axes = plt.subplots(1, 2)
    assert plotting.equivalence_plot(axes, comp) is axes
    assert len(axes[0].patches) > 0 and len(axes[1].lines) >= 2
    plt.close(fig)

# ---------------------------------------------------------------------------------
# compression: original against compressed network


@pytest.fixture(scope="module")
def tiny():
    s = data.preset("reference", 32).sample(64, np.random.default_rng(0))
    layers = [activations.get("relu")] * 2
    return s, layers, compress.compress(layers, s.tau0)


def test_compare_compressed_spectra_exact_and_shift(tiny):
    s, layers, plan = tiny
    raw = explore.compare_compressed_spectra(s, layers, plan.layers)
    corr = explore.compare_compressed_spectra(s, layers, plan.layers, shift_corrected=True)
    assert raw.shift == pytest.approx(plan.shift, rel=1e-12)
    np.testing.assert_allclose(corr.eigenvalues_b, raw.eigenvalues_b - plan.shift,
                               atol=1e-12)
    assert corr.error == corr.error_corrected < raw.error == raw.error_raw
    assert corr.alignment[0] > 0.95 and raw.width is None
    assert all(row["g1^2"] < 1e-10 and row["g2^2"] < 1e-10 for row in raw.mismatch)
    assert raw.mismatch[0]["h"] < 1e-10 and raw.mismatch[-1]["h"] is None
    assert "identity shift" in corr.report()
    # moving a threshold shows up in the mismatch of that layer only
    t = plan.layers[0]
    moved = [activations.Ternary(t.s_minus, t.s_plus + 0.3, t.scale, t.odd), plan.layers[1]]
    mm = explore.layer_mismatch(layers, moved, s.tau0)
    assert max(mm[0]["g1^2"], mm[0]["g2^2"], mm[0]["h"]) > 1e-3


def test_compare_compressed_spectra_finite_width_and_plot(tiny):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lossless import plotting

    s, layers, plan = tiny
    ov = explore.compare_compressed_spectra(s, layers, plan.layers, width=256, sparsity=0.5,
                                  generator=torch.Generator().manual_seed(0),
                                  shift_corrected=True)
    again = explore.compare_compressed_spectra(s, layers, plan.layers, width=256, sparsity=0.5,
                                     generator=torch.Generator().manual_seed(0),
                                     shift_corrected=True)
    np.testing.assert_array_equal(ov.eigenvalues_b, again.eigenvalues_b)
    assert ov.width == 256 and ov.sparsity == 0.5 and np.isfinite(ov.error)
    fig, axes = plt.subplots(1, 2)
    assert plotting.compression_overlay_plot(axes, ov) is axes
    plt.close(fig)
    with pytest.raises(TypeError, match="generator"):
        explore.compare_compressed_spectra(s, layers, plan.layers, width=16)
    with pytest.raises(ValueError, match="width"):
        explore.compare_compressed_spectra(s, layers, plan.layers, width=0,
                                 generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="same depth"):
        explore.layer_mismatch(layers, plan.layers[:1], s.tau0)


def test_compare_compressed_spectra_checks_its_kernels(tiny):
    s, layers, plan = tiny
    n = s.X.shape[0]
    K = np.eye(n)
    K[0, 1] = 0.5  # not symmetric
    with pytest.raises(ValueError, match="K_original must be symmetric"):
        explore.compare_compressed_spectra(s, layers, plan.layers, K_original=K)
    with pytest.raises(ValueError, match="K_compressed must be finite"):
        explore.compare_compressed_spectra(s, layers, plan.layers, K_compressed=np.full((n, n), np.nan))
    with pytest.raises(ValueError, match="K_original must have shape"):
        explore.compare_compressed_spectra(s, layers, plan.layers, K_original=np.eye(n + 1))
    with pytest.raises(TypeError, match="sample"):
        explore.compare_compressed_spectra(s.X, layers, plan.layers)
    with pytest.raises(TypeError, match="width"):
        explore.compare_compressed_spectra(s, layers, plan.layers, width=16.0,
                                 generator=torch.Generator().manual_seed(0))
    with pytest.raises(TypeError, match="shift_corrected"):
        explore.compare_compressed_spectra(s, layers, plan.layers, shift_corrected="yes")
    with pytest.raises(TypeError, match="eigh_original"):
        explore.compare_compressed_spectra(s, layers, plan.layers, eigh_original=np.eye(n))
