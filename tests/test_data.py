"""Tests of lossless.data: the mixture, its statistics, presets, IDX and Fashion-MNIST."""

import gzip
import struct

import numpy as np
import pytest

from lossless import data
from lossless.data import GaussianMixture, Sample


# ----------------------------------------------------------------------------- exact cases
@pytest.fixture
def tiny():
    """K=2, p=2, n=3, everything computable by hand (see the comments)."""
    means = np.array([[1.0, 0.0], [0.0, 2.0]])
    covs = np.array([[[2.0, 0.0], [0.0, 1.0]], [[1.0, 0.5], [0.5, 1.0]]])
    mixture = GaussianMixture(means, covs)
    Z = np.array([[1.0, 1.0], [0.0, 2.0], [1.0, -1.0]])  # ||z||^2 = 2, 4, 2
    labels = np.array([0, 0, 1])
    X = (means[labels] + Z) / np.sqrt(2)
    return Sample(X, labels, mixture)


def test_t_exact(tiny):
    # tr C_1 = 3, tr C_2 = 2, proportions (2/3, 1/3): tr C° = 8/3
    np.testing.assert_allclose(tiny.t, np.array([1 / 3, -2 / 3]) / np.sqrt(2), atol=1e-14)


def test_T_exact(tiny):
    # tr C_1^2 = 5, tr C_1 C_2 = 3, tr C_2^2 = 2.5, divided by p = 2
    np.testing.assert_allclose(tiny.T, [[2.5, 1.5], [1.5, 1.25]], atol=1e-14)


def test_psi_exact(tiny):
    # ||z||^2/p - tr C_a/p = 1 - 1.5, 2 - 1.5, 1 - 1
    np.testing.assert_allclose(tiny.psi, [-0.5, 0.5, 0.0], atol=1e-14)


def test_tau0_exact(tiny):
    # ||x_i||^2 = ||(2,1)||^2/2, ||(1,2)||^2/2, ||(1,1)||^2/2 = 2.5, 2.5, 1: mean 2
    assert tiny.tau0 == pytest.approx(np.sqrt(2.0), abs=1e-14)
    assert isinstance(tiny.tau0, float)


def test_J_M_V_counts(tiny):
    np.testing.assert_array_equal(tiny.J, [[1, 0], [1, 0], [0, 1]])
    np.testing.assert_array_equal(tiny.M, [[1.0, 0.0], [0.0, 2.0]])
    np.testing.assert_allclose(tiny.V, [[1 / np.sqrt(2), 0, -0.5], [1 / np.sqrt(2), 0, 0.5],
                                        [0, 1 / np.sqrt(2), 0.0]], atol=1e-14)
    np.testing.assert_array_equal(tiny.counts, [2, 1])
    # Z is recovered from X and the means when it is not given
    np.testing.assert_allclose(tiny.Z, [[1, 1], [0, 2], [1, -1]], atol=1e-14)
    assert (tiny.n, tiny.p, tiny.n_classes) == (3, 2, 2)


@pytest.mark.parametrize("kind", ["scalar", "diagonal", "full"])
def test_traces_and_products_agree_with_dense(kind):
    rng = np.random.default_rng(1)
    K, p = 3, 5
    if kind == "scalar":
        covs = np.array([1.0, 2.0, 0.5])
    elif kind == "diagonal":
        covs = rng.uniform(0.5, 2.0, (K, p))
    else:
        A = rng.standard_normal((K, p, p))
        covs = A @ A.transpose(0, 2, 1) / p
    m = GaussianMixture(np.zeros((K, p)), covs)
    dense = [m.cov(a) for a in range(K)]
    np.testing.assert_allclose(m.traces(), [np.trace(C) for C in dense], rtol=1e-13)
    np.testing.assert_allclose(
        m.trace_products(), [[np.trace(A @ B) for B in dense] for A in dense], rtol=1e-12
    )
    np.testing.assert_allclose(m.cov_opnorms(), [np.linalg.eigvalsh(C)[-1] for C in dense],
                               rtol=1e-12)


def test_growth_statistics_definitions():
    m = GaussianMixture(np.array([[3.0, 0, 0, 0], [0, 4.0, 0, 0]]), np.array([1.0, 2.0]),
                        [0.25, 0.75])
    g = m.growth_statistics()
    # tr C° / p = 0.25 + 1.5; C_1° = -0.75 I, C_2° = 0.25 I
    assert g.mean_norm == 4.0
    assert g.cov_opnorm == 2.0
    assert g.tau0_squared == pytest.approx(1.75)
    assert g.trace_deviation == pytest.approx(0.75 * 4 / 2)
    assert g.cov_deviation == pytest.approx(0.75**2)


# ----------------------------------------------------------------------------- sampling
def test_sample_shapes_order_and_model():
    m = data.preset("mixed", 16, n_classes=3)
    s = m.sample(30, np.random.default_rng(0))
    assert s.X.shape == (30, 16) and s.Z.shape == (30, 16) and s.labels.shape == (30,)
    assert np.all(np.diff(s.labels) >= 0)
    np.testing.assert_array_equal(s.counts, [10, 10, 10])
    np.testing.assert_allclose(s.X, (m.means[s.labels] + s.Z) / 4.0, atol=1e-14)
    assert s.J.shape == (30, 3) and s.M.shape == (16, 3) and s.t.shape == (3,)
    assert s.T.shape == (3, 3) and s.psi.shape == (30,) and s.V.shape == (30, 4)


def test_inputs_are_copied_not_frozen():
    means, covs = np.zeros((2, 3)), np.ones((2, 3))
    m = GaussianMixture(means, covs)
    X = np.ones((4, 3))
    s = Sample(X, [0, 0, 1, 1], m)
    assert means.flags.writeable and covs.flags.writeable and X.flags.writeable
    X[0, 0] = 5.0
    assert s.X[0, 0] == 1.0 and not s.X.flags.writeable


def test_sample_deterministic_given_seed():
    m = data.preset("shape", 8)
    a = m.sample(10, np.random.default_rng(42))
    b = m.sample(10, np.random.default_rng(42))
    c = m.sample(10, np.random.default_rng(43))
    np.testing.assert_array_equal(a.X, b.X)
    assert not np.array_equal(a.X, c.X)


def test_class_sizes_largest_remainder():
    m = GaussianMixture(np.zeros((3, 2)), np.ones(3), [0.5, 0.3, 0.2])
    # 5.5, 3.3, 2.2 -> floors 5, 3, 2; the missing one goes to the largest remainder
    np.testing.assert_array_equal(m.class_sizes(11), [6, 3, 2])
    np.testing.assert_array_equal(m.class_sizes(10), [5, 3, 2])


def test_full_covariance_sampling_moments():
    C = np.array([[2.0, 0.8, 0.0], [0.8, 1.0, -0.3], [0.0, -0.3, 0.5]])
    m = GaussianMixture(np.array([[1.0, -1.0, 0.5]]), C[None])
    s = m.sample(20000, np.random.default_rng(3))
    emp = np.cov(s.Z, rowvar=False)
    # standard error of a covariance entry is below sqrt(2 * 2 * 2 / 20000) = 0.02
    np.testing.assert_allclose(emp, C, atol=0.06)
    np.testing.assert_allclose(s.Z.mean(axis=0), 0, atol=0.05)


def test_psi_and_t_concentrate_for_population():
    m = data.preset("trace", 400)
    s = m.sample(400, np.random.default_rng(5))
    # psi_i has mean 0 and standard deviation sqrt(2 tr C_a^2)/p ~ sqrt(2/p) = 0.07
    for a in range(2):
        assert abs(s.psi[s.labels == a].mean()) < 4 * 0.08 / np.sqrt(200)
    # tr C_a = p (1 + 4 a / sqrt(p)), C° from proportions (1/2, 1/2): t = (-2, 2)
    np.testing.assert_allclose(s.t, [-2.0, 2.0], atol=1e-12)
    assert s.tau0 == pytest.approx(s.tau0_population, abs=0.02)


# ----------------------------------------------------------------------------- from_data
def test_from_data_estimates():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((12, 4))
    labels = np.array([0] * 5 + [1] * 7)
    s = Sample.from_data(X, labels, debias=False)
    Y = 2.0 * X  # sqrt(p) x
    for a in range(2):
        np.testing.assert_allclose(s.mixture.means[a], Y[labels == a].mean(axis=0), atol=1e-14)
        np.testing.assert_allclose(s.mixture.cov(a), np.cov(Y[labels == a], rowvar=False),
                                   atol=1e-13)
    np.testing.assert_allclose(s.mixture.weights, [5 / 12, 7 / 12])
    S0, S1 = s.mixture.cov(0), s.mixture.cov(1)
    np.testing.assert_allclose(s.T, [[np.trace(S0 @ S0), np.trace(S0 @ S1)],
                                     [np.trace(S1 @ S0), np.trace(S1 @ S1)]] / np.float64(4),
                               rtol=1e-12)
    assert s.V.shape == (12, 3) and s.M.shape == (4, 2)


def test_from_data_debiased_T_is_close_to_truth():
    # C_a = I: T_aa = 1; plug-in tr(S^2)/p is about 1 + p/n_a = 1.83
    rng = np.random.default_rng(11)
    p, m = 50, 60
    X = rng.standard_normal((2 * m, p)) / np.sqrt(p)
    labels = np.repeat([0, 1], m)
    plug = Sample.from_data(X, labels, debias=False).T
    fixed = Sample.from_data(X, labels).T
    assert np.all(np.diag(plug) > 1.6)
    np.testing.assert_allclose(np.diag(fixed), 1.0, atol=0.1)
    np.testing.assert_allclose(fixed[0, 1], plug[0, 1])
    np.testing.assert_allclose(fixed[0, 1], 1.0, atol=0.1)


# ----------------------------------------------------------------------------- presets
@pytest.mark.parametrize("name", sorted(data.PRESETS))
def test_presets_satisfy_growth_rates(name):
    stats = [data.preset(name, p).growth_statistics() for p in (256, 1024, 4096)]
    arr = np.array(stats)
    # every quantity of Assumption 1 stays of order one and does not grow with p
    assert np.all(arr < 10)
    assert np.all(arr[-1] <= arr[0] * 1.01 + 1e-12)
    assert np.all(arr[:, 4] > 0.5)  # tau0^2 converges to a positive limit


def test_reference_preset_means_and_covariances():
    p = 64
    m = data.preset("reference", p)
    expected = np.zeros((2, p))
    expected[0, 0], expected[1, 0] = 3.0, -3.0
    np.testing.assert_array_equal(m.means, expected)
    np.testing.assert_allclose(m.cov(0), np.eye(p))
    np.testing.assert_allclose(m.cov(1), (1 + 3 / np.sqrt(p)) * np.eye(p))
    np.testing.assert_array_equal(m.weights, [0.5, 0.5])
    with pytest.raises(TypeError, match="reference"):
        data.preset("reference", p, separation=2.0)


def test_preset_ingredients():
    p = 100
    mean = data.preset("mean", p, n_classes=3, separation=2.0)
    dist = np.linalg.norm(mean.means[:, None] - mean.means[None], axis=-1)
    np.testing.assert_allclose(dist[~np.eye(3, dtype=bool)], 2.0)
    np.testing.assert_allclose(mean.weights @ mean.means, 0, atol=1e-14)
    trace = data.preset("trace", p, trace_gap=5.0)
    np.testing.assert_allclose(trace.traces(), [p, p * (1 + 5 / 10)])
    shape = data.preset("shape", p, n_classes=3)
    np.testing.assert_allclose(shape.traces(), p, rtol=1e-12)
    assert shape.covs.shape == (3, p)


# ----------------------------------------------------------------------------- bad input
BAD_MIXTURES = [
    ({"means": np.zeros(3), "covs": np.ones(1)}, "means"),
    ({"means": np.zeros((2, 3)), "covs": np.ones(3)}, "covs must have shape"),
    ({"means": np.zeros((2, 3)), "covs": np.ones((2, 4))}, "covs must have shape"),
    ({"means": np.zeros((2, 3)), "covs": np.ones((2, 3, 4))}, "covs must have shape"),
    ({"means": np.zeros((2, 2)), "covs": np.array([[[1, 2], [2, 1]], [[1, 0], [0, 1]]])},
     "positive semi-definite"),
    ({"means": np.zeros((1, 2)), "covs": np.array([[[1.0, 0.5], [0.0, 1.0]]])}, "symmetric"),
    ({"means": np.zeros((2, 3)), "covs": np.array([1.0, -1.0])}, "positive semi-definite"),
    ({"means": np.zeros((2, 3)), "covs": np.array([[1.0, 1, 1], [1, -0.1, 1]])},
     "positive semi-definite"),
    ({"means": np.zeros((2, 3)), "covs": np.ones(2), "weights": [0.5, 0.6]}, "sum to one"),
    ({"means": np.zeros((2, 3)), "covs": np.ones(2), "weights": [1.5, -0.5]}, "positive"),
    ({"means": np.zeros((2, 3)), "covs": np.ones(2), "weights": [1.0]}, "weights must have"),
    ({"means": np.full((2, 3), np.nan), "covs": np.ones(2)}, "finite"),
    ({"means": np.zeros((2, 3)), "covs": np.array([1.0, np.inf])}, "finite"),
    ({"means": np.zeros((2, 3)), "covs": np.ones(2), "weights": [np.nan, 0.5]}, "finite"),
]


@pytest.mark.parametrize("kwargs, match", BAD_MIXTURES)
def test_bad_mixture_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture(**kwargs)


def test_bad_sampling_arguments():
    m = data.preset("mean", 8, n_classes=3)
    with pytest.raises(ValueError, match="at least the number of classes"):
        m.sample(2, np.random.default_rng(0))
    with pytest.raises(TypeError, match="n must be an integer"):
        m.sample(10.5, np.random.default_rng(0))
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        m.sample(10, 0)
    skew = GaussianMixture(np.zeros((3, 2)), np.ones(3), [0.98, 0.01, 0.01])
    with pytest.raises(ValueError, match="no sample"):
        skew.sample(3, np.random.default_rng(0))
    with pytest.raises(ValueError, match="class index"):
        m.cov(3)


def test_bad_sample_arguments():
    m = data.preset("mean", 4)
    X = np.zeros((3, 4))
    with pytest.raises(ValueError, match="labels must be in"):
        Sample(X, [0, 1, 2], m)
    with pytest.raises(ValueError, match="labels must have shape"):
        Sample(X, [0, 1], m)
    with pytest.raises(ValueError, match="mixture.p"):
        Sample(np.zeros((3, 5)), [0, 1, 1], m)
    with pytest.raises(ValueError, match="finite"):
        Sample(np.full((3, 4), np.inf), [0, 1, 1], m)
    with pytest.raises(ValueError, match="Z must have"):
        Sample(X, [0, 1, 1], m, Z=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="integers"):
        Sample(X, [0.5, 1, 1], m)
    bare = Sample(X, [0, 1, 1])
    assert bare.Z is None and bare.n_classes == 2
    with pytest.raises(ValueError, match="from_data"):
        bare.t
    with pytest.raises(ValueError, match="at least 3 samples"):
        Sample.from_data(np.ones((5, 2)), [0, 0, 0, 1, 1])


def test_bad_presets():
    with pytest.raises(ValueError, match="unknown preset"):
        data.preset("banana", 10)
    with pytest.raises(ValueError, match="shape must be a finite real number in"):
        data.preset("shape", 10, shape=1.5)
    with pytest.raises(ValueError, match="trace_gap"):
        data.preset("trace", 4, trace_gap=-5.0)
    with pytest.raises(ValueError, match="separation"):
        data.preset("mean", 10, separation=-1.0)


# ----------------------------------------------------------------------------- IDX files
def _idx_bytes_by_hand(arr: np.ndarray, code: int, fmt: str) -> bytes:
    header = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return header + b"".join(struct.pack(">" + fmt, v) for v in arr.ravel().tolist())


@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_hand_written(tmp_path, gz):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    raw = _idx_bytes_by_hand(arr, 0x08, "B")
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    out = data.load_idx(path)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, arr)
    ints = np.array([-3, 70000, 5], dtype=np.int32)
    (tmp_path / "b").write_bytes(_idx_bytes_by_hand(ints, 0x0C, "i"))
    np.testing.assert_array_equal(data.load_idx(tmp_path / "b"), ints)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("name", ["x.idx", "x.idx.gz"])
def test_idx_round_trip(tmp_path, dtype, name):
    arr = (np.arange(30).reshape(5, 6) - 7).astype(dtype) if dtype != np.uint8 else \
        np.arange(30, dtype=np.uint8).reshape(5, 6)
    path = data.save_idx(tmp_path / name, arr)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    out = data.load_idx(path)
    assert out.dtype == np.dtype(dtype) and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)


def test_idx_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        data.load_idx(tmp_path / "missing")
    bad_magic = tmp_path / "magic"
    bad_magic.write_bytes(bytes([1, 0, 8, 1, 0, 0, 0, 1, 7]))
    with pytest.raises(ValueError, match="magic"):
        data.load_idx(bad_magic)
    bad_code = tmp_path / "code"
    bad_code.write_bytes(bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 7]))
    with pytest.raises(ValueError, match="type code"):
        data.load_idx(bad_code)
    short = tmp_path / "short"
    short.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 7]))
    with pytest.raises(ValueError, match="does not match"):
        data.load_idx(short)
    with pytest.raises(ValueError, match="cannot be stored"):
        data.save_idx(tmp_path / "c", np.zeros(3, dtype=np.complex128))


# ----------------------------------------------------------------------------- Fashion-MNIST
def _fake_fashion(directory, n_per_class=6, side=4, gz_images=True):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10, dtype=np.uint8), n_per_class)
    images = rng.integers(0, 256, (labels.size, side, side), dtype=np.uint8)
    for prefix in ("train", "t10k"):
        data.save_idx(directory / f"{prefix}-images-idx3-ubyte{'.gz' if gz_images else ''}",
                      images)
        data.save_idx(directory / f"{prefix}-labels-idx1-ubyte", labels)
    return images, labels


def test_load_fashion_mnist_from_directory_and_env(tmp_path, monkeypatch):
    images, labels = _fake_fashion(tmp_path)
    X, y = data.load_fashion_mnist("train", tmp_path)
    assert X.shape == (60, 16) and X.dtype == np.uint8 and y.dtype == np.int64
    np.testing.assert_array_equal(X, images.reshape(60, 16))
    np.testing.assert_array_equal(y, labels)
    monkeypatch.setenv("LOSSLESS_FASHION_MNIST", str(tmp_path))
    X2, _ = data.load_fashion_mnist("test")
    np.testing.assert_array_equal(X2, X)
    with pytest.raises(ValueError, match="split"):
        data.load_fashion_mnist("validation", tmp_path)


def test_load_fashion_mnist_missing(tmp_path, monkeypatch):
    monkeypatch.delenv("LOSSLESS_FASHION_MNIST", raising=False)
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        data.load_fashion_mnist("train", tmp_path / "nowhere")
    monkeypatch.setenv("LOSSLESS_FASHION_MNIST", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="LOSSLESS_FASHION_MNIST"):
        data.load_fashion_mnist("train")


def test_normalize_property():
    rng = np.random.default_rng(2)
    Y = rng.integers(0, 256, (50, 30)).astype(float) + 5.0
    X = data.normalize(Y)
    np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-13)
    assert np.mean(np.sum(X**2, axis=1)) == pytest.approx(1.0, abs=1e-13)
    # with given statistics: an affine map, nothing recomputed
    X2 = data.normalize(Y[:5], mean=np.full(30, 5.0), scale=2.0)
    np.testing.assert_allclose(X2, (Y[:5] - 5.0) / 2.0)
    with pytest.raises(ValueError, match="scale"):
        data.normalize(Y, scale=0.0)
    with pytest.raises(ValueError, match="scale"):
        data.normalize(np.ones((4, 3)))  # constant data cannot be scaled
    big = data.normalize(np.array([[1e200, 0.0], [-1e200, 0.0]]))
    assert np.all(np.isfinite(big)) and np.mean(np.sum(big**2, axis=1)) == pytest.approx(1.0)
    with pytest.raises(TypeError, match="X must be real"):
        data.normalize(np.ones((4, 3)) * 1j)
    with pytest.raises(TypeError, match="X must be a real numeric array"):
        data.normalize([["1", "2"]])


def test_bad_kinds_name_the_argument():
    mix = data.preset("mean", 8)
    with pytest.raises(TypeError, match="n must be an integer"):
        mix.sample(10.0, np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng"):
        mix.sample(10, 0)
    with pytest.raises(TypeError, match="separation"):
        data.preset("mean", 8, separation="3")
    with pytest.raises(TypeError, match="p must be an integer"):
        data.preset("mean", 8.5)
    with pytest.raises(TypeError, match="debias"):
        data.Sample.from_data(np.ones((6, 2)), [0, 0, 0, 1, 1, 1], debias="no")
    with pytest.raises(ValueError, match="labels must be integers"):
        data.Sample(np.ones((2, 2)), [0.5, 1.0])
    with pytest.raises(TypeError, match="classes\\[0\\]"):
        data.fashion_mnist_sample([1.5], 3, "train", np.random.default_rng(0))
    with pytest.raises(ValueError, match="classes\\[1\\]"):
        data.fashion_mnist_sample([1, 12], 3, "train", np.random.default_rng(0))


def test_idx_header_announcing_a_huge_size_is_refused(tmp_path):
    path = tmp_path / "huge.idx"
    path.write_bytes(bytes([0, 0, 0x08, 4]) + np.full(4, 65536, dtype=">u4").tobytes() + b"x")
    with pytest.raises(ValueError, match="does not match the header"):
        data.load_idx(path)


def test_fashion_mnist_sample_on_fake_data(tmp_path):
    _fake_fashion(tmp_path)
    s = data.fashion_mnist_sample([7, 2], 4, "train", np.random.default_rng(0), tmp_path)
    assert s.X.shape == (8, 16)
    np.testing.assert_array_equal(s.labels, [0] * 4 + [1] * 4)
    assert s.tau0 == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(s.X.mean(axis=0), 0, atol=1e-13)
    assert s.mixture is not None and s.T.shape == (2, 2) and s.V.shape == (8, 3)
    again = data.fashion_mnist_sample([7, 2], 4, "train", np.random.default_rng(0), tmp_path)
    np.testing.assert_array_equal(s.X, again.X)
    with pytest.raises(ValueError, match="exceeds"):
        data.fashion_mnist_sample([7, 2], 7, "train", np.random.default_rng(0), tmp_path)
    with pytest.raises(ValueError, match="distinct"):
        data.fashion_mnist_sample([1, 1], 4, "train", np.random.default_rng(0), tmp_path)


def test_fashion_mnist_installed_copy():
    try:
        X, y = data.load_fashion_mnist("test")
    except FileNotFoundError:
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    assert X.shape == (10000, 784) and np.array_equal(np.bincount(y), np.full(10, 1000))
