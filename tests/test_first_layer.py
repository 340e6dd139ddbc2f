"""The first layer's weight law: the kappa4 term of the exact kernels and of K̃.

The book's eq-first-layer-kappa4 (exact first-order Edgeworth term of the first layer's
kernels) and eq-first-layer-equivalent (its leading order, the D block of K̃).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lossless import activations, data, kernels, theory
from lossless.networks import ternary_weights

RELU = activations.get("relu")
SQUARE = activations.Polynomial([0.0, 0.0, 1.0])


def _sample(p: int, seed: int = 0, name: str = "shape") -> data.Sample:
    return data.preset(name, p).sample(2 * p, np.random.default_rng(seed))


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


# ---------------------------------------------------------------------------------
# exactness for polynomials


@pytest.mark.parametrize("m4", [1.0, 1.5, 4.0, 10.0, 100.0])
def test_square_activation_done_when(m4):
    """exact_ck(X, [t^2], first_layer_m4=m) - exact_ck(X, [t^2]) = (m - 3)(X∘X)(X∘X)^T."""
    X = _sample(32).X
    base = kernels.exact_ck(X, [SQUARE])
    delta = kernels.exact_ck(X, [SQUARE], first_layer_m4=m4) - base
    X2 = X * X
    expected = (m4 - 3.0) * (X2 @ X2.T)
    assert _rel(delta, expected) < 1e-10
    # the default is the Gaussian kernel: E[(u^2 - tau0^2)(v^2 - tau0^2)] in closed form
    G = X @ X.T
    d = np.diag(G)
    tau2 = float(np.mean(d))
    gauss = np.outer(d, d) + 2.0 * G**2 - tau2 * (d[:, None] + d[None, :]) + tau2**2
    assert _rel(base, gauss) < 1e-12


def test_default_is_bit_identical():
    X = _sample(24).X
    for layers in ([RELU, RELU], [activations.get("tanh")], [SQUARE, RELU]):
        assert np.array_equal(kernels.exact_ck(X, layers),
                              kernels.exact_ck(X, layers, first_layer_m4=3.0))
        assert np.array_equal(kernels.exact_ntk(X, layers),
                              kernels.exact_ntk(X, layers, first_layer_m4=3))
    ck, ntk = kernels.exact_kernels(X, [RELU], first_layer_m4=3.0)
    assert np.array_equal(ck, kernels.exact_ck(X, [RELU]))
    assert np.array_equal(ntk, kernels.exact_ntk(X, [RELU]))
    assert np.all(kernels.first_layer_correction(X, [RELU, RELU], 3.0) == 0.0)


def test_quadratic_with_lower_terms_ck_and_ntk():
    X = _sample(24, seed=3).X
    act = activations.Polynomial([0.4, -1.3, 0.7])
    X2 = X * X
    for m4 in (2.0, 7.0):
        expected = (m4 - 3.0) * 0.7**2 * (X2 @ X2.T)
        dck = kernels.first_layer_correction(X, [act], m4)
        assert _rel(dck, expected) < 1e-10
        # sigma' is affine: its derivative kernel reads second moments only, so the
        # one-layer NTK changes exactly like the CK
        dntk = kernels.first_layer_correction(X, [act], m4, kernel="ntk")
        assert _rel(dntk, expected) < 1e-10
        ck, ntk = kernels.exact_kernels(X, [act], first_layer_m4=m4)
        assert np.array_equal(ck, ck.T) and np.array_equal(ntk, ntk.T)


def _isserlis(U: int, V: int, A: float, B: float, C: float) -> float:
    """E[u^U v^V] for centred Gaussians with Var u = A, Var v = B, Cov = C."""
    def dfact(k: int) -> int:
        return 1 if k <= 0 else k * dfact(k - 2)

    total = 0.0
    for x in range(min(U, V) + 1):
        if (U - x) % 2 or (V - x) % 2:
            continue
        total += (math.comb(U, x) * math.comb(V, x) * math.factorial(x) * dfact(U - x - 1)
                  * dfact(V - x - 1) * A ** ((U - x) // 2) * B ** ((V - x) // 2) * C**x)
    return total


def _kappa4_part(m: int, l: int, a: np.ndarray, b: np.ndarray) -> float:
    """Coefficient of kappa4 in E[u^m v^l], u = w.a, v = w.b, by counting the set
    partitions of the m + l factors into one block of four and pairs."""
    A, B, C = float(a @ a), float(b @ b), float(a @ b)
    total = 0.0
    for r in range(5):
        s = 4 - r
        if r > m or s > l:
            continue
        total += (math.comb(m, r) * math.comb(l, s) * float(np.sum(a**r * b**s))
                  * _isserlis(m - r, l - s, A, B, C))
    return total


def _kappa4_kernel(X: np.ndarray, coef: np.ndarray, centre: float) -> np.ndarray:
    n = X.shape[0]
    out = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            a, b = X[i], X[j]
            val = sum(ci * cj * _kappa4_part(mi, mj, a, b)
                      for mi, ci in enumerate(coef) for mj, cj in enumerate(coef))
            val -= centre * sum(c * _kappa4_part(m, 0, a, a) for m, c in enumerate(coef))
            val -= centre * sum(c * _kappa4_part(m, 0, b, b) for m, c in enumerate(coef))
            out[i, j] = val
    return out


@pytest.mark.parametrize("coef", [[0.0, 0.0, 0.0, 1.0], [0.3, -0.5, 0.2, 0.4, 0.25]])
def test_cubic_and_quartic_first_order_term(coef):
    """Degrees 3 and 4: every r = 0..4 term of eq-first-layer-kappa4 (and the diagonal)
    against the kappa4-linear part of E[sigma(u) sigma(v)] counted by set partitions."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((5, 7)) / math.sqrt(7)
    act = activations.Polynomial(coef)
    tau0 = math.sqrt(float(np.mean(np.sum(X * X, axis=1))))
    centre = act.moments(tau0).m
    m4 = 5.5
    expected = (m4 - 3.0) * _kappa4_kernel(X, np.asarray(coef), centre)
    got = kernels.first_layer_correction(X, [act], m4)
    assert _rel(got, expected) < 1e-10
    # NTK: K'_1 gets the same term with sigma' (uncentred), Hadamard with X X^T
    dcoef = np.polynomial.polynomial.polyder(np.asarray(coef))
    dexp = (m4 - 3.0) * _kappa4_kernel(X, dcoef, 0.0)
    got_ntk = kernels.first_layer_correction(X, [act], m4, kernel="ntk")
    assert _rel(got_ntk, expected + (X @ X.T) * dexp) < 1e-10


def test_symmetric_and_surrogates_and_jumps():
    X = _sample(32, seed=2).X
    step = activations.Ternary(-0.4, 0.7, 1.0, odd=False)
    ck, ntk = kernels.exact_kernels(X, [step, RELU], first_layer_m4=10.0, diagonal="nan")
    assert np.array_equal(ck, ck.T)
    off = ~np.eye(X.shape[0], dtype=bool)
    assert np.all(np.isfinite(ntk[off])) and np.all(np.isnan(np.diag(ntk)))
    assert np.array_equal(np.nan_to_num(ntk), np.nan_to_num(ntk).T)
    sur = [activations.get("quadratic", a=0.0, b=0.3, c=0.5), None]
    ntk_s = kernels.exact_ntk(X, [step, RELU], surrogates=sur, first_layer_m4=10.0)
    assert np.all(np.isfinite(ntk_s)) and np.array_equal(ntk_s, ntk_s.T)
    with pytest.raises(ValueError, match="jumps"):
        kernels.exact_ntk(X, [step], first_layer_m4=10.0)


@pytest.mark.parametrize("bad", [0.5, 0.0, -3.0, float("nan"), float("inf")])
def test_bad_m4_values(bad):
    X = _sample(16).X
    for call in (lambda: kernels.exact_ck(X, [RELU], first_layer_m4=bad),
                 lambda: kernels.exact_ntk(X, [RELU], first_layer_m4=bad),
                 lambda: kernels.first_layer_correction(X, [RELU], bad),
                 lambda: theory.coefficients([RELU], 1.0, first_layer_m4=bad)):
        with pytest.raises(ValueError, match="first_layer_m4"):
            call()


@pytest.mark.parametrize("bad", ["3", None, True, 1 + 2j, [3.0]])
def test_bad_m4_kinds(bad):
    X = _sample(16).X
    with pytest.raises((TypeError, ValueError), match="first_layer_m4"):
        kernels.exact_ck(X, [RELU], first_layer_m4=bad)


def test_torch_backend_refused_and_other_arguments():
    X = _sample(16).X
    with pytest.raises(ValueError, match="first_layer_m4"):
        kernels.exact_ck(X, [RELU], first_layer_m4=4.0, backend="torch")
    with pytest.raises(ValueError, match="kernel"):
        kernels.first_layer_correction(X, [RELU], 4.0, kernel="cka")
    with pytest.raises(ValueError, match="surrogates"):
        kernels.first_layer_correction(X, [RELU], 4.0, surrogates=[None])


def test_near_duplicate_samples_raise():
    X = _sample(16).X.copy()
    X[1] = X[0] * (1.0 + 1e-12)
    X[1, 0] += 1e-9
    with pytest.raises(ValueError, match="near-duplicate"):
        kernels.exact_ck(X, [RELU], first_layer_m4=10.0)
    # a polynomial's series is finite: no truncation, no error
    kernels.exact_ck(X, [SQUARE], first_layer_m4=10.0)


# ---------------------------------------------------------------------------------
# the leading order: the D block of K̃


def test_coefficients_alpha5_beta5():
    layers = [RELU, activations.get("erf"), RELU]
    tau0 = 1.1
    m4 = 1.0 / (1.0 - 0.9)
    c = theory.coefficients(layers, tau0, first_layer_m4=m4)
    g = theory.coefficients(layers, tau0)
    assert np.array_equal(c.alpha, g.alpha) and np.array_equal(c.beta, g.beta)
    assert np.array_equal(c.tau, g.tau) and np.array_equal(c.kappa2, g.kappa2)
    assert np.all(g.alpha5 == 0.0) and np.all(g.beta5 == 0.0)
    m1 = RELU.moments(tau0)
    assert c.alpha5[1] == pytest.approx((m4 - 3.0) * m1.g2**2 / 4.0, rel=1e-14)
    for ell in (2, 3):
        g1sq = c[ell].moments.g1 ** 2
        assert c.alpha5[ell] == pytest.approx(g1sq * c.alpha5[ell - 1], rel=1e-14)
        assert c.beta5[ell] == pytest.approx(c.alpha5[ell] + g1sq * c.beta5[ell - 1], rel=1e-14)
    assert "α5" in repr(c) and "α5" not in repr(g)
    assert "alpha5" in c.to_dict() and "alpha5" not in g.to_dict()


@pytest.mark.parametrize("kernel", ["ck", "ntk"])
def test_equivalent_D_block_is_the_leading_form(kernel):
    sample = _sample(48, seed=4)
    layers = [RELU, RELU]
    m4 = 8.0
    if kernel == "ck":
        diff = (theory.equivalent_ck(sample, layers, first_layer_m4=m4)
                - theory.equivalent_ck(sample, layers))
        coef = theory.coefficients(layers, sample.tau0, first_layer_m4=m4).alpha5[-1]
    else:
        diff = (theory.equivalent_ntk(sample, layers, first_layer_m4=m4)
                - theory.equivalent_ntk(sample, layers))
        coef = theory.coefficients(layers, sample.tau0, first_layer_m4=m4).beta5[-1]
    Jp = sample.J / math.sqrt(sample.p)
    expected = coef * Jp @ sample.D @ Jp.T
    assert np.max(np.abs(diff - expected)) < 1e-12 * np.max(np.abs(expected))
    assert coef > 0


def _contrast(M: np.ndarray, J: np.ndarray) -> float:
    """Off-diagonal class-block means, projected off the constant: B00 - 2 B01 + B11."""
    n = M.shape[0]
    off = M - np.diag(np.diag(M))
    count = J.T @ (np.ones((n, n)) - np.eye(n)) @ J
    B = J.T @ off @ J / count
    return float(B[0, 0] - 2 * B[0, 1] + B[1, 1])


def test_exact_term_approaches_the_D_block():
    """The class contrast of the exact kappa4 term and of the D block agree, and the
    rest of its projected off-diagonal part falls with p."""
    residual = []
    for p, tol in ((64, 0.3), (256, 0.1)):
        sample = _sample(p, seed=1)
        exact = kernels.first_layer_correction(sample.X, [RELU], 10.0)
        leading = (theory.equivalent_ck(sample, [RELU], first_layer_m4=10.0)
                   - theory.equivalent_ck(sample, [RELU]))
        ce, cl = _contrast(exact, sample.J), _contrast(leading, sample.J)
        assert abs(ce - cl) < tol * abs(cl)
        n = sample.n
        P = np.eye(n) - 1.0 / n
        off = lambda M: M - np.diag(np.diag(M))  # noqa: E731
        residual.append(np.linalg.norm(P @ off(exact - leading) @ P, 2)
                        / np.linalg.norm(P @ off(leading) @ P, 2))
    assert residual[1] < 0.7 * residual[0]


def test_sample_D():
    s = _sample(32)
    assert np.allclose(s.D, s.T, rtol=0, atol=1e-15)  # diagonal covariances: D = T
    rng = np.random.default_rng(0)
    p = 20
    F = rng.standard_normal((2, p, p)) / math.sqrt(p)
    covs = np.einsum("kij,klj->kil", F, F) + 0.5 * np.eye(p)
    mix = data.GaussianMixture(np.zeros((2, p)), covs)
    smp = mix.sample(40, rng)
    diag = np.stack([np.diag(C) for C in covs])
    assert np.allclose(smp.D, diag @ diag.T / p, rtol=1e-14, atol=0)
    assert not np.allclose(smp.D, smp.T, rtol=1e-3)
    # a rotation of the inputs changes D, not T
    Q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    rot = data.GaussianMixture(np.zeros((2, p)), np.einsum("ij,kjl,ml->kim", Q, covs, Q))
    rs = rot.sample(40, rng)
    assert np.allclose(rs.T, smp.T, rtol=1e-12)
    assert not np.allclose(rs.D, smp.D, rtol=1e-3)
    # estimated from data: unbiased for Gaussian data (averaged over draws)
    est = np.mean([data.Sample.from_data(mix.sample(400, np.random.default_rng(k)).X,
                                         np.repeat([0, 1], 200)).D for k in range(20)], axis=0)
    assert np.allclose(est, smp.D, rtol=0.02)


def test_missing_D_raises():
    class Bare:
        def __init__(self, s):
            self.X, self.V, self.t, self.T, self.tau0 = s.X, s.V, s.t, s.T, s.tau0

    s = _sample(16)
    theory.equivalent_ck(Bare(s), [RELU])  # Gaussian first layer: no D needed
    with pytest.raises(TypeError, match="D"):
        theory.equivalent_ck(Bare(s), [RELU], first_layer_m4=4.0)


# ---------------------------------------------------------------------------------
# against the package's own networks (small Monte Carlo)


def test_monte_carlo_one_layer_ternary_weights():
    """A ReLU layer with sparse ternary weights (eps = 0.9, kappa4 = 7): the class
    contrast of E[sigma(u) sigma(v)] minus the Gaussian kernel is the kappa4 term's,
    and far from 0 (the Gaussian prediction)."""
    sample = _sample(64, seed=7)
    X = sample.X
    eps = 0.9
    m4 = 1.0 / (1.0 - eps)
    centre = RELU.moments(sample.tau0).m
    gen = torch.Generator().manual_seed(11)
    Xt = torch.from_numpy(X.copy())
    width, chunk = 1 << 17, 1 << 13
    halves = []
    for _ in range(2):
        acc = torch.zeros(X.shape[0], X.shape[0], dtype=torch.float64)
        for _ in range(width // 2 // chunk):
            W = ternary_weights((chunk, X.shape[1]), eps, gen, dtype=torch.float64)
            F = torch.relu(Xt @ W.T) - centre
            acc += F @ F.T
        halves.append(acc.numpy() / (width // 2))
    measured = 0.5 * (halves[0] + halves[1]) - kernels.exact_ck(X, [RELU])
    noise = abs(_contrast(0.5 * (halves[0] - halves[1]), sample.J))
    predicted = _contrast(kernels.first_layer_correction(X, [RELU], m4), sample.J)
    got = _contrast(measured, sample.J)
    assert noise < 0.1 * abs(predicted)
    assert abs(got - predicted) < 0.15 * abs(predicted) + 3 * noise


def test_first_layer_term():
    sample = _sample(32, seed=6)
    layers = [RELU, activations.get("erf")]
    for kernel, eq in (("ck", theory.equivalent_ck), ("ntk", theory.equivalent_ntk)):
        term = theory.first_layer_term(sample, layers, 9.0, kernel=kernel)
        diff = eq(sample, layers, first_layer_m4=9.0) - eq(sample, layers)
        assert np.max(np.abs(term - diff)) < 1e-12 * np.max(np.abs(term))
        assert np.array_equal(term, term.T)
        assert np.all(theory.first_layer_term(sample, layers, 3.0, kernel=kernel) == 0.0)
    # alpha_5 != beta_5 at depth 2 (beta_2,5 = alpha_2,5 + g1^2 beta_1,5)
    ck = theory.first_layer_term(sample, layers, 9.0)
    ntk = theory.first_layer_term(sample, layers, 9.0, kernel="ntk")
    assert not np.allclose(ck, ntk)
    with pytest.raises(ValueError, match="kernel"):
        theory.first_layer_term(sample, layers, 9.0, kernel="nkt")


def test_derivative_kernel_share_is_small():
    """The layer-1 derivative-kernel term enters the NTK only through X X^T ∘ ΔK'_1:
    a small share of the NTK's kappa4 term, falling with p."""
    shares = []
    for p in (64, 256):
        X = _sample(p, seed=2).X
        dck = kernels.first_layer_correction(X, [RELU], 10.0)
        dntk = kernels.first_layer_correction(X, [RELU], 10.0, kernel="ntk")
        n = X.shape[0]
        P = np.eye(n) - 1.0 / n
        off = lambda M: M - np.diag(np.diag(M))  # noqa: E731
        shares.append(np.linalg.norm(P @ off(dntk - dck) @ P, 2)
                      / np.linalg.norm(P @ off(dntk) @ P, 2))
    assert shares[0] < 0.25 and shares[1] < 0.6 * shares[0]


def test_torch_input_and_block_size_do_not_change_the_term():
    X = _sample(24, seed=8).X
    ref = kernels.exact_ck(X, [RELU, RELU], first_layer_m4=6.0)
    via_torch = kernels.exact_ck(torch.from_numpy(X.copy()), [RELU, RELU], first_layer_m4=6.0)
    small_blocks = kernels.exact_ck(X, [RELU, RELU], first_layer_m4=6.0, block_size=5)
    assert np.array_equal(ref, via_torch)
    assert np.max(np.abs(ref - small_blocks)) < 1e-14 * np.max(np.abs(ref))
