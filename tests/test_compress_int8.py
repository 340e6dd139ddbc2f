"""The int8/CSR path of the compressed network (lossless.compress.int8) gives the float
reference's codes and outputs; its self-check failing is an error, not a skip."""

import numpy as np
import pytest
import torch

from lossless import activations, compress
from lossless.compress import int8, network

from conftest import on_thresholds


def int8_engine(net):
    """The network's int8 engine; skips only where this torch build lacks the oneDNN
    quantized ops. A failed self-check raises ValueError: the test fails."""
    if int8.onednn_ops() is None:
        pytest.skip("this torch build has no oneDNN quantized ops")
    return net.int8_engine()


@pytest.fixture(scope="module")
def net():
    plan = compress.compress([activations.get("relu")] * 3, 4.0)
    return compress.CompressedMLP.from_plan(plan, 40, [48, 32, 24], sparsity=0.5,
                                            generator=torch.Generator().manual_seed(3))


def test_int8_path_gives_the_float_paths_codes_and_the_references_outputs(net):
    int8_engine(net)
    X = np.random.default_rng(1).standard_normal((37, 40)) * 4.0 / np.sqrt(40)
    fast = net.activation_codes(X, backend="int8")
    ref = net.activation_codes(X, backend="float")
    assert all(torch.equal(a, b) for a, b in zip(fast, ref))
    assert torch.allclose(net(X), net.to_reference()(X).detach(), atol=1e-12)
    one = net(X[:1], backend="int8")
    assert torch.allclose(one, net(X[:1], backend="float"), atol=1e-12)


def test_inputs_on_a_threshold_are_decided_as_in_float64(net):
    int8_engine(net)
    # a sample whose first-layer pre-activation sits exactly on a threshold of neuron 0
    C = net.codes(0).to(torch.float64)
    k = int(torch.nonzero(C[0])[0])
    X = np.zeros((2, 40))
    X[:, k] = float(net.upper_0[0]) * float(C[0, k])
    X[1, k] = np.nextafter(X[1, k], np.inf) if C[0, k] > 0 else np.nextafter(X[1, k], -np.inf)
    fast = net.activation_codes(X, backend="int8")[0]
    ref = net.activation_codes(X, backend="float")[0]
    assert torch.equal(fast, ref)


def _fresh_net():
    plan = compress.compress([activations.get("relu")] * 2, 4.0)
    return compress.CompressedMLP.from_plan(plan, 30, [40, 20], sparsity=0.5,
                                            generator=torch.Generator().manual_seed(8))


def test_a_failed_self_check_is_an_error_not_a_missing_library(monkeypatch):
    # an engine whose codes differ from the float path's is refused, and the message says
    # so (not "no oneDNN"); "auto" falls back to the float path with a warning
    if int8.onednn_ops() is None:
        pytest.skip("this torch build has no oneDNN quantized ops")
    true_codes = int8.Int8Engine.codes

    def wrong(self, H, *, last_only=False):
        out = true_codes(self, H, last_only=last_only)
        out[-1] = out[-1].clone()
        out[-1][..., 0] = 1 - out[-1][..., 0]
        return out

    monkeypatch.setattr(int8.Int8Engine, "codes", wrong)
    net = _fresh_net()
    with pytest.raises(ValueError, match="self-check failed.*layer 2"):
        net.int8_engine()
    with pytest.raises(ValueError, match="self-check failed"):
        net.activation_codes(np.zeros((2, 30)), backend="int8")
    monkeypatch.setattr(network, "_numba_available", lambda: False)
    with pytest.warns(RuntimeWarning, match="self-check failed"):
        codes = net.activation_codes(np.ones((2, 30)) / 30, backend="auto")
    ref = net.activation_codes(np.ones((2, 30)) / 30, backend="float")
    assert all(torch.equal(a, b) for a, b in zip(codes, ref))


def test_missing_onednn_is_reported_as_such(monkeypatch):
    monkeypatch.setattr(int8, "onednn_ops", lambda: None)
    net = _fresh_net()
    with pytest.raises(ValueError, match="no torch.ops.onednn"):
        net.int8_engine()
    monkeypatch.setattr(network, "_numba_available", lambda: False)
    assert net._backend("auto") == "float"


def test_backend_is_checked(net):
    with pytest.raises(ValueError, match="backend"):
        net.activation_codes(np.zeros((1, 40)), backend="gpu")
    assert net.runtime_bytes()["packed"] == sum(
        getattr(net, f"packed_{i}").numel() for i in range(3))


@pytest.fixture(scope="module", params=["relu", "tanh"])
def net_any(request):
    """An even (ReLU: codes {0, 1}) and an odd (tanh: codes {-1, 0, 1}) network."""
    plan = compress.compress([activations.get(request.param)] * 3, 4.0)
    return compress.CompressedMLP.from_plan(plan, 40, [48, 32, 24], sparsity=0.7,
                                            generator=torch.Generator().manual_seed(5))


@pytest.mark.parametrize("n", [0, 1, int8.FEW_ROWS, int8.FEW_ROWS + 1, 64])
def test_both_products_give_the_float_paths_codes_at_every_batch_size(net_any, n):
    # up to int8.FEW_ROWS samples layers >= 2 are CSR products, above it oneDNN's int8 GEMM
    int8_engine(net_any)
    X = np.random.default_rng(n).standard_normal((n, 40)) * 4.0 / np.sqrt(40)
    fast = net_any.activation_codes(X, backend="int8")
    ref = net_any.activation_codes(X, backend="float")
    assert [tuple(t.shape) for t in fast] == [(n, d) for d in (48, 32, 24)]
    assert all(t.dtype == torch.int8 for t in fast)
    assert all(torch.equal(a, b) for a, b in zip(fast, ref))
    assert any(bool((t != 0).any()) and bool((t == 0).any()) for t in fast) or n == 0


def test_many_entries_on_thresholds_are_all_recomputed(net_any):
    # one sample per neuron of layer 1, each on (or one ulp past) that neuron's threshold,
    # plus background coordinates: dozens of (neuron, sample) entries need the float64 fix
    int8_engine(net_any)
    X = on_thresholds(net_any, np.random.default_rng(11))
    assert len(X) > 2 * int8.FEW_ROWS
    for part in (X, X[: int8.FEW_ROWS]):
        fast = net_any.activation_codes(part, backend="int8")
        ref = net_any.activation_codes(part, backend="float")
        assert all(torch.equal(a, b) for a, b in zip(fast, ref))


def test_the_int8_path_holds_less_than_fp32_weights_at_high_sparsity():
    plan = compress.compress([activations.get("relu")] * 3, 4.0)
    net = compress.CompressedMLP.from_plan(plan, 100, [200, 200, 100], sparsity=0.9,
                                           generator=torch.Generator().manual_seed(0))
    int8_engine(net)
    held = net.runtime_bytes()
    fp32 = 4 * (100 * 200 + 200 * 200 + 200 * 100)
    assert held["packed"] + held["int8 path"] < 0.6 * fp32


@pytest.mark.parametrize("spread", [0.0, 3.0, 8.0])
def test_first_layer_margin_bounds_the_float32_error(spread):
    # the float32 CSR product of layer 1 is within the margin of the float64 product, for
    # inputs whose entries span 10^spread in magnitude (cancellation-prone sums included)
    gen = torch.Generator().manual_seed(11)
    p, d = 300, 400
    codes = torch.randint(-1, 2, (d, p), generator=gen, dtype=torch.int8)
    codes[torch.rand(d, p, generator=gen) < 0.8] = 0
    csr = int8.csr32(codes)
    k = int(csr.crow_indices().diff().max())
    H = torch.randn(64, p, generator=gen, dtype=torch.float64)
    H *= 10.0 ** (spread * torch.rand(64, p, generator=gen, dtype=torch.float64))
    m = int8.first_layer_margin(H, k)
    Z32 = torch.sparse.mm(csr, H.T.to(torch.float32).contiguous()).to(torch.float64)
    Z64 = codes.to(torch.float64) @ H.T
    err = float((Z32 - Z64).abs().max())
    assert 0 < err <= m
    # the bound is not vacuous: within a factor of the worst case it allows
    assert m < 1e-4 * float(H.abs().max()) * k


@pytest.mark.parametrize("n", [1, 64])
def test_very_sparse_layers_use_csr_products_and_give_the_float_paths_codes(n):
    # below int8.MIN_DENSITY no int8 copy of the weights is held: layers >= 2 are CSR
    # products at every batch size, with the float path's codes
    plan = compress.compress([activations.get("tanh")] * 3, 4.0)
    net = compress.CompressedMLP.from_plan(plan, 200, [300, 300, 100], sparsity=0.99,
                                           generator=torch.Generator().manual_seed(2))
    fast = int8_engine(net)
    assert all(layer.weight is None for layer in fast.layers)
    X = np.random.default_rng(4).standard_normal((n, 200)) * 4.0 / np.sqrt(200)
    fast_codes = net.activation_codes(X, backend="int8")
    ref = net.activation_codes(X, backend="float")
    assert all(torch.equal(a, b) for a, b in zip(fast_codes, ref))
    assert any(bool(T.any()) for T in fast_codes[1:])
    held = net.runtime_bytes()["int8 path"]
    assert held < 0.2 * sum(a * b for a, b in zip([200, 300, 300], [300, 300, 100]))


def test_first_layer_margin_is_infinite_where_the_bound_does_not_hold():
    # (k + 1) 2^-24 >= 0.005: no finite margin is claimed, every entry goes to float64
    H = torch.ones(2, 3, dtype=torch.float64)
    assert int8.first_layer_margin(H, 90_000) == float("inf")
    assert int8.first_layer_margin(H, 3) < 1e-5


def test_an_infinite_margin_recomputes_every_entry_and_keeps_the_codes(net, monkeypatch):
    int8_engine(net)
    X = np.random.default_rng(6).standard_normal((12, 40)) * 4.0 / np.sqrt(40)
    ref = net.activation_codes(X, backend="float")
    monkeypatch.setattr(int8, "first_layer_margin", lambda H, k: float("inf"))
    fast = net.activation_codes(X, backend="int8")
    assert all(torch.equal(a, b) for a, b in zip(fast, ref))
