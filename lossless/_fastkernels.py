"""Fast exact CK/NTK recursion for activations with simple closed forms.

For ReLU, leaky ReLU, abs, the identity (arc-cosine kernel of degree 1), sign and the
step at 0 (arc-sine kernel) and erf (arc-sine kernel of Williams), the two-point
expectations of a layer depend on the pair ``(i, j)`` only through ``K_ij`` and the two
diagonal entries ``K_ii``, ``K_jj``. The whole depth-L recursion is then *entrywise*
once the diagonals of every layer are known (they follow from a recursion on n
numbers), so this module

- computes the Gram matrix ``X X^T`` by large row blocks on and below the diagonal only;
- runs all L layers on one cache-sized strip of rows of the lower triangle at a time
  (the strip stays in cache for every layer), in place, with three or four strip-sized
  buffers, on a few threads (NumPy releases the GIL inside ufuncs; each entry is
  computed by the same operations whichever thread or strip it falls in, so the result
  does not depend on the number of threads or on the strip sizes);
- mirrors the lower triangle into the upper one at the end: the kernels are exactly
  symmetric.

An optional torch backend runs the same formulas on whole matrices on any torch device
(for a GPU). The generic method of :mod:`lossless._dual` stays the reference; tests
cross-check the two.

A step object is obtained from the activation itself, ``act.fast_dual()`` (None when
there is no fast path); this module never dispatches on activation names.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

import numpy as np

from lossless._dual import DualExpectations

__all__ = [
    "FastStep",
    "ArcCosineStep",
    "ArcSineStep",
    "ErfStep",
    "piecewise_linear_step",
    "default_threads",
    "recursion",
]

_TWO_PI = 2.0 * math.pi
_HALF_PI = 0.5 * math.pi
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)
#: entries per strip (4-5 buffers of 256 KiB: in L2/L3; larger strips mean fewer NumPy calls)
_STRIP_ENTRIES = 32_768
#: rows per block of the Gram matrix (large blocks keep BLAS efficient)
_GRAM_ROWS = 512
#: tile side for the final mirroring
_TILE = 256


def default_threads() -> int:
    """Threads for the strip loop: the usable CPUs, at most ``OMP_NUM_THREADS`` if set."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.strip().isdigit() and int(env) > 0:
        cpus = min(cpus, int(env))
    return max(1, min(cpus, 8))


# ----------------------------------------------------------------------------------
# per-layer steps
# ----------------------------------------------------------------------------------
class FastStep:
    """One layer of the recursion with a closed form in ``(K_ij, K_ii, K_jj)``.

    Subclasses implement

    - ``prepare(s, centre) -> (vectors, diag_values, diag_derivatives)`` for the input
      scales ``s = sqrt(diag K)`` (shape (n,)), where ``vectors`` are per-sample
      arrays used by the strip formulas;
    - ``strip(G, r0, r1, vec, out, der, w)``: from the input kernel strip ``G``
      (rows ``r0:r1``, columns ``0:c``), write the layer values into ``out`` and, if
      ``der`` is not None, the derivative kernel into ``der`` (``w`` is scratch);
    - ``torch_full(K, vec, want_der)``: the same on whole torch matrices.

    Attributes
    ----------
    has_jumps : bool
        The derivative kernel is infinite on the diagonal.
    """

    has_jumps: bool = False
    method: str = ""

    def prepare(self, s: np.ndarray, centre: float) -> tuple[dict, np.ndarray, np.ndarray]:
        raise NotImplementedError  # pragma: no cover

    def strip(self, G, r0, r1, vec, out, der, w) -> None:  # pragma: no cover
        raise NotImplementedError

    def torch_full(self, K, vec, want_der):  # pragma: no cover
        raise NotImplementedError

    def dual(self, scales: np.ndarray, centre: float = 0.0) -> "FastDual":
        """The same closed forms as a :class:`lossless._dual.DualExpectations`."""
        return FastDual(self, scales, centre)


class ArcCosineStep(FastStep):
    """``sigma(t) = offset + a t + D relu(t)`` (ReLU: a = 0, D = 1; leaky ReLU; abs: a = -1,
    D = 2; identity: D = 0).

    With ``rho = K_ij / (s_i s_j)`` and ``mu_i = offset + D s_i / sqrt(2 pi) - c``:

    ``E[(sigma(u) - c)(sigma(v) - c)] = mu_i mu_j + (a^2 + a D) K_ij
    + D^2 / (2 pi) [s_i s_j (sqrt(1 - rho^2) - 1) + K_ij (pi/2 + asin rho)]``

    (Cho & Saul's arc-cosine kernel of degree 1, centred) and
    ``E[sigma'(u) sigma'(v)] = a^2 + a D + D^2 (pi/2 + asin rho) / (2 pi)``.
    """

    method = "closed form (arc-cosine kernel, fast path)"

    def __init__(self, a: float, D: float, offset: float = 0.0) -> None:
        self.a, self.D, self.offset = float(a), float(D), float(offset)
        self.lin = self.a * self.a + self.a * self.D
        self.c2 = self.D * self.D / _TWO_PI

    def prepare(self, s, centre):
        mu = self.offset + self.D * _INV_SQRT2PI * s - centre
        inv = 1.0 / s
        dval = mu * mu + s * s * (self.lin + self.D * self.D * (0.5 - 1.0 / _TWO_PI))
        dder = np.full(s.size, self.lin + 0.5 * self.D * self.D)
        return {"s": s, "inv": inv, "mu": mu}, dval, dder

    def strip(self, G, r0, r1, vec, out, der, w):
        c = G.shape[1]
        inv, s, mu = vec["inv"], vec["s"], vec["mu"]
        np.multiply(G, inv[r0:r1, None], out=out)
        out *= inv[None, :c]
        np.clip(out, -1.0, 1.0, out=out)  # rho
        np.multiply(out, out, out=w)
        np.subtract(1.0, w, out=w)
        np.sqrt(w, out=w)  # sqrt(1 - rho^2)
        np.arcsin(out, out=out)
        out += _HALF_PI  # pi - arccos(rho)
        if der is not None:
            np.multiply(out, self.c2, out=der)
            if self.lin:
                der += self.lin
        w -= 1.0
        w *= s[r0:r1, None]
        w *= s[None, :c]
        out *= G
        out += w
        out *= self.c2
        if self.lin:
            np.multiply(G, self.lin, out=w)
            out += w
        np.multiply(mu[r0:r1, None], mu[None, :c], out=w)
        out += w

    def torch_full(self, K, vec, want_der):
        import torch

        s, inv, mu = vec["s"], vec["inv"], vec["mu"]
        rho = (K * inv[:, None] * inv[None, :]).clamp_(-1.0, 1.0)
        om = torch.sqrt(1.0 - rho * rho)
        ang = torch.asin(rho).add_(_HALF_PI)
        der = ang * self.c2 + self.lin if want_der else None
        out = (ang * K + (om - 1.0) * (s[:, None] * s[None, :])) * self.c2
        if self.lin:
            out += self.lin * K
        out += mu[:, None] * mu[None, :]
        return out, der


def _arcsine_strip(G, r0, r1, e, amplitude, constant, out, der, w) -> None:
    """One strip of an arc-sine kernel, in place: with ``z = G_ij e_i e_j`` (clipped to
    [-1, 1]), ``out = amplitude asin(z) + constant`` and, if ``der`` is given,
    ``der = amplitude e_i e_j / sqrt(1 - z^2)``. Shared by the sign/step and erf steps."""
    c = G.shape[1]
    np.multiply(G, e[r0:r1, None], out=out)
    out *= e[None, :c]
    np.clip(out, -1.0, 1.0, out=out)
    if der is not None:
        np.multiply(out, out, out=w)
        np.subtract(1.0, w, out=w)
        np.sqrt(w, out=w)
        np.divide(amplitude, w, out=der)
        der *= e[r0:r1, None]
        der *= e[None, :c]
    np.arcsin(out, out=out)
    out *= amplitude
    if constant:
        out += constant


class ArcSineStep(FastStep):
    """``sigma(t) = offset + J 1[t > 0]`` (sign: offset -1, J = 2; the step at 0).

    ``E[(sigma(u) - c)(sigma(v) - c)] = (offset + J/2 - c)^2 + J^2 asin(rho) / (2 pi)`` and,
    off the diagonal, ``E[sigma'(u) sigma'(v)] = J^2 / (2 pi s_i s_j sqrt(1 - rho^2))``
    (the bivariate density at the origin; infinite on the diagonal).
    """

    method = "closed form (arc-sine kernel, fast path)"
    has_jumps = True

    def __init__(self, J: float, offset: float = 0.0) -> None:
        self.J, self.offset = float(J), float(offset)
        self.c2 = self.J * self.J / _TWO_PI

    def prepare(self, s, centre):
        mu = self.offset + 0.5 * self.J - centre
        inv = 1.0 / s
        dval = np.full(s.size, mu * mu + 0.25 * self.J * self.J)
        dder = np.full(s.size, np.inf)
        return {"inv": inv, "mu2": mu * mu}, dval, dder

    def strip(self, G, r0, r1, vec, out, der, w):
        _arcsine_strip(G, r0, r1, vec["inv"], self.c2, vec["mu2"], out, der, w)

    def torch_full(self, K, vec, want_der):
        import torch

        inv = vec["inv"]
        rho = (K * inv[:, None] * inv[None, :]).clamp_(-1.0, 1.0)
        der = None
        if want_der:
            der = self.c2 / torch.sqrt(1.0 - rho * rho) * (inv[:, None] * inv[None, :])
        return torch.asin(rho) * self.c2 + vec["mu2"], der


class ErfStep(FastStep):
    """``sigma(t) = erf(b t)`` (Williams' arc-sine kernel).

    With ``e_i = (2 b^2 / (1 + 2 b^2 K_ii))^{1/2}`` and ``z = K_ij e_i e_j``:
    ``E[(sigma(u) - c)(sigma(v) - c)] = c^2 + (2/pi) asin(z)`` and
    ``E[sigma'(u) sigma'(v)] = (2 / pi) e_i e_j / sqrt(1 - z^2)``.
    """

    method = "closed form (arc-sine, fast path)"

    def __init__(self, sharpness: float) -> None:
        self.b2 = float(sharpness) ** 2

    def prepare(self, s, centre):
        z = 2.0 * self.b2 * s * s
        e = np.sqrt(2.0 * self.b2 / (1.0 + z))  # sqrt(2 b^2) e_i
        dval = (2.0 / math.pi) * np.arcsin(z / (1.0 + z)) + centre * centre
        dder = (4.0 * self.b2 / math.pi) / np.sqrt(1.0 + 4.0 * self.b2 * s * s)
        return {"e": e, "c2": centre * centre}, dval, dder

    def strip(self, G, r0, r1, vec, out, der, w):
        _arcsine_strip(G, r0, r1, vec["e"], 2.0 / math.pi, vec["c2"], out, der, w)

    def torch_full(self, K, vec, want_der):
        import torch

        e = vec["e"]
        ee = e[:, None] * e[None, :]
        z = (K * ee).clamp_(-1.0, 1.0)
        der = None
        if want_der:
            der = (2.0 / math.pi) * ee / torch.sqrt(1.0 - z * z)
        return torch.asin(z) * (2.0 / math.pi) + vec["c2"], der


def piecewise_linear_step(
    breakpoints: np.ndarray, slopes: np.ndarray, jumps: np.ndarray, offset: float
) -> FastStep | None:
    """The fast step of a piecewise-linear activation, or None if it has no fast path.

    Fast paths: no breakpoint (affine), or one breakpoint at 0 that is either a kink
    without a jump (ReLU, leaky ReLU, abs) or a jump with zero slopes (sign, step at 0).
    ``offset`` is the intercept of the leftmost piece (``sigma(0-)``).
    """
    bp = np.asarray(breakpoints, dtype=float)
    sl = np.asarray(slopes, dtype=float)
    jp = np.asarray(jumps, dtype=float)
    if bp.size == 0:
        return ArcCosineStep(sl[0], 0.0, offset)
    if bp.size != 1 or bp[0] != 0.0:
        return None
    if jp[0] == 0.0:
        return ArcCosineStep(sl[0], sl[1] - sl[0], offset)
    if sl[0] == 0.0 and sl[1] == 0.0:
        return ArcSineStep(jp[0], offset)
    return None


class FastDual(DualExpectations):
    """A :class:`FastStep` seen as block dual expectations (for mixed stacks).

    ``values(rows, cols, rho)`` and ``derivatives(rows, cols, rho)`` follow
    :class:`lossless._dual.DualExpectations`.
    """

    def __init__(self, step: FastStep, scales: np.ndarray, centre: float = 0.0) -> None:
        super().__init__(scales, centre)
        self.step = step
        self.method = step.method
        self._vec, self._dval, self._dder = step.prepare(self.scales, self.centre)

    def _block(self, rows, cols, rho, derivative: bool) -> np.ndarray:
        s = self.scales
        ri = np.arange(s.size)[rows]
        cj = np.arange(s.size)[cols]
        G = np.asarray(rho, dtype=float) * np.multiply.outer(s[ri], s[cj])
        out = np.empty_like(G)
        w = np.empty_like(G)
        der = np.empty_like(G) if derivative else None
        # the strip formulas index per-sample vectors as v[r0:r1, None] (rows) and
        # v[None, :c] (columns): hand them the rows and columns of this block
        local = {k: v if np.ndim(v) == 0 else _Pair(v[ri], v[cj]) for k, v in self._vec.items()}
        with np.errstate(divide="ignore", invalid="ignore"):
            self.step.strip(G, 0, len(ri), local, out, der, w)
        return der if derivative else out

    def values(self, rows, cols, rho):
        return self._block(rows, cols, rho, False)

    def derivatives(self, rows, cols, rho):
        return self._block(rows, cols, rho, True)

    def diagonal_values(self):
        return self._dval.copy()

    def diagonal_derivatives(self):
        return self._dder.copy()


class _Pair:
    """Row and column vectors under one name: ``v[r0:r1, None]`` gives the rows,
    ``v[None, :c]`` the columns (the two indexings the strip formulas use)."""

    def __init__(self, rows: np.ndarray, cols: np.ndarray) -> None:
        self.rows, self.cols = rows, cols

    def __getitem__(self, key):
        first, second = key
        if first is None:  # v[None, :c]
            return self.cols[None, second]
        return self.rows[first, None]


# ----------------------------------------------------------------------------------
# the fused recursion (NumPy)
# ----------------------------------------------------------------------------------
class _SingleThreadedBlas:
    """Context manager: NumPy's BLAS on one thread while our own threads call it.

    OpenBLAS splits one product statically over its threads and waits for all of them:
    on a machine shared with other processes one descheduled thread stalls the product
    (measured here: 180 ms for a 512 x 784 Gram on two OpenBLAS threads, 63 ms on one,
    35 ms as two blocks on two of our threads, each with a one-thread OpenBLAS). The
    thread count is set through ``threadpoolctl`` (the library made for this) and
    restored when the last concurrent user leaves. ``available`` is False when no BLAS
    with a thread-count setting is loaded; then nothing is changed.
    """

    _lock = threading.Lock()
    _users = 0
    _limiter: Any = None
    _blas: Any = None
    _searched = False

    @classmethod
    def _find(cls) -> Any:
        if not cls._searched:
            cls._searched = True
            from threadpoolctl import ThreadpoolController

            blas = ThreadpoolController().select(user_api="blas")
            cls._blas = blas if blas.lib_controllers else None
        return cls._blas

    @classmethod
    def num_threads(cls) -> int | None:
        """The BLAS's current thread count (None without a controllable BLAS)."""
        blas = cls._find()
        if blas is None:
            return None
        return min(c.num_threads for c in blas.lib_controllers)

    @property
    def available(self) -> bool:
        return self._find() is not None

    def __enter__(self) -> "_SingleThreadedBlas":
        blas = self._find()
        if blas is not None:
            with self._lock:
                if type(self)._users == 0:
                    type(self)._limiter = blas.limit(limits=1)
                type(self)._users += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._find() is not None:
            with self._lock:
                type(self)._users -= 1
                if type(self)._users == 0 and type(self)._limiter is not None:
                    type(self)._limiter.restore_original_limits()
                    type(self)._limiter = None


def _gram_lower(X: np.ndarray, out: np.ndarray, threads: int = 1) -> None:
    """``out[i, j] = x_i . x_j`` for ``j <= i`` (by row blocks; the rest is unspecified).

    The right factor is a separate transposed copy of ``X``: with ``X`` and ``X.T``
    NumPy calls BLAS ``syrk``, which in OpenBLAS is erratic on small matrices with
    several threads (measured up to 70 times slower than ``gemm`` for n = 256). With
    ``threads > 1`` and an OpenBLAS that can be told so, the row blocks are spread over
    our own threads, each product on one BLAS thread (:class:`_SingleThreadedBlas`);
    otherwise BLAS threads each block itself.
    """
    n = X.shape[0]
    XT = np.ascontiguousarray(X.T)
    blas = _SingleThreadedBlas()
    if threads > 1 and blas.available:
        rows = max(32, min(_GRAM_ROWS, n // (2 * threads) or 1))
        blocks = [(r0, min(n, r0 + rows)) for r0 in range(0, n, rows)]
        blocks.sort(key=lambda b: -b[1])  # largest products first: better balance

        def one(block: tuple[int, int]) -> None:
            r0, r1 = block
            np.matmul(X[r0:r1], XT[:, :r1], out=out[r0:r1, :r1])

        with blas:
            _run(one, blocks, threads)
        return
    for r0 in range(0, n, _GRAM_ROWS):
        r1 = min(n, r0 + _GRAM_ROWS)
        np.matmul(X[r0:r1], XT[:, :r1], out=out[r0:r1, :r1])


def _strips(n: int, block_rows: int | None) -> list[tuple[int, int]]:
    out = []
    r0 = 0
    side = int(math.isqrt(_STRIP_ENTRIES))
    while r0 < n:
        if block_rows is None:
            b = max(1, _STRIP_ENTRIES // max(r0, side))
        else:
            b = int(block_rows)
        r1 = min(n, r0 + b)
        out.append((r0, r1))
        r0 = r1
    return out


def _mirror_tiles(n: int) -> list[tuple[int, int]]:
    return [(i0, min(n, i0 + _TILE)) for i0 in range(0, n, _TILE)]


def _mirror(A: np.ndarray, row_tile: tuple[int, int]) -> None:
    """Copy the lower triangle of the rows ``i0:i1`` into the upper triangle."""
    i0, i1 = row_tile
    for j0 in range(0, i0, _TILE):
        j1 = min(i0, j0 + _TILE)
        A[j0:j1, i0:i1] = A[i0:i1, j0:j1].T
    D = A[i0:i1, i0:i1]
    np.copyto(D, D.T, where=_upper_mask(i1 - i0))


_MASKS: dict[int, np.ndarray] = {}


def _upper_mask(m: int) -> np.ndarray:
    """Boolean mask of the strict upper triangle of an m x m matrix (cached)."""
    mask = _MASKS.get(m)
    if mask is None:
        mask = np.triu(np.ones((m, m), dtype=bool), 1)
        if len(_MASKS) < 64:
            _MASKS[m] = mask
    return mask


def _run(fn, items, threads: int) -> None:
    if threads <= 1 or len(items) <= 1:
        for item in items:
            fn(item)
        return
    # dynamic scheduling: each worker takes the next strip (list iterators are
    # thread-safe under the GIL), so a worker slowed by other processes does less
    queue = iter(items)

    def work():
        for item in queue:
            fn(item)

    pool = _pool(threads)
    for fut in [pool.submit(work) for _ in range(threads)]:
        fut.result()


_POOLS: dict[int, ThreadPoolExecutor] = {}


def _pool(threads: int) -> ThreadPoolExecutor:
    """A persistent pool per thread count (starting threads costs more than small strips)."""
    pool = _POOLS.get(threads)
    if pool is None:
        pool = _POOLS[threads] = ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="lossless-kernels"
        )
    return pool


def prepare_layers(
    diag0: np.ndarray, steps: Sequence[FastStep], centres: Sequence[float]
) -> tuple[list[dict], list[np.ndarray], list[np.ndarray]]:
    """Per-layer vectors and diagonals (values and derivative kernels) of the recursion.

    Raises
    ------
    ValueError
        A sample whose pre-activation variance is not positive.
    """
    diag = np.asarray(diag0, dtype=float)
    vecs, dvals, dders = [], [], []
    for li, (step, c) in enumerate(zip(steps, centres)):
        if not np.all(diag > 0):
            bad = int(np.argmin(np.where(np.isnan(diag), -np.inf, diag)))
            raise ValueError(
                f"sample {bad} has pre-activation variance {diag[bad]!r} at layer {li + 1}; the "
                "kernels need every sample to have a positive norm (remove zero rows of X)"
            )
        vec, dval, dder = step.prepare(np.sqrt(diag), float(c))
        vecs.append(vec)
        dvals.append(dval)
        dders.append(dder)
        diag = dval
    return vecs, dvals, dders


def recursion(
    X: np.ndarray,
    steps: Sequence[FastStep],
    centres: Sequence[float],
    *,
    ntk: bool,
    block_rows: int | None = None,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """CK (and NTK) of the fused recursion, exactly symmetric.

    Parameters
    ----------
    X : ndarray, shape (n, p), float64, finite
    steps : list of FastStep, length L
    centres : list of float, length L
        Centring constant of each layer.
    ntk : bool
    block_rows : int, optional
        Rows per strip (default: strips of about 32,768 entries).
    threads : int, optional
        Default :func:`default_threads`.

    Returns
    -------
    ck : ndarray, shape (n, n)
    ntk : ndarray, shape (n, n) or None
        With an activation with jumps, the NTK diagonal is ``inf`` here (the caller
        decides whether to raise or to write NaN).
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    n = X.shape[0]
    threads = default_threads() if threads is None else max(1, int(threads))
    CK = np.zeros((n, n))  # zeros (lazily mapped): no stale values above the Gram blocks
    _gram_lower(X, CK, threads)
    if n * n < 8 * _STRIP_ENTRIES:  # a few strips: threads cost more than they bring
        threads = 1
    diag0 = np.einsum("ij,ij->i", X, X)
    vecs, dvals, dders = prepare_layers(diag0, steps, centres)
    NT = np.empty((n, n)) if ntk else None
    ndiag = diag0.copy()
    if ntk:
        with np.errstate(invalid="ignore"):
            for dv, dd in zip(dvals, dders):
                ndiag = dv + ndiag * dd
    L = len(steps)

    def one(strip: tuple[int, int]) -> None:
        r0, r1 = strip
        b = r1 - r0
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            # (entries above the diagonal may be stale: they are computed, then
            # overwritten by the mirror; every step is entrywise)
            G = CK[r0:r1, :r1].copy()
            kk = np.arange(b)
            cc = r0 + kk
            G[kk, cc] = diag0[r0:r1]
            N = G.copy() if ntk else None
            out = np.empty_like(G)
            w = np.empty_like(G)
            der = np.empty_like(G) if ntk else None
            for li in range(L):
                steps[li].strip(G, r0, r1, vecs[li], out, der, w)
                out[kk, cc] = dvals[li][r0:r1]
                if ntk:
                    N *= der
                    N += out
                G, out = out, G
            CK[r0:r1, :r1] = G
            if ntk:
                N[kk, cc] = ndiag[r0:r1]
                NT[r0:r1, :r1] = N

    _run(one, _strips(n, block_rows), threads)
    tiles = _mirror_tiles(n)
    _run(lambda t: _mirror(CK, t), tiles, threads)
    if ntk:
        _run(lambda t: _mirror(NT, t), tiles, threads)
    return CK, NT


# ----------------------------------------------------------------------------------
# torch backend (whole matrices, any device)
# ----------------------------------------------------------------------------------
def torch_recursion(
    X: Any,
    steps: Sequence[FastStep],
    centres: Sequence[float],
    *,
    ntk: bool,
    device: Any = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The same recursion with torch (float64) on ``device`` (default: X's device).

    Works on whole matrices (the device's parallelism does the rest) and returns NumPy
    arrays, exactly symmetric (the lower triangle is mirrored).
    """
    import torch

    if isinstance(X, torch.Tensor):
        Xt = X.detach().to(dtype=torch.float64, device=device if device is not None else X.device)
    else:
        Xt = torch.as_tensor(np.asarray(X, dtype=np.float64), device=device)
    K = Xt @ Xt.T
    diag0 = (Xt * Xt).sum(1)
    vecs, dvals, dders = prepare_layers(diag0.cpu().numpy(), steps, centres)
    idx = torch.arange(K.shape[0], device=K.device)
    K[idx, idx] = diag0
    N = K.clone() if ntk else None

    def dev(v):
        return torch.as_tensor(v, dtype=torch.float64, device=K.device) if np.ndim(v) else float(v)

    for li, step in enumerate(steps):
        vec = {k: dev(v) for k, v in vecs[li].items()}
        new, der = step.torch_full(K, vec, ntk)
        new[idx, idx] = dev(dvals[li])
        if ntk:
            der[idx, idx] = dev(dders[li])
            N *= der
            N += new
        K = new
    K = torch.tril(K) + torch.tril(K, -1).T
    if ntk:
        N = torch.tril(N) + torch.tril(N, -1).T
    return K.cpu().numpy(), (N.cpu().numpy() if ntk else None)
