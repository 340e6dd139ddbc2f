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

    from lossless import data, plotting

    demo = data.gram_spectrum_demo(p=32, ratio=2.0, seed=0)
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
