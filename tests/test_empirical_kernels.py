"""Tests of the empirical (finite-width) CK and NTK in lossless.kernels."""

import math

import numpy as np
import pytest
import torch
from torch.func import functional_call, jacrev, vmap

from lossless import activations, kernels, networks


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def data(n, p, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, p)) / math.sqrt(p)


def tau_of(X):
    return float(np.sqrt(np.mean(np.sum(X * X, axis=1))))


class _Reference(torch.nn.Module):
    """Independent forward pass of an MLP (its weights, written out here), optionally
    with a straight-through derivative: sign forward, hardtanh' = 1[|t| < 1] backward."""

    def __init__(self, net, straight_through=False):
        super().__init__()
        self.net = net
        self.straight_through = straight_through

    def forward(self, X):
        H = X
        for W, act, m, d in zip(self.net.hidden, self.net.layers, self.net.centres,
                                self.net.widths):
            Z = H @ W.T
            if self.straight_through and act.has_jumps:
                S = torch.clamp(Z, -1.0, 1.0)
                A = act(Z).detach() + S - S.detach()
            else:
                A = act(Z)
            H = (A - m) / math.sqrt(d)
        return H @ self.net.readout


def ntk_by_jacobian(net, X, straight_through=False):
    """Independent reference: the full per-sample Jacobian by torch.func, J J^T."""
    ref = _Reference(net, straight_through)
    params = {k: v.detach() for k, v in ref.named_parameters()}

    def f(prm, x):
        return functional_call(ref, prm, (x[None],))[0]

    X = torch.as_tensor(X, dtype=net.dtype)
    jac = vmap(jacrev(f), (None, 0))(params, X)
    return sum(j.flatten(1) @ j.flatten(1).T for j in jac.values()).double().numpy()


def rel(A, B):
    return np.abs(A - B).max() / np.abs(B).max()


STACKS = {
    "relu3": ["relu", "relu", "relu"],
    "mixed": ["tanh", "abs", "erf"],
    "smooth": ["sigmoid", "sin", "leaky_relu"],
}


def stack(names):
    return [activations.get(n) for n in names]


# --------------------------------------------------------------------- NTK vs torch.func


@pytest.mark.parametrize("name", sorted(STACKS))
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_empirical_ntk_matches_torch_func_jacobian(name, dtype, tol):
    X = data(13, 24, seed=1)
    net = networks.MLP(24, [31, 17, 23], stack(STACKS[name]), tau_of(X), generator=gen(2),
                       dtype=dtype)
    K = kernels.empirical_ntk(net, X)
    K_ref = ntk_by_jacobian(net, X)
    assert K.shape == (13, 13) and K.dtype == np.float64
    assert rel(K, K_ref) < tol


def test_empirical_ntk_ternary_weights_and_one_layer():
    X = data(9, 16, seed=3)
    net = networks.MLP(16, [40], [activations.get("relu")], tau_of(X), weights="ternary",
                       sparsity=0.6, generator=gen(4), dtype=torch.float64)
    assert rel(kernels.empirical_ntk(net, X), ntk_by_jacobian(net, X)) < 1e-12


@pytest.mark.parametrize("chunk", [1, 4, 7, 100])
def test_empirical_ntk_independent_of_chunk_size(chunk):
    X = data(15, 10, seed=5)
    net = networks.MLP(10, [12, 9], stack(["tanh", "relu"]), tau_of(X), generator=gen(6),
                       dtype=torch.float64)
    K = kernels.empirical_ntk(net, X, chunk_size=chunk)
    np.testing.assert_allclose(K, kernels.empirical_ntk(net, X, chunk_size=15), rtol=1e-13,
                               atol=1e-15)
    np.testing.assert_array_equal(K, K.T)


def test_empirical_ntk_float64_option_on_float32_net():
    X = data(11, 20, seed=7)
    layers = stack(["relu", "tanh"])
    net32 = networks.MLP(20, [30, 30], layers, tau_of(X), generator=gen(8))
    net64 = networks.MLP(20, [30, 30], layers, tau_of(X), generator=gen(8), dtype=torch.float64)
    with torch.no_grad():
        for a, b in zip(net64.parameters(), net32.parameters()):
            a.copy_(b.double())  # same (float32-representable) weights
    K = kernels.empirical_ntk(net32, X, dtype=torch.float64)
    np.testing.assert_allclose(K, kernels.empirical_ntk(net64, X), rtol=1e-12, atol=1e-14)
    assert rel(kernels.empirical_ntk(net32, X), K) < 1e-5


def test_empirical_ntk_is_positive_semidefinite():
    X = data(30, 8, seed=9)
    net = networks.MLP(8, [20, 20], stack(["relu", "erf"]), tau_of(X), generator=gen(10),
                       dtype=torch.float64)
    K = kernels.empirical_ntk(net, X)
    assert np.linalg.eigvalsh(K).min() > -1e-10 * np.abs(K).max()


def test_empirical_ntk_of_step_network_is_autograd_gradient():
    """With jumps and no surrogate: the a.e. derivative, i.e. what autograd gives."""
    X = data(10, 12, seed=11)
    net = networks.MLP(12, [25, 18], stack(["relu", "sign"]), tau_of(X), generator=gen(12),
                       dtype=torch.float64)
    K = kernels.empirical_ntk(net, X)
    assert rel(K, ntk_by_jacobian(net, X)) < 1e-12
    # only the readout term survives: sign' = 0 blocks every weight gradient
    F = net.features(X).detach().numpy()
    np.testing.assert_allclose(K, F @ F.T, rtol=1e-12, atol=1e-14)


def test_empirical_ntk_with_surrogate_matches_straight_through_autograd():
    X = data(10, 12, seed=13)
    net = networks.MLP(12, [25, 18], stack(["sign", "relu"]), tau_of(X), generator=gen(14),
                       dtype=torch.float64)

    def hardtanh_derivative(z):
        return (z.abs() < 1).to(z.dtype)

    K = kernels.empirical_ntk(net, X, surrogates=[hardtanh_derivative, None])
    K_ref = ntk_by_jacobian(net, X, straight_through=True)
    assert rel(K, K_ref) < 1e-12
    assert rel(K, kernels.empirical_ntk(net, X)) > 0.05  # the surrogate matters


# --------------------------------------------------------------------- empirical CK


def test_empirical_ck_single_draw_is_feature_gram():
    X = data(8, 10, seed=15)
    layers = stack(["relu", "tanh"])
    K = kernels.empirical_ck(X, [50, 40], layers, 1, gen(16))
    net = networks.MLP(10, [50, 40], layers, tau_of(X), generator=gen(16), dtype=torch.float64)
    F = net.features(X).numpy(force=True)
    np.testing.assert_allclose(K, F @ F.T, rtol=1e-12, atol=1e-15)


def test_empirical_ck_averages_independent_draws():
    X = data(8, 10, seed=17)
    layers = stack(["relu"])
    g = gen(18)
    singles = [kernels.empirical_ck(X, [30], layers, 1, g) for _ in range(3)]
    avg = kernels.empirical_ck(X, [30], layers, 3, gen(18))
    np.testing.assert_allclose(avg, np.mean(singles, axis=0), rtol=1e-12, atol=1e-15)
    assert not np.allclose(singles[0], singles[1])


def test_empirical_ck_deterministic_and_ternary():
    X = data(6, 40, seed=19)
    layers = stack(["relu", "relu"])
    a = kernels.empirical_ck(X, [64, 64], layers, 2, gen(20), weights="ternary", sparsity=0.8)
    b = kernels.empirical_ck(X, [64, 64], layers, 2, gen(20), weights="ternary", sparsity=0.8)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, a.T)


# --------------------------------------------------- convergence to the exact kernels


def _z_scores(samples, exact):
    """Per-entry t statistics of the Monte Carlo mean against the exact value."""
    S = np.stack(samples)
    mean, sd = S.mean(0), S.std(0, ddof=1)
    iu = np.triu_indices(exact.shape[0])
    # (+ a rounding floor: the diagonal of a centred sign layer is exactly 1, sd = 0)
    se = sd[iu] / math.sqrt(len(samples)) + 1e-12 * np.abs(exact).max()
    return np.abs(mean - exact)[iu] / se


CLT_NAMES = ["relu", "tanh", "erf", "abs", "sigmoid", "sin", "cos", "leaky_relu",
             "quadratic", "sign", "step", "ternary"]


def _get_with_defaults(name):
    params = {"ternary": dict(s_minus=-0.5, s_plus=0.7, scale=1.0, odd=True)}.get(name, {})
    return activations.get(name, **params)


@pytest.mark.parametrize("name", CLT_NAMES)
def test_empirical_ck_converges_to_exact_ck_within_clt(name):
    """16 networks of width 1000: each entry of the mean within 6 standard errors."""
    X = data(8, 30, seed=21)
    layers = [activations.get("tanh"), _get_with_defaults(name)]
    g = gen(22)
    samples = [kernels.empirical_ck(X, [1000, 1000], layers, 1, g) for _ in range(16)]
    K = kernels.exact_ck(X, layers)
    assert _z_scores(samples, K).max() < 6
    # averaging 16 networks divides the error by about 4
    single = np.linalg.norm(samples[0] - K, 2)
    assert np.linalg.norm(np.mean(samples, axis=0) - K, 2) < 0.5 * single


@pytest.mark.parametrize("names", [["relu", "relu"], ["erf", "abs"], ["tanh", "sin"]])
def test_empirical_ntk_converges_to_exact_ntk_within_clt(names):
    X = data(8, 30, seed=23)
    layers = stack(names)
    g = gen(24)
    samples = [
        kernels.empirical_ntk(networks.MLP(30, [800, 800], layers, tau_of(X), generator=g,
                                           dtype=torch.float64), X)
        for _ in range(16)
    ]
    K = kernels.exact_ntk(X, layers)
    assert _z_scores(samples, K).max() < 6


def test_empirical_ntk_with_surrogate_converges_to_exact_ntk_with_surrogate():
    """The surrogate convention of empirical_ntk is the one of exact_ntk."""
    X = data(8, 30, seed=25)
    layers = stack(["sign", "relu"])
    surrogates = [activations.get("erf"), None]
    g = gen(26)
    samples = [
        kernels.empirical_ntk(networks.MLP(30, [800, 800], layers, tau_of(X), generator=g,
                                           dtype=torch.float64), X, surrogates=surrogates)
        for _ in range(16)
    ]
    K = kernels.exact_ntk(X, layers, surrogates=surrogates)
    assert _z_scores(samples, K).max() < 6


@pytest.mark.slow
def test_empirical_kernels_error_falls_like_inverse_sqrt_width():
    X = data(40, 60, seed=27)
    layers = stack(["relu", "relu"])
    K_ck, K_ntk = kernels.exact_ck(X, layers), kernels.exact_ntk(X, layers)
    widths = [100, 400, 1600]
    g = gen(28)
    err_ck, err_ntk = [], []
    for d in widths:
        e_ck, e_ntk = [], []
        for _ in range(4):
            net = networks.MLP(60, [d, d], layers, tau_of(X), generator=g, dtype=torch.float64)
            F = net.features(X).numpy(force=True)
            e_ck.append(np.linalg.norm(F @ F.T - K_ck, 2) / np.linalg.norm(K_ck, 2))
            K = kernels.empirical_ntk(net, X)
            e_ntk.append(np.linalg.norm(K - K_ntk, 2) / np.linalg.norm(K_ntk, 2))
        err_ck.append(np.mean(e_ck))
        err_ntk.append(np.mean(e_ntk))
    for err in (err_ck, err_ntk):
        slope = np.polyfit(np.log(widths), np.log(err), 1)[0]
        assert -0.65 < slope < -0.35, (slope, err)


# --------------------------------------------------------------------- bad inputs


def test_empirical_kernels_reject_bad_inputs():
    X = data(5, 6)
    layers = stack(["relu"])
    net = networks.MLP(6, [8], layers, 1.0, generator=gen())
    with pytest.raises(ValueError, match="draws"):
        kernels.empirical_ck(X, [8], layers, 0, gen())
    with pytest.raises(ValueError, match="one entry per layer"):
        kernels.empirical_ck(X, [8, 8], layers, 1, gen())
    with pytest.raises(ValueError, match="shape"):
        kernels.empirical_ck(X[0], [8], layers, 1, gen())
    Xnan = X.copy()
    Xnan[1, 2] = np.nan
    with pytest.raises(ValueError, match="finite"):
        kernels.empirical_ck(Xnan, [8], layers, 1, gen())
    with pytest.raises(ValueError, match="finite"):
        kernels.empirical_ntk(net, Xnan)
    with pytest.raises(ValueError, match="p = 6"):
        kernels.empirical_ntk(net, data(5, 7))
    with pytest.raises(TypeError, match="MLP"):
        kernels.empirical_ntk(torch.nn.Linear(6, 1), X)
    with pytest.raises(ValueError, match="surrogates"):
        kernels.empirical_ntk(net, X, surrogates=[None, None])
    with pytest.raises(ValueError, match="chunk_size"):
        kernels.empirical_ntk(net, X, chunk_size=0)


# --------------------------------------------------------------------- argument checks


def test_empirical_ck_arguments_are_validated_and_named():
    X = data(5, 6)
    layers = stack(["relu"])
    for kwargs, name in [
        (dict(draws=2.0), "draws"), (dict(draws=True), "draws"), (dict(widths=[2.7]), r"widths\[0\]"),
        (dict(widths="8"), "widths"), (dict(tau0="1"), "tau0"), (dict(dtype=torch.int64), "dtype"),
        (dict(dtype=torch.float16), "dtype"), (dict(dtype="float64"), "dtype"),
        (dict(generator=0), "generator"), (dict(progress="no"), "progress"),
        (dict(X=X + 1j), "X"), (dict(X=torch.as_tensor(X).requires_grad_()), "X"),
        (dict(weights=3), "weights"),
    ]:
        args = dict(X=X, layers=layers, widths=[8], draws=1, generator=gen())
        args.update(kwargs)
        with pytest.raises(TypeError, match=name):
            kernels.empirical_ck(**args)
    for kwargs, name in [
        (dict(draws=0), "draws"), (dict(widths=[0]), r"widths\[0\]"), (dict(tau0=-1.0), "tau0"),
        (dict(weights="uniform"), "weights"), (dict(sparsity=1.0), "sparsity"),
        (dict(sparsity=float("nan")), "sparsity"),
    ]:
        args = dict(X=X, layers=layers, widths=[8], draws=1, generator=gen(), weights="ternary")
        args.update(kwargs)
        with pytest.raises(ValueError, match=name):
            kernels.empirical_ck(**args)


def test_empirical_ntk_arguments_are_validated_and_named():
    X = data(5, 6)
    net = networks.MLP(6, [8], stack(["relu"]), 1.0, generator=gen(), dtype=torch.float64)
    for kwargs, name in [(dict(chunk_size=2.0), "chunk_size"), (dict(chunk_size=True), "chunk_size"),
                         (dict(dtype="float64"), "dtype"), (dict(dtype=torch.int32), "dtype")]:
        with pytest.raises(TypeError, match=name):
            kernels.empirical_ntk(net, X, **kwargs)
    with pytest.raises(TypeError, match="X must be real"):
        kernels.empirical_ntk(net, X + 1j)
    with pytest.raises(TypeError, match="X must not require grad"):
        kernels.empirical_ntk(net, torch.as_tensor(X).requires_grad_())
    Xinf = X.copy()
    Xinf[0, 0] = np.inf
    with pytest.raises(ValueError, match="X must be finite"):
        kernels.empirical_ntk(net, Xinf)
    with pytest.raises(ValueError, match=r"surrogates\[0\]"):
        kernels.empirical_ntk(net, X, surrogates=[lambda z: z * np.nan])


def test_activation_nan_only_in_torch_is_named():
    """A user activation that is fine in NumPy (moments) but NaN in torch (the network)."""

    def fn(t):
        return t * float("nan") if isinstance(t, torch.Tensor) else np.tanh(t)

    def dfn(t):
        return 1 - (torch.tanh(t) if isinstance(t, torch.Tensor) else np.tanh(t)) ** 2

    act = activations.Custom(fn, dfn, name="torch_nan")
    X = data(5, 6)
    with pytest.raises(ValueError, match=r"layers\[1\] = torch_nan"):
        kernels.empirical_ck(X, [8, 8], [activations.get("relu"), act], 1, gen())
    net = networks.MLP(6, [8], [act], 1.0, generator=gen(), dtype=torch.float64)
    with pytest.raises(ValueError, match=r"layers\[0\] = torch_nan"):
        kernels.empirical_ntk(net, X)
