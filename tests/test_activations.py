"""Tests of lossless.activations: evaluation, derivatives and Gaussian moments (eq-equiv-moments)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import integrate, special

from lossless import activations as A
from conftest import builtin_examples

PHI0 = 1.0 / math.sqrt(2.0 * math.pi)
TAUS = [0.05, 0.3, 1.0, 3.0, 20.0]
FIELDS = ("m", "g1", "g2", "h", "v", "q")


def natural_scales(act: A.Activation, tau: float) -> dict[str, float]:
    """Size of each moment's integrand, for an absolute floor far below it."""
    second = (
        math.sqrt(A.quadrature_moments(act, tau).v + A.quadrature_moments(act, tau).m ** 2) + 1e-300
    )
    return {
        "m": second,
        "g1": second / tau,
        "g2": second / tau**2,
        "h": second**2 / tau**2,
        "v": second**2,
        "q": 1.0,
    }


def assert_moments_close(
    a: A.Moments, b: A.Moments, rtol: float, floors: dict[str, float], what: str
) -> None:
    for f in FIELDS:
        x, y = getattr(a, f), getattr(b, f)
        assert not (math.isnan(x) or math.isnan(y)), f"{what}: {f} is NaN"
        if math.isinf(x) or math.isinf(y):
            assert x == y, f"{what}: {f} {x} vs {y}"
            continue
        tol = rtol * max(abs(x), abs(y)) + floors.get(f, 0.0)
        assert (
            abs(x - y) <= tol
        ), f"{what}: {f} closed {x!r} vs numerical {y!r} (|diff| {abs(x - y):.3e} > {tol:.3e})"


# --------------------------------------------------------------------------- registry
def test_get_returns_every_registered_activation():
    for name in A.names():
        act = A.get(name) if name != "ternary" else A.get(name, s_minus=-1.0, s_plus=1.0)
        assert isinstance(act, A.Activation)
        assert act.name == name
        assert repr(act).startswith(name + "(")


def test_unknown_name_lists_the_allowed_ones():
    with pytest.raises(ValueError, match="unknown activation 'gelu'.*relu.*ternary"):
        A.get("gelu")


def test_bad_parameters_are_rejected():
    with pytest.raises(TypeError, match="relu"):
        A.get("relu", slope=0.1)
    with pytest.raises(ValueError, match="s_minus must be <= s_plus"):
        A.get("ternary", s_minus=1.0, s_plus=0.0)
    with pytest.raises(ValueError, match="scale"):
        A.get("ternary", s_minus=-1.0, s_plus=1.0, scale=0.0)
    with pytest.raises(ValueError, match="slope"):
        A.get("leaky_relu", slope=float("nan"))
    with pytest.raises(ValueError, match="strictly increasing"):
        A.PiecewiseLinear([1.0, 0.0], [0.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="same length"):
        A.PiecewiseConstant([0.0, 1.0], [1.0])
    with pytest.raises(TypeError, match="callable"):
        A.Custom(3.0)


@pytest.mark.parametrize("tau", [0.0, -1.0, float("nan"), float("inf")])
def test_moments_reject_bad_tau(tau):
    with pytest.raises(ValueError, match="tau must be a finite real number > 0"):
        A.get("relu").moments(tau)


@pytest.mark.parametrize("tau", ["abc", "1", None, 1j, True, np.array([1.0, 2.0])])
def test_moments_reject_tau_of_the_wrong_kind(tau):
    with pytest.raises(TypeError, match="tau must be a finite real number > 0"):
        A.get("relu").moments(tau)


NAMED = ["relu", "leaky_relu", "abs", "tanh", "erf", "sigmoid", "sin", "cos", "sign", "step",
         "linear", "quadratic"]


@pytest.mark.parametrize("name", NAMED)
@pytest.mark.parametrize("tau", [1e-300, 1e-160, 1e155, 1e300])
def test_moments_outside_the_representable_range_raise_a_range_error(name, tau):
    with pytest.raises(ValueError, match=r"tau must be in \[1e-100, 1e\+100\]"):
        A.get(name).moments(tau)


@pytest.mark.parametrize("name", NAMED)
@pytest.mark.parametrize("tau", [1e-100, 1e-20, 1e20, 1e50])
def test_moments_inside_the_range_are_finite_or_raise_clearly(name, tau):
    try:
        mom = A.get(name).moments(tau)
    except ValueError as err:  # a polynomial's tau**4 may leave float64: said, not NaN
        assert "not finite" in str(err) or "not representable" in str(err)
        return
    for key, value in mom.to_dict().items():
        assert math.isfinite(value) or (key == "q" and value == math.inf), (key, value)


def test_thresholds_too_large_for_float64_raise():
    act = A.get("ternary", s_minus=-1e300, s_plus=1e300, scale=1e300, odd=True)
    with pytest.raises(ValueError, match="ternary"):
        act.moments(1e-100)


def test_custom_activation_returning_nan_raises_naming_it():
    bad = A.Custom(lambda x: np.where(x > 1.0, np.nan, x), name="broken")
    with pytest.raises(ValueError, match="broken"):
        bad.moments(1.0)


@pytest.mark.parametrize("x", [np.array([1 + 1j]), np.array(["1.0"]), np.array([True])])
def test_evaluation_refuses_complex_strings_and_booleans(x):
    with pytest.raises(TypeError, match="x"):
        A.get("relu")(x)
    with pytest.raises(TypeError, match="x"):
        A.get("relu").derivative(x)


def test_step_functions_map_nan_to_nan():
    tern = A.get("ternary", s_minus=-0.5, s_plus=0.5, scale=1.0, odd=True)
    out = tern(np.array([np.nan, 1.0, -1.0, 0.0]))
    assert np.isnan(out[0]) and out[1:].tolist() == [1.0, -1.0, 0.0]
    import torch

    out_t = tern(torch.tensor([float("nan"), 1.0]))
    assert torch.isnan(out_t[0]) and out_t[1].item() == 1.0


@pytest.mark.parametrize(
    "name, params, error, match",
    [
        ("ternary", dict(s_minus="-0.5", s_plus=0.5), TypeError, "s_minus"),
        ("ternary", dict(s_minus=-0.5, s_plus=0.5, odd="no"), TypeError, "odd"),
        ("ternary", dict(s_minus=-0.5, s_plus=0.5, scale=np.float32(0.0)), ValueError, "scale"),
        ("leaky_relu", dict(slope=1 + 2j), TypeError, "slope"),
        ("erf", dict(sharpness=float("inf")), ValueError, "sharpness"),
        ("quadratic", dict(a="1"), TypeError, "a must"),
        ("step", dict(r=None), TypeError, "r must"),
    ],
)
def test_constructors_name_the_bad_parameter(name, params, error, match):
    with pytest.raises(error, match=match):
        A.get(name, **params)


def test_piecewise_constructors_refuse_bad_arrays():
    with pytest.raises(TypeError, match="thresholds"):
        A.PiecewiseConstant(["a"], [1.0])
    with pytest.raises(ValueError, match="jumps must be finite"):
        A.PiecewiseConstant([0.0], [np.nan])
    with pytest.raises(TypeError, match="coefficients"):
        A.Polynomial([1 + 1j])


# --------------------------------------------------------------------------- evaluation
def test_values_follow_the_definitions():
    x = np.array([-2.0, -0.4, 0.0, 0.3, 0.9, 1.5])
    np.testing.assert_array_equal(A.get("relu")(x), np.maximum(x, 0))
    np.testing.assert_allclose(
        A.get("leaky_relu", slope=0.1)(x), np.where(x > 0, x, 0.1 * x), rtol=1e-15
    )
    np.testing.assert_array_equal(A.get("abs")(x), np.abs(x))
    np.testing.assert_array_equal(A.get("sign")(x), np.sign(x))
    np.testing.assert_array_equal(A.get("step", r=0.3)(x), (x > 0.3).astype(float))
    np.testing.assert_allclose(A.get("quadratic", a=2.0, b=-1.0, c=0.5)(x), 2 * x**2 - x + 0.5)
    np.testing.assert_allclose(A.get("erf", sharpness=3.0)(x), special.erf(3 * x))
    np.testing.assert_allclose(A.get("sigmoid")(x), 1 / (1 + np.exp(-x)))
    np.testing.assert_allclose(A.get("cos", frequency=2.0)(x), np.cos(2 * x))
    # eq-compress-ternary: odd -> scale (1[t > s+] - 1[t < s-]); even -> scale (1[t > s+] + 1[t < s-])
    odd = A.get("ternary", s_minus=-0.4, s_plus=0.3, scale=2.0, odd=True)
    even = A.get("ternary", s_minus=-0.4, s_plus=0.3, scale=2.0, odd=False)
    np.testing.assert_array_equal(odd(x), [-2.0, 0.0, 0.0, 0.0, 2.0, 2.0])
    np.testing.assert_array_equal(even(x), [2.0, 0.0, 0.0, 0.0, 2.0, 2.0])
    pc = A.PiecewiseConstant([0.3, -1.0], [1.0, -0.5], base=0.2)
    np.testing.assert_allclose(pc(x), 0.2 + (x > 0.3) - 0.5 * (x > -1.0))
    np.testing.assert_allclose(pc.levels, [0.2, -0.3, 0.7])
    assert isinstance(A.get("relu")(-1.0), float)


@pytest.mark.parametrize("act", builtin_examples(), ids=repr)
def test_numpy_and_torch_agree(act):
    x = np.linspace(-3, 3, 61)
    t = torch.tensor(x, dtype=torch.float64)
    out = act(t)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64 and out.shape == t.shape
    np.testing.assert_allclose(out.numpy(), act(x), rtol=1e-13, atol=1e-15)
    d = act.derivative(t)
    assert isinstance(d, torch.Tensor) and d.shape == t.shape
    np.testing.assert_allclose(d.numpy(), act.derivative(x), rtol=1e-12, atol=1e-14)
    assert act(x.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("act", builtin_examples(), ids=repr)
def test_derivative_matches_finite_differences_between_breakpoints(act):
    x = np.linspace(-2.7, 2.9, 57)
    x = x[np.min(np.abs(x[:, None] - np.array(act.breakpoints + (1e9,))[None, :]), axis=1) > 1e-3]
    h = 1e-6
    fd = (act(x + h) - act(x - h)) / (2 * h)
    np.testing.assert_allclose(act.derivative(x), fd, rtol=1e-6, atol=1e-6)


def test_torch_gradient_flows_through_piecewise_linear():
    x = torch.tensor([-1.0, 0.5, 2.0], dtype=torch.float64, requires_grad=True)
    A.get("leaky_relu", slope=0.2)(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.2, 1.0, 1.0])


def test_jumps_and_q():
    for act in builtin_examples():
        locs, sizes = act.jumps()
        assert act.has_jumps == bool(locs.size)
        assert math.isinf(act.moments(1.0).q) == act.has_jumps
    locs, sizes = A.get("ternary", s_minus=-0.4, s_plus=0.9, scale=1.3, odd=False).jumps()
    np.testing.assert_allclose(locs, [-0.4, 0.9])
    np.testing.assert_allclose(sizes, [-1.3, 1.3])
    custom = A.Custom(lambda t: np.where(t > 0.5, 1.0, 0.0), breakpoints=[0.5, 2.0])
    assert custom.has_jumps and custom.jumps()[0].tolist() == [0.5]
    assert not A.Custom(np.abs, breakpoints=[0.0]).has_jumps


# --------------------------------------------------------------------------- moments
def test_relu_moments_match_closed_forms():
    for tau in (0.2, 1.0, 4.0):
        mo = A.get("relu").moments(tau)
        np.testing.assert_allclose(
            [mo.m, mo.g1, mo.g2, mo.v, mo.q, mo.h],
            [tau * PHI0, 0.5, PHI0 / tau, tau**2 * (0.5 - 1 / (2 * math.pi)), 0.5, 1 - 1 / math.pi],
            rtol=1e-14,
        )


def test_step_moments_match_closed_forms():
    """E[1[tau xi > r]] = Q(u), E[xi 1] = phi(u), E[(xi^2-1) 1] = u phi(u), u = r / tau."""
    for tau, r in ((0.5, 0.3), (2.0, -1.1), (1.0, 4.0)):
        u = r / tau
        mo = A.get("step", r=r).moments(tau)
        phi = math.exp(-u * u / 2) / math.sqrt(2 * math.pi)
        Q = special.ndtr(-u)
        np.testing.assert_allclose(
            [mo.m, mo.g1, mo.g2, mo.v], [Q, phi / tau, u * phi / tau**2, Q * (1 - Q)], rtol=1e-14
        )
        assert math.isinf(mo.q)


@pytest.mark.parametrize("act", builtin_examples(), ids=repr)
def test_closed_forms_agree_with_the_numerical_fallback(act):
    """Closed forms vs quadrature split at the breakpoints: 1e-9 relative over tau in [0.05, 20].

    An absolute floor of 1e-12 times the moment's natural size (e.g. sqrt(E[sigma^2]) / tau
    for g1) covers moments that vanish exactly by symmetry (g2 of odd functions) or are
    exponentially small for oscillating integrands (sin, cos at tau * frequency >> 1).
    """
    for tau in TAUS:
        floors = {k: 1e-12 * v for k, v in natural_scales(act, tau).items()}
        assert_moments_close(
            act.moments(tau), act.numerical_moments(tau), 1e-9, floors, f"{act!r} at tau={tau}"
        )


@pytest.mark.parametrize("tau", TAUS)
def test_far_thresholds_stay_relatively_accurate(tau):
    """Steps up to 30 tau away: tail moments like Q(30) ~ 5e-198 keep 1e-9 relative accuracy."""
    floors = {k: 1e-300 for k in FIELDS}
    for k in (-30.0, -29.5, -12.0, -3.0, 0.0, 2.5, 17.0, 29.9, 30.0):
        for act in (
            A.get("step", r=k * tau),
            A.get("ternary", s_minus=k * tau, s_plus=(k + 0.5) * tau, scale=0.7, odd=True),
            A.get("ternary", s_minus=(k - 1) * tau, s_plus=k * tau, scale=2.0, odd=False),
            A.PiecewiseConstant([k * tau, -k * tau, 0.3 * tau], [1.0, 0.5, -2.0], base=1.0),
        ):
            closed = act.moments(tau)
            for f in ("m", "g1", "g2", "h", "v"):
                assert math.isfinite(getattr(closed, f)), (act, f)
            assert_moments_close(
                closed, act.numerical_moments(tau), 1e-9, floors, f"{act!r} at tau={tau}"
            )


def test_plain_stein_quadrature_is_an_independent_check():
    """A Custom without a derivative integrates the plain Stein forms (no jump formulas)."""
    for act in builtin_examples():
        if isinstance(act, (A.Sin, A.Cos)):
            continue
        plain = A.Custom(act._numpy, breakpoints=act.breakpoints)
        assert not plain.exact_derivative
        for tau in (0.3, 1.0, 3.0):
            floors = {k: 1e-11 * v for k, v in natural_scales(act, tau).items()}
            floors["q"] = 1e-7  # q from a finite-difference derivative
            ref = plain.moments(tau)
            closed = act.moments(tau)
            if math.isinf(closed.q):
                ref = A.Moments(ref.m, ref.g1, ref.g2, ref.h, ref.v, math.inf)
            assert_moments_close(closed, ref, 1e-9, floors, f"{act!r} (plain Stein) at tau={tau}")


def test_smooth_moments_match_direct_definitions():
    """tanh and sigmoid (no closed forms): the fallback against scipy.integrate.quad of
    the definitions (the book's eq-equiv-moments)."""
    for act in (A.get("tanh"), A.get("sigmoid")):
        for tau in (0.5, 2.0):
            pdf = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)  # noqa: E731
            E = lambda f: sum(  # noqa: E731
                integrate.quad(
                    lambda x: f(x) * pdf(x), lo, hi, epsabs=1e-15, epsrel=1e-11, limit=400
                )[0]
                for lo, hi in ((-14.0, 0.0), (0.0, 14.0))
            )
            s = lambda x: float(act(tau * x))  # noqa: E731
            m = E(s)
            ref = [
                m,
                E(lambda x: x * s(x)) / tau,
                E(lambda x: (x * x - 1) * s(x)) / tau**2,
                E(lambda x: (x * x - 1) * (s(x) - m) ** 2) / tau**2,
                E(lambda x: (s(x) - m) ** 2),
                E(lambda x: float(act.derivative(tau * x)) ** 2),
            ]
            mo = act.moments(tau)
            got = [getattr(mo, f) for f in FIELDS]
            np.testing.assert_allclose(got[:2] + got[3:], ref[:2] + ref[3:], rtol=1e-9)
            assert abs(got[2] - ref[2]) <= 1e-9 * max(abs(ref[2]), 1e-3)


def test_erf_sharpness_tends_to_sign():
    sign = A.get("sign").moments(0.8)
    sharp = A.get("erf", sharpness=1e6).moments(0.8)
    assert abs(sharp.g1 - sign.g1) < 1e-5 and abs(sharp.v - sign.v) < 1e-5
    assert sharp.q > 1e5  # q -> inf as the step is approached


def test_no_runtime_warnings_on_extreme_inputs():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for act in builtin_examples():
            big = (
                1e10 if isinstance(act, A.Polynomial) else 1e300
            )  # a polynomial overflows honestly
            act(np.array([-big, -1e10, 0.0, 1e10, big]))
            act.moments(1e-3)
            act.moments(1e3)


def test_check_layers_names_the_argument_and_the_bad_element():
    relu = A.get("relu")
    assert A.check_layers((relu, relu)) == [relu, relu]
    with pytest.raises(TypeError, match="wrap it in a list"):
        A.check_layers(relu)
    with pytest.raises(ValueError, match="original_layers must contain at least one"):
        A.check_layers([], "original_layers")
    with pytest.raises(TypeError, match=r"layers\[1\] must be a lossless.activations.Activation"):
        A.check_layers([relu, "tanh"])
    with pytest.raises(TypeError, match="non-empty list"):
        A.check_layers("relu")


def test_check_surrogates_wraps_callables_and_names_the_bad_entry():
    relu = A.get("relu")
    assert A.check_surrogates(None, 3) == [None, None, None]
    out = A.check_surrogates([None, relu, np.tanh], 3)
    assert out[0] is None and out[1] is relu and isinstance(out[2], A.Custom)
    x = np.linspace(-2, 2, 7)
    np.testing.assert_allclose(out[2](x), np.tanh(x))
    with pytest.raises(ValueError, match=r"one entry per layer \(2\), got 3"):
        A.check_surrogates([None] * 3, 2)
    with pytest.raises(TypeError, match=r"surrogates\[1\] must be None, an Activation"):
        A.check_surrogates([None, 1.5], 2)
    with pytest.raises(TypeError, match="surrogates must be None or a list"):
        A.check_surrogates("relu", 1)


@pytest.mark.parametrize("good", [2, 0.5, np.float64(1e-300), np.int64(3)])
def test_check_positive_accepts_positive_reals(good):
    assert A.check_positive(good, "tau0") == float(good)


@pytest.mark.parametrize("bad, error", [(True, TypeError), ("1", TypeError), (None, TypeError),
                                        (0.0, ValueError), (-1, ValueError),
                                        (math.nan, ValueError), (math.inf, ValueError)])
def test_check_positive_rejects_with_the_argument_name(bad, error):
    with pytest.raises(error, match="tau_c must be"):
        A.check_positive(bad, "tau_c")
