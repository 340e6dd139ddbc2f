"""Tests of the split of chapter 5's package (readout, baselines, experiments) and of the
finite-width law and alignment used by the frontier."""

import numpy as np
import pytest

from lossless import baselines, experiments, practice, readout


def test_practice_reexports_every_public_name_of_the_three_modules():
    for module in (readout, baselines, experiments):
        for name in module.__all__:
            assert name in practice.__all__
            assert getattr(practice, name) is getattr(module, name)
    assert practice.ridge_readout is readout.ridge_readout
    assert practice.run_trial is experiments.run_trial
    assert practice.ternary_memory is baselines.ternary_memory


def test_power_law_recovers_its_parameters_and_inverts():
    w = np.array([500.0, 1000.0, 2000.0, 4000.0])
    law = experiments.fit_power_law(w, 3.0 * w ** -0.5)
    assert law.coefficient == pytest.approx(3.0) and law.exponent == pytest.approx(0.5)
    assert law.residual < 1e-12
    assert law.width_for(3.0 / 100.0) == pytest.approx(1e4)
    assert np.allclose(law(w), 3.0 * w ** -0.5)


def test_power_law_refuses_bad_input():
    with pytest.raises(ValueError, match="values must be positive"):
        experiments.fit_power_law([1, 2], [1.0, -1.0])
    with pytest.raises(ValueError, match="widths must hold at least two distinct"):
        experiments.fit_power_law([2, 2], [1.0, 1.0])
    with pytest.raises(ValueError, match="value"):
        experiments.PowerLaw(1.0, 0.5).width_for(0.0)


def test_alignment_is_one_for_a_class_kernel_and_falls_with_added_noise():
    y = np.repeat([0, 1, 2], 20)
    Y = np.eye(3)[y]
    assert experiments.kernel_target_alignment(Y @ Y.T, y, 3) == pytest.approx(1.0)
    G = np.random.default_rng(0).standard_normal((60, 600)) / np.sqrt(600)
    align = [experiments.kernel_target_alignment(Y @ Y.T + s * G @ G.T, y, 3)
             for s in (0.1, 1.0, 10.0)]
    assert 1.0 > align[0] > align[1] > align[2] > 0.0
    with pytest.raises(ValueError, match="labels"):
        experiments.kernel_target_alignment(Y @ Y.T, y[:-1], 3)


def test_table_renders_the_text_tables_cells_as_html():
    records = [{"method": "dense", "acc": 0.9123}, {"method": "compressed net", "acc": float("nan")}]
    table = experiments.Table(records, {"method": "", "acc": ".3f"}, caption="a <caption>")
    assert repr(table) == "a <caption>\n" + experiments.format_table(records, {"method": "",
                                                                              "acc": ".3f"})
    html = table._repr_html_()
    assert "<td>compressed net</td><td>-</td>" in html and "a &lt;caption&gt;" in html
    with pytest.raises(TypeError, match="caption"):
        experiments.Table(records, {"method": ""}, caption=3)
