"""Tests of the spectrum figures of lossless.plotting: what is marked as an outlier."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from lossless import activations, data, explore, plotting, spectra  # noqa: E402


def _markers(ax):
    """(down-triangle x values, up-triangle x values) drawn on ``ax``."""
    down = [x for line in ax.get_lines() if line.get_marker() == "v" for x in line.get_xdata()]
    up = [x for line in ax.get_lines() if line.get_marker() == "^" for x in line.get_xdata()]
    return sorted(down), sorted(up)


def _vertical_lines(ax):
    return [line.get_xdata()[0] for line in ax.get_lines()
            if line.get_linestyle() == ":" and len(set(line.get_xdata())) == 1]


@pytest.fixture(scope="module")
def comparison_and_prediction():
    sample = data.preset("reference", 64).sample(128, np.random.default_rng(0))
    layers = [activations.get("relu")] * 2
    comp = explore.compare_equivalent_spectra(sample, layers)
    pred = spectra.predict_outliers(sample, layers, equivalent_eigvals=comp.eigenvalues_b,
                                    tolerance=0.01)
    return comp, pred


def test_only_the_predicted_outliers_are_marked(comparison_and_prediction):
    comp, pred = comparison_and_prediction
    assert pred.count == 1
    fig, axes = plt.subplots(1, 2)
    assert plotting.equivalence_plot(axes, comp, prediction=pred) is axes
    down, up = _markers(axes[0])
    assert down == sorted(comp.eigenvalues_a[comp.eigenvalues_a > pred.threshold])
    assert up == sorted(pred.positions)
    assert len(up) == pred.count
    assert _vertical_lines(axes[0]) == [pytest.approx(pred.bulk.edge)]
    plt.close(fig)


def test_a_lower_threshold_marks_more_and_the_default_marks_the_largest_only(
        comparison_and_prediction):
    comp, pred = comparison_and_prediction
    # a prediction whose threshold sits inside the bulk marks every eigenvalue above it
    low = spectra.count_outliers(comp.eigenvalues_b, pred.bulk, margin=0.0)
    fig, ax = plt.subplots()
    plotting.overlaid_spectra(ax, comp.eigenvalues_a, comp.eigenvalues_b, prediction=low)
    assert len(_markers(ax)[1]) == low.count == int(np.sum(comp.eigenvalues_b > low.threshold))
    plt.close(fig)
    fig, ax = plt.subplots()
    plotting.overlaid_spectra(ax, comp.eigenvalues_a, comp.eigenvalues_b)
    assert _markers(ax) == ([comp.eigenvalues_a.max()], [comp.eigenvalues_b.max()])
    assert _vertical_lines(ax) == []
    plt.close(fig)
    fig, ax = plt.subplots()
    plotting.overlaid_spectra(ax, comp.eigenvalues_a, comp.eigenvalues_b, n_spikes=0)
    assert _markers(ax) == ([], [])
    plt.close(fig)


def test_bad_prediction_arguments(comparison_and_prediction):
    comp, pred = comparison_and_prediction
    fig, ax = plt.subplots()
    with pytest.raises(TypeError, match="prediction must be a lossless.spectra.OutlierPrediction"):
        plotting.overlaid_spectra(ax, comp.eigenvalues_a, comp.eigenvalues_b, prediction=(1, 2))
    with pytest.raises(ValueError, match="n_spikes or prediction, not both"):
        plotting.overlaid_spectra(ax, comp.eigenvalues_a, comp.eigenvalues_b, n_spikes=1,
                                  prediction=pred)
    with pytest.raises(ValueError, match="n_spikes must be an integer <= 1"):
        plotting.overlaid_spectra(ax, [1.0, 2.0], [1.0, 2.0], n_spikes=2)
    with pytest.raises(ValueError, match="n_spikes"):
        plotting.overlaid_spectra(ax, [1.0, 2.0], [1.0, 2.0], n_spikes=-1)
    plt.close(fig)


def test_the_other_spectrum_panels_take_a_prediction(comparison_and_prediction):
    from dataclasses import replace

    comp, pred = comparison_and_prediction
    rng = np.random.default_rng(0)
    shuffled = rng.permutation(comp.eigenvalues_a)          # any order is accepted
    overlay = replace(comp, eigenvalues_a=shuffled)   # a SpectralComparison like any other
    spectra_pair = comp
    for draw in (lambda axes, **kw: plotting.compression_overlay_plot(axes, overlay, **kw),
                 lambda axes, **kw: plotting.spectrum_comparison_plot(axes, spectra_pair,
                                                                      comp.labels, **kw)):
        fig, axes = plt.subplots(1, 2)
        draw(axes)                                     # default: the largest of each
        assert _markers(axes[0]) == ([comp.eigenvalues_a.max()], [comp.eigenvalues_b.max()])
        plt.close(fig)
        top = np.sort(comp.eigenvalues_b)[::-1]
        inside = pred.bulk._replace(edge=(top[2] + top[3]) / 2)    # an edge below three of them
        low = spectra.count_outliers(comp.eigenvalues_b, inside, margin=0.0)
        assert low.count == 3
        fig, axes = plt.subplots(1, 2)
        draw(axes, prediction=low)
        down, up = _markers(axes[0])
        assert down == sorted(comp.eigenvalues_a[comp.eigenvalues_a > low.threshold])
        assert up == sorted(low.positions) and len(up) == low.count > 1
        assert _vertical_lines(axes[0]) == [pytest.approx(low.bulk.edge)]
        plt.close(fig)
