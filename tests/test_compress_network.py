"""lossless.compress.network: packing, the packed network against its dense reference,
its file and its argument checks."""


from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lossless import compress, memory, networks

from conftest import TAU0


# ------------------------------------------------------------------ packing, the network
@pytest.mark.parametrize("shape", [(1,), (7, 5), (4, 8), (3, 3, 3)])
def test_pack_unpack_round_trip(shape):
    v = torch.randint(-1, 2, shape, generator=torch.Generator().manual_seed(1))
    packed = compress.pack_ternary(v)
    assert packed.dtype == torch.uint8 and packed.numel() == -(-v.numel() // 4)
    assert torch.equal(compress.unpack_ternary(packed, shape), v.to(torch.int8))
    with pytest.raises(ValueError, match="packed"):
        compress.unpack_ternary(packed, (v.numel() + 5,))
    with pytest.raises(ValueError, match="code 3"):
        compress.unpack_ternary(torch.full_like(packed, 255), shape)


@pytest.fixture(scope="module")
def small_net(relu3):
    return compress.CompressedMLP.from_plan(relu3, 48, [64, 40, 32], sparsity=0.5,
                                            generator=torch.Generator().manual_seed(7))


def _inputs(n, p, seed=0):
    X = torch.randn(n, p, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return X * TAU0 / math.sqrt(p)


def test_packed_forward_equals_the_dense_reference(relu3, small_net):
    X = _inputs(50, 48)
    # the same generator seed gives networks.MLP with identical ternary weights
    ref = networks.MLP(48, [64, 40, 32], relu3.layers, TAU0, weights="ternary", sparsity=0.5,
                       generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    for i in range(3):
        assert torch.equal(ref.hidden[i].detach(), small_net.weights(i))
    np.testing.assert_allclose(ref.centres, small_net.centres, rtol=1e-13)
    F, F_ref = small_net.features(X), ref.features(X).detach()
    assert torch.allclose(F, F_ref, rtol=0, atol=1e-12)
    assert torch.allclose(small_net(X), small_net.to_reference()(X).detach(), atol=1e-12)
    codes = small_net.activation_codes(X)
    assert all(set(torch.unique(c).tolist()) <= {-1, 0, 1} for c in codes)
    # a plain dense loop as a third, independent evaluation
    H = X
    for i, act in enumerate(small_net.layers):
        H = (act(H @ small_net.weights(i).T) - small_net.centres[i]) / math.sqrt(small_net.widths[i])
    assert torch.allclose(F, H, rtol=0, atol=1e-12)


def test_save_load_round_trip(small_net, tmp_path):
    path = tmp_path / "net.pt"
    nbytes = small_net.save(path)
    assert nbytes == path.stat().st_size
    loaded = compress.CompressedMLP.load(path)
    X = _inputs(20, 48, seed=3)
    assert torch.equal(loaded(X), small_net(X))
    assert loaded.layers[1].s_plus == small_net.layers[1].s_plus
    with pytest.raises(FileNotFoundError):
        compress.CompressedMLP.load(tmp_path / "missing.pt")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a saved CompressedMLP"):
        compress.CompressedMLP.load(tmp_path / "other.pt")


def test_memory_accounting(small_net):
    n = 48 * 64 + 64 * 40 + 40 * 32
    rep = small_net.memory_bits()
    assert rep.n_weights == n
    h = -(0.5 * math.log2(0.5)) * 2
    assert rep.bits("dense fp32") == 32 * n
    assert rep.bits("ternary, 2-bit") == 2 * n
    assert rep.bits("entropy bound") == pytest.approx(n * (h + 0.5))
    assert rep.bits("authors' count") == pytest.approx(0.5 * n)
    assert rep.bits("packed codes in memory") == 8 * sum(-(-k // 4) for k in (48 * 64, 64 * 40,
                                                                              40 * 32))
    assert rep.bits("saved file") == 8 * len(small_net.to_bytes())
    # the file holds the entropy-coded codes, the fp32 readout and headers
    assert rep.bits("saved file") > rep.bits("entropy-coded codes") + 32 * 32
    assert rep.bits("entropy bound of these") <= rep.bits("entropy-coded codes") \
        <= 1.01 * rep.bits("entropy bound of these") + 3 * 8 * 64
    assert rep.bits("packed codes + zlib") >= 0.9 * rep.bits("entropy bound")
    assert "bits/weight" in repr(rep) and len(rep.to_dict()["rows"]) == 9
    # the bounds alone, for the paper's network size
    big = memory.memory_report(784, [2000, 2000, 1000], 0.9)
    assert big.n_weights == 7_568_000
    assert big.bits("entropy bound") / big.n_weights == pytest.approx(
        -(0.9 * math.log2(0.9) + 0.1 * math.log2(0.1)) + 0.1)
    with pytest.raises(ValueError, match="sparsity"):
        memory.memory_report(10, [5], 1.0)
    with pytest.raises(ValueError, match="widths"):
        memory.memory_report(10, [0], 0.1)


def test_compressed_mlp_bad_inputs(relu3, small_net):
    with pytest.raises(ValueError, match="X must have shape"):
        small_net(torch.zeros(3, 47))
    with pytest.raises(ValueError, match="sparsity"):
        compress.CompressedMLP.from_plan(relu3, 8, [4, 4, 4], sparsity=1.0,
                                         generator=torch.Generator().manual_seed(0))
    with pytest.raises(TypeError, match="plan"):
        compress.CompressedMLP.from_plan("plan", 8, [4, 4, 4],
                                         generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="layer must be"):
        small_net.codes(3)




def test_compressed_network_refuses_non_finite_inputs(small_net):
    """The issue's case: NaN compares false with every threshold and became code 0."""
    X = _inputs(4, 48)
    for bad in (math.nan, math.inf, -math.inf):
        Xb = X.clone()
        Xb[1, 3] = bad
        for call in (small_net, small_net.features, small_net.activation_codes):
            with pytest.raises(ValueError, match="X must be finite"):
                call(Xb)
        with pytest.raises(ValueError, match="X must be finite"):
            small_net(Xb.numpy())
    with pytest.raises(TypeError, match="X"):
        small_net("X")
    with pytest.raises(TypeError, match="X"):
        small_net(X.to(torch.complex128))
    with pytest.raises(TypeError, match="X"):
        small_net(X.clone().requires_grad_(True))
    with pytest.raises(ValueError, match="X must have"):
        small_net(X[0])
    # valid float32 and list inputs give the float64 result of the same values
    assert torch.equal(small_net(X.float()), small_net(X.float().double()))
    assert torch.equal(small_net(X.tolist()), small_net(X))


def test_compressed_network_refuses_bad_construction_arguments(relu3, small_net):
    gen = torch.Generator().manual_seed(0)
    with pytest.raises(TypeError, match="layer"):
        small_net.codes(1.0)
    with pytest.raises(ValueError, match="layer"):
        small_net.codes(-1)
    with pytest.raises(TypeError, match="dtype"):
        small_net.weights(0, torch.int64)
    with pytest.raises(TypeError, match="dtype"):
        small_net.to_reference(torch.int32)
    with pytest.raises(TypeError, match="p"):
        compress.CompressedMLP.from_plan(relu3, 8.0, [4, 4, 4], generator=gen)
    with pytest.raises(ValueError, match="widths"):
        compress.CompressedMLP.from_plan(relu3, 8, [4, 4], generator=gen)
    with pytest.raises(TypeError, match="generator"):
        compress.CompressedMLP.from_plan(relu3, 8, [4, 4, 4], generator=0)
    with pytest.raises(TypeError, match="exact_zeros"):
        compress.CompressedMLP.from_plan(relu3, 8, [4, 4, 4], generator=gen, exact_zeros="no")
    state = small_net.state()
    kwargs = dict(sparsity=state["sparsity"], packed=state["packed"])
    bad_readout = state["readout"].clone()
    bad_readout[0] = math.nan
    with pytest.raises(ValueError, match="readout"):
        compress.CompressedMLP(48, [64, 40, 32], small_net.layers, TAU0, readout=bad_readout,
                               **kwargs)
    with pytest.raises(ValueError, match="readout"):
        compress.CompressedMLP(48, [64, 40, 32], small_net.layers, TAU0,
                               readout=np.full(32, 1e300), **kwargs)
    with pytest.raises(TypeError, match="packed"):
        compress.CompressedMLP(48, [64, 40, 32], small_net.layers, TAU0,
                               readout=state["readout"], sparsity=0.5,
                               packed=[p.numpy() for p in state["packed"]])




def test_pack_ternary_refuses_values_whose_magnitude_would_be_lost():
    scaled = compress.ternary_weights((5, 7), 0.5, torch.Generator().manual_seed(0))
    assert torch.equal(compress.unpack_ternary(compress.pack_ternary(scaled), (5, 7)),
                       torch.sign(scaled).to(torch.int8))
    with pytest.raises(ValueError, match="values must be ternary"):
        compress.pack_ternary(torch.tensor([0.5, 1.0, -1.0]))
