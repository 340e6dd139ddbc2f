"""lossless.compress.solver and .plan: ternary weights, the two-threshold family's moments,
one layer's moment equations and the plan of a whole network (the book's compression chapter)."""


from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate

from lossless import activations, compress, memory, networks, theory
from lossless.activations import Moments

from conftest import ACTIVATIONS, TAU0


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
    """Three ReLU layers on the book's reference mixture (06_compression):
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
    (lambda: memory.memory_report(10.0, [5], 0.5), TypeError, "p"),
    (lambda: memory.memory_report(10, [5.5], 0.5), TypeError, r"widths\[0\]"),
    (lambda: memory.memory_report(10, "55", 0.5), TypeError, "widths"),
    (lambda: memory.memory_report(10, [5], "0.5"), TypeError, "sparsity"),
    (lambda: memory.memory_report(10, [5], math.nan), ValueError, "sparsity"),
    (lambda: memory.memory_report(10, [5], 0.5).bits("nothing"), ValueError, "label_start"),
    (lambda: memory.memory_report(10, [5], 0.5).bits(3), TypeError, "label_start"),
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




def test_ternary_weights_refuse_integer_dtypes():
    """The issue's case: dtype=torch.int64 truncated the ±1/sqrt(1-eps) values."""
    with pytest.raises(TypeError, match="dtype"):
        compress.ternary_weights((3, 3), 0.5, torch.Generator().manual_seed(0),
                                 dtype=torch.int64)




def test_solve_layer_without_tau_in_records_none_not_nan():
    sol = compress.solve_layer(activations.get("relu").moments(1.0), 1.0)
    assert sol.tau_in is None
