"""lossless.compress.last_layer: the Hermite energy and richer last layers."""


from __future__ import annotations


import numpy as np
import pytest

from lossless import activations, compress



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
