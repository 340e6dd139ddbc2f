"""lossless.memory: the memory model (formats, the entropy bound, the authors' count)."""

from __future__ import annotations

import math

import pytest

from lossless import memory

def test_binary_entropy_values():
    assert memory.binary_entropy(0.5) == 1.0
    assert memory.binary_entropy(0.0) == memory.binary_entropy(1.0) == 0.0
    assert memory.binary_entropy(0.1) == pytest.approx(0.4689955935892812, rel=1e-14)
    with pytest.raises(ValueError):
        memory.binary_entropy(1.5)


def test_ternary_memory_accountings():
    n = 1000
    third = memory.ternary_memory(n, 1 / 3)
    assert third.bits_per_weight("entropy") == pytest.approx(math.log2(3))
    m = memory.ternary_memory(n, 0.0)
    assert m.bits("entropy") == m.bits("authors") == n          # ±1: one bit per weight
    m = memory.ternary_memory(n, 0.9)
    assert m.bits("authors") == pytest.approx(100.0)
    assert m.bits("entropy") == pytest.approx(n * (memory.binary_entropy(0.9) + 0.1))
    assert m.ratio("entropy") == pytest.approx(32 / (memory.binary_entropy(0.9) + 0.1))
    assert m.dense_bits == 32 * n
    with pytest.raises(ValueError, match="accounting"):
        m.bits("huffman")


@pytest.mark.parametrize("eps", [0.0, 0.5, 0.9, 0.99])
def test_ternary_memory_agrees_with_compress_memory_report(eps):
    rep = memory.memory_report(64, [30, 20], eps)
    m = memory.ternary_memory(rep.n_weights, eps)
    assert m.bits("entropy") == pytest.approx(rep.bits("entropy"), rel=1e-12)
    assert m.bits("authors") == pytest.approx(rep.bits("authors"), rel=1e-12)
    assert memory.dense_memory(rep.n_weights).bits("entropy") == rep.bits("dense")


def test_sparse_float_memory_and_matching():
    m = memory.sparse_float_memory(500, 0.02)
    assert m.bits("entropy") == pytest.approx(500 * (memory.binary_entropy(0.02) + 0.64))
    assert m.bits("authors") == pytest.approx(500 * 0.64)
    for eps in (0.0, 0.5, 0.9, 0.99):
        budget = memory.ternary_memory(100, eps)
        for acc in memory.ACCOUNTINGS:
            b = budget.bits_per_weight(acc)
            k = memory.matched_kept_fraction(b, acc)
            got = memory.sparse_float_memory(100, k).bits_per_weight(acc)
            assert got == pytest.approx(b, rel=1e-12)
    assert memory.matched_kept_fraction(0.32, "authors") == pytest.approx(0.01)
    for bad in (0.0, -1.0, 33.0):
        with pytest.raises(ValueError, match="bits_per_weight"):
            memory.matched_kept_fraction(bad, "entropy")


# ------------------------------------------------------------------ files of weights
def _weights(fmt, seed=0):
    import torch

    from lossless import baselines

    g = torch.Generator().manual_seed(seed)
    W = [torch.randn(40, 33, generator=g), torch.randn(9, 40, generator=g)]
    if fmt == "ternary":
        return [baselines.naive_ternarize(w, 0.9) for w in W]
    if fmt.startswith("csr"):
        W = [baselines.magnitude_prune(w, 0.2, rescale=False) for w in W]
    if fmt in ("int8", "csr-int8"):
        return [baselines.quantize_rows(w, 8) for w in W]
    if fmt == "int4":
        return [baselines.quantize_rows(w, 4) for w in W]
    return W


@pytest.mark.parametrize("fmt", sorted(memory.WEIGHT_FORMATS))
def test_weight_files_decode_exactly_and_cost_what_the_format_says(fmt):
    import numpy as np

    W = _weights(fmt)
    data = memory.encode_weights(W, fmt)
    got_fmt, D = memory.decode_weights(data)
    assert got_fmt == fmt
    for d, w in zip(D, W):
        ref = w.numpy().astype(np.float16 if fmt.endswith("fp16") else np.float32)
        np.testing.assert_array_equal(d, ref.astype(np.float32))
    head = data.index(b"\n", len(b"lossless.weights\n")) + 1
    body = len(data) - head
    n = sum(w.numel() for w in W)
    rows = sum(w.shape[0] for w in W)
    nnz = sum(int((w != 0).sum()) for w in W)
    expected = {
        "fp32": 4 * n, "fp16": 2 * n,
        "int8": n + 4 * rows,
        "int4": sum(w.shape[0] * ((w.shape[1] + 1) // 2) for w in W) + 4 * rows,
        "csr-fp16": 4 * (rows + len(W)) + 4 * nnz,
        "csr-int8": 4 * (rows + len(W)) + 3 * nnz + 4 * rows,
    }
    if fmt in expected:
        assert body == expected[fmt]
    else:   # ternary: one scale, a 28-byte codec header and the ANS words (5 % + 48 B)
        from lossless.compress import codec

        bound = sum(codec.entropy_bound_bits(np.rint(w.numpy() / w.abs().max().item()))
                    for w in W) / 8
        assert body <= 1.05 * bound + 48 * len(W)


def test_weight_files_refuse_what_they_cannot_hold():
    import torch

    W = [torch.randn(5, 4, generator=torch.Generator().manual_seed(0))]
    with pytest.raises(ValueError, match=r"weights\[0\].*int8"):
        memory.encode_weights(W, "int8")
    with pytest.raises(ValueError, match=r"weights\[0\] is not ternary"):
        memory.encode_weights(W, "ternary")
    with pytest.raises(ValueError, match="fmt"):
        memory.encode_weights(W, "int3")
    with pytest.raises(TypeError, match="weights"):
        memory.encode_weights([], "fp32")
    data = memory.encode_weights(W, "fp32")
    with pytest.raises(ValueError, match="truncated"):
        memory.decode_weights(data[:-1])
    with pytest.raises(ValueError, match="magic"):
        memory.decode_weights(b"x" + data)
