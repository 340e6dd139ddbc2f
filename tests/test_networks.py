"""Tests of lossless.networks: weight distributions and the MLP of eq-ckntk-network."""

import math

import numpy as np
import pytest
import torch

from lossless import activations, networks


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- weights


def test_gaussian_weights_shape_dtype_and_moments():
    W = networks.gaussian_weights((400, 500), gen(1), dtype=torch.float64)
    assert W.shape == (400, 500) and W.dtype == torch.float64
    N = W.numel()
    # mean ~ N(0, 1/N), variance ~ N(1, 2/N): 5 standard deviations
    assert abs(W.mean().item()) < 5 / math.sqrt(N)
    assert abs(W.var().item() - 1) < 5 * math.sqrt(2 / N)


def test_gaussian_weights_deterministic_given_seed():
    assert torch.equal(networks.gaussian_weights(7, gen(3)), networks.gaussian_weights(7, gen(3)))
    assert not torch.equal(networks.gaussian_weights(7, gen(3)), networks.gaussian_weights(7, gen(4)))


@pytest.mark.parametrize("eps", [0.0, 0.5, 0.9, 0.99])
def test_ternary_weights_values_mean_variance_zero_fraction(eps):
    N = 400 * 500
    W = networks.ternary_weights((400, 500), eps, gen(2), dtype=torch.float64)
    assert W.shape == (400, 500)
    a = 1 / math.sqrt(1 - eps)
    values = set(torch.unique(W).tolist())
    assert values <= {-a, 0.0, a}
    zero = (W == 0).double().mean().item()
    # zero fraction ~ Binomial(N, eps)/N
    assert abs(zero - eps) <= 5 * math.sqrt(eps * (1 - eps) / N) + 1e-12
    # mean: Var(W) = 1 -> sd 1/sqrt(N); variance: Var(W^2) = E W^4 - 1 = 1/(1-eps) - 1
    assert abs(W.mean().item()) < 5 / math.sqrt(N)
    var_sd = math.sqrt((1 / (1 - eps) - 1 + 1e-12) / N)
    assert abs((W * W).mean().item() - 1) < 5 * var_sd + 1e-12
    # signs are balanced among the non-zeros
    pos = (W > 0).double().sum().item()
    nonzero = (W != 0).double().sum().item()
    assert abs(pos / nonzero - 0.5) < 5 * 0.5 / math.sqrt(nonzero)


@pytest.mark.parametrize("eps", [0.0, 0.3, 0.75, 0.999])
def test_ternary_exact_zeros_count(eps):
    shape = (37, 29)
    N = 37 * 29
    W = networks.ternary_weights(shape, eps, gen(5), exact_zeros=True)
    assert int((W == 0).sum()) == round(eps * N)
    a = 1 / math.sqrt(1 - eps)
    nz = W[W != 0]
    torch.testing.assert_close(nz.abs(), torch.full_like(nz, a))


def test_ternary_exact_zeros_are_uniformly_placed():
    # each position is zero with probability eps: average the indicator over many draws
    g = gen(6)
    hits = torch.zeros(50)
    for _ in range(400):
        hits += (networks.ternary_weights(50, 0.5, g, exact_zeros=True) == 0).double()
    freq = hits / 400
    assert (freq - 0.5).abs().max() < 5 * 0.5 / math.sqrt(400)


def test_ternary_deterministic_given_seed():
    a = networks.ternary_weights((9, 8), 0.4, gen(7))
    b = networks.ternary_weights((9, 8), 0.4, gen(7))
    assert torch.equal(a, b)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.2, float("nan")])
def test_ternary_rejects_sparsity_outside_unit_interval(bad):
    with pytest.raises(ValueError, match="sparsity must be a finite real number in \\[0, 1\\)"):
        networks.ternary_weights((3, 3), bad, gen())


def test_weight_samplers_reject_bad_arguments():
    with pytest.raises(TypeError, match="generator"):
        networks.gaussian_weights((2, 2), 0)
    with pytest.raises(TypeError, match="generator"):
        networks.ternary_weights((2, 2), 0.5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="shape"):
        networks.gaussian_weights((2, -1), gen())
    with pytest.raises(TypeError, match="sparsity"):
        networks.ternary_weights((2, 2), "0.5", gen())


# --------------------------------------------------------------------------- MLP


def small_net(seed=0, **kw):
    layers = [activations.get("relu"), activations.get("tanh"), activations.get("abs")]
    return networks.MLP(12, [20, 15, 10], layers, 0.9, generator=gen(seed), **kw)


def test_mlp_deterministic_with_seeded_generator():
    X = torch.randn(6, 12, generator=gen(9))
    a, b = small_net(1), small_net(1)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert torch.equal(a(X), b(X))
    assert not torch.equal(small_net(2)(X), a(X))


def test_mlp_shapes_and_parameters():
    net = small_net(dtype=torch.float64)
    assert [tuple(W.shape) for W in net.hidden] == [(20, 12), (15, 20), (10, 15)]
    assert net.readout.shape == (10,)
    assert net.depth == 3 and net.dtype == torch.float64
    X = np.random.default_rng(0).standard_normal((5, 12))
    assert net.features(X).shape == (5, 10)
    assert net(X).shape == (5,)
    torch.testing.assert_close(net(X), net.features(X) @ net.readout)
    assert sum(p.numel() for p in net.parameters()) == 12 * 20 + 20 * 15 + 15 * 10 + 10


def test_mlp_matches_definition():
    """Sigma_l = (sigma_l(Sigma_{l-1} W_l^T) - m_l)/sqrt(d_l), m_l = E sigma_l(tau_{l-1} xi)."""
    net = small_net(3, dtype=torch.float64)
    X = np.random.default_rng(1).standard_normal((7, 12)) / math.sqrt(12)
    H, tau = X, 0.9
    for W, act, d in zip(net.hidden, net.layers, net.widths):
        mom = act.moments(tau)
        H = (act(H @ W.detach().numpy().T) - mom.m) / math.sqrt(d)
        tau = math.sqrt(mom.v)
    np.testing.assert_allclose(net.features(X).detach().numpy(), H, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(net.taus[-1], tau, rtol=1e-12)


def test_mlp_centring_constants_and_scales():

    net = small_net()
    taus = activations.layer_scales(list(net.layers), 0.9)
    np.testing.assert_allclose(net.taus, taus, rtol=1e-14)
    for act, tau, m in zip(net.layers, taus, net.centres):
        assert m == pytest.approx(act.moments(tau).m, rel=1e-14)
    assert net.centres[0] == pytest.approx(0.9 / math.sqrt(2 * math.pi), rel=1e-12)
    assert small_net(centred=False).centres == (0.0, 0.0, 0.0)


def test_mlp_features_are_centred_at_scale_tau():
    """On inputs with ||x|| = tau_0 the features have mean ~ 0 (CLT over 4000 units)."""
    relu = activations.get("relu")
    d = 4000
    x = torch.randn(3, 50, generator=gen(4), dtype=torch.float64)
    x = 1.3 * x / x.norm(dim=1, keepdim=True)
    net = networks.MLP(50, [d], [relu], 1.3, generator=gen(5), dtype=torch.float64)
    F = net.features(x) * math.sqrt(d)  # sigma^c(w_k^T x), i.i.d. over k
    sd = 1.3 * math.sqrt(0.5 - 1 / (2 * math.pi)) / math.sqrt(d)
    assert F.mean(1).abs().max().item() < 5 * sd
    uncentred = networks.MLP(50, [d], [relu], 1.3, generator=gen(5), dtype=torch.float64,
                             centred=False)
    assert (uncentred.features(x) * math.sqrt(d)).mean(1).min().item() > 0.4


def test_mlp_ternary_weights_are_ternary():
    net = networks.MLP(30, [40], [activations.get("relu")], 1.0, weights="ternary",
                       sparsity=0.75, generator=gen())
    a = 1 / math.sqrt(0.25)
    for W in [*net.hidden, net.readout]:
        assert set(torch.unique(W).tolist()) <= {-a, 0.0, a}
    zero = (net.hidden[0] == 0).double().mean().item()
    assert abs(zero - 0.75) < 5 * math.sqrt(0.75 * 0.25 / 1200)


def test_mlp_accepts_custom_weight_sampler():
    def ones(shape, generator, dtype, sparsity):
        return torch.ones(shape, dtype=dtype)

    net = networks.MLP(4, [3], [activations.get("linear")], 1.0, weights=ones, generator=gen())
    assert torch.equal(net.hidden[0], torch.ones(3, 4))


def test_mlp_autograd_matches_hand_derivative():
    net = small_net(dtype=torch.float64)
    x = torch.randn(1, 12, generator=gen(8), dtype=torch.float64)
    net(x).sum().backward()
    # readout gradient is Sigma_L(x)
    torch.testing.assert_close(net.readout.grad, net.features(x)[0].detach())


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(widths=[5, 5]), ValueError, "one entry per layer"),
        (dict(widths=[5, 0, 5]), ValueError, "widths\\[1\\] must be an integer >= 1"),
        (dict(widths=[5, 2.7, 5]), TypeError, "widths\\[1\\] must be an integer"),
        (dict(tau0="1"), TypeError, "tau0"),
        (dict(centred="no"), TypeError, "centred"),
        (dict(sparsity=0.9), ValueError, "sparsity must be 0 with weights='gaussian'"),
        (dict(dtype=torch.int64), TypeError, "dtype"),
        (dict(tau0=0.0), ValueError, "tau0"),
        (dict(tau0=float("nan")), ValueError, "tau0"),
        (dict(p=0), ValueError, "p must be"),
        (dict(weights="uniform"), ValueError, "weights must be one of"),
        (dict(sparsity=1.0), ValueError, "sparsity"),
        (dict(layers=[]), ValueError, "at least one"),
        (dict(layers=["relu", "relu", "relu"]), TypeError, "Activation"),
        (dict(generator=0), TypeError, "generator"),
    ],
)
def test_mlp_bad_arguments(kwargs, error, match):
    args = dict(p=4, widths=[5, 5, 5], layers=[activations.get("relu")] * 3, tau0=1.0,
                generator=gen())
    args.update(kwargs)
    with pytest.raises(error, match=match):
        networks.MLP(args.pop("p"), args.pop("widths"), args.pop("layers"), args.pop("tau0"),
                     **args)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_mlp_rejects_non_finite_input(bad):
    net = small_net()
    X = torch.zeros(3, 12)
    X[1, 4] = bad
    with pytest.raises(ValueError, match="X must be finite"):
        net(X)
    with pytest.raises(ValueError, match="X must be finite"):
        net.features(X.numpy())


def test_mlp_rejects_complex_and_string_input():
    net = small_net()
    with pytest.raises(TypeError, match="X must be real"):
        net(np.zeros((3, 12), dtype=complex))
    with pytest.raises(TypeError, match="X"):
        net([["a"] * 12])


def test_weight_samplers_reject_bad_kinds():
    with pytest.raises(TypeError, match="dtype"):
        networks.ternary_weights((3, 3), 0.5, gen(), dtype=torch.int64)
    with pytest.raises(TypeError, match="exact_zeros"):
        networks.ternary_weights((3, 3), 0.5, gen(), exact_zeros="no")
    with pytest.raises(TypeError, match="shape\\[0\\]"):
        networks.gaussian_weights((2.5, 3), gen())


def test_mlp_rejects_misshaped_input():
    net = small_net()
    with pytest.raises(ValueError, match="shape"):
        net(torch.zeros(3, 11))
    with pytest.raises(ValueError, match="shape"):
        net(torch.zeros(12))


def test_mlp_pre_activations_feed_features():
    net = small_net(dtype=torch.float64)
    X = torch.randn(4, 12, generator=gen(10), dtype=torch.float64)
    Z = net.pre_activations(X)
    assert [tuple(z.shape) for z in Z] == [(4, 20), (4, 15), (4, 10)]
    act, m, d = net.layers[-1], net.centres[-1], net.widths[-1]
    torch.testing.assert_close(net.features(X), (act(Z[-1]) - m) / math.sqrt(d))
    torch.testing.assert_close(Z[0], X @ net.hidden[0].T)


def test_mlp_works_under_torch_func_transforms():
    """The finiteness check of the input must not break vmap/jacrev over the network."""
    net = small_net(dtype=torch.float64)
    X = torch.randn(3, 12, generator=gen(4), dtype=torch.float64)
    out = torch.func.vmap(lambda x: net(x[None])[0])(X)
    torch.testing.assert_close(out, net(X))
