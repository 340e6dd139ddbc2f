"""Tests of lossless.practice: readouts (ridge, shift-corrected ridge, logistic), the
memory accountings of book chapter 4, the baselines and their bit budgets, the trial
runner and the fine-tuning protocol."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lossless import activations, compress, data, kernels, networks, practice

RELU3 = [activations.get("relu")] * 3


def _features(n, d, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d)) / math.sqrt(d)


@pytest.fixture(scope="module")
def small_task():
    return practice.mixture_task(64, 120, 80, np.random.default_rng(0))


# ------------------------------------------------------------------------- targets
def test_class_targets_are_centred_one_hot():
    y = np.array([0, 2, 1, 2, 0])
    Y = practice.class_targets(y, 3)
    assert Y.shape == (5, 3)
    np.testing.assert_allclose(Y.sum(axis=1), 0.0, atol=1e-15)
    np.testing.assert_array_equal(np.argmax(Y, axis=1), y)
    np.testing.assert_allclose(Y[0], [2 / 3, -1 / 3, -1 / 3])


@pytest.mark.parametrize("labels, K, error", [([0, 3], 3, ValueError), ([0.5, 1], 2, TypeError),
                                             ([[0, 1]], 2, ValueError), ([0, 1], 1, ValueError)])
def test_class_targets_bad_input(labels, K, error):
    with pytest.raises(error, match="labels|K"):
        practice.class_targets(np.array(labels), K)


# ------------------------------------------------------------------------- ridge
@pytest.mark.parametrize("n, d", [(40, 15), (15, 40)])
@pytest.mark.parametrize("solver", ["auto", "primal", "dual"])
def test_ridge_matches_direct_solve(n, d, solver):
    F = _features(n, d)
    Y = practice.class_targets(np.arange(n) % 3, 3)
    lam = 0.07
    direct = np.linalg.solve(F.T @ F + lam * np.eye(d), F.T @ Y)
    r = practice.ridge_readout(F, Y, lam, solver=solver)
    np.testing.assert_allclose(r.weights, direct, rtol=1e-9, atol=1e-12)
    assert r.solver == (solver if solver != "auto" else ("primal" if d <= n else "dual"))
    assert r.kind == "ridge" and r.penalty == lam


def test_ridge_one_dimensional_targets_give_one_column():
    F = _features(30, 5)
    y = np.sin(np.arange(30.0))
    r = practice.ridge_readout(F, y, 0.1)
    np.testing.assert_allclose(r.weights[:, 0], np.linalg.solve(F.T @ F + 0.1 * np.eye(5), F.T @ y),
                               rtol=1e-10)


def test_negative_ridge_allowed_while_positive_definite():
    F = _features(200, 10)          # n > d: F^T F is positive definite
    Y = practice.class_targets(np.arange(200) % 2, 2)
    lo = np.linalg.eigvalsh(F.T @ F)[0]
    lam = -0.5 * lo
    r = practice.ridge_readout(F, Y, lam)
    np.testing.assert_allclose(r.weights, np.linalg.solve(F.T @ F + lam * np.eye(10), F.T @ Y),
                               rtol=1e-8)
    with pytest.raises(ValueError, match="singular or indefinite"):
        practice.ridge_readout(F, Y, -1.5 * lo)
    with pytest.raises(ValueError, match="singular or indefinite"):
        practice.ridge_readout(_features(10, 50), Y[:10], 0.0, solver="primal")  # rank 10 < 50
    practice.ridge_readout(_features(10, 50), Y[:10], 0.0)   # the 10 x 10 dual system is fine


def test_ridge_bad_inputs():
    F = _features(10, 4)
    with pytest.raises(ValueError, match="solver"):
        practice.ridge_readout(F, np.zeros(10), 1.0, solver="qr")
    with pytest.raises(ValueError, match="targets"):
        practice.ridge_readout(F, np.zeros(9), 1.0)
    with pytest.raises(ValueError, match="ridge"):
        practice.ridge_readout(F, np.zeros(10), float("nan"))
    with pytest.raises(ValueError, match="finite"):
        practice.ridge_readout(np.full((3, 2), np.inf), np.zeros(3), 1.0)


# --------------------------------------------------------------- shift-corrected ridge
def _shifted_pair(n=30, m=20, d=12, shift=0.3, seed=1):
    """Features whose Gram differs by exactly shift * I on the training set."""
    F, Ft = _features(n, d, seed), _features(m, d, seed + 1)
    Fc = np.hstack([F, math.sqrt(shift) * np.eye(n)])
    Fct = np.hstack([Ft, np.zeros((m, n))])
    np.testing.assert_allclose(Fc @ Fc.T, F @ F.T + shift * np.eye(n), atol=1e-14)
    np.testing.assert_allclose(Fct @ Fc.T, Ft @ F.T, atol=1e-14)
    return F, Ft, Fc, Fct


@pytest.mark.parametrize("solver", ["auto", "dual"])
def test_shift_corrected_ridge_reproduces_dense_readout_for_an_exact_identity_shift(solver):
    shift, lam = 0.3, 0.05
    F, Ft, Fc, Fct = _shifted_pair(shift=shift)
    Y = practice.class_targets(np.arange(30) % 3, 3)
    dense = practice.ridge_readout(F, Y, lam).decision(Ft)
    corrected = practice.shift_corrected_readout(Fc, Y, lam, shift, solver=solver)
    assert corrected.penalty == pytest.approx(lam - shift) and corrected.penalty < 0
    np.testing.assert_allclose(corrected.decision(Fct), dense, rtol=1e-9, atol=1e-12)
    plain = practice.ridge_readout(Fc, Y, lam).decision(Fct)   # = dense at lam + shift
    np.testing.assert_allclose(plain, practice.ridge_readout(F, Y, lam + shift).decision(Ft),
                               rtol=1e-9, atol=1e-12)
    assert np.abs(plain - dense).max() > 0.05 * np.abs(dense).max()


def test_shift_corrected_ridge_refuses_an_indefinite_system():
    shift = 0.3
    F, _, Fc, _ = _shifted_pair(shift=shift)
    Y = practice.class_targets(np.arange(30) % 2, 2)
    # the n x n Gram is F F^T + shift I, smallest eigenvalue >= shift: lam - shift must be > -that
    lo = np.linalg.eigvalsh(Fc @ Fc.T)[0]
    assert lo > shift - 1e-12                                # F F^T has rank 12 < 30
    ok = practice.shift_corrected_readout(Fc, Y, 0.1, 0.1 + 0.9 * lo, solver="dual")
    assert ok.penalty == pytest.approx(-0.9 * lo)            # negative, still positive definite
    with pytest.raises(ValueError, match=r"ridge - shift.*singular or indefinite"):
        practice.shift_corrected_readout(Fc, Y, 0.1, 0.1 + 1.1 * lo, solver="dual")
    with pytest.raises(ValueError, match="shift"):
        practice.shift_corrected_readout(Fc, Y, 0.1, float("inf"))


def test_shift_corrected_ridge_matches_original_with_exact_kernels():
    """In the infinite-width limit the compressed CK is K + shift I (eq-compress-shift): kernel
    ridge on it with lambda - shift reproduces the original's predictions."""
    task = practice.mixture_task(256, 300, 200, np.random.default_rng(3), preset="reference")
    plan = compress.compress(RELU3, task.tau0)
    X = np.vstack([task.X_train, task.X_test])
    n = task.n_train
    K = kernels.exact_ck(X, RELU3, tau0=task.tau0)
    Kc = kernels.exact_ck(X, plan.layers, tau0=task.tau0)
    Y = practice.class_targets(task.y_train, 2)
    lam = 0.5 * plan.shift
    ref = practice.kernel_ridge_predict(K[:n, :n], K[n:, :n], Y, lam)
    corr = practice.kernel_ridge_predict(Kc[:n, :n], Kc[n:, :n], Y, lam - plan.shift)
    plain = practice.kernel_ridge_predict(Kc[:n, :n], Kc[n:, :n], Y, lam)
    err_corr = np.linalg.norm(corr - ref) / np.linalg.norm(ref)
    err_plain = np.linalg.norm(plain - ref) / np.linalg.norm(ref)
    assert err_corr < 0.15 < err_plain
    assert np.mean(corr.argmax(1) == ref.argmax(1)) > 0.97


def test_kernel_ridge_predict_equals_dual_ridge():
    F, Ft = _features(25, 40), _features(7, 40, 5)
    Y = practice.class_targets(np.arange(25) % 2, 2)
    r = practice.ridge_readout(F, Y, 0.2)
    np.testing.assert_allclose(practice.kernel_ridge_predict(F @ F.T, Ft @ F.T, Y, 0.2),
                               r.decision(Ft), rtol=1e-9)
    with pytest.raises(ValueError, match="K_cross"):
        practice.kernel_ridge_predict(F @ F.T, Ft @ Ft.T, Y, 0.2)


# ------------------------------------------------------------------ validated ridge, logistic
def test_validated_ridge_picks_the_best_heldout_lambda():
    rng = np.random.default_rng(2)
    y = np.repeat([0, 1], 60)
    F = rng.standard_normal((120, 30)) / 5 + 0.3 * np.outer(2 * y - 1, rng.standard_normal(30)) / 5
    grid = (1e-3, 1e-1, 1e1)
    r = practice.validated_ridge_readout(F, y, 2, grid=grid)
    scale = np.mean(np.sum(F * F, axis=1))
    val = np.arange(120) % 5 == 0
    Y = practice.class_targets(y, 2)
    accs = []
    for g in grid:
        w = practice.ridge_readout(F[~val], Y[~val], g * scale)
        accs.append(w.accuracy(F[val], y[val]))
    best = max(i for i, a in enumerate(accs) if a == max(accs))
    assert r.penalty == pytest.approx(grid[best] * scale)
    np.testing.assert_allclose(r.weights, practice.ridge_readout(F, Y, r.penalty).weights,
                               rtol=1e-9)
    assert r.kind == "ridge (validated)"
    with pytest.raises(ValueError, match="grid"):
        practice.validated_ridge_readout(F, y, 2, grid=(0.0,))
    with pytest.raises(ValueError, match="every"):
        practice.validated_ridge_readout(F, y, 2, every=1)


def test_logistic_readout_reaches_a_stationary_point():
    rng = np.random.default_rng(4)
    y = np.arange(90) % 3
    F = rng.standard_normal((90, 8)) + 2.0 * np.eye(8)[y]
    r = practice.logistic_readout(F, y, 3, 0.01)
    assert r.converged and r.gradient_norm < 1e-6
    # gradient of the objective by autograd, independently of the module's own formula
    W = torch.tensor(r.weights, requires_grad=True)
    Ft = torch.tensor(F)
    loss = torch.nn.functional.cross_entropy(Ft @ W, torch.tensor(y)) + 0.005 * (W ** 2).sum()
    loss.backward()
    assert W.grad.abs().max().item() < 1e-6
    assert r.accuracy(F, y) > 0.9
    with pytest.raises(ValueError, match="penalty"):
        practice.logistic_readout(F, y, 3, 0.0)
    with pytest.raises(ValueError, match="labels"):
        practice.logistic_readout(F, y + 1, 3, 0.1)


# ------------------------------------------------------------------------- memory
def test_binary_entropy_values():
    assert practice.binary_entropy(0.5) == 1.0
    assert practice.binary_entropy(0.0) == practice.binary_entropy(1.0) == 0.0
    assert practice.binary_entropy(0.1) == pytest.approx(0.4689955935892812, rel=1e-14)
    with pytest.raises(ValueError):
        practice.binary_entropy(1.5)


def test_ternary_memory_accountings():
    n = 1000
    third = practice.ternary_memory(n, 1 / 3)
    assert third.bits_per_weight("entropy") == pytest.approx(math.log2(3))
    m = practice.ternary_memory(n, 0.0)
    assert m.bits("entropy") == m.bits("authors") == n          # ±1: one bit per weight
    m = practice.ternary_memory(n, 0.9)
    assert m.bits("authors") == pytest.approx(100.0)
    assert m.bits("entropy") == pytest.approx(n * (practice.binary_entropy(0.9) + 0.1))
    assert m.ratio("entropy") == pytest.approx(32 / (practice.binary_entropy(0.9) + 0.1))
    assert m.dense_bits == 32 * n
    with pytest.raises(ValueError, match="accounting"):
        m.bits("huffman")


@pytest.mark.parametrize("eps", [0.0, 0.5, 0.9, 0.99])
def test_ternary_memory_agrees_with_compress_memory_report(eps):
    rep = compress.memory_report(64, [30, 20], eps)
    m = practice.ternary_memory(rep.n_weights, eps)
    assert m.bits("entropy") == pytest.approx(rep.bits("entropy"), rel=1e-12)
    assert m.bits("authors") == pytest.approx(rep.bits("authors"), rel=1e-12)
    assert practice.dense_memory(rep.n_weights).bits("entropy") == rep.bits("dense")


def test_sparse_float_memory_and_matching():
    m = practice.sparse_float_memory(500, 0.02)
    assert m.bits("entropy") == pytest.approx(500 * (practice.binary_entropy(0.02) + 0.64))
    assert m.bits("authors") == pytest.approx(500 * 0.64)
    for eps in (0.0, 0.5, 0.9, 0.99):
        budget = practice.ternary_memory(100, eps)
        for acc in practice.ACCOUNTINGS:
            b = budget.bits_per_weight(acc)
            k = practice.matched_kept_fraction(b, acc)
            got = practice.sparse_float_memory(100, k).bits_per_weight(acc)
            assert got == pytest.approx(b, rel=1e-12)
    assert practice.matched_kept_fraction(0.32, "authors") == pytest.approx(0.01)
    for bad in (0.0, -1.0, 33.0):
        with pytest.raises(ValueError, match="bits_per_weight"):
            practice.matched_kept_fraction(bad, "entropy")


# ------------------------------------------------------------------------- baselines
def test_magnitude_prune_keeps_the_largest_and_rescales():
    W = torch.randn(50, 40, generator=torch.Generator().manual_seed(0))
    P = practice.magnitude_prune(W, 0.1)
    kept = P != 0
    assert int(kept.sum()) == 200
    assert W.abs()[kept].min() > W.abs()[~kept].max()
    assert float((P.double() ** 2).mean()) == pytest.approx(1.0, rel=1e-6)
    ratio = P[kept] / W[kept]
    assert torch.allclose(ratio, ratio[0].expand_as(ratio)) and ratio[0] > 0
    with pytest.raises(ValueError, match="kept_fraction"):
        practice.magnitude_prune(W, 1e-5)
    with pytest.raises(ValueError, match="kept_fraction"):
        practice.magnitude_prune(W, 0.0)


def test_naive_ternarize_signs_threshold_and_scale():
    W = torch.randn(30, 30, generator=torch.Generator().manual_seed(1))
    T = practice.naive_ternarize(W, 0.75)
    zero = T == 0
    assert int(zero.sum()) == round(0.75 * 900)
    assert W.abs()[~zero].min() > W.abs()[zero].max()
    c = math.sqrt(900 / int((~zero).sum()))
    torch.testing.assert_close(T[~zero].abs(), torch.full_like(T[~zero], c))
    assert torch.equal(torch.sign(T[~zero]), torch.sign(W[~zero]))
    assert float((T.double() ** 2).mean()) == pytest.approx(1.0, rel=1e-6)
    assert torch.equal(practice.naive_ternarize(W, 0.0).abs(), torch.ones_like(W))
    with pytest.raises(ValueError, match="sparsity"):
        practice.naive_ternarize(W, 1.0)


def test_random_sparsify_is_seeded_and_rescaled():
    W = torch.randn(40, 25, generator=torch.Generator().manual_seed(2))
    a = practice.random_sparsify(W, 0.2, torch.Generator().manual_seed(5))
    b = practice.random_sparsify(W, 0.2, torch.Generator().manual_seed(5))
    c = practice.random_sparsify(W, 0.2, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert int((a != 0).sum()) == 200
    assert float((a.double() ** 2).mean()) == pytest.approx(1.0, rel=1e-6)
    with pytest.raises(TypeError, match="generator"):
        practice.random_sparsify(W, 0.2, np.random.default_rng(0))


@pytest.mark.parametrize("eps", [0.0, 0.9])
@pytest.mark.parametrize("acc", ["entropy", "authors"])
def test_baselines_hit_their_bit_budgets(eps, acc):
    p, widths, tau0 = 40, [60, 30], 1.0
    budget = practice.ternary_memory(40 * 60 + 60 * 30, eps)
    k = practice.matched_kept_fraction(budget.bits_per_weight(acc), acc)
    for build in (practice.pruned_network, practice.random_sparse_network):
        net = build(p, widths, RELU3[:2], tau0, k, torch.Generator().manual_seed(0), matched=acc)
        assert net.memory.bits(acc) == pytest.approx(budget.bits(acc), rel=1e-12)
        assert abs(net.kept_fraction - k) < 2.0 / (30 * 60)      # rounding per matrix
    naive = practice.naive_ternary_network(p, widths, RELU3[:2], tau0, eps,
                                           torch.Generator().manual_seed(0))
    assert naive.memory.bits(acc) == budget.bits(acc)
    assert abs(naive.kept_fraction - (1 - eps)) < 1e-3
    if budget.bits(acc) >= 32 * (40 + 1):
        narrow = practice.narrow_dense_network(p, widths, RELU3[:2], tau0, budget.bits(acc),
                                               torch.Generator().manual_seed(0), matched=acc)
        assert narrow.memory.bits(acc) <= budget.bits(acc)
    else:
        with pytest.raises(ValueError, match="widths 1"):
            practice.narrow_dense_network(p, widths, RELU3[:2], tau0, budget.bits(acc),
                                          torch.Generator().manual_seed(0))


def test_narrow_widths_is_the_largest_fitting_scale():
    p, widths = 100, [80, 80, 40]
    for target in (5000.0, 12345.0, 20000.0):
        w = practice.narrow_widths(p, widths, target)
        dims = [p] + w
        assert sum(a * b for a, b in zip(dims[:-1], dims[1:])) <= target
    assert practice.narrow_widths(p, widths, 1e9) == widths
    with pytest.raises(ValueError, match="n_weights"):
        practice.narrow_widths(p, widths, 10.0)


def test_baselines_share_the_dense_draw():
    p, widths = 30, [40, 20]
    dense = practice.dense_network(p, widths, RELU3[:2], 1.0, torch.Generator().manual_seed(3))
    pruned = practice.pruned_network(p, widths, RELU3[:2], 1.0, 0.5,
                                     torch.Generator().manual_seed(3))
    for Wd, Wp in zip(dense.hidden_weights(), pruned.hidden_weights()):
        kept = Wp != 0
        ratio = Wp[kept] / Wd[kept]
        torch.testing.assert_close(ratio, ratio[0].expand_as(ratio))


# ------------------------------------------------------------------------- networks
def test_features_equal_the_underlying_networks(small_task):
    X = small_task.X_train
    plan = compress.compress(RELU3, small_task.tau0)
    net = practice.compressed_network(plan, small_task.p, [50, 50, 40], 0.5,
                                      torch.Generator().manual_seed(0))
    F = net.features(X, batch_size=37)
    with torch.no_grad():
        F_packed = net.model.features(np.array(X)).numpy()
    close = np.isclose(F, F_packed, atol=1e-5)
    assert close.mean() > 0.999                      # float32 vs float64 threshold ties
    assert net.kept_fraction == pytest.approx(0.5, abs=0.03) and net.shift == plan.shift
    dense = practice.dense_network(small_task.p, [50, 40], RELU3[:2], small_task.tau0,
                                   torch.Generator().manual_seed(0))
    ref = networks.MLP(small_task.p, [50, 40], RELU3[:2], small_task.tau0,
                       generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        np.testing.assert_allclose(dense.features(X), ref.features(X).double().numpy(), rtol=1e-6)
    with pytest.raises(TypeError, match="plan"):
        practice.compressed_network("plan", 10, [5], 0.1, torch.Generator())


def test_kernel_agreement_definitions():
    F = _features(20, 8)
    K = F @ F.T
    a = practice.kernel_agreement(F, K)
    assert a.error == pytest.approx(0.0, abs=1e-12) and a.alignment == pytest.approx(1.0)
    Fc = np.hstack([F, math.sqrt(0.4) * np.eye(20)])
    b = practice.kernel_agreement(Fc, K, 0.4)
    assert b.error == pytest.approx(0.4 / np.linalg.eigvalsh(K)[-1], rel=1e-9)
    assert b.error_corrected == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="K_reference"):
        practice.kernel_agreement(F, K[:5, :5])


# ------------------------------------------------------------------------- trials
def test_run_trial_rows_and_determinism(small_task):
    kwargs = dict(seed=1, sparsities=(0.0, 0.9), n_kernel=40, ridges=(None, 1.0),
                  shift_ridges=(2.0,),
                  matchings=("entropy", "authors"), logistic_penalty=1e-2)
    rows = practice.run_trial(small_task, RELU3, [60, 60, 40], **kwargs)
    again = practice.run_trial(small_task, RELU3, [60, 60, 40], **kwargs)
    strip = lambda rs: [{k: v for k, v in r.items() if k != "seconds"} for r in rs]  # noqa: E731
    assert strip(rows) == strip(again) or all(
        (a == b) or (isinstance(a, float) and math.isnan(a) and math.isnan(b))
        for ra, rb in zip(strip(rows), strip(again)) for a, b in zip(ra.values(), rb.values()))
    methods = {r["method"] for r in rows}
    assert methods == {"dense", "compressed", "naive ternary", "magnitude pruning",
                       "random sparsification", "narrow dense"}
    dense_ridge = [r for r in rows if r["method"] == "dense" and r["readout"] == "ridge"]
    validated = [r for r in rows if r["method"] == "dense" and r["readout"] == "ridge (validated)"]
    assert dense_ridge[0]["ridge"] == validated[0]["penalty"] and dense_ridge[1]["ridge"] == 1.0
    corrected = [r for r in rows if r["readout"] == "shift-corrected ridge"]
    assert len(corrected) == 6                       # 2 sparsities x 3 ridges
    assert [r["ridge_rule"] for r in dense_ridge] == ["dense-validated", "fixed", "2 x shift"]
    assert dense_ridge[2]["ridge"] == pytest.approx(
        2 * compress.compress(RELU3, small_task.tau0).shift)
    for r in corrected:
        assert r["penalty"] == pytest.approx(r["ridge"] - r["shift"])
        assert (math.isnan(r["test_accuracy"])) == r["note"].startswith("infeasible")
    assert all(not math.isnan(r["test_accuracy"]) for r in corrected
               if r["ridge_rule"] == "2 x shift")                     # lambda - shift = shift > 0
    n_w = 64 * 60 + 60 * 60 + 60 * 40
    for r in rows:
        assert 0 <= r["train_accuracy"] <= 1 or math.isnan(r["train_accuracy"])
        if r["method"] in ("magnitude pruning", "random sparsification"):
            key = "bits_" + r["matched"]
            budgets = [practice.ternary_memory(n_w, e).bits(r["matched"]) for e in (0.0, 0.9)]
            assert min(abs(r[key] / b - 1) for b in budgets) < 1e-9
        if r["method"] == "narrow dense":
            budgets = [practice.ternary_memory(n_w, e).bits(r["matched"]) for e in (0.0, 0.9)]
            assert any(0 < r["bits_entropy"] <= b for b in budgets)
    with pytest.raises(ValueError, match="baselines"):
        practice.run_trial(small_task, RELU3, [10, 10, 10], seed=0, baselines=("dropout",))


def test_summarize_groups_and_ignores_nan():
    rows = [{"m": "a", "x": 1.0}, {"m": "a", "x": 3.0}, {"m": "b", "x": float("nan")},
            {"m": "b", "x": 2.0}]
    s = practice.summarize(rows, ["m"], "x")
    assert s[0] == {"m": "a", "mean": 2.0, "std": pytest.approx(math.sqrt(2)), "min": 1.0,
                    "max": 3.0, "count": 2}
    assert s[1]["count"] == 1 and s[1]["mean"] == 2.0 and math.isnan(s[1]["std"])


def test_csv_round_trip(tmp_path):
    rows = [{"a": 1, "b": 0.125, "c": "x y", "d": float("nan")},
            {"a": 2, "b": 1e-9, "c": "z", "d": 1.0}]
    path = practice.write_csv(rows, tmp_path / "sub" / "r.csv")
    back = practice.read_csv(path)
    assert back[0]["a"] == 1 and back[0]["b"] == 0.125 and back[0]["c"] == "x y"
    assert math.isnan(back[0]["d"]) and back[1]["b"] == 1e-9
    with pytest.raises(FileNotFoundError):
        practice.read_csv(tmp_path / "missing.csv")


# ------------------------------------------------------------------------- fine-tuning
def test_finetune_keeps_zeros_and_is_deterministic(small_task):
    plan = compress.compress(RELU3, small_task.tau0)
    net = practice.compressed_network(plan, small_task.p, [40, 40, 30], 0.8,
                                      torch.Generator().manual_seed(0))
    F = net.features(small_task.X_train)
    ro = practice.logistic_readout(F, small_task.y_train, 2, 1e-3)
    runs = [practice.finetune(net, small_task, torch.Generator().manual_seed(1), readout=ro,
                              epochs=2, batch_size=32, lr=1e-2) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].test_accuracy, runs[1].test_accuracy)
    np.testing.assert_array_equal(runs[0].train_loss, runs[1].train_loss)
    assert runs[0].test_accuracy.shape == (3,)
    assert runs[0].kept_fraction == pytest.approx(net.kept_fraction)
    assert runs[0].test_accuracy[0] == pytest.approx(ro.accuracy(net.features(small_task.X_test),
                                                                small_task.y_test), abs=0.02)
    assert runs[0].train_loss[-1] < runs[0].train_loss[0]        # the straight-through path learns
    pruned = practice.pruned_network(small_task.p, [40, 30], RELU3[:2], small_task.tau0, 0.3,
                                     torch.Generator().manual_seed(0))
    res = practice.finetune(pruned, small_task, torch.Generator().manual_seed(1), epochs=1)
    assert res.kept_fraction == pytest.approx(pruned.kept_fraction)
    with pytest.raises(ValueError, match="readout"):
        practice.finetune(pruned, small_task, torch.Generator(),
                          readout=practice.Readout(np.zeros((7, 2)), "ridge", 1.0, "primal"))
    with pytest.raises(ValueError, match="epochs"):
        practice.finetune(pruned, small_task, torch.Generator(), epochs=0)


# ------------------------------------------------------------------------- tasks
def test_mixture_task_shapes(small_task):
    assert small_task.X_train.shape == (120, 64) and small_task.X_test.shape == (80, 64)
    assert small_task.K == 2 and set(np.unique(small_task.y_test)) == {0, 1}
    with pytest.raises(ValueError, match="n_test"):
        practice.mixture_task(10, 10, 0, np.random.default_rng(0))


def test_fashion_mnist_task_normalises_with_training_statistics():
    try:
        data.load_fashion_mnist("test")
    except FileNotFoundError:
        pytest.skip("Fashion-MNIST files not installed")
    task = practice.fashion_mnist_task((7, 9), 30, 20, np.random.default_rng(0))
    assert task.X_train.shape == (60, 784) and task.X_test.shape == (40, 784)
    np.testing.assert_allclose(task.X_train.mean(axis=0), 0.0, atol=1e-12)
    assert task.tau0 == pytest.approx(1.0, rel=1e-12)
    assert abs(task.X_test.mean()) > 1e-6                 # test set is not re-centred
    np.testing.assert_array_equal(np.bincount(task.y_test), [20, 20])
    with pytest.raises(ValueError, match="classes"):
        practice.fashion_mnist_task((7, 7), 3, 3, np.random.default_rng(0))


# ------------------------------------------------------------------------- figures, tables
def _fake_rows():
    rows = []
    for seed, acc in ((0, 0.8), (1, 0.9)):
        rows.append({"method": "dense", "matched": "-", "readout": "r", "bits_entropy": 320.0,
                     "bits_authors": 320.0, "test_accuracy": acc})
        for eps, bits_e, bits_a in ((0.5, 15.0, 5.0), (0.9, 5.7, 1.0)):
            rows.append({"method": "compressed", "matched": "-", "readout": "r",
                         "bits_entropy": bits_e, "bits_authors": bits_a,
                         "test_accuracy": acc - eps / 10})
            for m in ("entropy", "authors"):
                rows.append({"method": "magnitude pruning", "matched": m, "readout": "r",
                             "bits_entropy": bits_e if m == "entropy" else 2 * bits_a,
                             "bits_authors": bits_a, "test_accuracy": acc})
            rows.append({"method": "compressed", "matched": "-", "readout": "other",
                         "bits_entropy": bits_e, "bits_authors": bits_a, "test_accuracy": 0.0})
    return rows


def test_accuracy_memory_curves_group_by_method_and_accounting():
    curves = practice.accuracy_memory_curves(_fake_rows(), "authors", readout="r")
    assert list(curves) == ["dense", "compressed", "magnitude pruning (authors-matched)"]
    np.testing.assert_allclose(curves["compressed"]["bits"], [1.0, 5.0])
    np.testing.assert_allclose(curves["compressed"]["mean"], [0.76, 0.8])
    np.testing.assert_allclose(curves["dense"]["std"], [np.std([0.8, 0.9], ddof=1)])
    entropy = practice.accuracy_memory_curves(_fake_rows(), "entropy", readout="r")
    assert "magnitude pruning (entropy-matched)" in entropy
    with pytest.raises(ValueError, match="accounting"):
        practice.accuracy_memory_curves(_fake_rows(), "bits", readout="r")


def test_accuracy_memory_plot_and_format_table():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lossless import plotting

    curves = practice.accuracy_memory_curves(_fake_rows(), "entropy", readout="r")
    fig, ax = plt.subplots()
    assert plotting.accuracy_memory_plot(ax, curves, spread="range") is ax
    assert ax.get_xscale() == "log" and len(ax.get_legend().get_texts()) == len(curves)
    with pytest.raises(ValueError, match="spread"):
        plotting.accuracy_memory_plot(ax, curves, spread="iqr")
    plt.close(fig)
    text = practice.format_table([{"a": "x", "b": 1.23456}, {"a": "long", "b": float("nan")}],
                                 {"a": "", "b": ".2f"})
    assert text.splitlines() == ["   a     b", "   x  1.23", "long     -"]


def test_accuracy_memory_grid_fits_the_unclipped_curves():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lossless import plotting

    rows = _fake_rows() + [{"method": "narrow dense", "matched": "entropy", "readout": "r",
                            "bits_entropy": 5.7, "bits_authors": 5.7, "test_accuracy": 0.1}]
    grid = [[practice.accuracy_memory_curves(rows, acc, readout="r")
             for acc in ("entropy", "authors")]]
    fig, axes = plt.subplots(1, 2, squeeze=False)
    plotting.accuracy_memory_grid(axes, grid, row_labels=["fake"], column_labels=["a", "b"])
    lo, hi = axes[0, 0].get_ylim()
    assert 0.1 < lo < 0.7 and hi > 0.9
    assert any("below the frame" in t.get_text() for t in axes[0, 0].texts)
    assert axes[0, 1].get_xlabel() == "b" and axes[0, 0].get_legend() is None
    plt.close(fig)


# ------------------------------------------------- argument checks (issue 11): no silent results
def test_logistic_readout_raises_with_its_gradient_when_it_does_not_converge():
    """The issue's cases: max_iter=1 returned converged=False silently; features x 1e150
    returned all-zero weights."""
    rng = np.random.default_rng(4)
    y = np.arange(90) % 3
    F = rng.standard_normal((90, 8)) + 2.0 * np.eye(8)[y]
    with pytest.raises(practice.ConvergenceError, match=r"gradient norm .*max_iter = 1\b"):
        practice.logistic_readout(F, y, 3, 0.01, max_iter=1)
    with pytest.raises(practice.ConvergenceError, match="gradient norm .*rescale F"):
        practice.logistic_readout(F * 1e150, y, 3, 0.01)
    r = practice.logistic_readout(F, y, 3, 0.01)
    assert r.converged and r.gradient_norm <= 1e-7
    for kwargs, error, match in ((dict(max_iter=1.5), TypeError, "max_iter"),
                                 (dict(max_iter=0), ValueError, "max_iter"),
                                 (dict(tol=math.inf), ValueError, "tol"),
                                 (dict(tol="1e-8"), TypeError, "tol")):
        with pytest.raises(error, match=match):
            practice.logistic_readout(F, y, 3, 0.01, **kwargs)
    with pytest.raises(TypeError, match="K"):
        practice.logistic_readout(F, y, 3.0, 0.01)
    with pytest.raises(ValueError, match="penalty"):
        practice.logistic_readout(F, y, 3, math.nan)
    with pytest.raises(TypeError, match="labels"):
        practice.logistic_readout(F, y.astype(float), 3, 0.01)


def test_degenerate_weight_matrices_raise():
    """The issue's cases: all-zero matrices gave NaN (pruning, random sparsification) or
    zeros despite the unit-mean-square promise (naive ternarisation)."""
    Z = torch.zeros(4, 5)
    with pytest.raises(ValueError, match="W .*unit mean square"):
        practice.magnitude_prune(Z, 0.5)
    with pytest.raises(ValueError, match="W .*unit mean square"):
        practice.random_sparsify(Z, 0.5, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="W .*unit mean square"):
        practice.naive_ternarize(Z, 0.5)
    few = torch.zeros(4, 5)
    few[0, 0] = 1.0  # one non-zero entry, but naive_ternarize keeps 10
    with pytest.raises(ValueError, match="W has 1 non-zero"):
        practice.naive_ternarize(few, 0.5)
    for bad in (math.nan, math.inf):
        W = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
        W[1, 1] = bad
        for call in (lambda: practice.magnitude_prune(W, 0.5),
                     lambda: practice.naive_ternarize(W, 0.5),
                     lambda: practice.random_sparsify(W, 0.5, torch.Generator())):
            with pytest.raises(ValueError, match="W must be finite"):
                call()
    with pytest.raises(TypeError, match="W must not require grad"):
        practice.magnitude_prune(torch.ones(3, requires_grad=True), 0.5)
    with pytest.raises(TypeError, match="kept_fraction"):
        practice.magnitude_prune(torch.ones(3), "0.5")


def test_kernel_ridge_predict_checks_both_triangles():
    """The issue's case: one triangle of K_train was read, NaN or asymmetry in the other
    passed unseen."""
    F, Ft = _features(25, 40), _features(7, 40, 5)
    Y = practice.class_targets(np.arange(25) % 2, 2)
    K = F @ F.T
    for i, j, value in ((0, 3, np.nan), (0, 3, np.inf), (3, 0, np.nan)):
        Kb = K.copy()
        Kb[i, j] = value
        with pytest.raises(ValueError, match="K_train must be finite"):
            practice.kernel_ridge_predict(Kb, Ft @ F.T, Y, 0.2)
    Ka = K.copy()
    Ka[0, 3] += 0.1
    with pytest.raises(ValueError, match="K_train must be symmetric"):
        practice.kernel_ridge_predict(Ka, Ft @ F.T, Y, 0.2)
    with pytest.raises(ValueError, match="K_cross must be finite"):
        practice.kernel_ridge_predict(K, np.full((7, 25), np.nan), Y, 0.2)
    with pytest.raises(TypeError, match="ridge"):
        practice.kernel_ridge_predict(K, Ft @ F.T, Y, "0.2")
    # rounding-level asymmetry is accepted (and the result is the symmetrized solve)
    Kr = K.copy()
    Kr[0, 3] *= 1 + 1e-15
    np.testing.assert_allclose(practice.kernel_ridge_predict(Kr, Ft @ F.T, Y, 0.2),
                               practice.kernel_ridge_predict(K, Ft @ F.T, Y, 0.2), rtol=1e-10)


def test_kernel_agreement_checks_the_reference_kernel():
    F = _features(10, 30)
    K = F @ F.T
    Kb = K.copy()
    Kb[0, 1] += 1.0
    with pytest.raises(ValueError, match="K_reference must be symmetric"):
        practice.kernel_agreement(F, Kb)
    Kb[0, 1] = np.nan
    with pytest.raises(ValueError, match="K_reference must be finite"):
        practice.kernel_agreement(F, Kb)
    with pytest.raises(ValueError, match="F must be finite"):
        practice.kernel_agreement(np.full((10, 3), np.inf), K)


def test_counts_seeds_and_fractions_are_not_truncated_or_parsed(small_task):
    """The issue's cases: numeric strings parsed, float counts truncated, seed=1.7 -> 1."""
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match="seed"):
        practice.run_trial(small_task, RELU3[:1], [8], seed=1.7, sparsities=())
    with pytest.raises(ValueError, match="seed"):
        practice.run_trial(small_task, RELU3[:1], [8], seed=-1, sparsities=())
    with pytest.raises(TypeError, match="seed"):
        practice.run_finetune_trial(small_task, RELU3[:1], [8], seed="0")
    with pytest.raises(TypeError, match="n_train"):
        practice.mixture_task(8, 10.0, 10, rng)
    with pytest.raises(TypeError, match="rng"):
        practice.mixture_task(8, 10, 10, 0)
    with pytest.raises(TypeError, match="n_weights"):
        practice.dense_memory("100")
    with pytest.raises(TypeError, match="n_weights"):
        practice.ternary_memory(100.0, 0.5)
    with pytest.raises(TypeError, match="sparsity"):
        practice.ternary_memory(100, "0.5")
    with pytest.raises(TypeError, match="x"):
        practice.binary_entropy("0.5")
    with pytest.raises(ValueError, match="x"):
        practice.binary_entropy(math.nan)
    with pytest.raises(TypeError, match=r"widths\[0\]"):
        practice.narrow_widths(10, [5.5], 100)
    with pytest.raises(ValueError, match="n_weights"):
        practice.narrow_widths(10, [5], math.inf)
    with pytest.raises(TypeError, match="p"):
        practice.dense_network(8.0, [4], RELU3[:1], 1.0, torch.Generator())
    with pytest.raises(TypeError, match=r"widths\[1\]"):
        practice.pruned_network(8, [4, 2.0], RELU3[:2], 1.0, 0.5, torch.Generator())
    with pytest.raises(ValueError, match="matched"):
        practice.pruned_network(8, [4], RELU3[:1], 1.0, 0.5, torch.Generator(), matched="bits")
    with pytest.raises(ValueError, match="accounting"):
        practice.ternary_memory(100, 0.5).bits(["entropy"])
    with pytest.raises(ValueError, match="value_bits"):
        practice.matched_kept_fraction(1.0, "entropy", value_bits=0.5)
    with pytest.raises(TypeError, match="bits_per_weight"):
        practice.matched_kept_fraction("1.0", "entropy")
    with pytest.raises(ValueError, match="bits"):
        practice.narrow_dense_network(8, [4], RELU3[:1], 1.0, -32.0, torch.Generator())


def test_run_trial_checks_every_argument_by_name(small_task):
    base = dict(seed=0, sparsities=())
    cases = [
        (dict(ridges=[math.nan]), ValueError, r"ridges\[0\]"),
        (dict(ridges="0.1"), TypeError, "ridges"),
        (dict(shift_ridges=[2.0j]), TypeError, r"shift_ridges\[0\]"),
        (dict(sparsities=[0.5, 1.0]), ValueError, r"sparsities\[1\]"),
        (dict(baselines=["magic"]), ValueError, r"baselines\[0\]"),
        (dict(matchings=["bits"]), ValueError, r"matchings\[0\]"),
        (dict(logistic_penalty=0.0), ValueError, "logistic_penalty"),
        (dict(n_kernel=2.5), TypeError, "n_kernel"),
        (dict(n_kernel=-1), ValueError, "n_kernel"),
        (dict(progress="yes"), TypeError, "progress"),
        (dict(activation=3), TypeError, "activation"),
    ]
    for kwargs, error, match in cases:
        with pytest.raises(error, match=match):
            practice.run_trial(small_task, RELU3[:1], [8], **{**base, **kwargs})
    with pytest.raises(TypeError, match="layers"):
        practice.run_trial(small_task, "relu", [8], **base)
    with pytest.raises(ValueError, match="widths"):
        practice.run_trial(small_task, RELU3[:1], [8, 8], **base)


def test_readouts_and_features_refuse_bad_arrays(small_task):
    F = _features(30, 5)
    Y = practice.class_targets(np.arange(30) % 3, 3)
    with pytest.raises(TypeError, match="F"):
        practice.ridge_readout("F", Y, 0.1)
    with pytest.raises(TypeError, match="F"):
        practice.ridge_readout(F.astype(complex), Y, 0.1)
    with pytest.raises(ValueError, match="F must be finite"):
        practice.ridge_readout(np.where(F == F.max(), np.inf, F), Y, 0.1)
    with pytest.raises(TypeError, match="targets"):
        practice.ridge_readout(F, np.array(["a"] * 30), 0.1)
    with pytest.raises(ValueError, match="solver"):
        practice.ridge_readout(F, Y, 0.1, solver=None)
    with pytest.raises(TypeError, match="ridge"):
        practice.ridge_readout(F, Y, True)
    with pytest.raises(TypeError, match="shift"):
        practice.shift_corrected_readout(F, Y, 0.1, "0.05")
    with pytest.raises(TypeError, match="every"):
        practice.validated_ridge_readout(F, np.arange(30) % 3, 3, every=2.0)
    with pytest.raises(ValueError, match="grid must be finite"):
        practice.validated_ridge_readout(F, np.arange(30) % 3, 3, grid=(0.1, math.nan))
    r = practice.ridge_readout(F, Y, 0.1)
    with pytest.raises(ValueError, match="F must be finite"):
        r.predict(np.full((2, 5), np.nan))
    with pytest.raises(TypeError, match="labels"):
        r.accuracy(F, np.arange(30.0) % 3)
    net = practice.dense_network(small_task.p, [6], RELU3[:1], small_task.tau0,
                                 torch.Generator().manual_seed(0))
    X = small_task.X_test[:3].copy()
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="X must be finite"):
        net.features(X)
    with pytest.raises(ValueError, match="X must have shape"):
        net.features(small_task.X_test[:, :5])
    with pytest.raises(TypeError, match="batch_size"):
        net.features(small_task.X_test, batch_size=10.0)


def test_task_checks_its_arrays():
    X, y = np.zeros((4, 3)), np.array([0, 1, 0, 1])
    task = practice.Task("t", X, y, X, y, 2)
    assert task.n_train == 4 and task.K == 2
    with pytest.raises(ValueError, match="X_train must be finite"):
        practice.Task("t", np.full((4, 3), np.nan), y, X, y, 2)
    with pytest.raises(ValueError, match="X_test must have shape"):
        practice.Task("t", X, y, np.zeros((4, 2)), y, 2)
    with pytest.raises(ValueError, match="labels must be in"):
        practice.Task("t", X, y + 1, X, y, 2)
    with pytest.raises(TypeError, match="labels"):
        practice.Task("t", X, y.astype(float), X, y, 2)
    with pytest.raises(TypeError, match="K"):
        practice.Task("t", X, y, X, y, 2.0)


def test_fashion_mnist_task_refuses_float_classes_before_loading():
    with pytest.raises(TypeError, match=r"classes\[1\]"):
        practice.fashion_mnist_task((7, 9.5), 3, 3, np.random.default_rng(0))
    with pytest.raises(TypeError, match="n_train_per_class"):
        practice.fashion_mnist_task((7, 9), 3.0, 3, np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng"):
        practice.fashion_mnist_task((7, 9), 3, 3, 0)


def test_tables_and_files_name_the_bad_argument(tmp_path):
    rows = [{"method": "a", "test_accuracy": 0.5}, {"method": "a", "test_accuracy": "0.7"}]
    with pytest.raises(TypeError, match=r"rows\[1\]\['test_accuracy'\]"):
        practice.summarize(rows, ["method"])
    with pytest.raises(ValueError, match="rows\\[0\\] has no key 'dataset'"):
        practice.summarize(rows[:1], ["dataset"])
    with pytest.raises(TypeError, match="keys"):
        practice.summarize(rows[:1], "method")
    with pytest.raises(TypeError, match=r"rows\[0\] must be a dict"):
        practice.summarize([("method", "a")], ["method"])
    with pytest.raises(ValueError, match=r"columns\['x'\]"):
        practice.format_table([{"x": "text"}], {"x": ".3f"})
    with pytest.raises(TypeError, match="columns"):
        practice.format_table([{"x": 1}], ["x"])
    with pytest.raises(TypeError, match="path"):
        practice.write_csv([{"a": 1}], 3)
    with pytest.raises(TypeError, match="path"):
        practice.read_csv(None)
    with pytest.raises(TypeError, match="rows"):
        practice.write_csv("rows", tmp_path / "x.csv")


def test_finetune_checks_its_arguments(small_task):
    pruned = practice.pruned_network(small_task.p, [10], RELU3[:1], small_task.tau0, 0.5,
                                     torch.Generator().manual_seed(0))
    gen = torch.Generator()
    with pytest.raises(TypeError, match="readout"):
        practice.finetune(pruned, small_task, gen, readout=np.zeros((10, 2)))
    with pytest.raises(ValueError, match="lr"):
        practice.finetune(pruned, small_task, gen, lr=math.inf)
    with pytest.raises(TypeError, match="epochs"):
        practice.finetune(pruned, small_task, gen, epochs=1.0)
    with pytest.raises(TypeError, match="generator"):
        practice.finetune(pruned, small_task, 0)
    with pytest.raises(TypeError, match="progress"):
        practice.finetune(pruned, small_task, gen, progress=1)


def test_readout_weights_must_be_finite():
    with pytest.raises(ValueError, match="weights must be finite"):
        practice.Readout(np.full((3, 2), np.nan), "ridge", 1.0, "primal")
    with pytest.raises(ValueError, match="weights must have 2"):
        practice.Readout(np.zeros(3), "ridge", 1.0, "primal")
