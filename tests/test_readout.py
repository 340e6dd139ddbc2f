"""Tests of lossless.readout: class targets, ridge (plain, shift-corrected, validated),
kernel ridge and logistic readouts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lossless import baselines, compress, experiments, kernels, readout

from conftest import RELU3, features

# --------------------------------------------------------------- shift-corrected ridge
def _shifted_pair(n=30, m=20, d=12, shift=0.3, seed=1):
    """Features whose Gram differs by exactly shift * I on the training set."""
    F, Ft = features(n, d, seed), features(m, d, seed + 1)
    Fc = np.hstack([F, math.sqrt(shift) * np.eye(n)])
    Fct = np.hstack([Ft, np.zeros((m, n))])
    np.testing.assert_allclose(Fc @ Fc.T, F @ F.T + shift * np.eye(n), atol=1e-14)
    np.testing.assert_allclose(Fct @ Fc.T, Ft @ F.T, atol=1e-14)
    return F, Ft, Fc, Fct


# ------------------------------------------------------------------------- targets
def test_class_targets_are_centred_one_hot():
    y = np.array([0, 2, 1, 2, 0])
    Y = readout.class_targets(y, 3)
    assert Y.shape == (5, 3)
    np.testing.assert_allclose(Y.sum(axis=1), 0.0, atol=1e-15)
    np.testing.assert_array_equal(np.argmax(Y, axis=1), y)
    np.testing.assert_allclose(Y[0], [2 / 3, -1 / 3, -1 / 3])


@pytest.mark.parametrize("labels, n_classes, error", [
    ([0, 3], 3, ValueError), ([0.5, 1], 2, TypeError), ([[0, 1]], 2, ValueError),
    ([0, 1], 1, ValueError)])
def test_class_targets_bad_input(labels, n_classes, error):
    with pytest.raises(error, match="labels|n_classes"):
        readout.class_targets(np.array(labels), n_classes)


# ------------------------------------------------------------------------- ridge
@pytest.mark.parametrize("n, d", [(40, 15), (15, 40)])
@pytest.mark.parametrize("solver", ["auto", "primal", "dual"])
def test_ridge_matches_direct_solve(n, d, solver):
    F = features(n, d)
    Y = readout.class_targets(np.arange(n) % 3, 3)
    lam = 0.07
    direct = np.linalg.solve(F.T @ F + lam * np.eye(d), F.T @ Y)
    r = readout.ridge_readout(F, Y, lam, solver=solver)
    np.testing.assert_allclose(r.weights, direct, rtol=1e-9, atol=1e-12)
    assert r.solver == (solver if solver != "auto" else ("primal" if d <= n else "dual"))
    assert r.kind == "ridge" and r.penalty == lam


def test_ridge_one_dimensional_targets_give_one_column():
    F = features(30, 5)
    y = np.sin(np.arange(30.0))
    r = readout.ridge_readout(F, y, 0.1)
    np.testing.assert_allclose(r.weights[:, 0], np.linalg.solve(F.T @ F + 0.1 * np.eye(5), F.T @ y),
                               rtol=1e-10)


def test_negative_ridge_allowed_while_positive_definite():
    F = features(200, 10)          # n > d: F^T F is positive definite
    Y = readout.class_targets(np.arange(200) % 2, 2)
    lo = np.linalg.eigvalsh(F.T @ F)[0]
    lam = -0.5 * lo
    r = readout.ridge_readout(F, Y, lam)
    np.testing.assert_allclose(r.weights, np.linalg.solve(F.T @ F + lam * np.eye(10), F.T @ Y),
                               rtol=1e-8)
    with pytest.raises(ValueError, match="singular or indefinite"):
        readout.ridge_readout(F, Y, -1.5 * lo)
    with pytest.raises(ValueError, match="singular or indefinite"):
        readout.ridge_readout(features(10, 50), Y[:10], 0.0, solver="primal")  # rank 10 < 50
    readout.ridge_readout(features(10, 50), Y[:10], 0.0)   # the 10 x 10 dual system is fine


def test_ridge_bad_inputs():
    F = features(10, 4)
    with pytest.raises(ValueError, match="solver"):
        readout.ridge_readout(F, np.zeros(10), 1.0, solver="qr")
    with pytest.raises(ValueError, match="targets"):
        readout.ridge_readout(F, np.zeros(9), 1.0)
    with pytest.raises(ValueError, match="ridge"):
        readout.ridge_readout(F, np.zeros(10), float("nan"))
    with pytest.raises(ValueError, match="finite"):
        readout.ridge_readout(np.full((3, 2), np.inf), np.zeros(3), 1.0)


@pytest.mark.parametrize("solver", ["auto", "dual"])
def test_shift_corrected_ridge_reproduces_dense_readout_for_an_exact_identity_shift(solver):
    shift, lam = 0.3, 0.05
    F, Ft, Fc, Fct = _shifted_pair(shift=shift)
    Y = readout.class_targets(np.arange(30) % 3, 3)
    dense = readout.ridge_readout(F, Y, lam).decision(Ft)
    corrected = readout.shift_corrected_readout(Fc, Y, lam, shift, solver=solver)
    assert corrected.penalty == pytest.approx(lam - shift) and corrected.penalty < 0
    np.testing.assert_allclose(corrected.decision(Fct), dense, rtol=1e-9, atol=1e-12)
    plain = readout.ridge_readout(Fc, Y, lam).decision(Fct)   # = dense at lam + shift
    np.testing.assert_allclose(plain, readout.ridge_readout(F, Y, lam + shift).decision(Ft),
                               rtol=1e-9, atol=1e-12)
    assert np.abs(plain - dense).max() > 0.05 * np.abs(dense).max()


def test_shift_corrected_ridge_refuses_an_indefinite_system():
    shift = 0.3
    F, _, Fc, _ = _shifted_pair(shift=shift)
    Y = readout.class_targets(np.arange(30) % 2, 2)
    # the n x n Gram is F F^T + shift I, smallest eigenvalue >= shift: lam - shift must be > -that
    lo = np.linalg.eigvalsh(Fc @ Fc.T)[0]
    assert lo > shift - 1e-12                                # F F^T has rank 12 < 30
    ok = readout.shift_corrected_readout(Fc, Y, 0.1, 0.1 + 0.9 * lo, solver="dual")
    assert ok.penalty == pytest.approx(-0.9 * lo)            # negative, still positive definite
    with pytest.raises(ValueError, match=r"ridge - shift.*singular or indefinite"):
        readout.shift_corrected_readout(Fc, Y, 0.1, 0.1 + 1.1 * lo, solver="dual")
    with pytest.raises(ValueError, match="shift"):
        readout.shift_corrected_readout(Fc, Y, 0.1, float("inf"))


def test_shift_corrected_ridge_matches_original_with_exact_kernels():
    """In the infinite-width limit the compressed CK is K + shift I (eq-compress-shift): kernel
    ridge on it with lambda - shift reproduces the original's predictions."""
    task = experiments.mixture_task(256, 300, 200, np.random.default_rng(3), preset="reference")
    plan = compress.compress(RELU3, task.tau0)
    X = np.vstack([task.X_train, task.X_test])
    n = task.n_train
    K = kernels.exact_ck(X, RELU3, tau0=task.tau0)
    Kc = kernels.exact_ck(X, plan.layers, tau0=task.tau0)
    Y = readout.class_targets(task.y_train, 2)
    lam = 0.5 * plan.shift
    ref = readout.kernel_ridge_predict(K[:n, :n], K[n:, :n], Y, lam)
    corr = readout.kernel_ridge_predict(Kc[:n, :n], Kc[n:, :n], Y, lam - plan.shift)
    plain = readout.kernel_ridge_predict(Kc[:n, :n], Kc[n:, :n], Y, lam)
    err_corr = np.linalg.norm(corr - ref) / np.linalg.norm(ref)
    err_plain = np.linalg.norm(plain - ref) / np.linalg.norm(ref)
    assert err_corr < 0.15 < err_plain
    assert np.mean(corr.argmax(1) == ref.argmax(1)) > 0.97


def test_kernel_ridge_predict_equals_dual_ridge():
    F, Ft = features(25, 40), features(7, 40, 5)
    Y = readout.class_targets(np.arange(25) % 2, 2)
    r = readout.ridge_readout(F, Y, 0.2)
    np.testing.assert_allclose(readout.kernel_ridge_predict(F @ F.T, Ft @ F.T, Y, 0.2),
                               r.decision(Ft), rtol=1e-9)
    with pytest.raises(ValueError, match="K_cross"):
        readout.kernel_ridge_predict(F @ F.T, Ft @ Ft.T, Y, 0.2)


# ------------------------------------------------------------------ validated ridge, logistic
def test_validated_ridge_picks_the_best_heldout_lambda():
    rng = np.random.default_rng(2)
    y = np.repeat([0, 1], 60)
    F = rng.standard_normal((120, 30)) / 5 + 0.3 * np.outer(2 * y - 1, rng.standard_normal(30)) / 5
    grid = (1e-3, 1e-1, 1e1)
    r = readout.validated_ridge_readout(F, y, 2, grid=grid)
    scale = np.mean(np.sum(F * F, axis=1))
    val = np.arange(120) % 5 == 0
    Y = readout.class_targets(y, 2)
    accs = []
    for g in grid:
        w = readout.ridge_readout(F[~val], Y[~val], g * scale)
        accs.append(w.accuracy(F[val], y[val]))
    best = max(i for i, a in enumerate(accs) if a == max(accs))
    assert r.penalty == pytest.approx(grid[best] * scale)
    np.testing.assert_allclose(r.weights, readout.ridge_readout(F, Y, r.penalty).weights,
                               rtol=1e-9)
    assert r.kind == "ridge (validated)"
    assert r.validation_accuracy == max(accs)
    # without refit: the readout fitted on the kept samples, its held-out accuracy stated
    r0 = readout.validated_ridge_readout(F, y, 2, grid=grid, refit=False)
    np.testing.assert_allclose(r0.weights, readout.ridge_readout(F[~val], Y[~val],
                                                                 r.penalty).weights, rtol=1e-9)
    assert r0.accuracy(F[val], y[val]) == r0.validation_accuracy == max(accs)
    assert r0.grid_edge == (max(accs[1:-1]) < max(accs))
    with pytest.raises(TypeError, match="refit"):
        readout.validated_ridge_readout(F, y, 2, refit="no")
    with pytest.raises(ValueError, match="grid"):
        readout.validated_ridge_readout(F, y, 2, grid=(0.0,))
    with pytest.raises(ValueError, match="every"):
        readout.validated_ridge_readout(F, y, 2, every=1)


def test_logistic_readout_reaches_a_stationary_point():
    rng = np.random.default_rng(4)
    y = np.arange(90) % 3
    F = rng.standard_normal((90, 8)) + 2.0 * np.eye(8)[y]
    r = readout.logistic_readout(F, y, 3, 0.01)
    assert r.converged and r.gradient_norm < 1e-6
    # gradient of the objective by autograd, independently of the module's own formula
    W = torch.tensor(r.weights, requires_grad=True)
    Ft = torch.tensor(F)
    loss = torch.nn.functional.cross_entropy(Ft @ W, torch.tensor(y)) + 0.005 * (W ** 2).sum()
    loss.backward()
    assert W.grad.abs().max().item() < 1e-6
    assert r.accuracy(F, y) > 0.9
    with pytest.raises(ValueError, match="penalty"):
        readout.logistic_readout(F, y, 3, 0.0)
    with pytest.raises(ValueError, match="labels"):
        readout.logistic_readout(F, y + 1, 3, 0.1)


# ------------------------------------------------- argument checks (issue 11): no silent results
def test_logistic_readout_raises_with_its_gradient_when_it_does_not_converge():
    """The issue's cases: max_iter=1 returned converged=False silently; features x 1e150
    returned all-zero weights."""
    rng = np.random.default_rng(4)
    y = np.arange(90) % 3
    F = rng.standard_normal((90, 8)) + 2.0 * np.eye(8)[y]
    with pytest.raises(readout.ConvergenceError, match=r"gradient norm .*max_iter = 1\b"):
        readout.logistic_readout(F, y, 3, 0.01, max_iter=1)
    with pytest.raises(readout.ConvergenceError, match="gradient norm .*rescale F"):
        readout.logistic_readout(F * 1e150, y, 3, 0.01)
    r = readout.logistic_readout(F, y, 3, 0.01)
    assert r.converged and r.gradient_norm <= 1e-7
    for kwargs, error, match in ((dict(max_iter=1.5), TypeError, "max_iter"),
                                 (dict(max_iter=0), ValueError, "max_iter"),
                                 (dict(tol=math.inf), ValueError, "tol"),
                                 (dict(tol="1e-8"), TypeError, "tol")):
        with pytest.raises(error, match=match):
            readout.logistic_readout(F, y, 3, 0.01, **kwargs)
    with pytest.raises(TypeError, match="n_classes"):
        readout.logistic_readout(F, y, 3.0, 0.01)
    with pytest.raises(ValueError, match="penalty"):
        readout.logistic_readout(F, y, 3, math.nan)
    with pytest.raises(TypeError, match="labels"):
        readout.logistic_readout(F, y.astype(float), 3, 0.01)


def test_kernel_ridge_predict_checks_both_triangles():
    """The issue's case: one triangle of K_train was read, NaN or asymmetry in the other
    passed unseen."""
    F, Ft = features(25, 40), features(7, 40, 5)
    Y = readout.class_targets(np.arange(25) % 2, 2)
    K = F @ F.T
    for i, j, value in ((0, 3, np.nan), (0, 3, np.inf), (3, 0, np.nan)):
        Kb = K.copy()
        Kb[i, j] = value
        with pytest.raises(ValueError, match="K_train must be finite"):
            readout.kernel_ridge_predict(Kb, Ft @ F.T, Y, 0.2)
    Ka = K.copy()
    Ka[0, 3] += 0.1
    with pytest.raises(ValueError, match="K_train must be symmetric"):
        readout.kernel_ridge_predict(Ka, Ft @ F.T, Y, 0.2)
    with pytest.raises(ValueError, match="K_cross must be finite"):
        readout.kernel_ridge_predict(K, np.full((7, 25), np.nan), Y, 0.2)
    with pytest.raises(TypeError, match="ridge"):
        readout.kernel_ridge_predict(K, Ft @ F.T, Y, "0.2")
    # rounding-level asymmetry is accepted (and the result is the symmetrized solve)
    Kr = K.copy()
    Kr[0, 3] *= 1 + 1e-15
    np.testing.assert_allclose(readout.kernel_ridge_predict(Kr, Ft @ F.T, Y, 0.2),
                               readout.kernel_ridge_predict(K, Ft @ F.T, Y, 0.2), rtol=1e-10)


def test_readouts_and_features_refuse_bad_arrays(small_task):
    F = features(30, 5)
    Y = readout.class_targets(np.arange(30) % 3, 3)
    with pytest.raises(TypeError, match="F"):
        readout.ridge_readout("F", Y, 0.1)
    with pytest.raises(TypeError, match="F"):
        readout.ridge_readout(F.astype(complex), Y, 0.1)
    with pytest.raises(ValueError, match="F must be finite"):
        readout.ridge_readout(np.where(F == F.max(), np.inf, F), Y, 0.1)
    with pytest.raises(TypeError, match="targets"):
        readout.ridge_readout(F, np.array(["a"] * 30), 0.1)
    with pytest.raises(ValueError, match="solver"):
        readout.ridge_readout(F, Y, 0.1, solver=None)
    with pytest.raises(TypeError, match="ridge"):
        readout.ridge_readout(F, Y, True)
    with pytest.raises(TypeError, match="shift"):
        readout.shift_corrected_readout(F, Y, 0.1, "0.05")
    with pytest.raises(TypeError, match="every"):
        readout.validated_ridge_readout(F, np.arange(30) % 3, 3, every=2.0)
    with pytest.raises(ValueError, match="grid must be finite"):
        readout.validated_ridge_readout(F, np.arange(30) % 3, 3, grid=(0.1, math.nan))
    r = readout.ridge_readout(F, Y, 0.1)
    with pytest.raises(ValueError, match="F must be finite"):
        r.predict(np.full((2, 5), np.nan))
    with pytest.raises(TypeError, match="labels"):
        r.accuracy(F, np.arange(30.0) % 3)
    net = baselines.dense_network(small_task.p, [6], RELU3[:1], small_task.tau0,
                                  torch.Generator().manual_seed(0))
    X = small_task.X_test[:3].copy()
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="X must be finite"):
        net.features(X)
    with pytest.raises(ValueError, match="X must have shape"):
        net.features(small_task.X_test[:, :5])
    with pytest.raises(TypeError, match="batch_size"):
        net.features(small_task.X_test, batch_size=10.0)


def test_readout_weights_must_be_finite():
    with pytest.raises(ValueError, match="weights must be finite"):
        readout.Readout(np.full((3, 2), np.nan), "ridge", 1.0, "primal")
    with pytest.raises(ValueError, match="weights must have 2"):
        readout.Readout(np.zeros(3), "ridge", 1.0, "primal")
