"""Memory of a network's hidden weights: the one memory model of the book.

Formats (bytes a real file holds), bounds (what no code can beat on average) and counts
(the authors' count of non-zeros, which no code achieves), for dense fp32 weights, sparse
ternary weights and sparse float weights: :class:`MemoryCost` under the two accountings of
the practice chapter and :func:`memory_report`, the storage table of the compression
chapter (book eq-compress-memory). Actual file sizes come from the formats themselves
(:meth:`lossless.compress.CompressedMLP.memory_bits`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import scipy.optimize

from lossless import _checks
from lossless.display import html_table, text_table

__all__ = [
    "DENSE_BITS",
    "ACCOUNTINGS",
    "binary_entropy",
    "MemoryCost",
    "dense_memory",
    "ternary_memory",
    "sparse_float_memory",
    "matched_kept_fraction",
    "MemoryReport",
    "memory_report",
]

#: Bits of one dense float32 weight.
DENSE_BITS = 32.0


# -------------------------------------------------------------------------------------
# the two accountings of the practice chapter
# -------------------------------------------------------------------------------------

#: The two accountings, by key (labels for tables and figures).
ACCOUNTINGS: dict[str, str] = {
    "entropy": "entropy bound: H(ε) + (1 − ε) bits/weight (positions and signs)",
    "authors": "authors' count: (1 − ε) bits/weight (non-zeros only, positions free)",
}


def binary_entropy(x: float) -> float:
    """``H(x) = -x log2 x - (1 - x) log2 (1 - x)`` in bits (0 at x = 0 or 1).

    Raises
    ------
    ValueError
        If ``x`` is not in [0, 1].
    """
    x = _checks.fraction(x, "x", high_open=False)
    if x in (0.0, 1.0):
        return 0.0
    return float(-x * math.log2(x) - (1.0 - x) * math.log2(1.0 - x))


@dataclass(frozen=True)
class MemoryCost:
    """Bits needed for the hidden weights, with both accountings of the practice chapter.

    Attributes
    ----------
    n_weights : int
        Number of hidden weights ``sum_l d_l d_{l-1}`` (the readout is the same fp32
        matrix for every method and is not counted).
    entropy_bits : float
        Honest accounting: an information-theoretic bound that a code can approach
        (positions of the zeros at their entropy ``H``, plus one bit per non-zero sign
        for ternary weights or 32 bits per non-zero float).
    authors_bits : float
        The authors' count: the non-zero entries only (1 bit per ternary non-zero,
        32 bits per float non-zero), positions for free; not achievable by any code.
    description : str
    """

    n_weights: int
    entropy_bits: float
    authors_bits: float
    description: str

    @property
    def dense_bits(self) -> float:
        """Bits of the same weights stored dense in fp32 (32 per weight)."""
        return DENSE_BITS * self.n_weights

    def bits(self, accounting: str) -> float:
        """Total bits under ``accounting`` (``"entropy"`` or ``"authors"``)."""
        if _checks.choice(accounting, "accounting", sorted(ACCOUNTINGS)) == "entropy":
            return self.entropy_bits
        return self.authors_bits

    def bits_per_weight(self, accounting: str) -> float:
        return self.bits(accounting) / self.n_weights

    def ratio(self, accounting: str) -> float:
        """Compression ratio ``32 n / bits`` (inf if no bits)."""
        bits = self.bits(accounting)
        return math.inf if bits == 0 else self.dense_bits / bits


def dense_memory(n_weights: int) -> MemoryCost:
    """Dense fp32: 32 bits per weight under both accountings."""
    n = _checks.integer(n_weights, "n_weights", minimum=1)
    return MemoryCost(n, DENSE_BITS * n, DENSE_BITS * n, "dense fp32")


def ternary_memory(n_weights: int, sparsity: float) -> MemoryCost:
    """Sparse ternary weights with a fraction ``sparsity = ε`` of zeros.

    Entropy bound ``H(ε) + (1 − ε)`` bits per weight (where the zeros are, then one
    sign bit per non-zero; ``log2 3`` at ε = 1/3, 1 bit at ε = 0); the authors' count
    ``(1 − ε)``; :func:`memory_report` tabulates the same numbers.
    """
    n = _checks.integer(n_weights, "n_weights", minimum=1)
    eps = _checks.fraction(sparsity, "sparsity")
    return MemoryCost(n, n * (binary_entropy(eps) + 1.0 - eps), n * (1.0 - eps),
                      f"sparse ternary, ε = {eps:g}")


def sparse_float_memory(n_weights: int, kept_fraction: float, *,
                        value_bits: float = DENSE_BITS) -> MemoryCost:
    """A fraction ``kept_fraction = k`` of float weights kept, the rest zero.

    Entropy accounting ``H(k) + 32 k`` bits per weight (positions at their entropy,
    fp32 values); the authors'-style count ``32 k`` (values only, positions free),
    the analogue of their ``(1 − ε)`` for ternary weights.
    """
    n = _checks.integer(n_weights, "n_weights", minimum=1)
    k = _checks.fraction(kept_fraction, "kept_fraction", low_open=True, high_open=False)
    vb = _checks.positive(value_bits, "value_bits")
    return MemoryCost(n, n * (binary_entropy(k) + vb * k), n * vb * k,
                      f"sparse fp32, {k:.4g} kept")


def matched_kept_fraction(bits_per_weight: float, accounting: str, *,
                          value_bits: float = DENSE_BITS) -> float:
    """Fraction ``k`` of fp32 weights that a sparse float network may keep for a budget.

    Solves ``H(k) + 32 k = b`` (``accounting="entropy"``, increasing in ``k``; brentq to
    1e-15) or ``32 k = b`` (``"authors"``) for the budget ``b`` bits per weight.

    Raises
    ------
    ValueError
        If the budget is not positive or exceeds what keeping every weight costs.
    """
    b = _checks.real(bits_per_weight, "bits_per_weight")
    accounting = _checks.choice(accounting, "accounting", sorted(ACCOUNTINGS))
    vb = _checks.real(value_bits, "value_bits", low=1.0)  # H(k) + vb k increasing needs vb >= 1
    if b <= 0 or b > vb:
        raise ValueError(f"bits_per_weight must be in (0, {vb:g}], got {b!r}")
    if accounting == "authors":
        return b / vb
    if b >= vb:
        return 1.0
    # H(k) + vb k is increasing on (0, 1) for vb >= 1 (derivative log2((1-k)/k) + vb)
    f = lambda k: binary_entropy(k) + vb * k - b  # noqa: E731
    hi = 1.0 - 1e-15
    if f(hi) < 0:
        return 1.0
    return float(scipy.optimize.brentq(f, 0.0, hi, xtol=1e-15, rtol=1e-15))


# -------------------------------------------------------------------------------------
# the compression chapter's storage table
# -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryReport:
    """Bits needed to store the hidden weights of a network, several ways.

    Attributes
    ----------
    n_weights : int
        Number of hidden weights ``Σ_ℓ d_ℓ d_{ℓ−1}`` (the readout is not included in
        the bounds; it is in the actual file sizes).
    sparsity : float
        ε.
    rows : tuple of (label, bits, kind)
        ``kind`` is ``"format"`` (a real storage format), ``"bound"`` (an
        information-theoretic bound), ``"count"`` (a count that is not a valid code)
        or ``"actual"`` (measured size of bytes actually written).
    """

    n_weights: int
    sparsity: float
    rows: tuple

    def bits(self, label_start: str) -> float:
        """Bits of the first row whose label starts with ``label_start``."""
        for label, bits, _kind in self.rows:
            if isinstance(label_start, str) and label.startswith(label_start):
                return bits
        if not isinstance(label_start, str):
            raise TypeError(f"label_start must be a string, got {_checks.describe(label_start)}")
        raise ValueError(f"label_start must be the start of a row label, got {label_start!r}; "
                         f"rows: {[r[0] for r in self.rows]}")

    def to_dict(self) -> dict[str, Any]:
        return {"n_weights": self.n_weights, "sparsity": self.sparsity,
                "rows": [{"label": lab, "bits": float(b), "kind": k,
                          "bits_per_weight": float(b) / self.n_weights}
                         for lab, b, k in self.rows]}

    def _cells(self) -> list[list[str]]:
        return [[lab, k, f"{b / self.n_weights:.4g}", f"{b / 8 / 2**20:.4g}"]
                for lab, b, k in self.rows]

    _HEADER = ("storage", "kind", "bits/weight", "MiB")

    def __repr__(self) -> str:
        return text_table(f"MemoryReport({self.n_weights} hidden weights, "
                          f"sparsity={self.sparsity:g})", self._HEADER, self._cells(), left=2)

    def _repr_html_(self) -> str:
        return html_table(f"{self.n_weights:,} hidden weights, sparsity ε = {self.sparsity:g}",
                          self._HEADER, self._cells())


def memory_report(p: int, widths: Sequence[int], sparsity: float) -> MemoryReport:
    """The storage table of the compression chapter for the hidden weights of a ``p``-input MLP.

    Rows: dense fp32 (32 bits/weight); dense ternary packed in 2 bits; the entropy
    bound ``H(ε) + (1 − ε)`` bits/weight of i.i.d. sparse ternary weights (no code can
    do better on average; ``log2 3`` at ε = 1/3); and the authors' count
    ``(1 − ε)`` bits/weight, which ignores where the zeros are and so is not
    achievable by any code. The last two are :func:`ternary_memory`'s two accountings.

    Parameters
    ----------
    p : int
        Input dimension.
    widths : sequence of int
        Hidden widths ``d_1..d_L``.
    sparsity : float
        ε in [0, 1).
    """
    dims = [_checks.integer(p, "p", minimum=1)] + list(_checks.int_sequence(widths, "widths",
                                                                             minimum=1))
    eps = _checks.fraction(sparsity, "sparsity")
    n = sum(a * b for a, b in zip(dims[:-1], dims[1:]))
    ternary = ternary_memory(n, eps)
    rows = (
        ("dense fp32", dense_memory(n).entropy_bits, "format"),
        ("ternary, 2-bit packed", 2.0 * n, "format"),
        ("entropy bound H(ε) + (1 − ε)", ternary.bits("entropy"), "bound"),
        ("authors' count (1 − ε), ignores zero positions", ternary.bits("authors"), "count"),
    )
    return MemoryReport(n_weights=n, sparsity=eps, rows=rows)
