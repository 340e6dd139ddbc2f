"""Entropy coding of ternary weight codes, for files at the entropy bound.

A sparse ternary matrix with i.i.d. entries (``0`` with probability ε, ``±1`` with
probability (1 − ε)/2 each) carries ``H(ε) + (1 − ε)`` bits per weight of information
(the *entropy bound*). A 2-bit code per weight is 3.5× that bound at ε = 0.9 and 24× at
ε = 0.99; this module writes the codes at the bound.

The coder is asymmetric numeral systems (ANS) from ``constriction`` (a maintained Rust
library with Python bindings), with a static categorical model whose probabilities are
the array's own symbol counts, stored in the blob. The cost over the empirical entropy
``numel · H(p̂)`` is the ANS coder's few final words plus the model's fixed-point
rounding: under 0.01 % for a layer of 10⁶ weights.

Blob layout (little-endian): the magic ``b"TRN1"``, three ``uint64`` counts (of 0, +1
and −1 codes), one ``uint64`` word count, then the ANS words as ``uint32``. The counts
fix the model on both sides (same float64 arithmetic, same pinned ``constriction``), so
:func:`decode_ternary` reproduces the codes exactly.
"""

from __future__ import annotations

import math
import struct
from typing import Any, Sequence

import numpy as np

from lossless import _checks

__all__ = ["encode_ternary", "decode_ternary", "entropy_bound_bits", "CODEC"]

#: Name and version recorded in saved files (a file names the codec that wrote it).
CODEC = "constriction-ans-categorical/1"

_MAGIC = b"TRN1"
_HEAD = struct.Struct("<4sQQQQ")


def _constriction():
    try:
        import constriction
    except ImportError as err:  # pragma: no cover - the package pins it
        raise ImportError("lossless.compress.codec needs the 'constriction' package "
                          "(pinned in requirements.txt): pip install constriction") from err
    return constriction


def _as_codes(codes: Any) -> np.ndarray:
    """``codes`` as a flat int8 array with entries in {-1, 0, 1} (refusing anything else)."""
    if hasattr(codes, "detach") and hasattr(codes, "numpy"):  # a torch tensor
        codes = codes.detach().cpu().numpy()
    arr = np.asarray(codes)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer)
                                 or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"codes must be an integer or float array with entries in "
                        f"{{-1, 0, 1}}, got {_checks.describe(codes)}")
    flat = arr.reshape(-1)
    if np.issubdtype(flat.dtype, np.floating) and not np.isfinite(flat).all():
        raise ValueError("codes must be finite, with entries in {-1, 0, 1}; got NaN or inf")
    bad = (flat != 0) & (flat != 1) & (flat != -1)
    if bad.any():
        first = flat[np.argmax(bad)]
        raise ValueError(f"codes must have entries in {{-1, 0, 1}}, got {first!r} "
                         f"(and {int(bad.sum()) - 1} other entries outside)")
    return flat.astype(np.int8)


def _counts(symbols: np.ndarray) -> tuple[int, int, int]:
    c = np.bincount(symbols, minlength=3)
    return int(c[0]), int(c[1]), int(c[2])


def _model(counts: Sequence[int]):
    probs = np.asarray(counts, dtype=np.float64)
    probs = probs / probs.sum()
    return _constriction().stream.model.Categorical(probs, perfect=False)


def entropy_bound_bits(codes: Any) -> float:
    """The empirical entropy bound of ``codes``: ``numel · H(p̂)`` bits.

    ``p̂`` is the array's own frequencies of 0, +1 and −1. For i.i.d. sparse ternary
    entries this is, to within ``O(√numel)``, the book's bound ``H(ε) + (1 − ε)`` bits
    per weight.

    Parameters
    ----------
    codes : array_like of int or float, any shape
        Entries in {-1, 0, 1}.
    """
    flat = _as_codes(codes)
    n = flat.size
    if n == 0:
        return 0.0
    bits = 0.0
    for c in _counts(_symbols(flat)):
        if c:
            bits -= c * math.log2(c / n)
    return bits


def _symbols(flat: np.ndarray) -> np.ndarray:
    # code -> symbol: 0 -> 0, +1 -> 1, -1 -> 2
    return np.where(flat < 0, 2, flat).astype(np.int32)


def encode_ternary(codes: Any) -> bytes:
    """Entropy-code a ternary array (its shape is not stored; keep it beside the blob).

    Parameters
    ----------
    codes : array_like of int or float, any shape
        Entries in {-1, 0, 1}, read in C order.

    Returns
    -------
    bytes
        ``20 + 8`` bytes of header, then the ANS words: within 0.01 % (plus 8 bytes) of
        :func:`entropy_bound_bits` / 8 for arrays of 10⁶ entries.

    Raises
    ------
    TypeError, ValueError
        If ``codes`` is not numeric or holds an entry outside {-1, 0, 1} (NaN included).
    """
    flat = _as_codes(codes)
    symbols = _symbols(flat)
    counts = _counts(symbols)
    words = np.zeros(0, dtype="<u4")
    if flat.size and max(counts) < flat.size:  # one symbol only: the counts say it all
        coder = _constriction().stream.stack.AnsCoder()
        coder.encode_reverse(symbols, _model(counts))
        words = np.asarray(coder.get_compressed(), dtype=np.uint32).astype("<u4")
    return _HEAD.pack(_MAGIC, *counts, words.size) + words.tobytes()


def decode_ternary(blob: Any, shape: Sequence[int]) -> np.ndarray:
    """Inverse of :func:`encode_ternary`: an int8 array of ``shape`` in {-1, 0, 1}.

    Raises
    ------
    TypeError
        If ``blob`` is not bytes-like or ``shape`` not a sequence of integers.
    ValueError
        If the blob is truncated, has trailing bytes, its counts do not add up to the
        size of ``shape``, or its words do not decode to exactly those counts.
    """
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise TypeError(f"blob must be bytes (from encode_ternary), got {_checks.describe(blob)}")
    if isinstance(shape, (str, bytes)) or not isinstance(shape, (Sequence, np.ndarray)):
        raise TypeError(f"shape must be a sequence of integers >= 0, got {_checks.describe(shape)}")
    shape = tuple(_checks.integer(d, f"shape[{i}]", minimum=0) for i, d in enumerate(shape))
    numel = math.prod(shape)
    blob = bytes(blob)
    if len(blob) < _HEAD.size:
        raise ValueError(f"blob is truncated: {len(blob)} bytes, a header alone is {_HEAD.size}")
    magic, c0, c1, c2, n_words = _HEAD.unpack_from(blob)
    if magic != _MAGIC:
        raise ValueError(f"blob does not start with {_MAGIC!r}: not an encode_ternary output")
    if c0 + c1 + c2 != numel:
        raise ValueError(f"blob holds {c0 + c1 + c2} codes (counts {c0}, {c1}, {c2}), but "
                         f"shape {shape} has {numel} entries")
    if len(blob) != _HEAD.size + 4 * n_words:
        raise ValueError(f"blob announces {n_words} words ({_HEAD.size + 4 * n_words} bytes) "
                         f"but has {len(blob)} bytes")
    counts = (c0, c1, c2)
    if numel == 0:
        return np.zeros(shape, dtype=np.int8)
    if max(counts) == numel:
        symbols = np.full(numel, counts.index(numel), dtype=np.int32)
    else:
        if n_words == 0:
            raise ValueError("blob has no ANS words although its counts mix symbols")
        words = np.frombuffer(blob, dtype="<u4", offset=_HEAD.size).astype(np.uint32)
        coder = _constriction().stream.stack.AnsCoder(words)
        symbols = np.asarray(coder.decode(_model(counts), numel))
        if not coder.is_empty():
            raise ValueError("blob's ANS words hold more than the announced codes: corrupted")
    got = np.bincount(symbols, minlength=3)[:3]
    if tuple(int(c) for c in got) != counts or symbols.max(initial=0) > 2:
        raise ValueError(f"blob's ANS words decode to counts {tuple(got)} instead of {counts}: "
                         "corrupted")
    lut = np.array([0, 1, -1], dtype=np.int8)
    return lut[symbols].reshape(shape)
