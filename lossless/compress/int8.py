"""The int8/CSR inference path of a :class:`~lossless.compress.CompressedMLP`:
:class:`Int8Engine`, exact, built from the network's codes and thresholds.

Layer 1 is a sparse (CSR) float32 product of the inputs with the codes, with every entry
whose rounding error could cross a threshold recomputed in float64 (a rigorous bound,
:meth:`Int8Engine.first_layer_margin`), so its codes are those of the float reference;
layers ℓ ≥ 2 are int8 × uint8 products accumulated in int32 by oneDNN
(``torch.ops.onednn.qlinear_pointwise``) or, for a handful of samples or very sparse
layers, CSR float32 products of the codes (integer-valued, exact).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["FEW_ROWS", "MIN_DENSITY", "Int8Engine", "Int8SelfCheckError", "onednn_ops",
           "csr32", "first_layer_margin"]

#: Up to this many samples, layers ℓ ≥ 2 are multiplied as sparse CSR matrices instead of
#: by oneDNN's int8 GEMM (slow for a handful of rows).
FEW_ROWS = 8

#: Layers ℓ ≥ 2 with fewer non-zero weights than this fraction are always multiplied as CSR
#: matrices: a dense int8 GEMM does the work of every weight, a CSR product only of the
#: non-zeros (at batch 256 and width 2000 the two cost the same near 4 %).
MIN_DENSITY = 0.04


class Int8SelfCheckError(RuntimeError):
    """The int8 kernels of this torch build disagree with the float reference on a probe
    batch: the engine is not used (the message says where)."""


def onednn_ops() -> tuple[Callable, Callable] | None:
    """``(qlinear_pointwise, qlinear_prepack)`` from ``torch.ops.onednn``, or None where this
    torch build does not have them."""
    try:
        return torch.ops.onednn.qlinear_pointwise, torch.ops.onednn.qlinear_prepack
    except (AttributeError, RuntimeError):
        return None


def csr32(codes: torch.Tensor) -> torch.Tensor:
    """Ternary codes as a CSR matrix: float32 values ±1, int32 indices (built directly,
    without torch's int64 intermediate copies)."""
    rows, cols = torch.nonzero(codes, as_tuple=True)  # row-major: the CSR order
    crow = torch.zeros(codes.shape[0] + 1, dtype=torch.int32)
    crow[1:] = torch.cumsum(torch.bincount(rows, minlength=codes.shape[0]), 0)
    values = codes[rows, cols].to(torch.float32)
    with warnings.catch_warnings():  # "sparse CSR support is in beta state"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, cols.to(torch.int32), values, codes.shape,
                                       check_invariants=False)


def _csr_bytes(csr: torch.Tensor) -> int:
    return sum(t.numel() * t.element_size()
               for t in (csr.crow_indices(), csr.col_indices(), csr.values()))


def _round_f32(x: torch.Tensor, *, up: bool) -> torch.Tensor:
    """float64 ``x`` rounded to float32 upwards (``up``) or downwards: a float32 bound."""
    y = x.to(torch.float32)
    off = y.to(torch.float64) < x if up else y.to(torch.float64) > x
    return torch.where(off, torch.nextafter(y, torch.tensor(math.inf if up else -math.inf)), y)


def first_layer_margin(H: torch.Tensor, k: int) -> float:
    """A bound ``m`` on ``|fl32(x . c) - x . c|`` over the samples ``x`` (rows of ``H``,
    float64) and the code rows ``c`` (at most ``k`` non-zeros in {-1, 1}).

    Rounding ``x`` to float32 moves each term by at most ``u |x_j|`` (``u = 2^-24``), the
    products by ±1 are exact, and a float32 sum of ``k`` terms in any order (or tree, with
    or without fused multiply-adds) is off by at most ``(k - 1) u / (1 - (k - 1) u)`` times
    the sum of their magnitudes, which is at most ``sqrt(k) ||x||_2`` (Cauchy-Schwarz over
    the ``k`` terms). So ``m = 1.01 (k + 1) u sqrt(k) max_x ||x||_2`` bounds the error
    whenever ``(k + 1) u < 0.005``; beyond that (rows of over 80,000 non-zeros) the margin
    is infinite and every entry is recomputed in float64.
    """
    if (k + 1) * 2.0 ** -24 >= 0.005:
        return math.inf
    norm = math.sqrt(float(torch.einsum("ij,ij->i", H, H).max()))
    return 1.01 * (k + 1) * 2.0 ** -24 * math.sqrt(k) * norm


@dataclass(frozen=True)
class _FirstLayer:
    csr: torch.Tensor        # (d_1, p) CSR, float32 ±1
    max_nnz: int             # the most non-zeros in a row (the margin's k)
    upper: torch.Tensor      # (d_1, 1) float64 thresholds
    lower: torch.Tensor      # (d_1, 1) float64
    exact_upper: torch.Tensor  # (d_1,) float64, for the float64 recheck
    exact_lower: torch.Tensor


@dataclass(frozen=True)
class _HiddenLayer:
    weight: Any | None       # oneDNN-packed int8 codes, or None (CSR only)
    csr: torch.Tensor        # (d_ℓ, d_{ℓ−1}) CSR, float32 ±1
    w_scale: torch.Tensor    # (d_ℓ,) ones
    w_zero: torch.Tensor     # (d_ℓ,) int64 zeros
    upper: torch.Tensor      # (d_ℓ,) float32: floor of the threshold (Z is an integer)
    lower: torch.Tensor      # (d_ℓ,) float32: ceil
    odd: bool
    int8_bytes: int

    @property
    def upper_col(self) -> torch.Tensor:
        return self.upper[:, None]

    @property
    def lower_col(self) -> torch.Tensor:
        return self.lower[:, None]


class Int8Engine:
    """The int8/CSR path of a compressed network (see the module docstring).

    Parameters
    ----------
    codes : sequence of int8 tensors
        ``C_ℓ`` of shape (d_ℓ, d_{ℓ−1}), values in {-1, 0, 1}.
    upper, lower : sequences of float64 tensors
        Thresholds of each layer's ternary activation on the pre-activation ``Z``:
        ``T = [Z > upper] ± [Z < lower]``.
    odd : sequence of bool
        Whether layer ℓ's activation is odd (``T`` in {-1, 0, 1}) or even ({0, 1}).

    Raises
    ------
    RuntimeError
        Where this torch build has no oneDNN quantized ops (:func:`onednn_ops`).
    """

    def __init__(self, codes: Sequence[torch.Tensor], upper: Sequence[torch.Tensor],
                 lower: Sequence[torch.Tensor], odd: Sequence[bool]):
        ops = onednn_ops()
        if ops is None:
            raise RuntimeError("this torch build has no torch.ops.onednn.qlinear_pointwise / "
                               "qlinear_prepack: the int8 path is not available")
        self._qlinear, prepack = ops
        first = csr32(codes[0])
        self.first = _FirstLayer(
            csr=first, max_nnz=max(1, int(first.crow_indices().diff().max())),
            upper=upper[0].to(torch.float64)[:, None], lower=lower[0].to(torch.float64)[:, None],
            exact_upper=upper[0].to(torch.float64), exact_lower=lower[0].to(torch.float64))
        self.first_odd = bool(odd[0])
        self.widths = tuple(int(c.shape[0]) for c in codes)
        self.layers: list[_HiddenLayer] = []
        for i in range(1, len(codes)):
            d = self.widths[i]
            c = codes[i]
            csr = csr32(c)
            dense = csr.values().numel() >= MIN_DENSITY * c.numel()
            # Z is an integer: Z > u <=> Z > floor(u), Z < l <=> Z < ceil(l); both are exact
            # in float32 when |.| < 2^24 and beyond every reachable |Z| otherwise
            self.layers.append(_HiddenLayer(
                weight=prepack(c.contiguous(), None) if dense else None, csr=csr,
                w_scale=torch.ones(d), w_zero=torch.zeros(d, dtype=torch.int64),
                upper=torch.floor(upper[i]).to(torch.float32),
                lower=torch.ceil(lower[i]).to(torch.float32), odd=bool(odd[i]),
                int8_bytes=c.numel() if dense else 0))

    def nbytes(self) -> int:
        """Bytes of the operands held: CSR codes of every layer, int8 codes of the layers
        oneDNN multiplies (one byte per weight) and the thresholds."""
        total = _csr_bytes(self.first.csr) + 2 * 8 * self.widths[0]
        for d, layer in zip(self.widths[1:], self.layers):
            total += _csr_bytes(layer.csr) + layer.int8_bytes + 4 * 4 * d + 12 * d
        return total

    def check(self, probe: torch.Tensor, reference: Sequence[torch.Tensor]) -> None:
        """Compare the codes of ``probe`` (float64, samples in rows) with ``reference``
        (the float path's codes), through both the CSR (the first three rows) and the
        oneDNN products.

        Raises
        ------
        Int8SelfCheckError
            Naming the first layer and the number of entries that differ.
        """
        for rows in (probe[:3], probe):
            try:
                got = self.codes(rows)
            except RuntimeError as err:  # a kernel that fails on this machine
                raise Int8SelfCheckError(f"the int8 path failed on a probe batch of "
                                         f"{rows.shape[0]} samples: {err}") from err
            for i, (a, b) in enumerate(zip(got, reference)):
                b = b[: rows.shape[0]]
                if not torch.equal(a, b):
                    bad = int((a != b).sum()) if a.shape == b.shape else -1
                    raise Int8SelfCheckError(
                        f"the int8 path disagrees with the float reference on a probe batch "
                        f"of {rows.shape[0]} samples: layer {i + 1}, {bad} codes differ "
                        f"(torch {torch.__version__}, quantized engine "
                        f"{torch.backends.quantized.engine!r})")

    def codes(self, H: torch.Tensor, *, last_only: bool = False) -> list[torch.Tensor]:
        """Codes ``T_ℓ`` of every layer (int8, samples in rows) for float64 inputs ``H``
        (n, p); with ``last_only``, earlier layers are freed as soon as the next is
        computed and the last layer's codes alone are returned."""
        n = H.shape[0]
        if n == 0:
            return [torch.zeros((0, d), dtype=torch.int8) for d in self.widths]
        first = self.first
        # layer 1, samples in columns: Z^T = C_1 X^T, a CSR product in float32
        Z = torch.sparse.mm(first.csr, H.T.to(torch.float32).contiguous())
        # |fl32(x . c) - x . c| <= m for every row c of codes (first_layer_margin). With the
        # thresholds moved outwards by m and rounded outwards to float32, Z > u + m means
        # x . c > u for sure and Z <= u - m means x . c <= u (the same for l): only entries
        # between the two bounds are recomputed in float64
        m = first_layer_margin(H, first.max_nnz)
        u, l = first.upper, first.lower
        above = Z > _round_f32(u + m, up=True)
        below = Z < _round_f32(l - m, up=False)
        close = (Z > _round_f32(u - m, up=False)).logical_xor_(above)
        close.logical_or_((Z < _round_f32(l + m, up=True)).logical_xor_(below))
        T = above.to(torch.int8)
        if self.first_odd:
            T -= below.to(torch.int8)
        else:
            T += below.to(torch.int8)
        del Z, above, below
        neurons, samples = torch.nonzero(close, as_tuple=True)
        if len(neurons):
            T[neurons, samples] = self._first_layer_exact(H, neurons, samples)
        out, cols = [T], [True]  # codes, and whether they hold samples in columns
        for layer in self.layers:
            if n <= FEW_ROWS or layer.weight is None:
                # CSR product, samples in columns (exact: |Z| < 2^24)
                prev = out[-1] if cols[-1] else out[-1].T
                Z = torch.sparse.mm(layer.csr, prev.to(torch.float32).contiguous())
                upper, lower, in_cols = layer.upper_col, layer.lower_col, True
            else:  # int8 x uint8 (zero point 1) in int32 by oneDNN, samples in rows
                x = (out[-1].T if cols[-1] else out[-1]).to(torch.uint8)
                x += 1
                Z = self._qlinear(x.contiguous(), 1.0, 1, layer.weight, layer.w_scale,
                                  layer.w_zero, None, 1.0, 0, torch.float32, "none", [], "")
                upper, lower, in_cols = layer.upper, layer.lower, False
            cols.append(in_cols)
            T = (Z > upper).to(torch.int8)
            if layer.odd:
                T -= (Z < lower).to(torch.int8)
            else:
                T += (Z < lower).to(torch.int8)
            out.append(T)
            if last_only:
                del out[0], cols[0]
        return [T.T.contiguous() if c else T for T, c in zip(out, cols)]

    def _first_layer_exact(self, H: torch.Tensor, neurons: torch.Tensor,
                           samples: torch.Tensor) -> torch.Tensor:
        """Codes of layer 1 at the entries ``(neurons[i], samples[i])`` recomputed in
        float64 from the CSR codes: the entries whose float32 value may be on the wrong
        side of a threshold."""
        csr = self.first.csr
        crow = csr.crow_indices().to(torch.int64)
        starts = crow[neurons]
        counts = crow[neurons + 1] - starts
        seg = torch.repeat_interleave(torch.arange(len(neurons)), counts)
        offsets = torch.cumsum(counts, 0) - counts
        pos = starts[seg] + torch.arange(int(counts.sum())) - offsets[seg]
        cols = csr.col_indices().to(torch.int64)[pos]
        terms = H[samples[seg], cols] * csr.values()[pos].to(torch.float64)
        z = torch.zeros(len(neurons), dtype=torch.float64).index_add_(0, seg, terms)
        sign = -1 if self.first_odd else 1
        return ((z > self.first.exact_upper[neurons]).to(torch.int8)
                + sign * (z < self.first.exact_lower[neurons]).to(torch.int8))
