"""Tests of lossless.spectra (and a smoke test of lossless.plotting)."""

import numpy as np
import pytest

from lossless import spectra


def test_eigh_desc_order_and_reconstruction():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((6, 6))
    K = A + A.T
    vals, vecs = spectra.eigh_desc(K)
    assert np.all(np.diff(vals) <= 0)
    np.testing.assert_allclose(vecs @ np.diag(vals) @ vecs.T, K, atol=1e-12)
    np.testing.assert_allclose(K @ vecs[:, 0], vals[0] * vecs[:, 0], atol=1e-12)
    with pytest.raises(ValueError, match="symmetric"):
        spectra.eigh_desc(A)
    with pytest.raises(ValueError, match="square"):
        spectra.eigh_desc(np.zeros((2, 3)))


@pytest.mark.parametrize("ratio", [0.25, 0.5, 1.0, 2.0, 4.0])
@pytest.mark.parametrize("sigma2", [1.0, 1.7])
def test_mp_density_mass(ratio, sigma2):
    a, b = spectra.marchenko_pastur_support(ratio, sigma2)
    # substitution x = a + (b - a) sin^2(theta) removes the square-root edges (and the
    # 1/sqrt(x) singularity when ratio = 1); midpoint rule on theta
    m = 20000
    theta = (np.arange(m) + 0.5) * (np.pi / 2) / m
    x = a + (b - a) * np.sin(theta) ** 2
    dx = 2 * (b - a) * np.sin(theta) * np.cos(theta)
    mass = np.sum(spectra.marchenko_pastur_density(x, ratio, sigma2) * dx) * (np.pi / 2) / m
    # the continuous part carries everything except the atom 1 - 1/ratio at 0 when n > p
    assert mass == pytest.approx(min(1.0, 1.0 / ratio), abs=1e-6)
    outside = np.array([a - 1e-3, b + 1e-3, -1.0])
    assert np.all(spectra.marchenko_pastur_density(outside, ratio, sigma2) == 0)


@pytest.mark.parametrize("n, p", [(500, 1000), (1000, 500)])
def test_mp_density_matches_simulation(n, p):
    """Kolmogorov distance between the simulated spectrum of X X^T and the MP law < 0.02."""
    sigma2 = 1.5
    rng = np.random.default_rng(12)
    X = np.sqrt(sigma2) * rng.standard_normal((n, p)) / np.sqrt(p)
    eig = np.sort(np.linalg.eigvalsh(X @ X.T))
    ratio = n / p
    a, b = spectra.marchenko_pastur_support(ratio, sigma2)
    grid = np.linspace(a, b, 40001)
    dens = spectra.marchenko_pastur_density(grid, ratio, sigma2)
    cdf = np.concatenate([[0], np.cumsum((dens[1:] + dens[:-1]) / 2 * np.diff(grid))])
    cdf += max(0.0, 1 - 1 / ratio)  # the atom at zero
    emp = np.searchsorted(eig, grid, side="right") / n
    assert np.max(np.abs(emp - cdf)) < 0.02
    # and the extreme eigenvalues sit at the edges (within 5% of the bulk width)
    assert abs(eig[-1] - b) < 0.05 * (b - a)


def test_mp_density_bad_arguments():
    with pytest.raises(ValueError, match="ratio"):
        spectra.marchenko_pastur_density(1.0, 0.0)
    with pytest.raises(ValueError, match="sigma2"):
        spectra.marchenko_pastur_density(1.0, 1.0, -1.0)


def test_relative_opnorm_error():
    n = 5
    e = np.ones(n) / np.sqrt(n)
    assert spectra.relative_opnorm_error(np.eye(n) + 0.1 * np.outer(e, e), np.eye(n)) == \
        pytest.approx(0.1, abs=1e-12)
    A = np.array([[0.0, 1.0], [0.0, 0.0]])  # non-symmetric: SVD, ||A|| = 1
    assert spectra.relative_opnorm_error(A + 2 * np.eye(2), 2 * np.eye(2)) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="one shape"):
        spectra.relative_opnorm_error(np.eye(2), np.eye(3))
    with pytest.raises(ValueError, match="zero operator norm"):
        spectra.relative_opnorm_error(np.eye(2), np.zeros((2, 2)))


def test_alignments():
    u = np.array([1.0, 1.0, -1.0, -1.0])
    assert spectra.eigenvector_alignment(u, -3 * u) == pytest.approx(1.0)
    assert spectra.eigenvector_alignment(u, [1.0, -1.0, 1.0, -1.0]) == pytest.approx(0.0)
    labels = np.array([0, 0, 1, 1])
    assert spectra.label_alignment(u, labels) == pytest.approx(1.0)
    assert spectra.label_alignment(np.ones(4), labels) == pytest.approx(0.0, abs=1e-15)
    assert spectra.label_alignment([1.0, 0.0, 0.0, 0.0], labels) == pytest.approx(0.5)
    # three classes: any combination of centred indicators is fully aligned
    lab3 = np.repeat([0, 1, 2], 3)
    v = np.repeat([2.0, -0.5, -1.5], 3)
    assert spectra.label_alignment(v, lab3) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="non-zero"):
        spectra.eigenvector_alignment(np.zeros(3), np.ones(3))


def test_loglog_slope():
    x = np.array([128, 256, 512, 1024, 2048])
    assert spectra.loglog_slope(x, 3 * x**-0.5) == pytest.approx(-0.5, abs=1e-12)
    with pytest.raises(ValueError, match="positive"):
        spectra.loglog_slope([1, 2], [1, 0])


def test_spike_predictions_threshold_and_simulation():
    r, sigma2 = 2.0, 1.0
    # at the phase transition the spike sits at the bulk edge
    s0 = 1 / np.sqrt(r) * (1 + 1e-12)
    M = np.zeros((3, 2))
    M[0] = [np.sqrt(s0), -np.sqrt(s0)]
    pred = spectra.gram_spike_predictions(M, [0.5, 0.5], r, sigma2)
    assert pred.eigenvalues[0] == pytest.approx(spectra.marchenko_pastur_support(r)[1], rel=1e-6)
    assert pred.alignments[0] == pytest.approx(0.0, abs=1e-5)
    # simulation: two classes +-mu, ||mu||^2 = 2, p = 600, n = 1200
    p, n = 600, 1200
    mu = np.zeros(p)
    mu[0] = np.sqrt(2.0)
    labels = np.repeat([0, 1], n // 2)
    sign = np.where(labels == 0, 1.0, -1.0)
    rng = np.random.default_rng(4)
    X = (np.outer(sign, mu) + rng.standard_normal((n, p))) / np.sqrt(p)
    vals, vecs = np.linalg.eigh(X.T @ X)  # same non-zero spectrum as X X^T
    u = X @ vecs[:, -1]
    pred = spectra.gram_spike_predictions(np.column_stack([mu, -mu]), [0.5, 0.5], n / p)
    assert pred.signals[0] == pytest.approx(2.0)
    assert vals[-1] == pytest.approx(pred.eigenvalues[0], rel=0.03)
    assert spectra.label_alignment(u, labels) == pytest.approx(pred.alignments[0], abs=0.04)
    weak = spectra.gram_spike_predictions(0.1 * np.column_stack([mu, -mu]), [0.5, 0.5], 2.0)
    assert np.isnan(weak.eigenvalues[0]) and np.isnan(weak.alignments[0])


def test_plotting_helpers_return_their_axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lossless import explore, plotting

    demo = explore.gram_spectrum_demo(p=32, ratio=2.0, seed=0)
    fig, axes = plt.subplots(1, 6)
    assert plotting.spectrum_histogram(axes[0], demo.eigenvalues, bins=20) is axes[0]
    assert plotting.density_curve(axes[0], demo.grid, demo.density) is axes[0]
    assert plotting.eigenvector_plot(axes[1], demo.top_vector, demo.labels,
                                     class_names=["a", "b"]) is axes[1]
    assert plotting.error_vs_size(axes[2], [1, 2, 4], [1, 0.7, 0.5]) is axes[2]
    out = plotting.gram_demo_plot(axes[3:], demo)
    assert list(out) == list(axes[3:])
    assert axes[0].get_xlabel() == "eigenvalue"
    # the histogram is normalised over all eigenvalues, also those outside the bins
    fig2, ax2 = plt.subplots()
    plotting.spectrum_histogram(ax2, [0.5, 0.5, 1.5, 10.0], bins=[0.0, 1.0, 2.0])
    np.testing.assert_allclose(ax2.patches[0].get_data().values, [0.5, 0.25])
    plt.close(fig2)
    # class boundary marked between the two classes
    assert any(abs(line.get_xdata()[0] - (demo.n / 2 - 0.5)) < 1e-12
               for line in axes[1].get_lines() if line.get_linestyle() == "--")
    plt.close(fig)


# --------------------------------------------------------------------------- bad input
def test_alignments_refuse_nan_instead_of_returning_one():
    with pytest.raises(ValueError, match="u must be finite"):
        spectra.eigenvector_alignment([np.nan, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="u must be finite"):
        spectra.label_alignment([np.nan, 1.0, 2.0, 3.0], [0, 0, 1, 1])


def test_alignments_of_huge_and_tiny_vectors_do_not_overflow():
    assert spectra.eigenvector_alignment([1e200, 1e200], [1.0, 1.0]) == pytest.approx(1.0)
    assert spectra.eigenvector_alignment([1e-200, 0.0], [3.0, 0.0]) == pytest.approx(1.0)
    assert spectra.label_alignment([1e200, 1e200, -1e200, -1e200], [0, 0, 1, 1]) == pytest.approx(1.0)


def test_relative_error_uses_the_true_norm_of_a_non_symmetric_matrix():
    A = np.triu(np.ones((3, 3)))
    # ||A|| = 2.247 (largest singular value), not max |eigenvalue| = 1
    err = spectra.relative_opnorm_error(A, np.eye(3))
    assert err == pytest.approx(np.linalg.norm(A - np.eye(3), 2), rel=1e-12)
    assert spectra.relative_opnorm_error(np.zeros((3, 3)), A) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: spectra.eigh_desc(np.triu(np.ones((3, 3)))), ValueError, "K must be symmetric"),
        (lambda: spectra.eigh_desc(np.eye(2) * 1j), TypeError, "K must be real"),
        (lambda: spectra.marchenko_pastur_support("2"), TypeError, "ratio"),
        (lambda: spectra.marchenko_pastur_density([0.5], 2.0, sigma2=0.0), ValueError, "sigma2"),
        (lambda: spectra.marchenko_pastur_density([np.nan], 2.0), ValueError, "x must not contain NaN"),
        (lambda: spectra.loglog_slope([1, 1], [1, 2]), ValueError, "distinct"),
        (lambda: spectra.loglog_slope([1, 2], [1, -2]), ValueError, "y must be positive"),
        (lambda: spectra.label_alignment([1.0, 2.0], [0.0, 1.0]), TypeError, "labels must be integers"),
        (lambda: spectra.gram_spike_predictions(np.ones((3, 2)), [0.5, np.inf], 2.0), ValueError, "proportions"),
        (lambda: spectra.relative_opnorm_error(np.ones((2, 2)), np.ones((2, 2)) * np.inf), ValueError, "K_ref"),
    ],
)
def test_bad_input_names_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


# --------------------------------------------------------------------------- bulk edges and outliers
@pytest.mark.parametrize("n, p", [(200, 400), (800, 400)])
def test_bulk_edge_of_one_white_class_is_marchenko_pastur_with_johnstone_scale(n, p):
    bulk = spectra.gram_bulk_edge([1.7], [n], p, scale=0.5, shift=0.25)
    r = n / p
    assert bulk.gram_edge == pytest.approx(1.7 * (1 + np.sqrt(r)) ** 2, rel=1e-10)
    assert bulk.edge == pytest.approx(0.5 * bulk.gram_edge + 0.25, rel=1e-12)
    # Johnstone (2001): the largest eigenvalue of the unnormalised W W^T fluctuates on
    # (sqrt n + sqrt p)(1/sqrt n + 1/sqrt p)^(1/3); here divided by p, times 1.7 and 0.5
    johnstone = (np.sqrt(n) + np.sqrt(p)) * (1 / np.sqrt(n) + 1 / np.sqrt(p)) ** (1 / 3) / p
    assert bulk.tw_scale == pytest.approx(0.5 * 1.7 * johnstone, rel=1e-3)
    assert bulk.n == n


def test_bulk_edge_representations_agree_and_two_scales_match_simulation():
    p, counts = 300, np.array([300, 300])
    scales = np.array([1.0, 1.6])
    scalar = spectra.gram_bulk_edge(scales, counts, p)
    diag = spectra.gram_bulk_edge(np.repeat(scales[:, None], p, axis=1), counts, p)
    full = spectra.gram_bulk_edge(np.stack([s * np.eye(p) for s in scales]), counts, p)
    assert diag.gram_edge == pytest.approx(scalar.gram_edge, rel=1e-10)
    assert full.gram_edge == pytest.approx(scalar.gram_edge, rel=1e-10)
    assert full.tw_scale == pytest.approx(scalar.tw_scale, rel=1e-4)
    # the edge lies strictly between the two classes' own edges (not a plain MP law)
    lo = spectra.gram_bulk_edge([1.0], [600], p).gram_edge
    hi = spectra.gram_bulk_edge([1.6], [600], p).gram_edge
    assert lo + 0.1 < scalar.gram_edge < hi - 0.1
    # simulation: the largest eigenvalue of pure noise, over 20 draws, sits within a few
    # Tracy-Widom units of the edge (TW1 mean -1.21, sd 1.27)
    rng = np.random.default_rng(3)
    sd = np.repeat(np.sqrt(scales), counts)[:, None]
    tops = []
    for _ in range(20):
        Z = sd * rng.standard_normal((counts.sum(), p))
        tops.append(np.linalg.eigvalsh(Z @ Z.T / p)[-1])
    z = (np.array(tops) - scalar.gram_edge) / scalar.tw_scale
    assert -3.0 < z.mean() < 0.5 and np.all(z < 4)
    # a diagonal covariance profile (the 'shape' preset) moves the edge
    mix = data_preset("shape", 64)
    shaped = spectra.gram_bulk_edge(mix.covs, [128, 128], 64)
    flat = spectra.gram_bulk_edge([1.0, 1.0], [128, 128], 64)
    assert shaped.gram_edge > flat.gram_edge + 0.05


def data_preset(name, p):
    from lossless import data

    return data.preset(name, p)


def test_pure_marchenko_pastur_has_no_outlier_and_a_bbp_spike_has_one():
    p, n = 500, 1000
    r = n / p
    bulk = spectra.gram_bulk_edge([1.0], [n], p)
    rng = np.random.default_rng(7)
    Z = rng.standard_normal((n, p))
    pure = spectra.count_outliers(np.linalg.eigvalsh(Z @ Z.T / p), bulk)
    assert pure.count == 0 and pure.positions.size == 0
    assert pure.threshold == pytest.approx(bulk.edge + 4 * bulk.tw_scale)
    labels = np.repeat([0, 1], n // 2)
    sign = np.where(labels == 0, 1.0, -1.0)
    for strength, expected in ((1.5, 1), (0.45, 0)):   # theta^2 vs BBP threshold 1/sqrt(2)
        mu = np.zeros(p)
        mu[0] = np.sqrt(strength)
        X = (np.outer(sign, mu) + Z) / np.sqrt(p)
        found = spectra.count_outliers(np.linalg.eigvalsh(X @ X.T), bulk)
        pred = spectra.gram_spike_predictions(np.column_stack([mu, -mu]), [0.5, 0.5], r)
        assert found.count == expected
        assert found.beyond(np.linalg.eigvalsh(X @ X.T)) == expected
        if expected:
            assert found.positions[0] == pytest.approx(pred.eigenvalues[0], rel=0.02)
        else:
            assert np.isnan(pred.eigenvalues[0])
    # a tolerance larger than the Tracy-Widom margin raises the threshold
    assert 4 * bulk.tw_scale < 0.3
    wide = spectra.count_outliers([bulk.edge + 0.25], bulk, tolerance=0.3)
    assert wide.threshold == pytest.approx(bulk.edge + 0.3) and wide.count == 0
    assert spectra.count_outliers([bulk.edge + 0.25], bulk).count == 1


def test_predict_outliers_on_the_reference_mixture():
    from lossless import activations, data, kernels, theory

    sample = data.preset("reference", 128).sample(256, np.random.default_rng(0))
    layers = [activations.get("relu")] * 2
    pred = spectra.predict_outliers(sample, layers)
    terms = theory.ck_terms(sample, layers)
    assert pred.bulk.scale == pytest.approx(terms.scale)
    assert pred.bulk.shift == pytest.approx(terms.shift)
    # one class spike (the means); the trace and norm directions stay in the bulk
    assert pred.count == 1
    K = kernels.exact_ck(sample.X, layers)
    tol = pred.bulk.scale * pred.bulk.gram_edge / np.sqrt(sample.p)
    checked = spectra.predict_outliers(sample, layers, tolerance=tol)
    assert checked.beyond(np.linalg.eigvalsh(K)) == checked.count == 1
    relative = spectra.predict_outliers(sample, layers, relative_tolerance=1 / np.sqrt(sample.p))
    assert relative.threshold == pytest.approx(checked.threshold, rel=1e-12)
    assert relative.tolerance == pytest.approx(tol, rel=1e-12)
    # the first layer's fourth moment changes a rank-K block of K~, not its bulk
    m4 = spectra.predict_outliers(sample, layers, first_layer_m4=10.0)
    assert m4.bulk == pred.bulk
    assert spectra.predict_outliers(sample, layers, first_layer_m4=3.0).count == pred.count
    # precomputed eigenvalues of K~ give the same answer
    again = spectra.predict_outliers(sample, layers,
                                     equivalent_eigvals=np.linalg.eigvalsh(
                                         theory.equivalent_ck(sample, layers)))
    assert again.count == pred.count and np.allclose(again.positions, pred.positions)
    ntk = spectra.predict_outliers(sample, layers, kernel="ntk")
    assert ntk.count == 1 and ntk.bulk.scale == pytest.approx(theory.ntk_terms(sample, layers).scale)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: spectra.gram_bulk_edge([1.0], [10.0], 5), TypeError, "counts must be integers"),
        (lambda: spectra.gram_bulk_edge([1.0], [0], 5), ValueError, "counts must be positive"),
        (lambda: spectra.gram_bulk_edge([1.0, 2.0], [4], 5), ValueError, "covs must have shape"),
        (lambda: spectra.gram_bulk_edge([-1.0], [4], 5), ValueError, "covs must be non-negative"),
        (lambda: spectra.gram_bulk_edge([0.0], [4], 5), ValueError, "covs must not all be zero"),
        (lambda: spectra.gram_bulk_edge([[[1.0, 2.0], [0.0, 1.0]]], [4], 2), ValueError,
         "covs must be symmetric"),
        (lambda: spectra.gram_bulk_edge([np.nan], [4], 5), ValueError, "covs must be finite"),
        (lambda: spectra.gram_bulk_edge([1.0], [4], 5, scale=0.0), ValueError, "scale"),
        (lambda: spectra.gram_bulk_edge([1.0], [4], 5, shift=np.inf), ValueError, "shift"),
        (lambda: spectra.gram_bulk_edge([1.0], [4], 2.5), TypeError, "p must be an integer"),
        (lambda: spectra.count_outliers([1.0], (1.0, 1.0)), TypeError, "bulk must be a BulkEdge"),
        (lambda: spectra.count_outliers([1.0], spectra.gram_bulk_edge([1.0], [4], 5), margin=-1),
         ValueError, "margin"),
        (lambda: spectra.count_outliers([1.0], spectra.gram_bulk_edge([1.0], [4], 5),
                                        relative_tolerance=np.nan), ValueError, "relative_tolerance"),
        (lambda: spectra.predict_outliers(_small_sample(), [_relu()], first_layer_m4=0.5),
         ValueError, "first_layer_m4"),
        (lambda: spectra.count_outliers([np.nan], spectra.gram_bulk_edge([1.0], [4], 5)),
         ValueError, "eigvals must be finite"),
        (lambda: spectra.predict_outliers(_sample_without_mixture(), [_relu()]), ValueError,
         "sample must have a mixture"),
        (lambda: spectra.predict_outliers(_small_sample(), [_relu()], kernel="cnn"), ValueError,
         "kernel"),
        (lambda: spectra.predict_outliers(_small_sample(), [_relu()], surrogates=[None]),
         ValueError, "surrogates apply to kernel='ntk' only"),
        (lambda: spectra.predict_outliers(_small_sample(), [_sign()], kernel="ntk"), ValueError,
         "infinite diagonal"),
        (lambda: spectra.predict_outliers(_small_sample(), [_abs()]), ValueError,
         "Gram coefficient must be positive"),
        (lambda: spectra.predict_outliers(_small_sample(), [_relu()], equivalent_eigvals=[1.0]),
         ValueError, "equivalent_eigvals must have shape"),
    ],
)
def test_outlier_bad_input_names_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def _relu():
    from lossless import activations

    return activations.get("relu")


def _sign():
    from lossless import activations

    return activations.get("sign")


def _abs():
    from lossless import activations

    return activations.get("abs")


def _small_sample():
    from lossless import data

    return data.preset("reference", 16).sample(32, np.random.default_rng(0))


def _sample_without_mixture():
    from lossless import data

    s = _small_sample()
    return data.Sample(s.X, s.labels)


# ---------------------------------------------------------------------------------
# the operator norm (one for the package)


def test_opnorm_is_right_for_any_matrix():
    """The issue's case: opnorm(np.triu(np.ones((3, 3)))) gave 1.0; the norm is 2.247."""
    U = np.triu(np.ones((3, 3)))
    assert spectra.opnorm(U) == pytest.approx(np.linalg.norm(U, 2), rel=1e-12)
    assert spectra.opnorm(U) == pytest.approx(2.2469796, rel=1e-6)
    R = np.random.default_rng(0).standard_normal((5, 3))
    assert spectra.opnorm(R) == pytest.approx(np.linalg.svd(R, compute_uv=False)[0], rel=1e-12)
    # large non-symmetric: Lanczos on the singular values
    B = np.random.default_rng(1).standard_normal((450, 450))
    assert spectra.opnorm(B) == pytest.approx(np.linalg.norm(B, 2), rel=1e-8)
    # symmetric matrices keep the eigenvalue path (a negative eigenvalue can dominate)
    S = np.diag([1.0, -3.0, 2.0])
    assert spectra.opnorm(S) == 3.0


def test_opnorm_of_a_centred_kernel_and_of_zero():
    """Lanczos used to start from the all-ones vector and failed (ARPACK error -9) on a
    matrix that annihilates it, such as P K P with P = I - 11^T/n."""
    n = 450
    G = np.random.default_rng(2).standard_normal((n, 40))
    P = np.eye(n) - np.ones((n, n)) / n
    K = P @ (G @ G.T) @ P
    K = (K + K.T) / 2
    assert spectra.opnorm(K) == pytest.approx(np.linalg.eigvalsh(K)[-1], rel=1e-8)
    assert spectra.opnorm(np.zeros((n, n))) == 0.0
    assert spectra.opnorm(np.zeros((3, 5))) == 0.0


@pytest.mark.parametrize("bad, error, match", [
    ([[1.0, np.nan], [np.nan, 1.0]], ValueError, "A must be finite"),
    (np.ones(3), ValueError, "A must have 2"),
    ("1", TypeError, "A must be"),
    (np.ones((2, 2), dtype=complex), TypeError, "A must be real"),
    (np.zeros((0, 0)), ValueError, "A must not be empty"),
])
def test_opnorm_refuses_bad_matrices(bad, error, match):
    with pytest.raises(error, match=match):
        spectra.opnorm(bad)


# ---------------------------------------------------------------------------------
# SpectralComparison: one kernel against a reference


def test_compare_kernels_fields_shift_and_correction():
    rng = np.random.default_rng(4)
    G = rng.standard_normal((30, 6))
    K = G @ G.T / 6 + 0.1 * np.eye(30)
    Kb = K + 0.3 * np.eye(30) + 1e-3 * np.outer(G[:, 0], G[:, 0])
    labels = np.arange(30) % 2
    raw = spectra.compare_kernels(K, Kb, names=("original", "compressed"), labels=labels,
                                  shift=0.3, n_vectors=3)
    norm = np.abs(np.linalg.eigvalsh(K)).max()
    assert raw.error == raw.error_raw == pytest.approx(spectra.opnorm(Kb - K) / norm, rel=1e-12)
    assert raw.error_corrected == pytest.approx(spectra.opnorm(Kb - 0.3 * np.eye(30) - K) / norm,
                                                rel=1e-12)
    assert raw.error_corrected < raw.error_raw
    assert raw.vectors_a.shape == raw.vectors_b.shape == (30, 3) and raw.alignment.shape == (3,)
    assert np.all(np.sum(raw.vectors_a * raw.vectors_b, axis=0) >= 0)   # signs matched
    assert np.all(np.diff(raw.eigenvalues_a) <= 0) and raw.n == 30 and raw.spikes(2).shape == (2, 2)
    corr = raw.corrected()
    np.testing.assert_allclose(corr.eigenvalues_b, raw.eigenvalues_b - 0.3)
    assert corr.error == raw.error_corrected and corr.corrected() is corr
    again = spectra.compare_kernels(K, Kb, shift=0.3, shift_corrected=True, n_vectors=3)
    np.testing.assert_allclose(again.eigenvalues_b, corr.eigenvalues_b)
    assert "identity shift" in again.report() and "SpectralComparison(" in repr(again)
    plain = spectra.compare_kernels(K, K)
    assert plain.error == plain.error_raw == plain.error_corrected == 0.0
    assert np.all(plain.labels == 0) and plain.shift == 0.0 and not plain.mismatch
