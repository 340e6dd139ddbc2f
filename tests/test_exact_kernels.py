"""Tests of the exact (infinite-width) CK/NTK of lossless.kernels (eq-ckntk-kernels).

Every two-point expectation is checked against an independent computation: a nested
composite Gauss–Legendre quadrature split at the kinks and jumps (values, and
derivative kernels through Price's theorem d/dK_ij E[f(u) g(v)] = E[f'(u) g'(v)]), and a
plain Monte Carlo of the 2-D Gaussian expectation layer by layer (CLT tolerance).
"""

from __future__ import annotations

import math
import tracemalloc
import warnings

import numpy as np
import pytest

from lossless import _dual
from lossless import activations as A
from lossless import kernels

from conftest import builtin_examples


def every_activation() -> list[A.Activation]:
    """The activation examples of the unit tests, less two variants (sharp erf, sin at
    frequency 2) whose kernels add nothing here but run time, and with the step at
    r = 0.4 (the Monte Carlo test's tolerance is set for its variance)."""
    skip = {repr(A.get("erf", sharpness=5.0)), repr(A.get("sin", frequency=2.0))}
    return [A.get("step", r=0.4) if a.name == "step" else a
            for a in builtin_examples() if repr(a) not in skip]


# --------------------------------------------------------------------------- references
def _panels(extra: np.ndarray, half_width: float = 11.0, width: float = 0.25, nodes: int = 16):
    """Composite Gauss–Legendre nodes/weights on [-11, 11] split at per-row points."""
    extra = np.atleast_2d(extra)
    base = np.arange(-half_width, half_width + width / 2, width)
    edges = np.sort(
        np.concatenate(
            [
                np.broadcast_to(base, (extra.shape[0], base.size)),
                np.clip(extra, -half_width, half_width),
            ],
            axis=1,
        ),
        axis=1,
    )
    t, w = np.polynomial.legendre.leggauss(nodes)
    lo, hi = edges[:, :-1, None], edges[:, 1:, None]
    x = (0.5 * (lo + hi) + 0.5 * (hi - lo) * t).reshape(extra.shape[0], -1)
    wx = (
        (0.5 * (hi - lo) * w).reshape(extra.shape[0], -1)
        * np.exp(-x * x / 2)
        / math.sqrt(2 * math.pi)
    )
    return x, wx


def pair_expectation(f, si: float, sj: float, rho: float, breaks, centre: float = 0.0) -> float:
    """E[(f(u) - c)(f(v) - c)], u = si xi, v = sj (rho xi + omega eta), by nested quadrature."""
    breaks = np.asarray(breaks, dtype=float)
    om = math.sqrt(1.0 - rho * rho)
    x, wx = _panels((breaks / si)[None, :])
    x, wx = x[0], wx[0]
    inner_breaks = (breaks[None, :] / sj - rho * x[:, None]) / om
    y, wy = _panels(inner_breaks)
    inner = np.sum(wy * (f(sj * (rho * x[:, None] + om * y)) - centre), axis=1)
    return float(np.sum(wx * (f(si * x) - centre) * inner))


def single_expectation(f, s: float, breaks, centre: float = 0.0) -> float:
    """E[(f(u) - c)^2], u = s xi, by composite quadrature split at the breakpoints."""
    x, wx = _panels((np.asarray(breaks, dtype=float) / s)[None, :])
    return float(np.sum(wx[0] * (f(s * x[0]) - centre) ** 2))


def pair_derivative(f, si: float, sj: float, rho: float, breaks, h: float = 1e-3) -> float:
    """E[f'(u) f'(v)] = d/dK_ij E[f(u) f(v)] (Price), Richardson-extrapolated differences."""
    e = lambda r: pair_expectation(f, si, sj, r, breaks)  # noqa: E731
    d = (8 * (e(rho + h) - e(rho - h)) - (e(rho + 2 * h) - e(rho - 2 * h))) / (12 * h)
    return d / (si * sj)


def gram_rows(K: np.ndarray) -> np.ndarray:
    """X with X X^T = K (samples in rows)."""
    return np.linalg.cholesky(K)


# --------------------------------------------------------------------------- layer scales
def test_layer_scales_follow_the_variance_recursion():
    layers = [A.get("relu"), A.get("tanh"), A.get("ternary", s_minus=-0.2, s_plus=0.3)]
    taus = A.layer_scales(layers, 1.3)
    assert len(taus) == 4 and taus[0] == 1.3
    for l, act in enumerate(layers):
        assert taus[l + 1] == pytest.approx(math.sqrt(act.moments(taus[l]).v), rel=1e-15)
    assert taus[1] == pytest.approx(1.3 * math.sqrt(0.5 - 1 / (2 * math.pi)), rel=1e-14)
    with pytest.raises(ValueError, match="tau0"):
        A.layer_scales(layers, -1.0)
    with pytest.raises(ValueError, match="output variance"):
        A.layer_scales([A.get("quadratic", a=0.0, b=0.0, c=1.0), A.get("relu")], 1.0)


# --------------------------------------------------------------------------- vs quadrature
S = np.array([0.7, 1.3, 1.0])
CORR = np.array([[1.0, 0.3, 0.95], [0.3, 1.0, 0.5], [0.95, 0.5, 1.0]])  # positive definite


@pytest.mark.parametrize("act", every_activation(), ids=repr)
def test_one_layer_ck_matches_nested_quadrature(act):
    """All entries (diagonal and off, |rho| up to 0.95) to 1e-9 relative."""
    K0 = CORR * np.outer(S, S)
    tau0 = 0.9
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        K1 = kernels.exact_ck(gram_rows(K0), [act], tau0=tau0)
    c = act.moments(tau0).m
    for i in range(3):
        assert K1[i, i] == pytest.approx(
            single_expectation(act, S[i], act.breakpoints, c), rel=1e-9
        )
        for j in range(i + 1, 3):
            ref = pair_expectation(act, S[i], S[j], CORR[i, j], act.breakpoints, c)
            assert K1[i, j] == pytest.approx(ref, rel=1e-9, abs=1e-13), (i, j)
    np.testing.assert_array_equal(K1, K1.T)


@pytest.mark.parametrize("act", every_activation(), ids=repr)
def test_derivative_kernel_matches_price_theorem(act):
    """Off-diagonal E[sigma'(u) sigma'(v)], jump densities included, to 1e-8 relative."""
    d = act.dual(S, centre=0.0, max_correlation=0.6)
    for i, j in ((0, 1), (1, 2)):
        got = d.derivatives(slice(i, i + 1), slice(j, j + 1), np.array([[CORR[i, j]]]))[0, 0]
        ref = pair_derivative(act, S[i], S[j], CORR[i, j], act.breakpoints)
        assert got == pytest.approx(ref, rel=1e-8, abs=1e-12), (i, j)
    diag = d.diagonal_derivatives()
    for k in range(3):
        q = act.moments(S[k]).q
        assert diag[k] == pytest.approx(q, rel=1e-9) if math.isfinite(q) else diag[k] == math.inf


def test_piecewise_linear_series_and_closed_form_agree():
    """For small correlations the ternary CK uses a Mehler series with exact coefficients."""
    rng = np.random.default_rng(3)
    s = rng.uniform(0.8, 1.2, size=40)
    rho = np.clip(rng.normal(scale=0.1, size=(40, 40)), -0.3, 0.3)
    rho = (rho + rho.T) / 2
    for act in (
        A.get("ternary", s_minus=-0.4, s_plus=0.9, scale=1.3, odd=True),
        A.PiecewiseLinear([-0.5, 1.0], [0.3, 1.0, -0.2], jumps=[0.4, 0.0], offset=0.1),
    ):
        fast = act.dual(s, centre=0.2, max_correlation=0.3)
        closed = act.dual(s, centre=0.2, max_correlation=1.0)
        assert fast.series is not None and closed.series is None
        full = slice(None)
        np.testing.assert_allclose(
            fast.values(full, full, rho), closed.values(full, full, rho), rtol=1e-11, atol=1e-14
        )


def test_generic_series_falls_back_to_quadrature_beyond_its_reach():
    """With few coefficients the certified range shrinks; pairs above it use 2-D quadrature."""
    act = A.get("tanh")
    s = np.array([2.0, 2.5])
    dual = _dual.HermiteDual(act, s, centre=0.1, max_correlation=0.995, max_order=32)
    assert dual.rho_cut < 0.995
    got = dual.values(slice(0, 1), slice(1, 2), np.array([[0.995]]))[0, 0]
    ref = pair_expectation(act, 2.0, 2.5, 0.995, (), 0.1)
    assert got == pytest.approx(ref, rel=1e-10)
    full = _dual.HermiteDual(act, s, centre=0.1, max_correlation=0.995)
    assert full.rho_cut == 0.995  # enough terms for tanh at these scales
    assert full.values(slice(0, 1), slice(1, 2), np.array([[0.995]]))[0, 0] == pytest.approx(
        ref, rel=1e-10
    )


def test_generic_series_truncation_is_stated():
    dual = A.get("sigmoid").dual(np.array([1.0, 1.2]), centre=0.5, max_correlation=0.5)
    assert 3 <= dual.order < 60 and dual.rho_cut == 0.5 and dual.rtol == 1e-12
    assert "Mehler" in dual.method


# --------------------------------------------------------------------------- Monte Carlo
def mc_check(act, K, centre, rng, draws=200_000, derivative=False):
    """|exact - MC| in units of the MC standard error, for every pair of a small Gram K."""
    n = K.shape[0]
    Z = rng.standard_normal((draws, n)) @ np.linalg.cholesky(K).T
    if derivative:  # Stein twice: E[f'(u) f'(v)] = E[f(u) f(v) ((S^-1 z)_1 (S^-1 z)_2 - (S^-1)_12)]
        F = act(Z) - centre
        out = np.zeros((n, n))
        se = np.ones((n, n))
        for i in range(n):
            for j in range(i + 1, n):
                Sinv = np.linalg.inv(K[np.ix_([i, j], [i, j])])
                w = Z[:, [i, j]] @ Sinv
                prod = F[:, i] * F[:, j] * (w[:, 0] * w[:, 1] - Sinv[0, 1])
                out[i, j] = out[j, i] = prod.mean()
                se[i, j] = se[j, i] = prod.std() / math.sqrt(draws)
        return out, se
    F = act(Z) - centre
    prods = F[:, :, None] * F[:, None, :]
    return prods.mean(axis=0), prods.std(axis=0) / math.sqrt(draws)


@pytest.mark.parametrize("act", every_activation(), ids=repr)
def test_three_layers_match_monte_carlo_layer_by_layer(act):
    """Each layer's CK (and off-diagonal K') against a Monte Carlo of the 2-D expectation."""
    rng = np.random.default_rng(11)
    X = rng.standard_normal((5, 12)) / math.sqrt(12)
    X[1] = 0.8 * X[0] + 0.6 * X[1]  # one strongly correlated pair
    layers = [act] * 3
    tau0 = math.sqrt(np.mean(np.sum(X**2, axis=1)))
    taus = A.layer_scales(layers, tau0)
    K_prev = X @ X.T
    N_prev = K_prev.copy()
    for depth in (1, 2, 3):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", A.AccuracyWarning)
            ck, ntk = kernels.exact_kernels(X, layers[:depth], diagonal="nan")
        centre = act.moments(taus[depth - 1]).m
        emp, se = mc_check(act, K_prev, centre, rng, draws=50_000)
        z = np.abs(ck - emp) / (se + 1e-15)
        assert z.max() < 6.0, f"layer {depth}: max |exact - MC| = {z.max():.1f} standard errors"
        off = ~np.eye(5, dtype=bool)
        deriv = (ntk - ck)[off] / N_prev[off]  # K' = (NTK_l - CK_l) / NTK_{l-1}
        emp_d, se_d = mc_check(act, K_prev, 0.0, rng, draws=50_000, derivative=True)
        z = np.abs(deriv - emp_d[off]) / (se_d[off] + 1e-15)
        assert (
            z.max() < 6.0
        ), f"layer {depth}: derivative kernel off by {z.max():.1f} standard errors"
        K_prev, N_prev = ck, ntk


# --------------------------------------------------------------------------- textbook formulas
def test_relu_matches_the_arc_cosine_formulas():
    """Cho & Saul: E[relu(u) relu(v)] = s_i s_j (sin t + (pi - t) cos t) / (2 pi), t = arccos rho;
    E[1[u>0] 1[v>0]] = (pi - t) / (2 pi); centred with m = tau / sqrt(2 pi)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 20)) / math.sqrt(20)
    layers = [A.get("relu")] * 2
    ck, ntk = kernels.exact_kernels(X, layers)
    taus = A.layer_scales(layers, math.sqrt(np.mean(np.sum(X**2, 1))))
    K = X @ X.T
    N = K.copy()
    for l in range(2):
        s = np.sqrt(np.diag(K))
        t = np.arccos(np.clip(K / np.outer(s, s), -1, 1))
        np.fill_diagonal(t, 0.0)  # exactly, not arccos of a rounded 1
        m = taus[l] / math.sqrt(2 * math.pi)
        mu = s / math.sqrt(2 * math.pi)
        K1 = (
            np.outer(s, s) * (np.sin(t) + (math.pi - t) * np.cos(t)) / (2 * math.pi)
            - m * np.add.outer(mu, mu)
            + m * m
        )
        N = K1 + N * (math.pi - t) / (2 * math.pi)
        K = K1
    np.testing.assert_allclose(ck, K, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ntk, N, rtol=1e-12, atol=1e-14)


def test_sign_derivative_kernel_is_a_density_never_zero():
    """E[sign'(u) sign'(v)] = 4 phi2(0, 0; rho) / (s_i s_j) = 2 / (pi s_i s_j sqrt(1 - rho^2))."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((6, 10)) / math.sqrt(10)
    with pytest.raises(ValueError, match="infinite.*diagonal='nan'.*surrogates"):
        kernels.exact_ntk(X, [A.get("sign")])
    ntk = kernels.exact_ntk(X, [A.get("sign")], diagonal="nan")
    ck = kernels.exact_ck(X, [A.get("sign")])
    K = X @ X.T
    s = np.sqrt(np.diag(K))
    rho = K / np.outer(s, s)
    off = ~np.eye(6, dtype=bool)
    with np.errstate(divide="ignore"):
        expected = ck + K * 2 / (math.pi * np.outer(s, s) * np.sqrt(np.abs(1 - rho**2)))
    np.testing.assert_allclose(ntk[off], expected[off], rtol=1e-12)
    assert np.all(np.isnan(np.diag(ntk)))
    np.testing.assert_allclose(ck[off], 2 / math.pi * np.arcsin(rho[off]), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(np.diag(ck), 1.0, rtol=1e-15)


def test_smoothed_steps_approach_the_sign_ntk_off_the_diagonal():
    """erf(b t) -> sign(t): the NTK off-diagonal converges, its diagonal blows up."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((6, 10)) / math.sqrt(10)
    sign = kernels.exact_ntk(X, [A.get("sign")] * 2, diagonal="nan")
    off = ~np.eye(6, dtype=bool)
    errors, diagonals = [], []
    for b in (10.0, 100.0, 1000.0):
        smooth = kernels.exact_ntk(X, [A.get("erf", sharpness=b)] * 2)
        errors.append(np.max(np.abs(smooth[off] - sign[off]) / np.abs(sign[off])))
        diagonals.append(np.min(np.diag(smooth)))
    assert errors[2] < errors[1] < errors[0] and errors[2] < 1e-2
    assert diagonals[0] < diagonals[1] < diagonals[2] and diagonals[2] > 100


def test_surrogates_replace_the_derivative():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((7, 9)) / 3
    ternary = A.get("ternary", s_minus=-0.3, s_plus=0.5, scale=1.0, odd=True)
    ck = kernels.exact_ck(X, [ternary])
    ones = kernels.exact_ntk(X, [ternary], surrogates=[A.get("quadratic", a=0.0, b=0.0, c=1.0)])
    np.testing.assert_allclose(ones, ck + X @ X.T, rtol=1e-13)
    affine = A.get("quadratic", a=0.0, b=0.2, c=0.7)
    by_callable = kernels.exact_ntk(X, [ternary], surrogates=[lambda t: 0.7 + 0.2 * t])
    K = X @ X.T
    np.testing.assert_allclose(by_callable, ck + K * (0.49 + 0.04 * K), rtol=1e-10)
    np.testing.assert_allclose(
        kernels.exact_ntk(X, [ternary], surrogates=[affine]), by_callable, rtol=1e-10
    )
    relu = [A.get("relu"), A.get("relu")]
    np.testing.assert_array_equal(
        kernels.exact_ntk(X, relu, surrogates=[None, None]), kernels.exact_ntk(X, relu)
    )


def test_kernels_are_symmetric_and_positive_semidefinite():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((60, 30)) / math.sqrt(30)
    for layers in (
        [A.get("relu")] * 3,
        [A.get("tanh"), A.get("ternary", s_minus=-0.5, s_plus=0.2, odd=False)],
    ):
        ck, ntk = kernels.exact_kernels(X, layers, block_size=7, diagonal="nan")
        np.testing.assert_array_equal(ntk, ntk.T)
        np.testing.assert_array_equal(ck, ck.T)
        assert np.linalg.eigvalsh(ck).min() > -1e-12 * np.abs(ck).max()
        np.testing.assert_allclose(ck, kernels.exact_ck(X, layers), rtol=1e-13, atol=1e-15)


def test_tau0_and_centring():
    """Centring uses m at tau_{l-1} of the recursion (tau0 from the data unless given)."""
    rng = np.random.default_rng(6)
    X = rng.standard_normal((8, 5))
    relu = [A.get("relu")]
    tau0 = math.sqrt(np.mean(np.sum(X**2, 1)))
    # (tau0 is summed in another order here: equal to rounding, not bitwise)
    np.testing.assert_allclose(kernels.exact_ck(X, relu), kernels.exact_ck(X, relu, tau0=tau0),
                               rtol=1e-14, atol=1e-15)
    shift = kernels.exact_ck(X, relu, tau0=2 * tau0) - kernels.exact_ck(X, relu)
    # moving the centring constant from m to m2 adds -(m2 - m)(mu_i + mu_j) + m2^2 - m^2
    s = np.sqrt(np.sum(X**2, 1))
    m, m2 = tau0 / math.sqrt(2 * math.pi), 2 * tau0 / math.sqrt(2 * math.pi)
    mu = s / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(
        shift, -(m2 - m) * np.add.outer(mu, mu) + m2**2 - m**2, rtol=1e-10, atol=1e-12
    )


# --------------------------------------------------------------------------- bad inputs
def test_bad_inputs_raise_clear_errors():
    X = np.ones((4, 3))
    relu = [A.get("relu")]
    with pytest.raises(ValueError, match=r"shape \(n, p\).*got shape \(4,\)"):
        kernels.exact_ck(np.ones(4), relu)
    with pytest.raises(ValueError, match="shape"):
        kernels.exact_ck(np.ones((2, 2, 2)), relu)
    with pytest.raises(ValueError, match="shape"):
        kernels.exact_ck(np.ones((0, 3)), relu)
    bad = X.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="finite.*1 non-finite"):
        kernels.exact_ck(bad, relu)
    with pytest.raises(TypeError, match="list"):
        kernels.exact_ck(X, A.get("relu"))
    with pytest.raises(TypeError, match=r"layers\[0\]"):
        kernels.exact_ck(X, ["relu"])
    with pytest.raises(ValueError, match="at least one"):
        kernels.exact_ck(X, [])
    with pytest.raises(ValueError, match="diagonal must be one of"):
        kernels.exact_ntk(X, relu, diagonal="zero")
    with pytest.raises(ValueError, match="one entry per layer"):
        kernels.exact_ntk(X, relu, surrogates=[None, None])
    with pytest.raises(TypeError, match=r"surrogates\[0\]"):
        kernels.exact_ntk(X, relu, surrogates=[3.0])
    with pytest.raises(ValueError, match="tau0"):
        kernels.exact_ck(X, relu, tau0=0.0)
    zero_row = np.vstack([X, np.zeros(3)])
    with pytest.raises(ValueError, match="sample 4 .* positive norm"):
        kernels.exact_ck(zero_row, relu)


# --------------------------------------------------------------------------- performance
def test_memory_stays_near_two_matrices():
    """NTK for n = 2048, three layers: peak traced memory below 2.5 n x n float64 arrays
    (the CK and the NTK being updated in place) plus 32 MiB of blocks and coefficients."""
    rng = np.random.default_rng(7)
    n = 2048
    X = rng.standard_normal((n, 64)) / 8
    tracemalloc.start()
    kernels.exact_kernels(
        X,
        [A.get("relu"), A.get("tanh"), A.get("ternary", s_minus=-0.3, s_plus=0.5)],
        diagonal="nan",
    )
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 2.5 * n * n * 8 + 32 * 2**20, f"peak {peak / 2**20:.0f} MiB"


# --------------------------------------------------------------------------- argument checks
@pytest.mark.parametrize("fn", [kernels.exact_ck, kernels.exact_ntk, kernels.exact_kernels])
def test_arguments_are_validated_and_named(fn):
    """TypeError for a wrong kind, ValueError for a wrong value; the message names it."""
    X = np.random.default_rng(0).standard_normal((5, 3))
    relu = [A.get("relu")]
    wrong_kind = [
        (dict(tau0="1"), "tau0"),
        (dict(tau0=1 + 0j), "tau0"),
        (dict(tau0=True), "tau0"),
        (dict(block_size=2.7), "block_size"),
        (dict(block_size="8"), "block_size"),
    ]
    for kwargs, name in wrong_kind:
        with pytest.raises(TypeError, match=name):
            fn(X, relu, **kwargs)
    for kwargs, name in [(dict(tau0=float("nan")), "tau0"), (dict(tau0=-1.0), "tau0"),
                         (dict(tau0=float("inf")), "tau0"), (dict(block_size=0), "block_size"),
                         (dict(backend="gpu"), "backend")]:
        with pytest.raises(ValueError, match=name):
            fn(X, relu, **kwargs)
    with pytest.raises(TypeError, match="X must be real"):
        fn(X + 1j, relu)
    with pytest.raises(TypeError, match="X"):
        fn("1 2 3", relu)
    with pytest.raises(TypeError, match="X"):
        fn(X > 0, relu)
    with pytest.raises(TypeError, match="X"):
        fn([["a", "b"]], relu)
    for bad in (np.inf, np.nan):
        Xb = X.copy()
        Xb[2, 1] = bad
        with pytest.raises(ValueError, match="X must be finite") as err:
            fn(Xb, relu)
        assert "tau0" not in str(err.value)  # the data is to blame, not tau0


def test_diagonal_must_be_one_of_two_strings():
    X = np.ones((3, 2)) + np.eye(3, 2)
    for bad in ("no", 1, None, True):
        with pytest.raises(ValueError, match="diagonal must be one of"):
            kernels.exact_ntk(X, [A.get("relu")], diagonal=bad)


def test_tensor_inputs():
    torch = pytest.importorskip("torch")
    X = np.random.default_rng(1).standard_normal((6, 4))
    relu = [A.get("relu")]
    ck = kernels.exact_ck(X, relu)
    np.testing.assert_allclose(kernels.exact_ck(torch.as_tensor(X), relu), ck, rtol=1e-14)
    np.testing.assert_allclose(kernels.exact_ck(torch.as_tensor(X, dtype=torch.float32), relu),
                               kernels.exact_ck(X.astype(np.float32), relu), rtol=1e-14)
    with pytest.raises(TypeError, match="X must not require grad"):
        kernels.exact_ck(torch.as_tensor(X).requires_grad_(), relu)
    with pytest.raises(TypeError, match="X must be real"):
        kernels.exact_ck(torch.as_tensor(X, dtype=torch.complex128), relu)


def test_custom_activation_or_surrogate_returning_nan_is_named():
    X = np.random.default_rng(2).standard_normal((5, 4))
    nan_act = A.Custom(lambda t: np.full_like(t, np.nan), name="nan_act")
    with pytest.raises(ValueError, match=r"layers\[0\] = nan_act"):
        kernels.exact_ck(X, [nan_act])
    with pytest.raises(ValueError, match=r"layers\[1\] = nan_act"):
        kernels.exact_ntk(X, [A.get("relu"), nan_act])
    # finite moments but a derivative (surrogate) returning inf: named, not a NaN kernel
    with pytest.raises(ValueError, match=r"surrogates\[0\]"):
        kernels.exact_ntk(X, [A.get("sign")], surrogates=[lambda t: np.full_like(t, np.inf)])
    # NaN only in the tails of the second layer's quadrature: named as well
    tail_nan = A.Custom(lambda t: np.where(np.abs(t) < 8.0, np.tanh(t), np.nan), name="tail_nan")
    with pytest.raises(ValueError, match=r"layers\[\d\] = tail_nan"):
        kernels.exact_ck(X, [tail_nan, tail_nan])
