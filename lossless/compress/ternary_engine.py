"""The compressed network's ternary inference engine (numba kernels).

:class:`TernaryEngine` evaluates the network of :class:`lossless.compress.CompressedMLP`
(the compression chapter, eq-compress-ternary) with what the network is made of: sparse
ternary weights ``C_ℓ ∈ {−1, 0, 1}^{d_ℓ × d_{ℓ−1}}`` and ternary activation codes
``T_ℓ ∈ {−1, 0, 1}``. With ``Z_ℓ = C_ℓ T_{ℓ−1}`` (an integer for ℓ ≥ 2) and the per-neuron
thresholds ``u_ℓ ≥ l_ℓ`` of the compressed network (centring and scales folded in), the
codes are ``T_ℓ = 1[Z_ℓ > u_ℓ] ∓ 1[Z_ℓ < l_ℓ]`` (``−`` for an odd activation, ``+`` for an
even one), and the output is ``f(x) = w^T (b_L T_L − m_L) / sqrt(d_L)``.

Four kernels, chosen per layer and batch size (:meth:`TernaryEngine.plan`):

- **layer 1, samples in columns** (more than :data:`SMALL_BATCH` samples,
  :func:`_first_columns`): the input transposed to float32 in blocks of 64 samples,
  ``(p, 64)`` each; each non-zero weight of a neuron adds (or subtracts) one 64-lane row
  of the block, in vector registers held across the neuron (the loop is written in LLVM
  IR, :func:`_rows_sum`, so that the lanes never leave the registers). Entries whose
  float32 rounding error could put them on the wrong side of a threshold are recomputed
  in float64 (see *Exactness*).
- **layer 1, samples in rows** (small batches, :func:`_first_rows`): a gather-add of the
  sample's coordinates in float64, from ``(x, 0, −x)`` with one index list per neuron
  (its ``+1`` columns, then its ``−1`` columns shifted into ``−x``), four 16-bit indices
  to a word and four partial sums.
- **layers ℓ ≥ 2, zero-skipping** (:func:`_ternary_columns`): int8 codes in blocks of 64
  samples, ``(d, 64)`` each; each non-zero weight adds or subtracts one 64-byte row into
  int8 lanes (at most 127 terms, exact), widened to int32 every 127 terms; then the
  integer thresholds.
- **layers ℓ ≥ 2, bit planes** (small batches, :func:`_ternary_bits`, for layers with at
  least :data:`BITS_MIN_DENSITY` non-zero weights; sparser ones gather): the weight codes
  as two bit masks per neuron (``+1`` and ``−1`` entries, 64 weights per word), the
  sample's codes as two masks;
  ``Z = popcount((W₊ ∧ T₊) ∨ (W₋ ∧ T₋)) − popcount((W₊ ∧ T₋) ∨ (W₋ ∧ T₊))``.

The output is then ``sum_j v[T_L[j]] w_j`` with ``v[t] = (b_L t − m_L) / sqrt(d_L)``
computed as the reference computes the features. Every kernel is multi-threaded (numba
``prange`` over blocks of neurons, block of samples by block of samples) with the thread
count of :attr:`TernaryEngine.threads`; the kernels are compiled once and cached on disk
(``cache=True``: ``__pycache__`` next to this module, or numba's user-wide cache where
that is not writable).

Exactness
---------
Layers ℓ ≥ 2 are integer sums: exact. Layer 1 takes real inputs. A pass in float32 (or
float64) computes ``z`` with ``|z − x·c| ≤ m`` where, for a row with ``k`` non-zeros,
``m = 1.01 (k + 1) u k max_i |x_i| + k 2^-150`` (``u = 2^-24`` in float32, ``2^-53`` in
float64; ``2^-150`` covers float32 rounding of subnormal inputs): rounding each input to
float32 moves each term by at most ``u |x_i|`` (or ``2^-150``), and a sum of ``k`` terms
in any order or tree is off by at most ``(k − 1) u / (1 − (k − 1) u)`` times the sum of
their magnitudes, itself at most ``k max |x_i|``. The margin is infinite when
``(k + 1) u ≥ 0.005`` or ``max |x_i| ≥ 2^100``. An entry with ``z − u_1 > m`` is above
the threshold in exact arithmetic, one with ``z − u_1 ≤ −m`` is not (the same for
``l_1``); every other entry is recomputed in float64, in a fixed order (the ``+1``
inputs, then the ``−1`` inputs), which is the rule of the reference
``CompressedMLP.activation_codes(..., backend="float")`` up to float64 rounding at the
threshold itself (the reference's float64 product has its own summation order). So the
codes equal the float reference's: exactly, except for an input whose first-layer sum
lies within float64 rounding of a threshold, where the two float64 sums may round to
different sides.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["TernaryEngine", "LANES", "SMALL_BATCH"]

#: Lane counts of the (features, batch) kernels: a chunk of ``B`` samples is padded to the
#: smallest of these at least ``B`` (one vector of ``LANES[i]`` int8 or float32 lanes).
LANES = (16, 32, 64, 128, 256)

#: Batches up to this size use the samples-in-rows kernels (gather-add, bit planes).
SMALL_BATCH = 4

#: Layers ℓ ≥ 2 with at least this fraction of non-zero weights use bit planes for small
#: batches, sparser layers gather: a popcount covers 64 weights in about the time a
#: gather takes for one non-zero (2 bits per weight held against 16 per non-zero).
BITS_MIN_DENSITY = 0.004

_U32 = 2.0 ** -24
_U64 = 2.0 ** -53
_SAFE = 1.0 + 1e-6  # covers the rounding of z - u and of the margin itself


# =====================================================================================
# LLVM intrinsics: population count, and the vector gather-add of rows
# =====================================================================================


@intrinsic
def _popcount(typingctx, x):
    """``llvm.ctpop`` on a 64-bit integer (vectorised to VPOPCNTQ where available)."""
    if not isinstance(x, types.Integer) or x.bitwidth != 64:
        return None

    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.ctpop", [ir.IntType(64)])
        return builder.call(fn, args)

    return types.uint64(x), codegen


def _array_parts(context, builder, arrty, value):
    return context.make_array(arrty)(context, builder, value)


@intrinsic
def _rows_sum(typingctx, T, idx, k0, k1, out, W):
    """``out[:W] = sum_{k0 <= k < k1} T[idx[k], :W]`` in ``<W x dtype>`` vector registers.

    ``T`` is a C-contiguous 2-D float32 or int8 array with at least ``W`` columns, ``idx``
    a 1-D integer array of valid row indices (not checked), ``out`` a 1-D array of
    ``T.dtype`` with at least ``W`` entries. Rows of at most 64 bytes go to four partial
    sums, of at most 128 bytes to two (independent additions, to hide their latency),
    added at the end; a float sum is thus a tree of the ``k1 − k0`` terms. For int8 the
    sum wraps: callers keep ``k1 − k0 ≤ 127`` for codes in {−1, 0, 1}.
    """
    if not isinstance(W, types.IntegerLiteral):
        return None
    if not (isinstance(T, types.Array) and T.ndim == 2 and T.layout == "C"
            and T.dtype in (types.float32, types.int8)
            and isinstance(out, types.Array) and out.dtype == T.dtype
            and isinstance(idx, types.Array) and isinstance(idx.dtype, types.Integer)):
        return None
    w = W.literal_value

    def codegen(context, builder, signature, args):
        tT, tidx, tk0, tk1, tout, _ = signature.args
        Ta = _array_parts(context, builder, tT, args[0])
        ia = _array_parts(context, builder, tidx, args[1])
        oa = _array_parts(context, builder, tout, args[4])
        intp = context.get_value_type(types.intp)
        elt = context.get_data_type(tT.dtype)
        vty = ir.VectorType(elt, w)
        isfloat = isinstance(tT.dtype, types.Float)
        nbytes = w * context.get_abi_sizeof(elt)
        u = 4 if nbytes <= 64 else 2 if nbytes <= 128 else 1
        k0v = context.cast(builder, args[2], tk0, types.intp)
        k1v = context.cast(builder, args[3], tk1, types.intp)
        stride0 = builder.extract_value(Ta.strides, 0)
        accs = [cgutils.alloca_once(builder, vty) for _ in range(u)]
        for acc in accs:
            builder.store(ir.Constant(vty, None), acc)

        def add(acc, k):
            i = builder.load(builder.gep(ia.data, [k]))
            if i.type.width < intp.width:
                i = builder.sext(i, intp) if tidx.dtype.signed else builder.zext(i, intp)
            p = cgutils.pointer_add(builder, Ta.data, builder.mul(i, stride0),
                                    return_type=vty.as_pointer())
            v = builder.load(p, align=1)
            a = builder.load(acc)
            builder.store(builder.fadd(a, v) if isfloat else builder.add(a, v), acc)

        whole = builder.sdiv(builder.sub(k1v, k0v), ir.Constant(intp, u))
        with cgutils.for_range(builder, whole) as loop:
            base = builder.add(k0v, builder.mul(loop.index, ir.Constant(intp, u)))
            for q, acc in enumerate(accs):
                add(acc, builder.add(base, ir.Constant(intp, q)))
        rest = builder.add(k0v, builder.mul(whole, ir.Constant(intp, u)))
        with cgutils.for_range_slice(builder, rest, k1v, ir.Constant(intp, 1), inc=True) as (k, _):
            add(accs[0], k)
        vals = [builder.load(acc) for acc in accs]
        while len(vals) > 1:
            vals = [builder.fadd(a, b) if isfloat else builder.add(a, b)
                    for a, b in zip(vals[::2], vals[1::2])]
        builder.store(vals[0], builder.bitcast(oa.data, vty.as_pointer()), align=1)
        return context.get_dummy_value()

    return types.void(T, idx, k0, k1, out, W), codegen


@njit(cache=True, inline="always")
def _rows_sum_w(T, idx, k0, k1, out, W):
    """:func:`_rows_sum` with ``W`` one of :data:`LANES` (a run-time value)."""
    if W == 16:
        _rows_sum(T, idx, k0, k1, out, 16)
    elif W == 32:
        _rows_sum(T, idx, k0, k1, out, 32)
    elif W == 64:
        _rows_sum(T, idx, k0, k1, out, 64)
    elif W == 128:
        _rows_sum(T, idx, k0, k1, out, 128)
    else:
        _rows_sum(T, idx, k0, k1, out, 256)


# =====================================================================================
# layer 1
# =====================================================================================


@njit(cache=True, parallel=True)
def _first_columns(X, Xt, xmax, ptr, mid, idx, mk, upper, lower, sign, out):
    """Layer 1, samples in columns, in blocks of ``Wb`` lanes. ``X`` (n, p) float64; ``Xt``
    (nb, p, Wb) float32, ``X.T`` by blocks (:func:`_transpose32`); ``xmax`` (nb Wb,)
    the largest |x_i| per sample; ``out`` (nb, d, Wb) int8 codes, sample ``q Wb + l`` in
    ``out[q, :, l]``. The tasks run block by block (a thread's blocks stay in its
    cache)."""
    d = ptr.shape[0] - 1
    n = X.shape[0]
    nb, _, wb = Xt.shape
    nrb = (d + 15) // 16
    for task in prange(nb * nrb):
        q = task // nrb
        rb = task - q * nrb
        valid = min(wb, n - q * wb)
        xt = Xt[q]
        xm = xmax[q * wb:q * wb + wb]
        accp = np.empty(wb, np.float32)
        accn = np.empty(wb, np.float32)
        close = np.empty(wb, np.bool_)
        for j in range(rb * 16, min(d, rb * 16 + 16)):
            _rows_sum_w(xt, idx, ptr[j], mid[j], accp, wb)
            _rows_sum_w(xt, idx, mid[j], ptr[j + 1], accn, wb)
            u = upper[j]
            lo = lower[j]
            mj = mk[j] * _SAFE
            tiny = (ptr[j + 1] - ptr[j]) * 2.0 ** -150 * _SAFE
            nclose = 0
            for lane in range(wb):  # branch-free: vectorised
                m = mj * xm[lane] + tiny
                z = np.float64(accp[lane] - accn[lane])
                du = z - u
                dl = z - lo
                out[q, j, lane] = np.int8(du > m) + sign * np.int8(dl < -m)
                # not decided by the float32 pass (NaN, from an overflow, is not decided)
                c = not (((du > m) | (du <= -m)) & ((dl >= m) | (dl < -m)))
                close[lane] = c
                nclose += np.int32(c)
            if nclose:
                for lane in range(valid):
                    if close[lane]:
                        out[q, j, lane] = _first_exact(X, q * wb + lane, ptr[j], mid[j],
                                                       ptr[j + 1], idx, u, lo, sign)
    return out


@njit(cache=True, parallel=True)
def _transpose32(X, Xt, xmax):
    """``X.T`` in float32 in blocks of lanes: ``Xt[q, i, l] = X[q Wb + l, i]`` for the
    ``n`` samples, zero for the lanes beyond; ``Xt`` is (W / Wb, p, Wb).
    ``xmax[b] = max_i |X[b, i]|``, inf from 2^100 on (where the float32 pass is not
    trusted), NaN if ``X[b]`` is not finite; 0 for the lanes beyond."""
    n, p = X.shape
    nb, _, wb = Xt.shape
    ntile = (p + 31) // 32
    for task in prange(nb * ntile):
        q = task // ntile
        i0 = (task - q * ntile) * 32
        i1 = min(p, i0 + 32)
        tile = np.zeros((32, wb), np.float32)   # features x lanes, in L1
        for lane in range(min(wb, n - q * wb)):
            b = q * wb + lane
            for i in range(i0, i1):
                tile[i - i0, lane] = np.float32(X[b, i])
        for i in range(i0, i1):
            for lane in range(wb):
                Xt[q, i, lane] = tile[i - i0, lane]
    for b in prange(n):
        xmax[b] = _absmax(X[b])
    for b in range(n, xmax.shape[0]):
        xmax[b] = 0.0
    return Xt, xmax


@njit(cache=True, inline="always")
def _absmax(x):
    """``max |x_i|``, inf from 2^100 on, NaN if some ``x_i`` is not finite."""
    m = 0.0
    bad = False
    for i in range(x.shape[0]):
        a = abs(x[i])
        m = max(m, a)
        bad |= not (a < np.inf)
    if bad:
        return np.nan
    return m if m < 2.0 ** 100 else np.inf


@njit(cache=True)
def _signed_rows(X, Xs, xmax):
    """``Xs[b] = (x, 0, −x)`` for each row ``x = X[b]`` (index ``i`` of ``x``, the padding
    index ``p``, index ``p + 1 + i`` of ``−x``); ``xmax`` as in :func:`_transpose32`."""
    n, p = X.shape
    for b in range(n):
        for i in range(p):
            Xs[b, i] = X[b, i]
            Xs[b, p + 1 + i] = -X[b, i]
        Xs[b, p] = 0.0
        xmax[b] = _absmax(X[b])
    return Xs


@njit(cache=True, inline="always")
def _first_exact(X, b, k0, k1, k2, idx, u, lo, sign):
    """The code of one entry of layer 1 from a float64 sum: the ``+1`` inputs
    ``idx[k0:k1]`` in order, minus the sum of the ``−1`` inputs ``idx[k1:k2]``."""
    s = 0.0
    for k in range(k0, k1):
        s += X[b, idx[k]]
    t = 0.0
    for k in range(k1, k2):
        t += X[b, idx[k]]
    s -= t
    return np.int8(s > u) + sign * np.int8(s < lo)


@njit(cache=True, inline="always")
def _first_exact_signed(Xs, b, k0, k1, ridx, p, u, lo, sign):
    """:func:`_first_exact` from the combined indices of :func:`_signed_csr`: the same sums
    in the same order (``+1`` inputs, then ``−1`` inputs, the padding skipped)."""
    s = 0.0
    t = 0.0
    for k in range(k0, k1):
        i = np.int64(ridx[k])
        if i < p:
            s += Xs[b, i]
        elif i > p:
            t += Xs[b, i - p - 1]
    s -= t
    return np.int8(s > u) + sign * np.int8(s < lo)


@njit(cache=True, parallel=True)
def _first_rows(Xs, xmax, rptr, ridx, ridx4, packed, mk, upper, lower, sign, out, P, N):
    """Layer 1, samples in rows: float64 gather-add with four partial sums over the
    combined indices of :func:`_signed_csr` into ``Xs = (x, 0, −x)`` (:func:`_signed_rows`),
    four 16-bit indices to a word in ``ridx4`` if ``packed``; ``out`` (n, d) int8 codes,
    also as bit planes ``P``, ``N`` (n, ceil(d / 64)) (see :func:`_pack_planes`)."""
    d = rptr.shape[0] - 1
    n = Xs.shape[0]
    p = (Xs.shape[1] - 1) // 2
    nblk = (d + 63) // 64
    for blk in prange(nblk):
        for b in range(n):
            x = Xs[b]
            pw = np.uint64(0)
            nwd = np.uint64(0)
            for j in range(blk * 64, min(d, blk * 64 + 64)):
                z = _gather4(x, ridx, ridx4, packed, rptr[j] // 4, rptr[j + 1] // 4)
                u = upper[j]
                lo = lower[j]
                m = mk[j] * xmax[b] * _SAFE
                du = z - u
                dl = z - lo
                if (du > m or du <= -m) and (dl >= m or dl < -m):
                    c = np.int8(du > m) + sign * np.int8(dl < -m)
                else:
                    c = _first_exact_signed(Xs, b, rptr[j], rptr[j + 1], ridx, p, u, lo,
                                            sign)
                out[b, j] = c
                bit = np.uint64(1) << np.uint64(j - blk * 64)
                if c > 0:
                    pw |= bit
                elif c < 0:
                    nwd |= bit
            P[b, blk] = pw
            N[b, blk] = nwd
    return out


@njit(cache=True, inline="always")
def _gather4(x, idx, idx4, packed, w0, w1):
    """``sum x[i]`` over the indices ``idx[4 w0:4 w1]``, in four partial sums; read four
    at a time from the uint64 words ``idx4[w0:w1]`` if ``packed`` (16-bit indices)."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    if packed:
        for w in range(w0, w1):
            q = idx4[w]
            s0 += x[q & 0xFFFF]
            s1 += x[(q >> 16) & 0xFFFF]
            s2 += x[(q >> 32) & 0xFFFF]
            s3 += x[q >> 48]
    else:
        for w in range(w0, w1):
            s0 += x[idx[4 * w]]
            s1 += x[idx[4 * w + 1]]
            s2 += x[idx[4 * w + 2]]
            s3 += x[idx[4 * w + 3]]
    return (s0 + s1) + (s2 + s3)


# =====================================================================================
# layers ℓ >= 2
# =====================================================================================


@njit(cache=True, parallel=True)
def _ternary_columns(T, ptr, mid, idx, up, lo, sign, out):
    """Layer ℓ ≥ 2, samples in columns, in blocks of ``Wb`` lanes: ``T`` (nb, d_in, Wb)
    int8 codes, ``out`` (nb, d, Wb) int8 (as in :func:`_first_columns`)."""
    d = ptr.shape[0] - 1
    nb, _, wb = T.shape
    nrb = (d + 15) // 16
    for task in prange(nb * nrb):
        q = task // nrb
        rb = task - q * nrb
        t = T[q]
        a8 = np.empty(wb, np.int8)
        acc = np.empty(wb, np.int32)
        for j in range(rb * 16, min(d, rb * 16 + 16)):
            for lane in range(wb):
                acc[lane] = 0
            k = ptr[j]
            while k < mid[j]:
                e = min(mid[j], k + 127)
                _rows_sum_w(t, idx, k, e, a8, wb)
                for lane in range(wb):
                    acc[lane] += a8[lane]
                k = e
            while k < ptr[j + 1]:
                e = min(ptr[j + 1], k + 127)
                _rows_sum_w(t, idx, k, e, a8, wb)
                for lane in range(wb):
                    acc[lane] -= a8[lane]
                k = e
            uj = up[j]
            lj = lo[j]
            for lane in range(wb):
                out[q, j, lane] = np.int8(acc[lane] > uj) + sign * np.int8(acc[lane] < lj)
    return out


@njit(cache=True, parallel=True)
def _pack_planes(T, P, N):
    """Codes ``T`` (n, d) int8 in {−1, 0, 1} as bit planes ``P`` (+1) and ``N`` (−1),
    (n, ceil(d / 64)) uint64, feature ``i`` in bit ``i % 64`` of word ``i // 64``."""
    n, d = T.shape
    nw = P.shape[1]
    for b in prange(n):
        for w in range(nw):
            pw = np.uint64(0)
            nwd = np.uint64(0)
            for i in range(w * 64, min(d, w * 64 + 64)):
                bit = np.uint64(1) << np.uint64(i - w * 64)
                if T[b, i] > 0:
                    pw |= bit
                elif T[b, i] < 0:
                    nwd |= bit
            P[b, w] = pw
            N[b, w] = nwd
    return P, N


@njit(cache=True, parallel=True)
def _ternary_bits(P, N, has_neg, Wp, Wn, up, lo, sign, out, OP, ON):
    """Layer ℓ ≥ 2 on bit planes: ``P``, ``N`` (n, words) the input codes, ``Wp``, ``Wn``
    (d, words) the weight codes; ``out`` (n, d) int8 codes, also as planes ``OP``, ``ON``."""
    d = Wp.shape[0]
    nw = Wp.shape[1]
    n = P.shape[0]
    nblk = (d + 63) // 64
    for blk in prange(nblk):
        for b in range(n):
            pw = np.uint64(0)
            nwd = np.uint64(0)
            for j in range(blk * 64, min(d, blk * 64 + 64)):
                sp = np.uint64(0)
                sn = np.uint64(0)
                if has_neg:
                    for q in range(nw):
                        sp += _popcount((Wp[j, q] & P[b, q]) | (Wn[j, q] & N[b, q]))
                        sn += _popcount((Wn[j, q] & P[b, q]) | (Wp[j, q] & N[b, q]))
                else:
                    for q in range(nw):
                        sp += _popcount(Wp[j, q] & P[b, q])
                        sn += _popcount(Wn[j, q] & P[b, q])
                s = np.int64(sp) - np.int64(sn)
                c = np.int8(s > up[j]) + sign * np.int8(s < lo[j])
                out[b, j] = c
                bit = np.uint64(1) << np.uint64(j - blk * 64)
                if c > 0:
                    pw |= bit
                elif c < 0:
                    nwd |= bit
            OP[b, blk] = pw
            ON[b, blk] = nwd
    return out


@njit(cache=True, parallel=True)
def _ternary_gather(T, ptr, mid, idx, up, lo, sign, out):
    """Layer ℓ ≥ 2, samples in rows, for sparse layers: integer gather-add."""
    d = ptr.shape[0] - 1
    n = T.shape[0]
    nblk = (d + 63) // 64
    for blk in prange(nblk):
        for b in range(n):
            t = T[b]
            for j in range(blk * 64, min(d, blk * 64 + 64)):
                s = 0
                for k in range(ptr[j], mid[j]):
                    s += t[idx[k]]
                for k in range(mid[j], ptr[j + 1]):
                    s -= t[idx[k]]
                out[b, j] = np.int8(s > up[j]) + sign * np.int8(s < lo[j])
    return out


# =====================================================================================
# readout
# =====================================================================================


@njit(cache=True, inline="always")
def _code_values(scale, centre, root):
    """``(scale t − centre) / root`` for ``t = −1, 0, 1`` (the feature of a code, computed
    as the reference computes it)."""
    v = np.empty(3)
    for t in range(3):
        v[t] = (scale * np.float64(t - 1) - centre) / root
    return v


@njit(cache=True, parallel=True)
def _readout_rows(T, w, scale, centre, root, out):
    """``out[b] = sum_j ((scale T[b, j] − centre) / root) w[j]`` for codes (n, d)."""
    n, d = T.shape
    v = _code_values(scale, centre, root)
    for b in prange(n):
        s = 0.0
        for j in range(d):
            s += v[T[b, j] + 1] * w[j]
        out[b] = s
    return out


@njit(cache=True, parallel=True)
def _readout_columns(T, n, w, scale, centre, root, out):
    """The same for codes in columns by blocks, (nb, d, Wb), the first ``n`` samples,
    summed over ``j`` in the same order."""
    nb, d, wb = T.shape
    v = _code_values(scale, centre, root)
    for q in prange(nb):
        valid = min(wb, n - q * wb)
        acc = np.zeros(wb)
        for j in range(d):
            wj = w[j]
            for lane in range(wb):
                acc[lane] += v[T[q, j, lane] + 1] * wj
        for lane in range(valid):
            out[q * wb + lane] = acc[lane]
    return out


@njit(cache=True)
def _forward_rows(X, first, rest, readout, scale, centre, root):
    """The outputs of a small batch (samples in rows) in one call: :func:`_signed_rows`,
    :func:`_first_rows`, then for each later layer :func:`_ternary_bits` or
    :func:`_ternary_gather`, then :func:`_readout_rows`. ``first`` and ``rest`` hold the
    operands (see :meth:`TernaryEngine._rows_operands`)."""
    rptr, ridx, ridx4, packed, mk, upper, lower, sign, d = first
    ptrs, mids, idxs, ups, los, Wps, Wns, bits, has_neg, signs, dims = rest
    n, p = X.shape
    Xs = np.empty((n, 2 * p + 1))
    xmax = np.empty(n)
    _signed_rows(X, Xs, xmax)
    T = np.empty((n, d), np.int8)
    words = (d + 63) // 64
    P = np.empty((n, words), np.uint64)
    N = np.empty((n, words), np.uint64)
    _first_rows(Xs, xmax, rptr, ridx, ridx4, packed, mk, upper, lower, sign, T, P, N)
    for i in range(len(ptrs)):
        d = dims[i]
        nxt = np.empty((n, d), np.int8)
        words = (d + 63) // 64
        OP = np.empty((n, words), np.uint64)
        ON = np.empty((n, words), np.uint64)
        if bits[i]:
            _ternary_bits(P, N, has_neg[i], Wps[i], Wns[i], ups[i], los[i], signs[i], nxt,
                          OP, ON)
        else:
            _ternary_gather(T, ptrs[i], mids[i], idxs[i], ups[i], los[i], signs[i], nxt)
            if i + 1 < len(ptrs) and bits[i + 1]:
                _pack_planes(nxt, OP, ON)
        T, P, N = nxt, OP, ON
    out = np.empty(n)
    return _readout_rows(T, readout, scale, centre, root, out)


# =====================================================================================
# the engine
# =====================================================================================


def _split_csr(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row pointers ``ptr`` (d + 1,), ``mid`` (d,) and column indices: row ``j``'s ``+1``
    columns are ``idx[ptr[j]:mid[j]]``, its ``−1`` columns ``idx[mid[j]:ptr[j + 1]]``,
    ascending; int16 indices when the columns fit, else int32."""
    d, p = codes.shape
    pos = codes > 0
    neg = codes < 0
    npos = pos.sum(axis=1)
    nneg = neg.sum(axis=1)
    ptr = np.zeros(d + 1, dtype=np.int64)
    np.cumsum(npos + nneg, out=ptr[1:])
    if ptr[-1] >= 2 ** 31:
        raise ValueError(f"a layer with {int(ptr[-1])} non-zero weights is too large for "
                         "32-bit row pointers")
    mid = ptr[:-1] + npos
    # sort key: sign first (+1 before −1), then the column: one stable pass
    rows, cols = np.nonzero(pos | neg)
    key = rows.astype(np.int64) * (2 * p) + np.where(codes[rows, cols] > 0, 0, p) + cols
    order = np.argsort(key, kind="stable")
    itype = np.uint16 if p <= 2 ** 16 else np.uint32
    return ptr.astype(np.int32), mid.astype(np.int32), cols[order].astype(itype)


def _signed_csr(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row pointers ``rptr`` (d + 1,) and indices into ``(x, 0, −x)`` (length 2p + 1): row
    ``j``'s ``+1`` columns ``i``, then its ``−1`` columns as ``p + 1 + i``, then the padding
    index ``p`` up to a multiple of four entries; int16 indices when ``2p + 1`` fits."""
    d, p = codes.shape
    ptr, mid, idx = _split_csr(codes)
    counts = np.diff(ptr)
    padded = -(-counts // 4) * 4
    rptr = np.zeros(d + 1, dtype=np.int64)
    np.cumsum(padded, out=rptr[1:])
    if rptr[-1] >= 2 ** 31:
        raise ValueError(f"a layer with {int(rptr[-1])} non-zero weights is too large for "
                         "32-bit row pointers")
    itype = np.uint16 if 2 * p + 1 <= 2 ** 16 else np.uint32
    out = np.full(int(rptr[-1]), p, dtype=itype)
    rows = np.repeat(np.arange(d), counts)
    rank = np.arange(idx.size) - ptr[:-1][rows]
    is_neg = np.arange(idx.size) >= mid[rows]
    out[rptr[:-1][rows] + rank] = np.where(is_neg, p + 1 + idx.astype(np.int64), idx)
    return rptr.astype(np.int32), out


def _bit_planes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d, p = codes.shape
    words = (p + 63) // 64

    def plane(mask):
        packed = np.packbits(mask, axis=1, bitorder="little")
        full = np.zeros((d, 8 * words), dtype=np.uint8)
        full[:, :packed.shape[1]] = packed
        return np.ascontiguousarray(full).view(np.uint64)

    return plane(codes > 0), plane(codes < 0)


def _int_threshold(x: np.ndarray, up: bool) -> np.ndarray:
    """``Z > x ⇔ Z > floor(x)`` and ``Z < x ⇔ Z < ceil(x)`` for integers ``|Z| < 2^31 − 1``
    (every sum of a layer with fewer inputs), as int32: clipped beyond every such ``Z``."""
    y = np.floor(x) if up else np.ceil(x)
    return np.clip(np.nan_to_num(y, posinf=2.0 ** 31 - 1, neginf=-2.0 ** 31),
                   -2.0 ** 31, 2.0 ** 31 - 1).astype(np.int32)


def _margins(ptr: np.ndarray, u: float) -> np.ndarray:
    """``1.01 (k + 1) u k`` per row (``k`` non-zeros), inf where ``(k + 1) u ≥ 0.005``."""
    k = np.diff(ptr).astype(np.float64)
    mk = 1.01 * (k + 1.0) * u * k
    mk[(k + 1.0) * u >= 0.005] = math.inf
    return mk


class TernaryEngine:
    """Operands and kernels of the ternary inference path (see the module docstring).

    Parameters
    ----------
    codes : sequence of int8 arrays, shapes (d_ℓ, d_{ℓ−1})
        The weight codes ``C_ℓ`` in {−1, 0, 1}.
    upper, lower : sequences of float64 arrays, shapes (d_ℓ,)
        The thresholds ``u_ℓ ≥ l_ℓ`` on ``C_ℓ T_{ℓ−1}`` (layer 1: on ``C_1 x``).
    odd : sequence of bool
        Whether each activation is odd (codes ``1[z > u] − 1[z < l]``) or even
        (``1[z > u] + 1[z < l]``).
    scale, centre : float
        ``b_L`` and ``m_L`` of the last layer.
    readout : float64 array, shape (d_L,)
        The readout ``w``.
    threads : int, optional
        Threads of the kernels (default: numba's, the number of cores).
    """

    def __init__(self, codes: Sequence[np.ndarray], upper: Sequence[np.ndarray],
                 lower: Sequence[np.ndarray], odd: Sequence[bool], scale: float, centre: float,
                 readout: np.ndarray, *, threads: int | None = None) -> None:
        self.dims = [codes[0].shape[1]] + [c.shape[0] for c in codes]
        self.odd = [bool(o) for o in odd]
        self.signs = [-1 if o else 1 for o in self.odd]
        self.scale = float(scale)
        self.centre = float(centre)
        self.root = math.sqrt(self.dims[-1])
        self.readout = np.ascontiguousarray(readout, dtype=np.float64)
        self.threads = threads
        self.layers: list[dict[str, Any]] = []
        for i, C in enumerate(codes):
            C = np.asarray(C)
            ptr, mid, idx = _split_csr(C)
            layer: dict[str, Any] = {"ptr": ptr, "mid": mid, "idx": idx,
                                     "density": idx.size / max(1, C.size)}
            if i == 0:
                layer["rptr"], layer["ridx"] = _signed_csr(C)
                layer["packed"] = layer["ridx"].dtype == np.uint16
                layer["ridx4"] = (layer["ridx"].view(np.uint64) if layer["packed"]
                                  else np.zeros(0, np.uint64))
                layer["upper"] = np.ascontiguousarray(upper[0], dtype=np.float64)
                layer["lower"] = np.ascontiguousarray(lower[0], dtype=np.float64)
                layer["mk32"] = _margins(ptr, _U32)  # the padding adds exact zeros
                layer["mk64"] = _margins(ptr, _U64)
            else:
                layer["up"] = _int_threshold(np.asarray(upper[i], dtype=np.float64), True)
                layer["lo"] = _int_threshold(np.asarray(lower[i], dtype=np.float64), False)
                if layer["density"] >= BITS_MIN_DENSITY:
                    layer["Wp"], layer["Wn"] = _bit_planes(C)
            self.layers.append(layer)

        self._operands = self._rows_operands()

    def _rows_operands(self) -> tuple | None:
        """The operands of :func:`_forward_rows` as two tuples (the later layers' in
        tuples of one type each), or None where they are not of one type (a layer of
        over 65,536 inputs next to smaller ones, or a single layer): then the layers are
        called one by one."""
        first, rest = self.layers[0], self.layers[1:]
        if not rest or len({layer["idx"].dtype for layer in rest}) != 1:
            return None
        empty = np.zeros((0, 0), dtype=np.uint64)
        ops = (tuple(layer["ptr"] for layer in rest), tuple(layer["mid"] for layer in rest),
               tuple(layer["idx"] for layer in rest), tuple(layer["up"] for layer in rest),
               tuple(layer["lo"] for layer in rest),
               tuple(layer.get("Wp", empty) for layer in rest),
               tuple(layer.get("Wn", empty) for layer in rest),
               np.array(["Wp" in layer for layer in rest]), np.array(self.odd[:-1]),
               np.array(self.signs[1:], dtype=np.int64), np.array(self.dims[2:], dtype=np.int64))
        return ((first["rptr"], first["ridx"], first["ridx4"], first["packed"], first["mk64"],
                 first["upper"], first["lower"], self.signs[0], self.dims[1]),
                ops)

    # -- bookkeeping ---------------------------------------------------------------
    @property
    def threads(self) -> int:
        return self._threads if self._threads is not None else numba.config.NUMBA_NUM_THREADS

    @threads.setter
    def threads(self, value: int | None) -> None:
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                    or not 1 <= value <= numba.config.NUMBA_NUM_THREADS:
                raise ValueError(f"threads must be an integer in [1, "
                                 f"{numba.config.NUMBA_NUM_THREADS}] (numba's thread pool), "
                                 f"got {value!r}")
            value = int(value)
        self._threads = value

    def nbytes(self) -> int:
        """Bytes of the engine's operands (index arrays, bit planes, thresholds, readout;
        ``ridx4`` is a view of layer 1's ``ridx``)."""
        return sum(v.nbytes for layer in self.layers for k, v in layer.items()
                   if isinstance(v, np.ndarray) and k != "ridx4") + self.readout.nbytes

    def plan(self, n: int) -> dict[str, Any]:
        """The kernels a batch of ``n`` samples runs through and the primitive operations
        they perform (for the benchmark's roofline): ``l2_lines``, the 64-byte rows (or
        parts of rows) that the samples-in-columns kernels gather and add; ``gathers``,
        the single loads of the samples-in-rows gathers; ``popcount_words``, the
        ``popcount(a & b)`` of the bit-plane kernels."""
        work = {"kernels": [], "l2_lines": 0, "gathers": 0, "popcount_words": 0}
        if n <= 0:
            return work
        chunks = [min(LANES[-1], n - s) for s in range(0, n, LANES[-1])]
        for i, layer in enumerate(self.layers):
            entries = int(layer["ptr"][-1])   # non-zeros
            if n <= SMALL_BATCH:
                if i > 0 and "Wp" in layer:
                    kind = "bit planes"
                    work["popcount_words"] += 2 * n * layer["Wp"].size
                else:
                    kind = "gather"
                    work["gathers"] += n * (int(layer["rptr"][-1]) if i == 0 else entries)
            else:
                kind = "zero-skipping, samples in columns"
                for c in chunks:
                    W = next(w for w in LANES if w >= c)
                    work["l2_lines"] += entries * -(-W * (4 if i == 0 else 1) // 64)
            work["kernels"].append(kind)
        return work

    # -- evaluation ----------------------------------------------------------------
    def codes(self, X: np.ndarray, *, last_only: bool = False) -> list[np.ndarray]:
        """Codes of every layer (or the last), each (n, d_ℓ) int8, for ``X`` (n, p)
        float64, finite (checked by the caller)."""
        n = X.shape[0]
        if n == 0:
            return [np.zeros((0, d), dtype=np.int8) for d in self.dims[1:]]
        prev, want = numba.get_num_threads(), self.threads
        if prev != want:
            numba.set_num_threads(want)
        try:
            if n <= SMALL_BATCH:
                return self._rows(X, last_only)
            parts = [self._columns(X[s:s + LANES[-1]], last_only)
                     for s in range(0, n, LANES[-1])]
        finally:
            if prev != want:
                numba.set_num_threads(prev)
        if len(parts) == 1:
            return parts[0]
        return [np.concatenate(p, axis=0) for p in zip(*parts)]

    def outputs(self, X: np.ndarray) -> np.ndarray:
        """``f(x)`` for each row of ``X``, (n,) float64."""
        if 0 < X.shape[0] <= SMALL_BATCH and self._operands is not None:
            prev, want = numba.get_num_threads(), self.threads
            if prev != want:
                numba.set_num_threads(want)
            try:
                return _forward_rows(X, *self._operands, self.readout, self.scale,
                                     self.centre, self.root)
            finally:
                if prev != want:
                    numba.set_num_threads(prev)
        n = X.shape[0]
        out = np.empty(n, dtype=np.float64)
        if n <= SMALL_BATCH:
            T = self.codes(X, last_only=True)[-1]
            return _readout_rows(T, self.readout, self.scale, self.centre, self.root, out)
        prev, want = numba.get_num_threads(), self.threads
        if prev != want:
            numba.set_num_threads(want)
        try:
            for s in range(0, n, LANES[-1]):
                part = X[s:s + LANES[-1]]
                T = self._columns(part, last_only=True, transpose=False)[-1]
                _readout_columns(T, part.shape[0], self.readout, self.scale, self.centre,
                                 self.root, out[s:s + LANES[-1]])
        finally:
            if prev != want:
                numba.set_num_threads(prev)
        return out

    def _rows(self, X: np.ndarray, last_only: bool) -> list[np.ndarray]:
        n = X.shape[0]
        first = self.layers[0]
        T = np.empty((n, self.dims[1]), dtype=np.int8)
        P = np.empty((n, (self.dims[1] + 63) // 64), dtype=np.uint64)
        N = np.empty_like(P)
        Xs = np.empty((n, 2 * self.dims[0] + 1))
        xmax = np.empty(n)
        _signed_rows(X, Xs, xmax)
        _first_rows(Xs, xmax, first["rptr"], first["ridx"], first["ridx4"], first["packed"],
                    first["mk64"], first["upper"], first["lower"], self.signs[0], T, P, N)
        out = [T]
        for i in range(1, len(self.layers)):
            layer = self.layers[i]
            nxt = np.empty((n, self.dims[i + 1]), dtype=np.int8)
            if "Wp" in layer:
                OP = np.empty((n, (self.dims[i + 1] + 63) // 64), dtype=np.uint64)
                ON = np.empty_like(OP)
                _ternary_bits(P, N, self.odd[i - 1], layer["Wp"], layer["Wn"], layer["up"],
                              layer["lo"], self.signs[i], nxt, OP, ON)
            else:
                _ternary_gather(out[-1], layer["ptr"], layer["mid"], layer["idx"],
                                layer["up"], layer["lo"], self.signs[i], nxt)
                OP = np.empty((n, (self.dims[i + 1] + 63) // 64), dtype=np.uint64)
                ON = np.empty_like(OP)
                if i + 1 < len(self.layers) and "Wp" in self.layers[i + 1]:
                    _pack_planes(nxt, OP, ON)
            P, N = OP, ON
            out.append(nxt)
            if last_only:
                del out[0]
        return out

    def _columns(self, X: np.ndarray, last_only: bool, transpose: bool = True
                 ) -> list[np.ndarray]:
        """Codes of a chunk of at most ``LANES[-1]`` samples, each (n, d) int8, or, without
        ``transpose``, (nb, d, Wb) by blocks of lanes (see :func:`_first_columns`)."""
        n = X.shape[0]
        W = next(w for w in LANES if w >= n)
        wb = min(W, 64)
        Xt = np.empty((W // wb, self.dims[0], wb), dtype=np.float32)
        xmax = np.empty(W, dtype=np.float64)
        _transpose32(X, Xt, xmax)
        first = self.layers[0]
        T = np.empty((W // wb, self.dims[1], wb), dtype=np.int8)
        _first_columns(X, Xt, xmax, first["ptr"], first["mid"], first["idx"], first["mk32"],
                       first["upper"], first["lower"], self.signs[0], T)
        del Xt
        out = [T]
        for i in range(1, len(self.layers)):
            layer = self.layers[i]
            nxt = np.empty((W // wb, self.dims[i + 1], wb), dtype=np.int8)
            _ternary_columns(out[-1], layer["ptr"], layer["mid"], layer["idx"], layer["up"],
                             layer["lo"], self.signs[i], nxt)
            out.append(nxt)
            if last_only:
                del out[0]
        if not transpose:
            return out
        return [np.ascontiguousarray(T.transpose(0, 2, 1).reshape(W, -1)[:n]) for T in out]
