"""The ternary engine (lossless.compress.ternary_engine, backend="ternary") gives the float
reference's codes and outputs."""

import numpy as np
import pytest
import torch

from lossless import activations, compress
from conftest import on_thresholds


# =====================================================================================
# the ternary engine (lossless.compress.ternary_engine, backend="ternary")
# =====================================================================================

ti = pytest.importorskip("lossless.compress.ternary_engine")

ACTS = {"relu": ["relu"] * 3, "tanh": ["tanh"] * 3, "abs": ["abs"] * 3,
        "mixed": ["relu", "abs", "tanh"]}  # odd, odd, even, and an odd/even mix


def _net(acts, eps, seed=5, p=40, widths=(48, 72, 24)):
    plan = compress.compress([activations.get(a) for a in ACTS[acts]], 4.0)
    return compress.CompressedMLP.from_plan(plan, p, list(widths), sparsity=eps,
                                            generator=torch.Generator().manual_seed(seed))


def _same_codes(net, X):
    fast = net.activation_codes(X, backend="ternary")
    ref = net.activation_codes(X, backend="float")
    assert [tuple(t.shape) for t in fast] == [tuple(t.shape) for t in ref]
    assert all(t.dtype == torch.int8 for t in fast)
    return all(torch.equal(a, b) for a, b in zip(fast, ref))


@pytest.mark.parametrize("acts", sorted(ACTS))
@pytest.mark.parametrize("eps", [0.0, 0.5, 0.9, 0.99])
@pytest.mark.parametrize("n", [0, 1, 7, 64, 256])
def test_ternary_engine_gives_the_references_codes_and_outputs(acts, eps, n):
    net = _net(acts, eps)
    X = np.random.default_rng(n).standard_normal((n, 40)) * 4.0 / np.sqrt(40)
    assert _same_codes(net, X)
    out = net(X, backend="ternary")
    assert out.shape == (n,) and out.dtype == torch.float64
    ref = net.to_reference()(X).detach() if n else net(X, backend="float")
    assert torch.allclose(out, ref, rtol=0, atol=1e-12)
    assert torch.allclose(net.features(X, backend="ternary"), net.features(X, backend="float"),
                          rtol=0, atol=0)
    if n:  # the codes are not all of one value (the comparison could not fail otherwise)
        codes = net.activation_codes(X, backend="ternary")
        assert any(len(torch.unique(T)) > 1 for T in codes)


@pytest.mark.parametrize("eps", [0.0, 0.9, 0.999])
def test_both_layouts_and_both_small_batch_kernels_agree(eps):
    # the same samples through the samples-in-rows kernels (gather, bit planes) and the
    # samples-in-columns kernels (zero-skipping), at every lane count
    net = _net("mixed", eps, widths=(130, 70, 65))
    engine = net.ternary_engine()
    rng = np.random.default_rng(2)
    for n in (1, 2, 5, 16, 17, 33, 100, 129, 256, 257, 600):
        X = rng.standard_normal((n, 40)) * 4.0 / np.sqrt(40)
        ref = [T.numpy() for T in net.activation_codes(X, backend="float")]
        rows = engine._rows(X, last_only=False)
        cols = [np.concatenate(p, axis=0) for p in
                zip(*(engine._columns(X[s:s + 256], False) for s in range(0, n, 256)))]
        assert all(np.array_equal(a, b) for a, b in zip(rows, ref)), n
        assert all(np.array_equal(a, b) for a, b in zip(cols, ref)), n
        last = engine._rows(X, last_only=True)
        assert len(last) == 1 and np.array_equal(last[0], ref[-1])
    kinds = {"Wp" in layer for layer in engine.layers[1:]}
    assert kinds == ({False} if eps == 0.999 else {True})  # gather below 0.4 % non-zeros


def test_ternary_engine_thread_counts_give_the_same_codes():
    net = _net("tanh", 0.9)
    X = np.random.default_rng(3).standard_normal((50, 40))
    one = net.ternary_engine(threads=1).codes(X)
    two = net.ternary_engine(threads=ti.numba.config.NUMBA_NUM_THREADS).codes(X)
    assert all(np.array_equal(a, b) for a, b in zip(one, two))
    net.ternary_engine().threads = None  # back to numba's default
    assert net.ternary_engine().threads == ti.numba.config.NUMBA_NUM_THREADS


@pytest.mark.parametrize("acts", ["relu", "abs"])
@pytest.mark.parametrize("eps", [0.0, 0.9])
def test_inputs_on_and_next_to_thresholds_are_decided_as_in_float64(acts, eps):
    net = _net(acts, eps)
    X = on_thresholds(net, np.random.default_rng(11))
    assert len(X) > 250  # 3 per threshold: on it, one ulp above, one below
    engine = net.ternary_engine()
    ref = net.activation_codes(X, backend="float")[0].numpy()
    # some of these entries are decided by the float64 recomputation: they sit on a threshold
    assert all(np.array_equal(engine._rows(X[s:s + 4], False)[0], ref[s:s + 4])
               for s in range(0, len(X), 4))
    assert all(np.array_equal(engine._columns(X[s:s + 256], False)[0], ref[s:s + 256])
               for s in range(0, len(X), 256))
    assert _same_codes(net, X)


@pytest.mark.parametrize("scale", [1e-300, 1e-40, 1e30, 2.0 ** 100, 1e300])
def test_inputs_of_extreme_magnitude_keep_the_references_codes(scale):
    # subnormal in float32, overflowing float32, and beyond 2^100 (the float32 pass is not
    # trusted: every entry recomputed in float64)
    net = _net("tanh", 0.5)
    rng = np.random.default_rng(4)
    X = rng.standard_normal((40, 40)) * scale
    X[::3] = rng.standard_normal((14, 40))  # mixed with ordinary samples
    assert _same_codes(net, X)
    assert _same_codes(net, X[:3]) and _same_codes(net, X[1:2])


@pytest.mark.parametrize("spread", [0.0, 3.0, 8.0])
@pytest.mark.parametrize("u", [2.0 ** -24, 2.0 ** -53])
def test_layer_one_margin_bounds_the_rounding_error(spread, u):
    # |z - x . c| <= mk * max|x| for the float32 (and the float64) pass, on inputs whose
    # entries span 10^spread in magnitude; the bound is within a factor of the worst case
    gen = torch.Generator().manual_seed(11)
    p, d = 300, 400
    codes = torch.randint(-1, 2, (d, p), generator=gen, dtype=torch.int8)
    codes[torch.rand(d, p, generator=gen) < 0.8] = 0
    ptr, mid, idx = ti._split_csr(codes.numpy())
    mk = ti._margins(ptr, u)
    H = torch.randn(64, p, generator=gen, dtype=torch.float64)
    H *= 10.0 ** (spread * torch.rand(64, p, generator=gen, dtype=torch.float64))
    X = H.numpy()
    exact = X @ codes.numpy().astype(np.float64).T  # float64: exact enough at u = 2^-24
    xmax = np.abs(X).max(axis=1)
    if u == 2.0 ** -24:
        W = 64
        Xt = np.empty((1, p, W), np.float32)
        xm = np.empty(W)
        ti._transpose32(X, Xt, xm)
        assert np.array_equal(xm, xmax) and np.array_equal(Xt[0, :p], X.T.astype(np.float32))
        accp, accn = np.empty(W, np.float32), np.empty(W, np.float32)
        z = np.empty((d, 64))
        for j in range(d):
            ti._rows_sum_w(Xt[0], idx, int(ptr[j]), int(mid[j]), accp, W)
            ti._rows_sum_w(Xt[0], idx, int(mid[j]), int(ptr[j + 1]), accn, W)
            z[j] = (accp - accn)[:64]
        err = np.abs(z.T - exact)
        bound = mk[None, :] * xmax[:, None]
        assert (err <= bound).all() and err.max() > 0
        assert (bound < 1e-4 * xmax[:, None] * np.diff(ptr)[None, :]).all()
    assert np.isinf(ti._margins(np.array([0, 90_000]), 2.0 ** -24)).all()
    assert ti._margins(np.array([0, 0]), u)[0] == 0


def test_split_csr_and_bit_planes_hold_the_codes():
    codes = torch.randint(-1, 2, (70, 130), generator=torch.Generator().manual_seed(1),
                          dtype=torch.int8).numpy()
    ptr, mid, idx = ti._split_csr(codes)
    Wp, Wn = ti._bit_planes(codes)
    assert idx.dtype == np.uint16 and Wp.shape == (70, 3) and Wp.dtype == np.uint64
    for j in range(70):
        assert list(idx[ptr[j]:mid[j]]) == list(np.nonzero(codes[j] > 0)[0])
        assert list(idx[mid[j]:ptr[j + 1]]) == list(np.nonzero(codes[j] < 0)[0])
        bits = np.unpackbits(Wp[j].view(np.uint8), bitorder="little")[:130]
        assert np.array_equal(bits, codes[j] > 0)
        bits = np.unpackbits(Wn[j].view(np.uint8), bitorder="little")[:130]
        assert np.array_equal(bits, codes[j] < 0)
    assert ti._split_csr(np.zeros((3, 70000), np.int8))[2].dtype == np.uint32


def test_integer_thresholds_are_exact_for_integer_sums():
    x = np.array([2.5, -2.5, 3.0, -np.inf, np.inf, 1e300])
    up, lo = ti._int_threshold(x, True), ti._int_threshold(x, False)
    for z in range(-5, 6):
        assert list(z > up) == list(z > x) and list(z < lo) == list(z < x)


def test_ternary_backend_checks_its_input():
    net = _net("relu", 0.9)
    with pytest.raises(ValueError, match="finite"):
        net(np.full((2, 40), np.nan), backend="ternary")
    with pytest.raises(ValueError, match="p = 40"):
        net(np.zeros((2, 39)), backend="ternary")
    with pytest.raises(ValueError, match="backend"):
        net(np.zeros((2, 40)), backend="numba")
    for bad in (0, 10 ** 6, 1.5, True, "2"):
        with pytest.raises(ValueError, match="threads"):
            net.ternary_engine(threads=bad)
    held = net.runtime_bytes()
    assert held["ternary engine"] == net.ternary_engine().nbytes() > 0


def test_the_ternary_engine_holds_less_than_int8_weights_at_high_sparsity():
    net = _net("relu", 0.9, p=400, widths=(800, 800, 400))
    dense_int8 = 400 * 800 + 800 * 800 + 800 * 400
    assert net.ternary_engine().nbytes() + net.runtime_bytes()["packed"] < 0.9 * dense_int8


def test_auto_backend_is_the_ternary_engine():
    net = _net("tanh", 0.5)
    X = np.random.default_rng(0).standard_normal((9, 40))
    assert net._backend("auto") == "ternary"
    assert torch.equal(net(X), net(X, backend="ternary"))


def test_layer_one_signed_indices_are_padded_to_fours_with_the_padding_index():
    codes = torch.randint(-1, 2, (30, 50), generator=torch.Generator().manual_seed(2),
                          dtype=torch.int8).numpy()
    rptr, ridx = ti._signed_csr(codes)
    assert (rptr % 4 == 0).all() and ridx.size == rptr[-1] and ridx.dtype == np.uint16
    for j in range(30):
        row = ridx[rptr[j]:rptr[j + 1]]
        pos, neg = np.nonzero(codes[j] > 0)[0], np.nonzero(codes[j] < 0)[0]
        assert list(row) == list(pos) + list(51 + neg) + [50] * (len(row) - len(pos) - len(neg))
        assert len(row) - len(pos) - len(neg) < 4
    # the sums they give, on (x, 0, -x)
    X = np.random.default_rng(0).standard_normal((3, 50))
    Xs, xmax = np.empty((3, 101)), np.empty(3)
    ti._signed_rows(X, Xs, xmax)
    assert np.array_equal(xmax, np.abs(X).max(axis=1))
    z = np.array([[Xs[b, ridx[rptr[j]:rptr[j + 1]]].sum() for j in range(30)] for b in range(3)])
    assert np.allclose(z, X @ codes.T.astype(np.float64), rtol=0, atol=1e-12)


def test_plan_names_the_kernels_and_counts_their_work():
    net = _net("tanh", 0.9, widths=(130, 70, 65))
    engine = net.ternary_engine()
    one, big = engine.plan(1), engine.plan(300)
    assert one["kernels"] == ["gather", "bit planes", "bit planes"]
    assert one["gathers"] == engine.layers[0]["rptr"][-1]
    assert one["popcount_words"] == 2 * (70 * 3 + 65 * 2)
    assert big["kernels"] == ["zero-skipping, samples in columns"] * 3 and big["gathers"] == 0
    nnz = [int(layer["ptr"][-1]) for layer in engine.layers]
    nnz[0] = int(np.count_nonzero(net.codes(0)))  # not the padding
    # 256 + 64 lanes: float32 rows of 16 + 4 lines, int8 rows of 4 + 1
    assert big["l2_lines"] == nnz[0] * 20 + (nnz[1] + nnz[2]) * 5
    assert engine.plan(0)["kernels"] == []


@pytest.mark.parametrize("acts,p,widths", [(["tanh"], 40, [30]), (["relu", "abs"], 40, [30, 20]),
                                           (["tanh"] * 3, 40_000, [8, 70, 6])])
def test_other_depths_and_wide_inputs(acts, p, widths):
    # one layer (no later layers: the layer-by-layer path), two, and 32-bit indices
    # (2p + 1 > 65,536 into (x, 0, -x))
    plan = compress.compress([activations.get(a) for a in acts], 4.0)
    net = compress.CompressedMLP.from_plan(plan, p, widths, sparsity=0.5,
                                           generator=torch.Generator().manual_seed(1))
    for n in (1, 3, 9, 300):
        X = np.random.default_rng(n).standard_normal((n, p)) * 4 / np.sqrt(p)
        assert _same_codes(net, X), n
        assert torch.allclose(net(X), net(X, backend="float"), rtol=0, atol=1e-12)
    engine = net.ternary_engine()
    assert (engine._operands is None) == (len(widths) == 1)
    assert engine.layers[0]["packed"] == (p < 30_000)
