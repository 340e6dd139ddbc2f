"""Tests of lossless.explore.hermite: the Gaussian toolbox chapter's explorer (Hermite
series of an activation and Mehler series of its kernel, truncated at order N)."""

import json
import math
import re

import numpy as np
import pytest
from numpy.polynomial import hermite_e

from lossless import activations, explore, toolbox
from lossless.explore import hermite


@pytest.fixture(scope="module")
def explorer():
    return explore.hermite_explorer()


def _two_dimensional_kernel(act, tau, rho, nodes=120):
    """E[s(tau x1) s(tau x2)], s = sigma - m, corr(x1, x2) = rho, by a tensor
    Gauss-Hermite rule: independent of the Hermite coefficients and of Mehler."""
    x, w = hermite_e.hermegauss(nodes)
    w = w / w.sum()
    m = act.moments(tau).m
    x1, x3 = np.meshgrid(x, x, indexing="ij")
    x2 = rho * x1 + math.sqrt(1 - rho**2) * x3
    values = (act(tau * x1) - m) * (act(tau * x2) - m)
    return float(np.einsum("i,j,ij->", w, w, values))


def test_truncation_is_the_sum_of_the_first_terms():
    for name in explore.HERMITE_ACTIVATIONS:
        for order in (0, 1, 3, 7):
            t = explore.hermite_truncation(name, order, 0.8)
            zeta = toolbox.hermite_coefficients(hermite._activation(name), 0.8, order)
            assert t.zeta.shape == (order + 1,)
            np.testing.assert_allclose(t.zeta, zeta, rtol=0, atol=1e-15)
            # sigma_N(xi) = sum_{r <= N} zeta_r He_r(xi), term by term
            terms = sum(zeta[r] * hermite_e.hermeval(t.xi, [0] * r + [1])
                        for r in range(order + 1))
            np.testing.assert_allclose(t.truncated, terms, rtol=0, atol=1e-12)
            # k_N(rho) = sum_{1 <= r <= N} r! zeta_r^2 rho^r
            series = sum(math.factorial(r) * zeta[r] ** 2 * t.rho**r
                         for r in range(1, order + 1))
            np.testing.assert_allclose(t.kernel_truncated, series + 0 * t.rho,
                                       rtol=0, atol=1e-12)
            kept = sum(math.factorial(r) * zeta[r] ** 2 for r in range(1, order + 1))
            assert t.kept == pytest.approx(kept, abs=1e-14)


def test_exact_kernel_is_the_package_dual_and_an_independent_quadrature():
    tanh = activations.get("tanh")
    t = explore.hermite_truncation("tanh", 40, 1.3)
    # the exact kernel at rho = 1 is the variance, at rho = 0 zero (centred)
    assert t.kernel[-1] == pytest.approx(tanh.moments(1.3).v, abs=1e-10)
    assert abs(t.kernel[t.rho.size // 2]) < 1e-12
    for k in (3, 25, 40, 60, 77):
        independent = _two_dimensional_kernel(tanh, 1.3, t.rho[k])
        assert t.kernel[k] == pytest.approx(independent, abs=1e-8)


def test_mehler_at_large_order_matches_the_exact_kernel_for_a_smooth_activation():
    # tanh is analytic in a strip: its energies decay fast, so at N = 60 the truncated
    # series equals the exact kernel to 1e-8 on all of [-1, 1]
    t = explore.hermite_truncation("tanh", 60, 1.0)
    assert np.max(np.abs(t.kernel - t.kernel_truncated)) < 1e-8
    assert t.leftover < 1e-8
    # a jump does not: the sign's leftover energy decays like N^(-1/2)
    s20, s80 = (explore.hermite_truncation("sign", n, 1.0) for n in (20, 80))
    assert 0.1 < s20.leftover < 0.13
    assert s80.leftover / s20.leftover == pytest.approx(0.5, abs=0.05)


def test_parseval_links_the_two_panels():
    for name in explore.HERMITE_ACTIVATIONS:
        t = explore.hermite_truncation(name, 6, 1.0)
        gap = t.kernel[-1] - t.kernel_truncated[-1]
        assert gap == pytest.approx(t.leftover, abs=1e-10)
        assert t.low_order <= t.kept <= t.variance + 1e-12
    # orders 1 and 2 of ReLU at tau = 1: 1/4 + 1/(4 pi)
    relu = explore.hermite_truncation("relu", 2, 1.0)
    assert relu.low_order == pytest.approx(0.25 + 1 / (4 * math.pi), rel=1e-12)
    # ... whatever N: at N = 1 the readout still reports orders 1 and 2, not order 1 alone
    for N in (0, 1, 20):
        t = explore.hermite_truncation("relu", N, 1.0)
        assert t.low_order == pytest.approx(relu.low_order, rel=1e-12)
    one = explore.hermite_truncation("relu", 1, 1.0)
    assert one.kept < one.low_order  # the order 2 is not kept at N = 1


def test_explorer_states_agree_with_the_computation(explorer):
    states = explorer.states
    assert len(states) == (len(explore.HERMITE_ACTIVATIONS) * len(explore.HERMITE_ORDERS)
                           * len(explore.HERMITE_SCALES))
    for name, tau, order in (("relu", 0.5, 1), ("tanh", 2.0, 7), ("sign", 1.0, 20),
                             ("ternary", 1.0, 3)):
        state = explorer.state(act=name, tau=tau, N=order)
        live = explore.hermite_truncation(name, order, tau)
        scale = max(np.max(np.abs(live.values)), live.variance)
        for key, values in (("ya", live.values), ("yb", live.truncated),
                            ("ka", live.kernel), ("kb", live.kernel_truncated)):
            np.testing.assert_allclose(state[key], values, rtol=1e-3, atol=1e-9 * scale)
        assert state["kept"] == pytest.approx(live.kept, rel=1e-3)
        assert state["leftover"] == pytest.approx(live.leftover, rel=1e-3, abs=1e-9)
        assert f"N = {order}:" in state["readout"]
    # the sign is scale-free: the same state at every tau
    a, b = (explorer.state(act="sign", tau=t, N=5) for t in (0.5, 2.0))
    assert a["kb"] == b["kb"] and a["ya"] == b["ya"]


def test_explorer_html_and_controls(explorer):
    html = explorer.html()
    assert 'class="lossless-explorer"' in html and 'id="lossless-hermite"' in html
    match = re.search(r'id="lossless-hermite-spec">(.*?)</script>', html, re.S)
    spec = json.loads(match.group(1).replace("<\\/", "</"))
    params = {p["name"]: p for p in spec["params"]}
    assert set(params) == {"act", "N", "tau"}
    assert params["N"]["bind"]["max"] == max(explore.HERMITE_ORDERS)
    assert len(spec["datasets"]["states"]) == len(explorer.states)
    for control in explorer.controls:
        for value in control["values"]:
            key = {"act": "sign", "N": 2, "tau": 1.0, **control["context"],
                   control["name"]: value}
            explorer.state(**key)                   # every control value has a state
    assert len(html) < 1.5e6


def test_bad_input_raises():
    with pytest.raises(ValueError, match="activation"):
        explore.hermite_truncation("softplus")
    with pytest.raises(TypeError, match="activation"):
        explore.hermite_truncation(3.0)
    with pytest.raises(ValueError, match="order"):
        explore.hermite_truncation("relu", -1)
    with pytest.raises(ValueError, match="order"):
        explore.hermite_truncation("relu", 171)
    with pytest.raises(TypeError, match="order"):
        explore.hermite_truncation("relu", 2.5)
    with pytest.raises(ValueError, match="tau"):
        explore.hermite_truncation("relu", 2, 0.0)
    with pytest.raises(ValueError, match="tau"):
        explore.hermite_truncation("relu", 2, float("nan"))
    with pytest.raises(ValueError, match="grid_size"):
        explore.hermite_truncation("relu", 2, 1.0, grid_size=1)


def test_any_activation_object_is_accepted():
    erf = activations.get("erf")
    t = explore.hermite_truncation(erf, 30, 1.0)
    assert t.name == "erf"
    assert np.max(np.abs(t.kernel - t.kernel_truncated)) < 1e-6


def test_widget_builds():
    pytest.importorskip("ipywidgets")
    import matplotlib

    matplotlib.use("Agg")
    widget = explore.hermite_widget("tanh", 3, 1.0)
    assert widget.children[0].value == "tanh"
