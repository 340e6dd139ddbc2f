"""Tests of lossless.baselines: the memory accountings, the baselines (pruned, naive
ternary, randomly sparsified, narrower) and their bit budgets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lossless import baselines, compress, memory, networks

from conftest import RELU3

# ------------------------------------------------------------------------- baselines
def test_magnitude_prune_keeps_the_largest_and_rescales():
    W = torch.randn(50, 40, generator=torch.Generator().manual_seed(0))
    P = baselines.magnitude_prune(W, 0.1)
    kept = P != 0
    assert int(kept.sum()) == 200
    assert W.abs()[kept].min() > W.abs()[~kept].max()
    assert float((P.double() ** 2).mean()) == pytest.approx(1.0, rel=1e-6)
    ratio = P[kept] / W[kept]
    assert torch.allclose(ratio, ratio[0].expand_as(ratio)) and ratio[0] > 0
    with pytest.raises(ValueError, match="kept_fraction"):
        baselines.magnitude_prune(W, 1e-5)
    with pytest.raises(ValueError, match="kept_fraction"):
        baselines.magnitude_prune(W, 0.0)


def test_naive_ternarize_signs_threshold_and_scale():
    W = torch.randn(30, 30, generator=torch.Generator().manual_seed(1))
    T = baselines.naive_ternarize(W, 0.75)
    zero = T == 0
    assert int(zero.sum()) == round(0.75 * 900)
    assert W.abs()[~zero].min() > W.abs()[zero].max()
    c = math.sqrt(900 / int((~zero).sum()))
    torch.testing.assert_close(T[~zero].abs(), torch.full_like(T[~zero], c))
    assert torch.equal(torch.sign(T[~zero]), torch.sign(W[~zero]))
    assert float((T.double() ** 2).mean()) == pytest.approx(1.0, rel=1e-6)
    assert torch.equal(baselines.naive_ternarize(W, 0.0).abs(), torch.ones_like(W))
    with pytest.raises(ValueError, match="sparsity"):
        baselines.naive_ternarize(W, 1.0)


def test_random_sparsify_is_seeded_and_rescaled():
    W = torch.randn(40, 25, generator=torch.Generator().manual_seed(2))
    a = baselines.random_sparsify(W, 0.2, torch.Generator().manual_seed(5))
    b = baselines.random_sparsify(W, 0.2, torch.Generator().manual_seed(5))
    c = baselines.random_sparsify(W, 0.2, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert int((a != 0).sum()) == 200
    assert float((a.double() ** 2).mean()) == pytest.approx(1.0, rel=1e-6)
    with pytest.raises(TypeError, match="generator"):
        baselines.random_sparsify(W, 0.2, np.random.default_rng(0))


@pytest.mark.parametrize("eps", [0.0, 0.9])
@pytest.mark.parametrize("acc", ["entropy", "authors"])
def test_baselines_hit_their_bit_budgets(eps, acc):
    p, widths, tau0 = 40, [60, 30], 1.0
    budget = memory.ternary_memory(40 * 60 + 60 * 30, eps)
    k = memory.matched_kept_fraction(budget.bits_per_weight(acc), acc)
    for build in (baselines.pruned_network, baselines.random_sparse_network):
        net = build(p, widths, RELU3[:2], tau0, k, torch.Generator().manual_seed(0), matched=acc)
        assert net.memory.bits(acc) == pytest.approx(budget.bits(acc), rel=1e-12)
        assert abs(net.kept_fraction - k) < 2.0 / (30 * 60)      # rounding per matrix
    naive = baselines.naive_ternary_network(p, widths, RELU3[:2], tau0, eps,
                                            torch.Generator().manual_seed(0))
    assert naive.memory.bits(acc) == budget.bits(acc)
    assert abs(naive.kept_fraction - (1 - eps)) < 1e-3
    if budget.bits(acc) >= 32 * (40 + 1):
        narrow = baselines.narrow_dense_network(p, widths, RELU3[:2], tau0, budget.bits(acc),
                                                torch.Generator().manual_seed(0), matched=acc)
        assert narrow.memory.bits(acc) <= budget.bits(acc)
    else:
        with pytest.raises(ValueError, match="widths 1"):
            baselines.narrow_dense_network(p, widths, RELU3[:2], tau0, budget.bits(acc),
                                           torch.Generator().manual_seed(0))


def test_narrow_widths_is_the_largest_fitting_scale():
    p, widths = 100, [80, 80, 40]
    for target in (5000.0, 12345.0, 20000.0):
        w = baselines.narrow_widths(p, widths, target)
        dims = [p] + w
        assert sum(a * b for a, b in zip(dims[:-1], dims[1:])) <= target
    assert baselines.narrow_widths(p, widths, 1e9) == widths
    with pytest.raises(ValueError, match="n_weights"):
        baselines.narrow_widths(p, widths, 10.0)


def test_baselines_share_the_dense_draw():
    p, widths = 30, [40, 20]
    dense = baselines.dense_network(p, widths, RELU3[:2], 1.0, torch.Generator().manual_seed(3))
    pruned = baselines.pruned_network(p, widths, RELU3[:2], 1.0, 0.5,
                                      torch.Generator().manual_seed(3))
    for Wd, Wp in zip(dense.hidden_weights(), pruned.hidden_weights()):
        kept = Wp != 0
        ratio = Wp[kept] / Wd[kept]
        torch.testing.assert_close(ratio, ratio[0].expand_as(ratio))


# ------------------------------------------------------------------------- networks
def test_features_equal_the_underlying_networks(small_task):
    X = small_task.X_train
    plan = compress.compress(RELU3, small_task.tau0)
    net = baselines.compressed_network(plan, small_task.p, [50, 50, 40], 0.5,
                                       torch.Generator().manual_seed(0))
    F = net.features(X, batch_size=37)
    with torch.no_grad():
        F_packed = net.model.features(np.array(X)).numpy()
    close = np.isclose(F, F_packed, atol=1e-5)
    assert close.mean() > 0.999                      # float32 vs float64 threshold ties
    assert net.kept_fraction == pytest.approx(0.5, abs=0.03) and net.shift == plan.shift
    dense = baselines.dense_network(small_task.p, [50, 40], RELU3[:2], small_task.tau0,
                                    torch.Generator().manual_seed(0))
    ref = networks.MLP(small_task.p, [50, 40], RELU3[:2], small_task.tau0,
                       generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        np.testing.assert_allclose(dense.features(X), ref.features(X).double().numpy(), rtol=1e-6)
    with pytest.raises(TypeError, match="plan"):
        baselines.compressed_network("plan", 10, [5], 0.1, torch.Generator())


def test_degenerate_weight_matrices_raise():
    """The issue's cases: all-zero matrices gave NaN (pruning, random sparsification) or
    zeros despite the unit-mean-square promise (naive ternarisation)."""
    Z = torch.zeros(4, 5)
    with pytest.raises(ValueError, match="W .*unit mean square"):
        baselines.magnitude_prune(Z, 0.5)
    with pytest.raises(ValueError, match="W .*unit mean square"):
        baselines.random_sparsify(Z, 0.5, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="W .*unit mean square"):
        baselines.naive_ternarize(Z, 0.5)
    few = torch.zeros(4, 5)
    few[0, 0] = 1.0  # one non-zero entry, but naive_ternarize keeps 10
    with pytest.raises(ValueError, match="W has 1 non-zero"):
        baselines.naive_ternarize(few, 0.5)
    for bad in (math.nan, math.inf):
        W = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
        W[1, 1] = bad
        for call in (lambda: baselines.magnitude_prune(W, 0.5),
                     lambda: baselines.naive_ternarize(W, 0.5),
                     lambda: baselines.random_sparsify(W, 0.5, torch.Generator())):
            with pytest.raises(ValueError, match="W must be finite"):
                call()
    with pytest.raises(TypeError, match="W must not require grad"):
        baselines.magnitude_prune(torch.ones(3, requires_grad=True), 0.5)
    with pytest.raises(TypeError, match="kept_fraction"):
        baselines.magnitude_prune(torch.ones(3), "0.5")


def test_quantize_rows_is_per_row_round_to_nearest():
    g = torch.Generator().manual_seed(3)
    W = torch.randn(6, 50, generator=g)
    for bits, qmax in ((8, 127), (4, 7)):
        Q = baselines.quantize_rows(W, bits)
        scale = (W.abs().amax(dim=1, keepdim=True) / qmax).to(torch.float32).double()
        codes = Q.double() / scale
        assert torch.allclose(codes, codes.round(), atol=1e-6)
        assert float(codes.abs().max()) == pytest.approx(qmax)
        # round to nearest: error at most half a step per entry
        assert bool(((Q.double() - W.double()).abs() <= 0.5 * scale + 1e-7).all())
    Z = W.clone()
    Z[2] = 0.0
    assert bool((baselines.quantize_rows(Z, 8)[2] == 0).all())
    with pytest.raises(ValueError, match="bits"):
        baselines.quantize_rows(W, 1)
    with pytest.raises(ValueError, match="matrix"):
        baselines.quantize_rows(W[0], 8)


def test_magnitude_prune_without_rescale_keeps_the_entries():
    W = torch.randn(20, 30, generator=torch.Generator().manual_seed(1))
    P = baselines.magnitude_prune(W, 0.1, rescale=False)
    kept = P != 0
    assert int(kept.sum()) == 60
    assert torch.equal(P[kept], W[kept])
    assert float(W[~kept].abs().max()) <= float(W[kept].abs().min())
