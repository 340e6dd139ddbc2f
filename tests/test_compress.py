"""Tests of lossless.compress: ternary weights, the moment-matching solver, the packed
network and its memory account (book chapter 4)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate

from lossless import activations, compress, networks, theory
from lossless.activations import Moments

ACTIVATIONS = {
    "relu": lambda: activations.get("relu"),
    "leaky_relu": lambda: activations.get("leaky_relu", slope=0.1),
    "abs": lambda: activations.get("abs"),
    "tanh": lambda: activations.get("tanh"),
    "erf": lambda: activations.get("erf"),
    "sigmoid": lambda: activations.get("sigmoid"),
}
TAU0 = math.sqrt(1.0 + 1.5 / math.sqrt(512) + 9.0 / 512)  # the reference mixture at p = 512


@pytest.fixture(scope="module")
def relu3():
    return compress.compress([activations.get("relu")] * 3, TAU0)


# ---------------------------------------------------------------------- ternary weights
def test_ternary_weights_is_the_networks_sampler():
    assert compress.ternary_weights is networks.ternary_weights


@pytest.mark.parametrize("eps", [0.0, 0.5, 0.9])
def test_ternary_weights_have_zero_mean_unit_variance_and_sparsity(eps):
    W = compress.ternary_weights((400, 500), eps, torch.Generator().manual_seed(3))
    w = W.double().reshape(-1)
    n = w.numel()
    values = torch.unique(w)
    assert set(np.round(values.numpy() * math.sqrt(1 - eps), 6)) <= {-1.0, 0.0, 1.0}
    assert abs(w.mean().item()) < 5 / math.sqrt(n * (1 - eps))
    assert abs(w.var().item() - 1.0) < 6 * math.sqrt(2 / ((1 - eps) * n)) + 6 / math.sqrt(n)
    assert abs((w == 0).double().mean().item() - eps) < 5 * math.sqrt(eps * (1 - eps) / n + 1e-12)
    # fourth moment: the kurtosis 1/(1-eps) that limits the usable sparsity
    assert abs((w**4).mean().item() - 1 / (1 - eps)) < 0.05 / (1 - eps)


def test_ternary_weights_exact_zero_count_and_bad_sparsity():
    W = compress.ternary_weights((10, 30), 0.7, torch.Generator().manual_seed(0),
                                 exact_zeros=True)
    assert int((W == 0).sum()) == round(0.7 * 300)
    for bad in (-0.1, 1.0, 1.2):
        with pytest.raises(ValueError, match="sparsity"):
            compress.ternary_weights((3, 3), bad, torch.Generator().manual_seed(0))


# ------------------------------------------------------------- closed-form step moments
def _quad_moments(x, y, odd):
    """Definitions (eq-equiv-moments) by adaptive quadrature (independent of the closed form)."""
    eta = -1.0 if odd else 1.0

    def E(fn):
        pts = [-np.inf, x, y, np.inf]
        dens = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
        return sum(integrate.quad(lambda z: fn(z) * dens(z), a, b, epsabs=1e-14,
                                  epsrel=1e-12)[0] for a, b in zip(pts[:-1], pts[1:]))

    s = lambda z: float(z > y) + eta * float(z < x)  # noqa: E731
    mean = E(s)
    return {"mean": mean, "c1": E(lambda z: z * s(z)), "c2": E(lambda z: (z * z - 1) * s(z)),
            "cH": E(lambda z: (z * z - 1) * (s(z) - mean) ** 2),
            "var": E(lambda z: (s(z) - mean) ** 2)}


@pytest.mark.parametrize("odd", [True, False])
@pytest.mark.parametrize("x,y", [(-0.7, 0.4), (0.3, 1.9), (-2.5, -0.2)])
def test_ternary_shape_moments_against_quadrature_and_activations(x, y, odd):
    closed = compress.ternary_shape_moments(x, y, odd)
    quad = _quad_moments(x, y, odd)
    for key in quad:
        assert abs(float(closed[key]) - quad[key]) < 1e-9, key
    # and against the Ternary activation of lossless.activations (scale b, input scale tau)
    tau, b = 0.8, 1.7
    mom = activations.Ternary(x * tau, y * tau, b, odd).moments(tau)
    expected = [b * closed["mean"], b / tau * closed["c1"], b / tau**2 * closed["c2"],
                (b / tau) ** 2 * closed["cH"], b * b * closed["var"]]
    np.testing.assert_allclose([mom.m, mom.g1, mom.g2, mom.h, mom.v], expected,
                               rtol=1e-12, atol=1e-14)
    assert math.isinf(mom.q)


# ---------------------------------------------------------------------------- the solver
def _rel(a, b, scale):
    return abs(a - b) / (abs(b) if abs(b) > 1e-12 * scale else scale)


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_solver_matches_every_hidden_layer_to_1e10(name, depth):
    """g1², g2², h of each compressed layer at τ^c equal the original's at τ (checked with
    the Ternary moments of lossless.activations, not the solver's own formulas)."""
    layers = [ACTIVATIONS[name]()] * depth
    plan = compress.compress(layers, TAU0)
    assert plan.max_residual <= 1e-10
    for ell, (orig, tern) in enumerate(zip(layers, plan.layers)):
        target = orig.moments(plan.tau[ell])
        got = tern.moments(plan.tau_compressed[ell])
        scale = target.g1**2 + plan.tau_compressed[ell] ** 2 * target.g2**2
        assert _rel(got.g1**2, target.g1**2, scale) <= 1e-10
        assert _rel(got.g2**2 * plan.tau_compressed[ell] ** 2,
                    target.g2**2 * plan.tau_compressed[ell] ** 2, scale) <= 1e-10
        if ell < depth - 1:
            assert _rel(got.h, target.h, scale) <= 1e-10
        assert math.isclose(got.v, plan.tau_compressed[ell + 1] ** 2, rel_tol=1e-12)
        assert isinstance(tern, activations.Ternary) and tern.s_minus < tern.s_plus


def test_solver_is_deterministic():
    """Same plan twice (its speed is measured by benchmarks/bench_solver.py, not here)."""
    layers = [activations.get("relu"), activations.get("tanh"), activations.get("relu"),
              activations.get("erf")]
    plan = compress.compress(layers, TAU0)
    again = compress.compress(layers, TAU0)
    assert plan.to_dict() == again.to_dict()


def test_three_relu_layers_reference_scales_and_repr(relu3):
    """Three ReLU layers on the book's reference mixture (04_compression):
    τ = (0.61, 0.36, 0.21), τ^c = (0.75, 0.55, 0.41)."""
    np.testing.assert_allclose(relu3.tau[1:], [0.61, 0.36, 0.21], atol=0.006)
    np.testing.assert_allclose(relu3.tau_compressed[1:], [0.75, 0.55, 0.41], atol=0.006)
    assert relu3.shift == pytest.approx(relu3.tau_compressed[-1] ** 2 - relu3.tau[-1] ** 2)
    assert relu3.shift > 0
    text = repr(relu3)
    assert "CompressionPlan(L=3" in text and "odd" in text
    d = relu3.to_dict()
    assert d["tau_compressed"] == pytest.approx(list(relu3.tau_compressed))
    assert len(d["s_minus"]) == 3 and d["shift"] == pytest.approx(relu3.shift)


def test_hidden_layers_keep_the_smallest_variance_root(relu3):
    for sol in relu3.solutions[:-1]:
        assert sol.variance <= min(c.variance for c in sol.candidates) * (1 + 1e-9)
        assert len(sol.candidates) >= 2  # both patterns have roots for ReLU


@pytest.mark.parametrize("name", ["relu", "tanh", "abs", "sigmoid"])
def test_alpha_beta_of_compressed_and_original_agree(name):
    layers = [ACTIVATIONS[name]()] * 3
    plan = compress.compress(layers, TAU0)
    orig = theory.coefficients(layers, TAU0)
    comp = theory.coefficients(plan.layers, TAU0)
    for a, b in ((comp.alpha[:, :3], orig.alpha[:, :3]), (comp.beta, orig.beta),
                 (comp.alpha[:-1, 3], orig.alpha[:-1, 3])):
        scale = np.max(np.abs(b), axis=-1, keepdims=True) if b.ndim > 1 else np.max(np.abs(b))
        assert np.all(np.abs(a - b) <= 1e-10 * scale)
    # the CK equivalents differ by the identity shift only
    assert comp.ck_shift() - orig.ck_shift() == pytest.approx(plan.shift, rel=1e-12)
    # the NTK: infinite diagonal without surrogates, finite with the affine ones
    assert math.isinf(comp.kappa2[-1]) and math.isinf(plan.ntk_shift())
    sur = theory.coefficients(plan.layers, TAU0, surrogates=plan.surrogates())
    assert np.all(np.abs(sur.beta - orig.beta) <= 1e-10 * np.max(np.abs(orig.beta), axis=1,
                                                                  keepdims=True))
    assert math.isfinite(plan.ntk_shift(plan.surrogates()))


def test_last_layer_variance_is_the_smallest_on_the_matching_curve():
    """Brute force on the curve g1² : g2² fixed: no point has a variance closer to τ_L²."""
    act = activations.get("relu")
    tau, tau_c = 0.6, 0.75
    target = act.moments(tau)
    tau_L = math.sqrt(target.v)
    sol = compress.solve_layer(target, tau_c, match_h=False, tau_target=tau_L)
    best = abs(sol.variance - tau_L**2)
    r = tau_c * target.g2 / target.g1  # the direction: c2 / c1 = ± r
    ys = np.linspace(-6, 6, 1201)
    found = []
    for odd in (True, False):
        for sign in (1.0, -1.0):
            for x in np.linspace(-6, 6, 241):
                mom = compress.ternary_shape_moments(x, ys, odd)
                f = mom["c2"] - sign * r * mom["c1"]
                idx = np.flatnonzero((np.sign(f[:-1]) != np.sign(f[1:])) & (ys[:-1] > x))
                for i in idx:
                    y = ys[i] - f[i] * (ys[i + 1] - ys[i]) / (f[i + 1] - f[i])
                    m = compress.ternary_shape_moments(x, y, odd)
                    a2 = (target.g1**2 + tau_c**2 * target.g2**2) / (m["c1"] ** 2 + m["c2"] ** 2)
                    found.append(abs(a2 * tau_c**2 * m["var"] - tau_L**2))
    assert len(found) > 100
    assert best <= min(found) * (1 + 1e-3)
    assert sol.residuals["g1^2"] <= 1e-10 and sol.residuals["g2^2"] <= 1e-10
    assert "h" not in sol.residuals


def test_last_layer_match_h_option():
    plan = compress.compress([activations.get("relu")] * 2, TAU0, last_layer="match_h")
    assert plan.residuals.shape == (2, 3) and np.all(plan.residuals <= 1e-10)
    default = compress.compress([activations.get("relu")] * 2, TAU0)
    assert np.isnan(default.residuals[-1, 2])
    assert abs(default.shift) <= abs(plan.shift) + 1e-12


def test_out_of_reach_targets_raise_with_the_failing_equation():
    with pytest.raises(compress.CompressionError, match="equation h fails"):
        compress.solve_layer(Moments(m=0.0, g1=1.0, g2=0.0, h=-5.0, v=1.0, q=1.0), 1.0)
    with pytest.raises(compress.CompressionError, match="g1 = g2 = 0"):
        compress.solve_layer(Moments(m=0.0, g1=0.0, g2=0.0, h=1.0, v=1.0, q=1.0), 1.0)


def test_bad_inputs():
    relu = activations.get("relu")
    with pytest.raises(ValueError, match="empty"):
        compress.compress([], 1.0)
    with pytest.raises(TypeError, match="layers"):
        compress.compress(relu, 1.0)
    with pytest.raises(TypeError, match=r"layers\[1\]"):
        compress.compress([relu, "relu"], 1.0)
    for bad in (0.0, -1.0, math.inf):
        with pytest.raises(ValueError, match="tau0"):
            compress.compress([relu], bad)
    with pytest.raises(ValueError, match="last_layer"):
        compress.compress([relu], 1.0, last_layer="exact")
    with pytest.raises(ValueError, match="tau_target"):
        compress.solve_layer(relu.moments(1.0), 1.0, match_h=False)
    with pytest.raises(ValueError, match="tau_c"):
        compress.solve_layer(relu.moments(1.0), -2.0)


# ------------------------------------------------------------- the last-layer limit
def test_hermite_energy_first_orders_and_closed_form():
    relu = activations.get("relu")
    tau = 0.9
    mom = relu.moments(tau)
    e = compress.hermite_energy(relu, tau, order=30)
    assert e[1] == pytest.approx(tau**2 * mom.g1**2, rel=1e-10)
    assert e[2] == pytest.approx(tau**4 * mom.g2**2 / 2, rel=1e-10)
    # ReLU energies decay like k^(-5/2): the tail beyond order 30 is below 0.1 %
    assert e[1:].sum() == pytest.approx(mom.v, rel=1e-3)
    assert e[1:].sum() < mom.v
    # ternary: closed form against the generic quadrature split at the thresholds
    tern = activations.Ternary(-0.4, 0.7, 1.3, True)
    closed = compress.hermite_energy(tern, tau, order=10)
    generic = compress.hermite_energy(activations.PiecewiseConstant([-0.4, 0.7], [1.3, 1.3], -1.3),
                                      tau, order=10, breakpoints=(-0.4, 0.7))
    np.testing.assert_allclose(closed, generic, rtol=1e-9, atol=1e-13)
    tm = tern.moments(tau)
    assert closed[1] == pytest.approx(tau**2 * tm.g1**2, rel=1e-12)
    assert closed[2] == pytest.approx(tau**4 * tm.g2**2 / 2, rel=1e-12)


def test_richer_last_layers_shrink_the_shift(relu3):
    sol = relu3.solutions[-1]
    tau_c, tau_L = sol.tau_in_compressed, relu3.tau[-1]
    results = [compress.last_layer_levels(sol.target, tau_c, tau_L, k) for k in (2, 3, 4, 8)]
    variances = [r.variance for r in results]
    assert all(a >= b - 1e-12 for a, b in zip(variances, variances[1:]))
    # three free levels do at least as well as the two-threshold ternary family
    assert results[1].variance <= sol.variance * (1 + 1e-6)
    hermite = tau_c**2 * sol.target.g1**2 + tau_c**4 * sol.target.g2**2 / 2
    for r in results:
        assert r.variance >= hermite * (1 - 1e-9)
        mom = r.activation.moments(tau_c)
        assert mom.g1 == pytest.approx(sol.target.g1, rel=1e-9)
        assert mom.g2 == pytest.approx(sol.target.g2, rel=1e-9)
        assert mom.v == pytest.approx(r.variance, rel=1e-9)
        assert r.mismatch == pytest.approx(max(r.variance - tau_L**2, 0.0))
    assert results[-1].bits == 3.0


# ------------------------------------------------------------------ packing, the network
@pytest.mark.parametrize("shape", [(1,), (7, 5), (4, 8), (3, 3, 3)])
def test_pack_unpack_round_trip(shape):
    v = torch.randint(-1, 2, shape, generator=torch.Generator().manual_seed(1))
    packed = compress.pack_ternary(v)
    assert packed.dtype == torch.uint8 and packed.numel() == -(-v.numel() // 4)
    assert torch.equal(compress.unpack_ternary(packed, shape), v.to(torch.int8))
    with pytest.raises(ValueError, match="packed"):
        compress.unpack_ternary(packed, (v.numel() + 5,))
    with pytest.raises(ValueError, match="code 3"):
        compress.unpack_ternary(torch.full_like(packed, 255), shape)


@pytest.fixture(scope="module")
def small_net(relu3):
    return compress.CompressedMLP.from_plan(relu3, 48, [64, 40, 32], sparsity=0.5,
                                            generator=torch.Generator().manual_seed(7))


def _inputs(n, p, seed=0):
    X = torch.randn(n, p, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return X * TAU0 / math.sqrt(p)


def test_packed_forward_equals_the_dense_reference(relu3, small_net):
    X = _inputs(50, 48)
    # the same generator seed gives networks.MLP with identical ternary weights
    ref = networks.MLP(48, [64, 40, 32], relu3.layers, TAU0, weights="ternary", sparsity=0.5,
                       generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    for i in range(3):
        assert torch.equal(ref.hidden[i].detach(), small_net.weights(i))
    np.testing.assert_allclose(ref.centres, small_net.centres, rtol=1e-13)
    F, F_ref = small_net.features(X), ref.features(X).detach()
    assert torch.allclose(F, F_ref, rtol=0, atol=1e-12)
    assert torch.allclose(small_net(X), small_net.to_reference()(X).detach(), atol=1e-12)
    codes = small_net.activation_codes(X)
    assert all(set(torch.unique(c).tolist()) <= {-1, 0, 1} for c in codes)
    # a plain dense loop as a third, independent evaluation
    H = X
    for i, act in enumerate(small_net.layers):
        H = (act(H @ small_net.weights(i).T) - small_net.centres[i]) / math.sqrt(small_net.widths[i])
    assert torch.allclose(F, H, rtol=0, atol=1e-12)


def test_save_load_round_trip(small_net, tmp_path):
    path = tmp_path / "net.pt"
    nbytes = small_net.save(path)
    assert nbytes == path.stat().st_size
    loaded = compress.CompressedMLP.load(path)
    X = _inputs(20, 48, seed=3)
    assert torch.equal(loaded(X), small_net(X))
    assert loaded.layers[1].s_plus == small_net.layers[1].s_plus
    with pytest.raises(FileNotFoundError):
        compress.CompressedMLP.load(tmp_path / "missing.pt")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a saved CompressedMLP"):
        compress.CompressedMLP.load(tmp_path / "other.pt")


def test_memory_accounting(small_net):
    n = 48 * 64 + 64 * 40 + 40 * 32
    rep = small_net.memory_bits()
    assert rep.n_weights == n
    h = -(0.5 * math.log2(0.5)) * 2
    assert rep.bits("dense fp32") == 32 * n
    assert rep.bits("ternary, 2-bit") == 2 * n
    assert rep.bits("entropy bound") == pytest.approx(n * (h + 0.5))
    assert rep.bits("authors' count") == pytest.approx(0.5 * n)
    assert rep.bits("packed codes in memory") == 8 * sum(-(-k // 4) for k in (48 * 64, 64 * 40,
                                                                              40 * 32))
    assert rep.bits("saved file") == 8 * len(small_net.to_bytes())
    # the file holds the entropy-coded codes, the fp32 readout and headers
    assert rep.bits("saved file") > rep.bits("entropy-coded codes") + 32 * 32
    assert rep.bits("entropy bound of these") <= rep.bits("entropy-coded codes") \
        <= 1.01 * rep.bits("entropy bound of these") + 3 * 8 * 64
    assert rep.bits("packed codes + zlib") >= 0.9 * rep.bits("entropy bound")
    assert "bits/weight" in repr(rep) and len(rep.to_dict()["rows"]) == 9
    # the bounds alone, for the paper's network size
    big = compress.memory_report(784, [2000, 2000, 1000], 0.9)
    assert big.n_weights == 7_568_000
    assert big.bits("entropy bound") / big.n_weights == pytest.approx(
        -(0.9 * math.log2(0.9) + 0.1 * math.log2(0.1)) + 0.1)
    with pytest.raises(ValueError, match="sparsity"):
        compress.memory_report(10, [5], 1.0)
    with pytest.raises(ValueError, match="widths"):
        compress.memory_report(10, [0], 0.1)


def test_compressed_mlp_bad_inputs(relu3, small_net):
    with pytest.raises(ValueError, match="X must have shape"):
        small_net(torch.zeros(3, 47))
    with pytest.raises(ValueError, match="sparsity"):
        compress.CompressedMLP.from_plan(relu3, 8, [4, 4, 4], sparsity=1.0,
                                         generator=torch.Generator().manual_seed(0))
    with pytest.raises(TypeError, match="plan"):
        compress.CompressedMLP.from_plan("plan", 8, [4, 4, 4],
                                         generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="layer must be"):
        small_net.codes(3)


# ------------------------------------------------- argument checks (issue 11): no silent results
def test_solve_layer_promotes_float32_and_refuses_bad_scalars():
    relu = activations.get("relu")
    target = relu.moments(1.0)
    sol = compress.solve_layer(target, np.float32(0.7))
    assert type(sol.tau_in_compressed) is float
    assert all(type(v) is float for v in sol.residuals.values())
    # the same as solving at float(np.float32(0.7)) in float64
    ref = compress.solve_layer(target, float(np.float32(0.7)))
    assert sol.residuals == ref.residuals and sol.ternary.s_plus == ref.ternary.s_plus
    # the case: tol=inf returned a root with h residual ~0.5-1
    for tol in (math.inf, math.nan, 0.0, 1.0, -1e-3):
        with pytest.raises(ValueError, match="tol"):
            compress.solve_layer(target, 0.7, tol=tol)
    with pytest.raises(TypeError, match="tol"):
        compress.solve_layer(target, 0.7, tol="1e-10")
    with pytest.raises(TypeError, match="tau_c"):
        compress.solve_layer(target, "0.7")
    with pytest.raises(TypeError, match="tau_c"):
        compress.solve_layer(target, 0.7 + 0j)
    with pytest.raises(TypeError, match="match_h"):
        compress.solve_layer(target, 0.7, match_h=0)
    with pytest.raises(TypeError, match="index"):
        compress.solve_layer(target, 0.7, index=1.5)
    with pytest.raises(TypeError, match="original"):
        compress.solve_layer(target, 0.7, original="relu")
    with pytest.raises(ValueError, match="tau_target"):
        compress.solve_layer(target, 0.7, match_h=False, tau_target=math.nan)


def test_solve_layer_names_the_target_instead_of_an_internal_attribute_error():
    """The issue's case: AttributeError: '_Psi' object has no attribute 'psi_max'."""
    with pytest.raises(ValueError, match="overflow"):
        compress.solve_layer(Moments(m=0.0, g1=1e200, g2=1.0, h=1.0, v=1.0, q=1.0), 1.0)
    with pytest.raises(ValueError, match="tau_c"):
        compress.solve_layer(activations.get("relu").moments(1.0), 1e200)
    with pytest.raises(TypeError, match="target"):
        compress.solve_layer({"g1": 1.0, "g2": 0.0, "h": 0.0}, 1.0)
    with pytest.raises(ValueError, match="finite"):
        compress.solve_layer(Moments(m=0.0, g1=math.nan, g2=1.0, h=1.0, v=1.0, q=1.0), 1.0)


def test_compress_names_an_activation_with_non_finite_moments():
    nan_act = activations.Custom(lambda t: np.where(t > 0, np.nan, t)) \
        if hasattr(activations, "Custom") else None
    if nan_act is None:
        pytest.skip("no activations.Custom")
    # named by activations.moments or by compress (whichever sees it first)
    with pytest.raises(ValueError, match=r"custom.*finite|finite.*custom"):
        compress.compress([nan_act], 1.0)
    with pytest.raises(ValueError, match="activation 'custom' returned"):
        compress.hermite_energy(nan_act, 1.0)


@pytest.mark.parametrize("call, error, match", [
    (lambda: compress.compress([activations.get("relu")], 1.0, tol=math.inf), ValueError, "tol"),
    (lambda: compress.compress([activations.get("relu")], "1.0"), TypeError, "tau0"),
    (lambda: compress.compress([activations.get("relu")], np.nan), ValueError, "tau0"),
    (lambda: compress.compress([activations.get("relu")], 1.0, last_layer=["match_h"]),
     ValueError, "last_layer"),
    (lambda: compress.ternary_shape_moments(np.nan, 1.0, True), ValueError, "x"),
    (lambda: compress.ternary_shape_moments(0.0, [1.0, np.nan], True), ValueError, "y"),
    (lambda: compress.ternary_shape_moments("0", 1.0, True), TypeError, "x"),
    (lambda: compress.ternary_shape_moments(0.0, 1.0, "odd"), TypeError, "odd"),
    (lambda: compress.ternary_shape_moments(np.zeros(3), np.ones(4), True), ValueError, "x and y"),
    (lambda: compress.hermite_energy("relu", 1.0), TypeError, "activation"),
    (lambda: compress.hermite_energy(activations.get("relu"), 1.0, 2.5), TypeError, "order"),
    (lambda: compress.hermite_energy(activations.get("relu"), 1.0, 200), ValueError, "order"),
    (lambda: compress.hermite_energy(activations.get("relu"), 1.0, breakpoints=(np.nan,)),
     ValueError, "breakpoints"),
    (lambda: compress.last_layer_levels(activations.get("relu").moments(1.0), 1.0, 1.0, 3.0),
     TypeError, "levels"),
    (lambda: compress.last_layer_levels("moments", 1.0, 1.0, 3), TypeError, "target"),
    (lambda: compress.last_layer_levels(Moments(0.0, np.inf, 0.0, 0.0, 1.0, 1.0), 1.0, 1.0, 3),
     ValueError, "target"),
    (lambda: compress.memory_report(10.0, [5], 0.5), TypeError, "p"),
    (lambda: compress.memory_report(10, [5.5], 0.5), TypeError, r"widths\[0\]"),
    (lambda: compress.memory_report(10, "55", 0.5), TypeError, "widths"),
    (lambda: compress.memory_report(10, [5], "0.5"), TypeError, "sparsity"),
    (lambda: compress.memory_report(10, [5], math.nan), ValueError, "sparsity"),
    (lambda: compress.memory_report(10, [5], 0.5).bits("nothing"), ValueError, "label_start"),
    (lambda: compress.memory_report(10, [5], 0.5).bits(3), TypeError, "label_start"),
    (lambda: compress.pack_ternary([1.0, np.nan]), ValueError, "values"),
    (lambda: compress.pack_ternary("101"), TypeError, "values"),
    (lambda: compress.pack_ternary(torch.ones(3, requires_grad=True)), TypeError, "values"),
    (lambda: compress.unpack_ternary(np.zeros(1, dtype=np.uint8), (4,)), TypeError, "packed"),
    (lambda: compress.unpack_ternary(torch.zeros(1, dtype=torch.uint8), (2.0, 2)), TypeError,
     r"shape\[0\]"),
    (lambda: compress.unpack_ternary(torch.zeros(1, dtype=torch.uint8), (-4,)), ValueError,
     r"shape\[0\]"),
])
def test_public_functions_refuse_bad_arguments_by_name(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_compressed_network_refuses_non_finite_inputs(small_net):
    """The issue's case: NaN compares false with every threshold and became code 0."""
    X = _inputs(4, 48)
    for bad in (math.nan, math.inf, -math.inf):
        Xb = X.clone()
        Xb[1, 3] = bad
        for call in (small_net, small_net.features, small_net.activation_codes):
            with pytest.raises(ValueError, match="X must be finite"):
                call(Xb)
        with pytest.raises(ValueError, match="X must be finite"):
            small_net(Xb.numpy())
    with pytest.raises(TypeError, match="X"):
        small_net("X")
    with pytest.raises(TypeError, match="X"):
        small_net(X.to(torch.complex128))
    with pytest.raises(TypeError, match="X"):
        small_net(X.clone().requires_grad_(True))
    with pytest.raises(ValueError, match="X must have"):
        small_net(X[0])
    # valid float32 and list inputs give the float64 result of the same values
    assert torch.equal(small_net(X.float()), small_net(X.float().double()))
    assert torch.equal(small_net(X.tolist()), small_net(X))


def test_compressed_network_refuses_bad_construction_arguments(relu3, small_net):
    gen = torch.Generator().manual_seed(0)
    with pytest.raises(TypeError, match="layer"):
        small_net.codes(1.0)
    with pytest.raises(ValueError, match="layer"):
        small_net.codes(-1)
    with pytest.raises(TypeError, match="dtype"):
        small_net.weights(0, torch.int64)
    with pytest.raises(TypeError, match="dtype"):
        small_net.to_reference(torch.int32)
    with pytest.raises(TypeError, match="p"):
        compress.CompressedMLP.from_plan(relu3, 8.0, [4, 4, 4], generator=gen)
    with pytest.raises(ValueError, match="widths"):
        compress.CompressedMLP.from_plan(relu3, 8, [4, 4], generator=gen)
    with pytest.raises(TypeError, match="generator"):
        compress.CompressedMLP.from_plan(relu3, 8, [4, 4, 4], generator=0)
    with pytest.raises(TypeError, match="exact_zeros"):
        compress.CompressedMLP.from_plan(relu3, 8, [4, 4, 4], generator=gen, exact_zeros="no")
    state = small_net.state()
    kwargs = dict(sparsity=state["sparsity"], packed=state["packed"])
    bad_readout = state["readout"].clone()
    bad_readout[0] = math.nan
    with pytest.raises(ValueError, match="readout"):
        compress.CompressedMLP(48, [64, 40, 32], small_net.layers, TAU0, readout=bad_readout,
                               **kwargs)
    with pytest.raises(ValueError, match="readout"):
        compress.CompressedMLP(48, [64, 40, 32], small_net.layers, TAU0,
                               readout=np.full(32, 1e300), **kwargs)
    with pytest.raises(TypeError, match="packed"):
        compress.CompressedMLP(48, [64, 40, 32], small_net.layers, TAU0,
                               readout=state["readout"], sparsity=0.5,
                               packed=[p.numpy() for p in state["packed"]])


def test_ternary_weights_refuse_integer_dtypes():
    """The issue's case: dtype=torch.int64 truncated the ±1/sqrt(1-eps) values."""
    with pytest.raises(TypeError, match="dtype"):
        compress.ternary_weights((3, 3), 0.5, torch.Generator().manual_seed(0),
                                 dtype=torch.int64)


def test_pack_ternary_refuses_values_whose_magnitude_would_be_lost():
    scaled = compress.ternary_weights((5, 7), 0.5, torch.Generator().manual_seed(0))
    assert torch.equal(compress.unpack_ternary(compress.pack_ternary(scaled), (5, 7)),
                       torch.sign(scaled).to(torch.int8))
    with pytest.raises(ValueError, match="values must be ternary"):
        compress.pack_ternary(torch.tensor([0.5, 1.0, -1.0]))


def test_solve_layer_without_tau_in_records_none_not_nan():
    sol = compress.solve_layer(activations.get("relu").moments(1.0), 1.0)
    assert sol.tau_in is None


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
