"""lossless.compress.reach: what the construction can and cannot reach."""


from __future__ import annotations

import math

import numpy as np
import pytest

from lossless import activations, compress, theory

from conftest import TAU0


# ------------------------------------------- what the construction can and cannot reach
def test_low_order_share_of_relu_is_scale_free_and_closed_form():
    """ReLU keeps 1 − (1/4 − 3/(4π)) / (1/2 − 1/(2π)) of its variance in orders 1, 2."""
    closed = 1.0 - (0.25 - 0.75 / math.pi) / (0.5 - 0.5 / math.pi)
    for tau in (0.3, 1.0, 2.5):
        assert compress.low_order_share(activations.get("relu"), tau) == pytest.approx(
            closed, abs=1e-10)
    with pytest.raises(TypeError, match="activation"):
        compress.low_order_share("relu", 1.0)
    with pytest.raises(ValueError, match="tau"):
        compress.low_order_share(activations.get("relu"), -1.0)


def test_two_threshold_share_bound_dominates_the_family():
    bound = compress.two_threshold_share_bound()
    assert 0.81 < bound.share < 0.82 and bound.odd and bound.x < bound.y
    # the maximiser, as a Ternary activation at any scale, has that share
    tern = activations.get("ternary", s_minus=1.7 * bound.x, s_plus=1.7 * bound.y, scale=0.3,
                           odd=bound.odd)
    assert compress.low_order_share(tern, 1.7) == pytest.approx(bound.share, abs=1e-12)
    # no random member of the family does better (both patterns, thresholds up to ±8)
    rng = np.random.default_rng(0)
    xy = np.sort(rng.uniform(-8, 8, size=(4000, 2)), axis=1)
    for odd in (True, False):
        mom = compress.ternary_shape_moments(xy[:, 0], xy[:, 1], odd)
        share = (mom["c1"] ** 2 + mom["c2"] ** 2 / 2) / mom["var"]
        assert np.nanmax(share) <= bound.share + 1e-12
    # the sign function keeps 2/π
    sign = activations.get("ternary", s_minus=0.0, s_plus=0.0, scale=1.0, odd=True)
    assert compress.low_order_share(sign, 1.0) == pytest.approx(2 / math.pi, abs=1e-10)
    with pytest.raises(ValueError, match="points"):
        compress.two_threshold_share_bound(points=3)


@pytest.mark.parametrize("tau0", [0.5, 1.0, 2.0])
def test_one_ternary_layer_cannot_reach_the_variance_of_relu(tau0):
    """L = 1: matching g1², g2² of ReLU forces v ≥ (Hermite floor)/𝔢_⋆ > τ_1²."""
    target = activations.get("relu").moments(tau0)
    sol = compress.solve_layer(target, tau0, match_h=False, tau_target=math.sqrt(target.v))
    floor = tau0**2 * target.g1**2 + tau0**4 * target.g2**2 / 2
    bound = compress.two_threshold_share_bound().share
    assert sol.variance >= floor / bound * (1 - 1e-9)
    assert floor / bound > target.v


@pytest.mark.parametrize("name", ["erf", "tanh"])
def test_a_saturated_smooth_layer_is_matched_with_its_variance(name):
    """Counterexample to 'a step has more variance than a smooth activation with the same
    g1, g2': at τ_0 = 3, erf and tanh have less than 𝔢_⋆ of their variance in orders 1, 2,
    and a two-threshold step matches g1², g2² and the variance exactly."""
    act = activations.get(name)
    assert compress.low_order_share(act, 3.0) < compress.two_threshold_share_bound().share
    target = act.moments(3.0)
    sol = compress.solve_layer(target, 3.0, match_h=False, tau_target=math.sqrt(target.v))
    assert abs(sol.variance - target.v) <= 1e-10 * target.v
    assert sol.max_residual <= 1e-10


def test_root_paths_the_greedy_plan_has_the_smallest_shift(relu3):
    paths = compress.root_paths([activations.get("relu")] * 3, TAU0)
    assert len(paths) >= 4
    assert paths[0].shift == pytest.approx(relu3.shift, rel=1e-9)
    assert paths[0].h_signs == (1, 1)
    assert all(a.shift <= b.shift for a, b in zip(paths, paths[1:]))
    assert any(-1 in path.h_signs for path in paths)           # −h roots exist for ReLU
    only_plus = compress.root_paths([activations.get("relu")] * 3, TAU0, h_signs=(1,))
    assert all(path.h_signs == (1, 1) for path in only_plus) and len(only_plus) < len(paths)
    single = compress.root_paths([activations.get("relu")], TAU0)
    assert len(single) == 1 and single[0].variances == ()
    for bad in ((), (2,), "1", (True,)):
        with pytest.raises(ValueError, match="h_signs"):
            compress.root_paths([activations.get("relu")] * 2, TAU0, h_signs=bad)
    with pytest.raises(ValueError, match="max_paths"):
        compress.root_paths([activations.get("relu")] * 3, TAU0, max_paths=1)


def test_a_root_with_minus_h_leaves_every_alpha_and_beta_unchanged():
    """Only h² enters: α_{ℓ,4} changes sign, α_{ℓ+1,2} (which has α_{ℓ,4}²) does not."""
    from dataclasses import replace

    relu = activations.get("relu")
    t1 = relu.moments(TAU0)
    first = compress.solve_layer(replace(t1, h=-t1.h), TAU0)
    tau1 = math.sqrt(t1.v)
    second = compress.solve_layer(relu.moments(tau1), math.sqrt(first.variance),
                                  match_h=False, tau_target=math.sqrt(relu.moments(tau1).v))
    orig = theory.coefficients([relu] * 2, TAU0)
    comp = theory.coefficients([first.ternary, second.ternary], TAU0)
    np.testing.assert_allclose(comp.alpha[:, :3], orig.alpha[:, :3], rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(comp.beta, orig.beta, rtol=1e-9, atol=1e-14)
    assert comp.alpha[1, 3] == pytest.approx(-orig.alpha[1, 3], rel=1e-9)
    assert first.variance > compress.solve_layer(t1, TAU0).variance   # but a larger variance


def test_ntk_diagonal_slopes_against_the_exact_ntk():
    from lossless import data, kernels

    relu3 = [activations.get("relu")] * 3
    s = data.preset("reference", 128).sample(256, np.random.default_rng(1))
    plan = compress.compress(relu3, s.tau0)
    psi = np.einsum("ij,ij->i", s.X, s.X) - s.tau0**2
    for layers, sur in ((relu3, None), (plan.layers, plan.surrogates())):
        K = kernels.exact_ntk(s.X, layers, surrogates=sur, tau0=s.tau0)
        fitted = np.polyfit(psi, np.diag(K), 1)[0]
        predicted = compress.ntk_diagonal_slopes(layers, s.tau0, sur)
        assert predicted.shape == (4,) and predicted[0] == 1.0
        assert predicted[-1] == pytest.approx(fitted, rel=0.05)
    # one layer, affine surrogate: s_1 = α_{1,4} + g2² τ0² + q, by hand
    tern = plan.layers[0]
    sur = plan.surrogates()[0]
    mom = tern.moments(s.tau0)
    by_hand = mom.h / 2 + mom.g2**2 * s.tau0**2 + (mom.g1**2 + mom.g2**2 * s.tau0**2)
    got = compress.ntk_diagonal_slopes([tern], s.tau0, [sur])[1]
    assert got == pytest.approx(by_hand, rel=1e-6)
    with pytest.raises(ValueError, match="surrogate"):
        compress.ntk_diagonal_slopes(plan.layers, s.tau0)


def test_ridge_at_gamma_minus_shift_reproduces_the_original_out_of_sample_only():
    """K^c = K + Δ I: the test predictions agree, the training ones differ by Δ(K+γI)⁻¹y."""
    from lossless import readout

    rng = np.random.default_rng(0)
    F = rng.standard_normal((60, 40))
    K_all = F @ F.T / 40
    K_all = (K_all + K_all.T) / 2
    train, test = np.arange(45), np.arange(45, 60)
    K, K_cross = K_all[np.ix_(train, train)], K_all[np.ix_(test, train)]
    y = rng.standard_normal(45)
    for gamma, shift in ((0.5, 0.2), (0.05, 0.3)):          # γ − Δ may be negative
        original_test = readout.kernel_ridge_predict(K, K_cross, y, gamma)[:, 0]
        original_train = readout.kernel_ridge_predict(K, K, y, gamma)[:, 0]
        Kc = K + shift * np.eye(45)
        test_c = readout.kernel_ridge_predict(Kc, K_cross, y, gamma - shift)[:, 0]
        train_c = readout.kernel_ridge_predict(Kc, Kc, y, gamma - shift)[:, 0]
        np.testing.assert_allclose(test_c, original_test, atol=1e-10)
        gap = shift * np.linalg.solve(K + gamma * np.eye(45), y)
        np.testing.assert_allclose(train_c - original_train, gap, atol=1e-10)
        assert np.abs(gap).max() > 1e-3
