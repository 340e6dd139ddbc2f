"""Tests of lossless.toolbox: Gaussian quadrature, Hermite coefficients, Mehler series."""

import math

import numpy as np
import pytest

from lossless import activations, toolbox

RELU = activations.get("relu")
TERNARY = activations.get("ternary", s_minus=-0.4, s_plus=0.6, scale=1.0, odd=True)


def test_quadrature_weights_and_gaussian_moments():
    nodes, weights = toolbox.gaussian_quadrature([0.3, -1.2])
    assert weights.sum() == pytest.approx(1.0, abs=1e-14)
    for k, moment in ((1, 0.0), (2, 1.0), (4, 3.0), (6, 15.0)):
        assert weights @ nodes**k == pytest.approx(moment, abs=1e-12)


def test_expectation_of_a_step_is_exact_with_its_breakpoint():
    # E[1[xi > 0.7]] = Q(0.7): exact when the jump is a panel edge
    q = 0.5 * math.erfc(0.7 / math.sqrt(2))
    got = toolbox.gaussian_expectation(lambda x: (x > 0.7).astype(float), breakpoints=[0.7])
    assert got == pytest.approx(q, abs=1e-14)


@pytest.mark.parametrize("act", [RELU, activations.get("tanh"), TERNARY], ids=lambda a: a.name)
def test_stein_forms_match_the_moments(act):
    tau = 0.8
    bp = np.asarray(act.breakpoints) / tau
    mom = act.moments(tau)
    g1 = toolbox.gaussian_expectation(lambda x: x * act(tau * x), breakpoints=bp) / tau
    g2 = toolbox.gaussian_expectation(lambda x: (x * x - 1) * act(tau * x), breakpoints=bp) / tau**2
    assert g1 == pytest.approx(mom.g1, abs=1e-12)
    assert g2 == pytest.approx(mom.g2, abs=1e-12)


@pytest.mark.parametrize("act", [RELU, activations.get("erf"), TERNARY], ids=lambda a: a.name)
def test_hermite_coefficients_are_moments_and_parseval(act):
    tau = 1.3
    z = toolbox.hermite_coefficients(act, tau, 120)
    mom = act.moments(tau)
    assert z[0] == pytest.approx(mom.m, abs=1e-12)
    assert z[1] == pytest.approx(tau * mom.g1, abs=1e-12)
    assert z[2] == pytest.approx(tau**2 * mom.g2 / 2, abs=1e-12)
    fact = np.array([float(math.factorial(r)) for r in range(z.size)])
    energy = float(np.sum(fact[1:] * z[1:] ** 2))
    # Parseval from below; a jump leaves a slowly decaying tail (about R^(-1/2))
    assert 0 <= mom.v - energy < (0.05 if act.has_jumps else 1e-3) * mom.v


def test_hermite_coefficients_of_a_polynomial_are_exact():
    quad = activations.get("quadratic", a=0.5, b=-1.0, c=0.2)
    tau = 0.9
    z = toolbox.hermite_coefficients(quad, tau, 4)
    np.testing.assert_allclose(z[:3], quad.hermite_expansion(tau), atol=1e-13)
    np.testing.assert_allclose(z[3:], 0.0, atol=1e-13)


def test_hermite_coefficients_of_a_step_match_the_closed_form_up_to_high_order():
    from lossless import compress

    tau, order = 0.8, 160
    z = toolbox.hermite_coefficients(TERNARY, tau, order)
    energies = compress.hermite_energy(TERNARY, tau, order)   # closed form for ternary steps
    fact = np.array([float(math.factorial(r)) for r in range(order + 1)])
    np.testing.assert_allclose(fact * z**2, energies, atol=1e-14)


def test_hermite_coefficients_vectorised_over_scales():
    taus = np.array([0.7, 1.0, 1.6])
    Z = toolbox.hermite_coefficients(TERNARY, taus, 5)
    assert Z.shape == (3, 6)
    for row, tau in zip(Z, taus):
        np.testing.assert_allclose(row, toolbox.hermite_coefficients(TERNARY, float(tau), 5), atol=1e-15)


@pytest.mark.parametrize("act", [RELU, activations.get("erf"), TERNARY], ids=lambda a: a.name)
def test_mehler_series_equals_closed_form_dual(act):
    z = toolbox.hermite_coefficients(act, 1.0, 60)
    z[0] = 0.0
    dual = act.dual(np.array([1.0, 1.0]), centre=act.moments(1.0).m, max_correlation=1.0)
    for rho in (-0.5, 0.05, 0.4):
        exact = dual.values(np.array([0]), np.array([1]), np.array([[rho]]))[0, 0]
        assert toolbox.mehler_series(z, z, rho) == pytest.approx(exact, abs=1e-10)


def test_mehler_series_of_hermite_polynomials():
    he2 = np.array([0.0, 0.0, 1.0])
    rho = np.array([-0.3, 0.0, 0.8])
    np.testing.assert_allclose(toolbox.mehler_series(he2, he2, rho), 2 * rho**2, atol=1e-15)


def test_bad_input():
    with pytest.raises(TypeError, match="activation"):
        toolbox.hermite_coefficients(np.tanh, 1.0, 3)
    with pytest.raises(ValueError, match="tau"):
        toolbox.hermite_coefficients(RELU, -1.0, 3)
    with pytest.raises(ValueError, match="tau"):
        toolbox.hermite_coefficients(RELU, np.array([1.0, 0.0]), 3)
    with pytest.raises(ValueError, match="order"):
        toolbox.hermite_coefficients(RELU, 1.0, 171)
    with pytest.raises(ValueError, match="one length"):
        toolbox.mehler_series([1.0, 2.0], [1.0], 0.5)
    with pytest.raises(ValueError, match="rho"):
        toolbox.mehler_series([1.0], [1.0], 1.5)
    with pytest.raises(TypeError, match="func"):
        toolbox.gaussian_expectation(3.0)
    with pytest.raises(ValueError, match="shape"):
        toolbox.gaussian_expectation(lambda x: 1.0)
    with pytest.raises(ValueError, match="NaN"):
        toolbox.gaussian_expectation(lambda x: np.where(x > 0, 1.0, np.nan))


def test_order_two_pieces_add_up_and_have_their_structure():
    from lossless import data

    s = data.preset("reference", 96).sample(192, np.random.default_rng(3))
    pieces = toolbox.order_two_pieces(s, RELU)
    parts = (pieces.scale, pieces.noise, pieces.means_squared, pieces.means_noise, pieces.cross)
    np.testing.assert_allclose(sum(parts), pieces.centred, atol=1e-14)
    for A in parts + (pieces.total, pieces.mean):
        assert A.shape == (192, 192) and np.array_equal(A, A.T) and not np.any(np.diag(A))
    # the total is the order-2 Mehler term of the one-layer kernel
    gram = s.X @ s.X.T
    nu = np.sqrt(np.diag(gram))
    zeta = toolbox.hermite_coefficients(RELU, nu, 2)
    mehler = 2 * np.outer(zeta[:, 2], zeta[:, 2]) * (gram / np.outer(nu, nu)) ** 2
    np.fill_diagonal(mehler, 0.0)
    np.testing.assert_allclose(pieces.total, mehler, rtol=1e-10, atol=1e-15)
    # (mu_a^T mu_b)^2 / p^2 is constant on each class block (off the diagonal)
    lab = s.labels
    for a in range(2):
        for b in range(2):
            block = pieces.means_squared[np.ix_(lab == a, lab == b)]
            values = block[~np.eye(*block.shape, dtype=bool)] if a == b else block.ravel()
            assert np.ptp(values) <= 1e-15 * max(1.0, np.abs(values).max())
    g2 = RELU.moments(s.tau0).g2
    assert pieces.means_squared[lab == 0][:, lab == 1].max() == pytest.approx(
        g2**2 / 2 * (9.0 / 96) ** 2, rel=1e-12)          # mu_1 = -mu_2 = 3 e_1
    with pytest.raises(TypeError, match="sample"):
        toolbox.order_two_pieces(s.X, RELU)
    with pytest.raises(TypeError, match="activation"):
        toolbox.order_two_pieces(s, "relu")
    bare = data.Sample(s.X, s.labels)
    with pytest.raises(ValueError, match="mixture"):
        toolbox.order_two_pieces(bare, RELU)


def test_hermite_generating_series_is_dominated():
    from numpy.polynomial import hermite_e

    x = np.linspace(-9, 9, 181)
    for t in (0.0, 0.3, 1.0, 2.5, 5.0):
        partial, majorant = toolbox.hermite_generating_bound(x, t, order=150)
        assert np.all(partial <= majorant * (1 + 1e-12))
    partial, _ = toolbox.hermite_generating_bound(np.array([1.3, -2.2]), 0.7, order=12)
    direct = [sum(abs(hermite_e.hermeval(v, [0] * r + [1])) * 0.7**r / math.factorial(r)
                  for r in range(13)) for v in (1.3, -2.2)]
    np.testing.assert_allclose(partial, direct, rtol=1e-12)
    with pytest.raises(ValueError, match="t"):
        toolbox.hermite_generating_bound(x, -1.0)
    with pytest.raises(ValueError, match="order"):
        toolbox.hermite_generating_bound(x, 1.0, order=500)
