"""Tests of lossless.dynamics: the linearised prediction and the training loop."""

import numpy as np
import pytest
import torch

from lossless import activations, dynamics, kernels, networks


def _psd(n, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, n))
    return A @ A.T / n + 0.1 * np.eye(n)


def test_linear_prediction_equals_direct_recursion():
    K = _psd(12)
    r0 = np.random.default_rng(1).standard_normal(12)
    lr, steps = 0.3, 25
    r, direct = r0.copy(), [r0.copy()]
    for _ in range(steps):
        r = r - lr * K @ r
        direct.append(r.copy())
    direct = np.array(direct)
    pred = dynamics.linearized_residuals(K, r0, lr, steps)
    assert np.allclose(pred, direct, rtol=1e-10, atol=1e-12)
    loss = dynamics.linearized_loss_curve(K, r0, lr, steps)
    assert np.allclose(loss, 0.5 * np.sum(direct**2, axis=1), rtol=1e-10)


def test_divergence_above_two_over_lambda_max():
    K = _psd(8)
    r0 = np.ones(8)
    lmax = np.linalg.eigvalsh(K)[-1]
    below = dynamics.linearized_loss_curve(K, r0, 1.9 / lmax, 200)
    above = dynamics.linearized_loss_curve(K, r0, 2.1 / lmax, 200)
    assert below[-1] < below[0] and above[-1] > above[0]


def test_identity_shift_adds_to_every_rate():
    K = _psd(10)
    vals, vecs = np.linalg.eigh(K)
    r0 = vecs[:, 0] + vecs[:, -1]
    lr, steps, shift = 0.05, 30, 0.5
    R = dynamics.linearized_residuals(K + shift * np.eye(10), r0, lr, steps)
    E = dynamics.mode_energies(R, vecs, [[0], [9]])
    rates = dynamics.effective_rates(E, lr, steps)
    assert np.allclose(rates, vals[[0, 9]] + shift, rtol=1e-10)


def test_training_a_linear_model_matches_its_prediction_exactly():
    rng = np.random.default_rng(0)
    n, p = 20, 6
    X = rng.standard_normal((n, p)) / np.sqrt(p)
    y = rng.standard_normal(n)
    ident = activations.get("linear")
    net = networks.MLP(p, [5], [ident], 1.0, generator=torch.Generator().manual_seed(0),
                       dtype=torch.float64)
    # readout only: f is linear in w, K = Sigma_L Sigma_L^T exactly
    F = net.features(X).detach().numpy()
    run = dynamics.train_full_batch(net, X, y, 0.5, 40, readout_only=True)
    pred = dynamics.linearized_residuals(F @ F.T, run.residual0, 0.5, 40)
    assert np.allclose(run.residuals, pred, rtol=1e-9, atol=1e-11)
    assert run.loss.shape == (41,) and run.readout_only


def test_wide_network_follows_its_ntk():
    rng = np.random.default_rng(0)
    n, p = 16, 8
    X = rng.standard_normal((n, p)) / np.sqrt(p)
    y = np.sign(rng.standard_normal(n))
    relu = activations.get("relu")
    net = networks.MLP(p, [512, 512], [relu, relu], 1.0,
                       generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    K = kernels.empirical_ntk(net, X)
    run = dynamics.train_full_batch(net, X, y, 0.2, 30)
    pred = dynamics.linearized_residuals(K, run.residual0, 0.2, 30)
    err = np.max(np.linalg.norm(run.residuals - pred, axis=1)) / np.linalg.norm(run.residual0)
    assert err < 0.05


def test_network_output_gradient_matches_autograd_and_surrogate():
    rng = np.random.default_rng(0)
    X = torch.from_numpy(rng.standard_normal((5, 4)))
    relu = activations.get("relu")
    net = networks.MLP(4, [7, 6], [relu, relu], 1.0, generator=torch.Generator().manual_seed(0),
                       dtype=torch.float64)
    out = dynamics.network_output(net, X)
    assert torch.allclose(out, net(X))
    g1 = torch.autograd.grad(out.sum(), list(net.parameters()))
    g2 = torch.autograd.grad(net(X).sum(), list(net.parameters()))
    assert all(torch.allclose(a, b) for a, b in zip(g1, g2))
    # a surrogate changes the backward pass only: the NTK of kernels.empirical_ntk
    step = activations.get("ternary", s_minus=-0.5, s_plus=0.5, scale=1.0, odd=True)
    sur = [activations.get("quadratic", a=0.0, b=0.2, c=0.6)] * 2
    net_s = networks.MLP(4, [7, 6], [step, step], 1.0, generator=torch.Generator().manual_seed(0),
                         dtype=torch.float64)
    out_s = dynamics.network_output(net_s, X, surrogates=sur)
    assert torch.allclose(out_s, net_s(X))
    J = torch.stack([torch.cat([g.ravel() for g in torch.autograd.grad(
        out_s[i], list(net_s.parameters()), retain_graph=True)]) for i in range(5)])
    K = kernels.empirical_ntk(net_s, X.numpy(), surrogates=sur)
    assert np.allclose((J @ J.T).numpy(), K, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("call, name", [
    (lambda: dynamics.linearized_loss_curve(np.ones((3, 2)), np.ones(3), 0.1, 5), "K"),
    (lambda: dynamics.linearized_loss_curve(np.eye(3), np.ones(4), 0.1, 5), "residual0"),
    (lambda: dynamics.linearized_loss_curve(np.eye(3), np.ones(3), -0.1, 5), "lr"),
    (lambda: dynamics.linearized_loss_curve(np.eye(3), np.ones(3), 0.1, -1), "steps"),
    (lambda: dynamics.linearized_residuals(np.eye(3), np.ones(3), 0.1, 2.5), "steps"),
    (lambda: dynamics.effective_rates(np.ones(5), 0.1, 9), "steps"),
    (lambda: dynamics.mode_energies(np.ones((3, 4)), np.eye(5), [[0]]), "vectors"),
])
def test_bad_inputs_name_the_argument(call, name):
    with pytest.raises((TypeError, ValueError), match=name):
        call()


def test_train_full_batch_bad_inputs():
    relu = activations.get("relu")
    net = networks.MLP(3, [4], [relu], 1.0, generator=torch.Generator().manual_seed(0))
    X = np.ones((5, 3))
    with pytest.raises(TypeError, match="net"):
        dynamics.train_full_batch("net", X, np.ones(5), 0.1, 2)
    with pytest.raises(ValueError, match="y"):
        dynamics.train_full_batch(net, X, np.ones(4), 0.1, 2)
    with pytest.raises(ValueError, match="X"):
        dynamics.train_full_batch(net, np.ones((5, 2)), np.ones(5), 0.1, 2)
    with pytest.raises(ValueError, match="surrogates"):
        dynamics.train_full_batch(net, X, np.ones(5), 0.1, 2, surrogates=[None, None])
    with pytest.raises(TypeError, match="readout_only"):
        dynamics.train_full_batch(net, X, np.ones(5), 0.1, 2, readout_only="yes")
    with pytest.raises(ValueError, match="lr"):
        dynamics.train_full_batch(net, X, 100 * np.ones(5), 1e6, 5)
