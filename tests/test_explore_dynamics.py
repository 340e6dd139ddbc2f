"""Tests of lossless.explore.dynamics: the loss curves of K and K + Delta I that the
dynamics chapter's explorer draws, against the package's own gradient descent on the
linearised model and against the matrix recursion."""

import json
import re

import numpy as np
import pytest

from lossless import activations, data, dynamics, explore, kernels
from lossless.explore import dynamics as explore_dynamics

RELU2 = [activations.get("relu")] * 2


@pytest.fixture(scope="module")
def chapter():
    """The dynamics chapter's data: its sample, targets and exact dense NTK."""
    sample = data.preset("reference", 64).sample(128, np.random.default_rng(0))
    y = np.where(sample.labels == 0, -1.0, 1.0)
    K = kernels.exact_ntk(sample.X, RELU2, tau0=sample.tau0)
    return K, y


def _recursion(K, r0, lr, steps):
    r, out = r0.copy(), [0.5 * r0 @ r0]
    for _ in range(steps):
        r = r - lr * K @ r
        out.append(0.5 * r @ r)
    return np.array(out)


def test_curves_are_gradient_descent_on_the_shifted_kernel(chapter):
    K, y = chapter
    n, lam_max = len(y), np.linalg.eigvalsh(K)[-1]
    modes = explore.loss_modes(K, -y)
    assert abs(modes.energies.sum() - y @ y) < 1e-9
    for frac, shift in ((0.23, 0.212), (0.9, -0.2), (0.5, 0.8), (1.0, 0.0)):
        lr = frac * 2 / lam_max
        c = explore.loss_curves(modes, lr, shift, 100)
        shifted = K + shift * np.eye(n)
        for values, kernel in ((c.original, K), (c.shifted, shifted)):
            # the package's linearised prediction, and the direct matrix recursion
            package = dynamics.linearized_loss_curve(kernel, -y, lr, 100)
            direct = _recursion(kernel, -y, lr, 100)
            assert np.max(np.abs(values - package) / package) < 1e-9
            assert np.max(np.abs(values - direct) / direct) < 1e-6


def test_the_page_rows_give_the_same_curves_to_rounding(chapter):
    # the page stores lambda (6 digits) and c^2 (4 digits): relative error < 1e-3
    K, y = chapter
    ex = explore.loss_explorer(K, y, 0.212, lr=0.1, cache=False)
    page = explore.modes_of(ex)
    lam_max = page.eigenvalues[-1]
    for frac, shift in ((0.23, 0.212), (0.95, 0.212), (0.6, -0.2), (0.3, 0.8)):
        lr = frac * 2 / lam_max
        exact = dynamics.linearized_loss_curve(K + shift * np.eye(len(y)), -y, lr, 100)
        drawn = explore.loss_curves(page, lr, shift, 100, every=2).shifted
        assert np.max(np.abs(drawn / exact[::2] - 1)) < 1e-3
    # the spec evaluates the same formula, eq-dyn-loss with lambda + Delta, in the page
    text = json.dumps(ex.spec)
    assert "pow(pow(1 - (frac * 2 / 4.61292) * (datum.lam + delta), 2), datum.t)" in text
    assert "sequence(0, 101, 2)" in text
    assert len(ex.states) == len(y) and ex.states[-1]["spike"]
    assert [p["name"] for p in ex.spec["params"]] == ["delta", "frac", "part"]


def test_parts_sum_to_the_train_loss(chapter):
    K, y = chapter
    modes = explore.loss_modes(K, -y)
    curves = {p: explore.loss_curves(modes, 0.1, 0.2, 50, part=p) for p in ("all", "spike",
                                                                             "bulk")}
    total = curves["spike"].shifted + curves["bulk"].shifted
    assert np.allclose(total, curves["all"].shifted, rtol=1e-12)
    # the class spike carries most of the targets and is fitted first
    assert curves["spike"].original[0] > 0.8 * curves["all"].original[0]
    assert curves["spike"].original[10] < 1e-3 * curves["bulk"].original[10]


def test_divergence_beyond_the_stability_limit_is_flagged_and_finite(chapter):
    K, y = chapter
    modes = explore.loss_modes(K, -y)
    lam_max = modes.eigenvalues[-1]
    shift = 0.212
    below = explore.loss_curves(modes, 0.95 * 2 / lam_max, shift, 100)
    above = explore.loss_curves(modes, 0.97 * 2 / lam_max, shift, 100)
    assert below.original_stable and below.shifted_stable
    assert below.shifted[-1] < below.shifted[0]
    # 0.97 (lambda_max + Delta) * 2 / lambda_max > 2: the shifted kernel diverges
    assert above.original_stable and not above.shifted_stable
    assert np.all(np.isfinite(above.shifted)) and above.shifted[-1] > 10 * above.shifted[0]
    # the page clips the drawn values to [floor, cap] L_0 and marks the clipped points
    ex = explore.loss_explorer(K, y, shift, cache=False)
    text = json.dumps(ex.spec)
    loss0 = 0.5 * sum(s["c2"] for s in ex.states)
    cap = float(re.search(r"clamp\(datum.loss, [^,]+, ([^)]+)\)", text).group(1))
    assert abs(cap / (explore_dynamics.LOSS_CLIP * loss0) - 1) < 1e-5
    assert '"shape": "triangle-up"' in text and "!(datum.loss < " in text
    assert "diverges" in text


def test_explorer_controls_and_default_position(chapter):
    K, y = chapter
    ex = explore.loss_explorer(K, y, 0.212, lr=0.1, cache=False)
    params = {p["name"]: p for p in ex.spec["params"]}
    assert params["delta"]["value"] == 0.212
    assert params["delta"]["bind"]["min"] == -0.2 and params["delta"]["bind"]["max"] == 0.8
    assert params["frac"]["value"] == 0.23                 # 0.1 * lambda_max / 2
    assert params["part"]["bind"]["options"] == list(explore_dynamics.LOSS_PARTS)
    assert {c["name"] for c in ex.controls} == set(params)
    assert 'id="lossless-loss-curves"' in ex.html()
    # no session counters: building it twice gives the same page
    assert explore.loss_explorer(K, y, 0.212, lr=0.1, cache=False).html() == ex.html()


def test_the_chapters_modes_are_shipped_in_the_cache(chapter, monkeypatch):
    def no_compute(*args, **kwargs):
        raise AssertionError("modes not in lossless/explore_cache: recompute and commit")

    monkeypatch.setattr(explore_dynamics, "_mode_rows", no_compute)
    K, y = chapter
    assert len(explore.loss_explorer(K, y, 0.212, lr=0.1).states) == 128


def test_bad_input_raises_naming_the_argument(chapter):
    K, y = chapter
    modes = explore.loss_modes(K, -y)
    with pytest.raises(ValueError, match="lr"):
        explore.loss_curves(modes, 0.0, 0.1, 10)
    with pytest.raises(ValueError, match="shift"):
        explore.loss_curves(modes, 0.1, -1.0, 10)          # below -lambda_min
    with pytest.raises(ValueError, match="part"):
        explore.loss_curves(modes, 0.1, 0.1, 10, part="top")
    with pytest.raises(ValueError, match="multiple"):
        explore.loss_curves(modes, 0.1, 0.1, 11, every=2)
    with pytest.raises(ValueError, match="increasing"):
        explore.loss_curves(explore.LossModes(modes.eigenvalues[::-1], modes.energies),
                            0.1, 0.1, 10)
    with pytest.raises(ValueError, match="residual0"):
        explore.loss_modes(K, -y[:5])
    with pytest.raises(ValueError, match="positive semi-definite"):
        explore.loss_modes(K - 10 * np.eye(len(y)), -y)
    with pytest.raises(ValueError, match="shift_range"):
        explore.loss_explorer(K, y, 0.2, shift_range=(-1.0, 0.8), cache=False)
    with pytest.raises(ValueError, match="shift"):
        explore.loss_explorer(K, y, 0.9, cache=False)       # outside the slider
    with pytest.raises(ValueError, match="lr"):
        explore.loss_explorer(K, y, 0.2, lr=1.0, cache=False)   # beyond 1.2 x the limit
    with pytest.raises(ValueError, match="steps"):
        explore.loss_explorer(K, y, 0.2, steps=101, cache=False)
    with pytest.raises(ValueError, match="y"):
        explore.loss_explorer(K, y[:3], 0.2, cache=False)


def test_widget_redraws_and_checks_its_shift(chapter):
    K, y = chapter
    box = explore.loss_widget(K, y, 0.212, lr=0.1)
    delta, frac = box.children[0].children
    part, steps = box.children[1].children
    assert abs(delta.value - 0.212) < 1e-12 and frac.value == 0.23
    delta.value, frac.value, part.value, steps.value = 0.5, 1.1, "spike", 200
    with pytest.raises(ValueError, match="shift"):
        explore.loss_widget(K, y, -1.0)                  # below -lambda_min
