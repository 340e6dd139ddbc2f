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
