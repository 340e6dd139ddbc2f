"""Memory of a network's hidden weights: the one memory model of the book.

Formats (bytes a real file holds), bounds (what no code can beat on average) and counts
(the authors' count of non-zeros, which no code achieves), for dense fp32 weights, sparse
ternary weights and sparse float weights: :class:`MemoryCost` under the two accountings of
the practice chapter and :func:`memory_report`, the storage table of the compression
chapter (book eq-compress-memory). Actual file sizes come from the formats themselves
(:meth:`lossless.compress.CompressedMLP.memory_bits`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
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
    "WEIGHT_FORMATS",
    "encode_weights",
    "decode_weights",
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


# -------------------------------------------------------------------------------------
# files of the baselines' weights (the practice study's stored bytes)
# -------------------------------------------------------------------------------------

#: Weight formats of :func:`encode_weights`, with what one file holds per matrix.
WEIGHT_FORMATS: dict[str, str] = {
    "fp32": "dense float32 entries",
    "fp16": "dense float16 entries",
    "int8": "per-row symmetric int8 codes + one float32 scale per row",
    "int4": "per-row symmetric int4 codes (two per byte) + one float32 scale per row",
    "csr-fp16": "CSR: uint32 row pointers, uint16 column indices, float16 values",
    "csr-int8": "CSR: uint32 row pointers, uint16 column indices, int8 codes + "
                "one float32 scale per row",
    "ternary": "one float32 scale + the {0, ±1} codes entropy-coded (ANS, "
               "lossless.compress.codec)",
}
_WEIGHT_MAGIC = b"lossless.weights\n"
_QMAX = {"int8": 127, "int4": 7, "csr-int8": 127}


def _row_codes(W: np.ndarray, qmax: int, i: int, fmt: str) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes and per-row scales with ``W == codes * scale`` (checked)."""
    amax = np.max(np.abs(W), axis=1)
    scale = (amax / qmax).astype(np.float32)
    safe = np.where(scale > 0, scale, 1.0).astype(np.float32)
    codes = np.rint(W / safe[:, None])
    if np.any(np.abs(codes) > qmax) or not np.allclose(codes * safe[:, None], W, rtol=1e-5,
                                                        atol=1e-7 * max(float(amax.max()), 1e-30)):
        raise ValueError(f"weights[{i}] is not on a per-row grid of {fmt} "
                         f"(codes in [-{qmax}, {qmax}] times one scale per row): quantise it "
                         "first with lossless.baselines.quantize_rows")
    return codes.astype(np.int8), scale


def encode_weights(weights: Sequence[Any], fmt: str) -> bytes:
    """The bytes of a file holding the matrices ``weights`` in format ``fmt``.

    A real file (decoded exactly by :func:`decode_weights`), so its length is a stored
    size, not a bound: the magic line, one JSON line (format, shapes and the byte count
    of every section), then the sections. For ``int8``/``int4``/``csr-int8`` the
    weights must already be quantised per row (:func:`lossless.baselines.quantize_rows`);
    sparse formats keep the non-zero entries only (so their size includes the index
    cost: 2 bytes of column index per non-zero plus 4 bytes per row).

    Parameters
    ----------
    weights : sequence of array_like, each 2-D
        Matrices (rows = outputs); finite.
    fmt : str
        A key of :data:`WEIGHT_FORMATS`.
    """
    fmt = _checks.choice(fmt, "fmt", sorted(WEIGHT_FORMATS))
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence) or not weights:
        raise TypeError(f"weights must be a non-empty sequence of matrices, got "
                        f"{_checks.describe(weights)}")
    sections: list[bytes] = []
    meta: list[dict] = []
    for i, W in enumerate(weights):
        W = np.asarray(_checks.real_array(W, f"weights[{i}]", ndim=2), dtype=np.float64)
        rows, cols = W.shape
        if fmt.startswith("csr") and cols > 2**16:
            raise ValueError(f"weights[{i}] has {cols} columns: csr formats index at most "
                             f"{2**16} columns (uint16)")
        parts: list[bytes] = []
        if fmt == "ternary":
            from lossless.compress import codec

            c = float(np.max(np.abs(W)))
            codes = np.rint(W / c) if c > 0 else np.zeros_like(W)
            if not np.allclose(codes * c, W, rtol=1e-6, atol=1e-12 * max(c, 1e-30)):
                raise ValueError(f"weights[{i}] is not ternary (entries in {{0, ±c}} for one "
                                 "c): ternarise it first")
            parts = [np.float32(c).tobytes(), codec.encode_ternary(codes.astype(np.int8))]
        elif fmt == "fp32":
            parts = [W.astype("<f4").tobytes()]
        elif fmt == "fp16":
            parts = [W.astype("<f2").tobytes()]
        elif fmt in ("int8", "int4"):
            codes, scale = _row_codes(W, _QMAX[fmt], i, fmt)
            if fmt == "int4":
                nib = (codes.astype(np.int16) + 8).astype(np.uint8)
                if cols % 2:
                    nib = np.hstack([nib, np.full((rows, 1), 8, np.uint8)])
                packed = (nib[:, 0::2] | (nib[:, 1::2] << 4)).astype(np.uint8)
                parts = [packed.tobytes(), scale.astype("<f4").tobytes()]
            else:
                parts = [codes.tobytes(), scale.astype("<f4").tobytes()]
        else:
            nz = W != 0
            ptr = np.concatenate([[0], np.cumsum(nz.sum(axis=1))]).astype("<u4")
            r_idx, c_idx = np.nonzero(nz)
            parts = [ptr.tobytes(), c_idx.astype("<u2").tobytes()]
            if fmt == "csr-fp16":
                parts.append(W[r_idx, c_idx].astype("<f2").tobytes())
            else:
                codes, scale = _row_codes(W, _QMAX[fmt], i, fmt)
                parts += [codes[r_idx, c_idx].tobytes(), scale.astype("<f4").tobytes()]
        meta.append({"shape": [rows, cols], "sections": [len(p) for p in parts]})
        sections += parts
    head = json.dumps({"format": fmt, "matrices": meta}, separators=(",", ":")).encode()
    return _WEIGHT_MAGIC + head + b"\n" + b"".join(sections)


def decode_weights(data: bytes) -> tuple[str, list[np.ndarray]]:
    """Inverse of :func:`encode_weights`: the format and the float32 matrices.

    Raises
    ------
    ValueError
        If ``data`` is not such a file or is truncated.
    """
    if not isinstance(data, (bytes, bytearray)) or not data.startswith(_WEIGHT_MAGIC):
        raise ValueError("data is not a lossless weights file (missing magic line "
                         f"{_WEIGHT_MAGIC!r})")
    end = data.index(b"\n", len(_WEIGHT_MAGIC))
    head = json.loads(data[len(_WEIGHT_MAGIC):end])
    fmt, pos, out = head["format"], end + 1, []
    if len(data) != pos + sum(sum(m["sections"]) for m in head["matrices"]):
        raise ValueError(f"data holds {len(data)} bytes, its header announces "
                         f"{pos + sum(sum(m['sections']) for m in head['matrices'])}: truncated "
                         "or corrupted")

    def take(n: int, dtype: str) -> np.ndarray:
        nonlocal pos
        arr = np.frombuffer(data[pos:pos + n], dtype=dtype)
        pos += n
        return arr

    for m in head["matrices"]:
        (rows, cols), sec = m["shape"], m["sections"]
        if fmt == "ternary":
            from lossless.compress import codec

            c = float(take(sec[0], "<f4")[0])
            W = codec.decode_ternary(take(sec[1], "u1").tobytes(), (rows, cols)) * np.float32(c)
        elif fmt in ("fp32", "fp16"):
            W = take(sec[0], "<f4" if fmt == "fp32" else "<f2").reshape(rows, cols)
        elif fmt in ("int8", "int4"):
            if fmt == "int8":
                codes = take(sec[0], "i1").reshape(rows, cols).astype(np.float32)
            else:
                packed = take(sec[0], "u1").reshape(rows, -1)
                nib = np.empty((rows, 2 * packed.shape[1]), np.int16)
                nib[:, 0::2], nib[:, 1::2] = packed & 15, packed >> 4
                codes = (nib[:, :cols] - 8).astype(np.float32)
            W = codes * take(sec[1], "<f4")[:, None]
        else:
            ptr = take(sec[0], "<u4").astype(np.int64)
            cidx = take(sec[1], "<u2").astype(np.int64)
            ridx = np.repeat(np.arange(rows), np.diff(ptr))
            W = np.zeros((rows, cols), np.float32)
            if fmt == "csr-fp16":
                W[ridx, cidx] = take(sec[2], "<f2")
            else:
                vals = take(sec[2], "i1").astype(np.float32)
                W[ridx, cidx] = vals * take(sec[3], "<f4")[ridx]
        out.append(np.asarray(W, dtype=np.float32))
    return fmt, out
