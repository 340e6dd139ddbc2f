"""The networks compared at equal memory (the practice chapter).

The dense original, the compressed network of :mod:`lossless.compress`, the baselines
derived from the dense weights (magnitude pruning, naive ternarisation, random
sparsification) and a narrower dense network, all seen through their last-layer
features (:class:`FeatureNetwork`), with budgets matched to the compressed network's by
the memory model of :mod:`lossless.memory` (whose names are re-exported here).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from lossless import _checks, compress, networks
from lossless.activations import Activation
from lossless.memory import (ACCOUNTINGS, DENSE_BITS, MemoryCost, dense_memory, sparse_float_memory,
                             ternary_memory)

__all__ = [
    "quantize_rows",
    "magnitude_prune",
    "naive_ternarize",
    "random_sparsify",
    "FeatureNetwork",
    "dense_network",
    "compressed_network",
    "pruned_network",
    "naive_ternary_network",
    "random_sparse_network",
    "narrow_widths",
    "narrow_dense_network",
]

#: How a baseline's budget is matched: "-" (not matched) or an accounting of
#: :data:`lossless.memory.ACCOUNTINGS`.
MATCHED = ("-", *sorted(ACCOUNTINGS))


# =====================================================================================
# baselines: transforms of dense weights
# =====================================================================================


def _check_weight(W: Any) -> torch.Tensor:
    if not isinstance(W, torch.Tensor) or not W.is_floating_point():
        raise TypeError(f"W must be a floating torch.Tensor, got {_checks.describe(W)}")
    if W.requires_grad:
        raise TypeError(f"W must not require grad (pass W.detach()), got {_checks.describe(W)}")
    if W.numel() == 0:
        raise ValueError("W must have at least one entry")
    if not bool(torch.isfinite(W).all()):
        raise ValueError(f"W must be finite, got {int((~torch.isfinite(W)).sum())} non-finite "
                         "entries (NaN or inf)")
    return W


def _count(fraction: float, N: int, name: str) -> int:
    m = int(round(fraction * N))
    if m < 1:
        raise ValueError(f"{name} = {fraction:.3g} keeps no weight of a matrix with {N} entries "
                         f"(round({fraction:.3g} * {N}) = 0)")
    return m


def _unit_mean_square(W: torch.Tensor, what: str) -> torch.Tensor:
    ms = float((W.double() ** 2).mean())
    if not ms > 0.0:
        raise ValueError(f"W has no non-zero entry among the {what}: the result cannot be "
                         "rescaled to unit mean square (W is zero or degenerate)")
    return W / math.sqrt(ms)


def quantize_rows(W: torch.Tensor, bits: int) -> torch.Tensor:
    """Post-training quantisation: per-row symmetric round-to-nearest on ``bits`` bits.

    Each row ``w`` becomes ``s * round(w / s)`` with ``s = max|w| / (2^(bits-1) - 1)``
    (codes in ``[-(2^(bits-1) - 1), 2^(bits-1) - 1]``, zero kept exactly zero): the
    weight-only scheme of torch's dynamic int8 ``Linear`` (per-channel) and of int4
    weight-only quantisation without groups. The result is what
    :func:`lossless.memory.encode_weights` stores as ``int8``/``int4``/``csr-int8``.

    Parameters
    ----------
    W : Tensor, shape (rows, cols)
    bits : int
        2 to 8.

    Returns
    -------
    Tensor, shape of ``W``, dtype of ``W``
    """
    W = _check_weight(W)
    if W.ndim != 2:
        raise ValueError(f"W must be a matrix (2-D), got shape {tuple(W.shape)}")
    bits = _checks.integer(bits, "bits", minimum=2, maximum=8)
    qmax = 2 ** (bits - 1) - 1
    Wd = W.double()
    scale = Wd.abs().amax(dim=1, keepdim=True).to(torch.float32).double() / qmax
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    # scale rounded to float32 first, so that the stored (float32) scale reproduces W
    safe = safe.to(torch.float32).double()
    return (torch.round(Wd / safe).clamp(-qmax, qmax) * safe).to(W.dtype)


def magnitude_prune(W: torch.Tensor, kept_fraction: float, *,
                    rescale: bool = True) -> torch.Tensor:
    """Keep the ``round(k N)`` entries of largest ``|w|``, zero the rest, rescale.

    Unstructured, per matrix (as ``torch.nn.utils.prune.l1_unstructured``); the result
    is rescaled so that the mean of its squared entries (zeros included) is exactly 1,
    i.e. unit variance like the weights the theory assumes.

    Parameters
    ----------
    W : Tensor, any shape
        Dense weights.
    kept_fraction : float
        ``k`` in (0, 1].
    rescale : bool, default True
        Rescale to unit mean square (random weights, whose scale the theory fixes);
        False keeps the kept entries as they are (pruning a trained network).

    Returns
    -------
    Tensor, shape of ``W``
    """
    W = _check_weight(W)
    k = _checks.fraction(kept_fraction, "kept_fraction", low_open=True, high_open=False)
    rescale = _checks.flag(rescale, "rescale")
    flat = W.reshape(-1)
    m = _count(k, flat.numel(), "kept_fraction")
    keep = torch.topk(flat.abs(), m, sorted=False).indices
    out = torch.zeros_like(flat)
    out[keep] = flat[keep]
    if not rescale:
        return out.reshape(W.shape)
    return _unit_mean_square(out, f"{m} of largest |w| kept").reshape(W.shape)


def naive_ternarize(W: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Sign of ``W`` with a threshold at the ``ε`` quantile of ``|w|``, scaled.

    The ``round(ε N)`` entries of smallest ``|w|`` become 0, the others ``± c`` with
    their sign, ``c = sqrt(N / #non-zeros)`` so that the mean square is exactly 1. The
    network keeps its original activations (only the weights are quantised).

    Parameters
    ----------
    W : Tensor, any shape
    sparsity : float
        ``ε`` in [0, 1).

    Returns
    -------
    Tensor, shape of ``W``, values in ``{-c, 0, c}``
    """
    W = _check_weight(W)
    eps = _checks.fraction(sparsity, "sparsity")
    flat = W.reshape(-1)
    N = flat.numel()
    m = N - int(round(eps * N))
    if m < 1:
        raise ValueError(f"sparsity = {eps:g} leaves no non-zero weight in a matrix with "
                         f"{N} entries")
    keep = torch.topk(flat.abs(), m, sorted=False).indices
    nonzero = int(torch.count_nonzero(flat[keep]))
    if nonzero < m:
        raise ValueError(f"W has {int(torch.count_nonzero(flat))} non-zero entries, fewer than "
                         f"the {m} that naive_ternarize keeps at sparsity = {eps:g}: the "
                         "result would not have unit mean square (W is zero or degenerate)")
    out = torch.zeros_like(flat)
    out[keep] = torch.sign(flat[keep]) * math.sqrt(N / m)
    return out.reshape(W.shape)


def random_sparsify(W: torch.Tensor, kept_fraction: float,
                    generator: torch.Generator) -> torch.Tensor:
    """Keep ``round(k N)`` entries at uniformly random positions, zero the rest, rescale.

    The positions come from ``torch.randperm(N, generator=generator)``; the result is
    rescaled to mean square exactly 1.

    Parameters
    ----------
    W : Tensor, any shape
    kept_fraction : float
        ``k`` in (0, 1].
    generator : torch.Generator

    Returns
    -------
    Tensor, shape of ``W``
    """
    W = _check_weight(W)
    k = _checks.fraction(kept_fraction, "kept_fraction", low_open=True, high_open=False)
    _checks.torch_generator(generator, "generator")
    flat = W.reshape(-1)
    m = _count(k, flat.numel(), "kept_fraction")
    keep = torch.randperm(flat.numel(), generator=generator)[:m]
    out = torch.zeros_like(flat)
    out[keep] = flat[keep]
    return _unit_mean_square(out, f"{m} randomly kept").reshape(W.shape)


# =====================================================================================
# the networks compared
# =====================================================================================


def _n_weights(p: int, widths: Sequence[int]) -> int:
    dims = [int(p)] + [int(d) for d in widths]
    return sum(a * b for a, b in zip(dims[:-1], dims[1:]))


@dataclass(frozen=True, eq=False)
class FeatureNetwork:
    """A network with fixed hidden weights, seen through its last-layer features.

    Attributes
    ----------
    method : str
        ``"dense"``, ``"compressed"``, ``"magnitude pruning"``, ``"naive ternary"``,
        ``"random sparsification"`` or ``"narrow dense"``.
    model : torch.nn.Module
        A :class:`lossless.networks.MLP` or a :class:`lossless.compress.CompressedMLP`
        (anything with ``features(X)``, ``centres`` and ``layers``).
    memory : MemoryCost
    sparsity : float
        The target ε (compressed and naive ternary) or ``1 - k`` (pruning, random
        sparsification), 0 for dense.
    kept_fraction : float
        Measured fraction of non-zero hidden weights.
    shift : float
        Predicted CK identity shift ``(tau_L^c)^2 - tau_L^2`` (0 for networks that keep
        the original activations).
    matched : str
        Accounting under which the memory budget was matched (``"entropy"``,
        ``"authors"``) or ``"-"``.
    surrogates : tuple or None
        Straight-through derivatives for layers with jumps (used by :func:`finetune`).
    evaluator : torch.nn.Module or None
        Module used by :meth:`features` instead of ``model`` (the float32 unpacked
        reference of a :class:`~lossless.compress.CompressedMLP`, which computes the
        same network faster than the packed integer path).
    """

    method: str
    model: Any
    memory: MemoryCost
    sparsity: float = 0.0
    kept_fraction: float = 1.0
    shift: float = 0.0
    matched: str = "-"
    surrogates: tuple | None = None
    evaluator: Any = field(default=None, repr=False)

    @property
    def layers(self) -> tuple:
        return tuple(self.model.layers)

    @property
    def widths(self) -> tuple:
        return tuple(self.model.widths)

    def hidden_weights(self) -> list[torch.Tensor]:
        """Dense float32 copies of ``W_1..W_L`` (shape ``(d_l, d_{l-1})``)."""
        if isinstance(self.model, compress.CompressedMLP):
            return [self.model.weights(i, torch.float32) for i in range(self.model.depth)]
        return [W.detach().clone() for W in self.model.hidden]

    def features(self, X: Any, *, batch_size: int = 4096) -> np.ndarray:
        """Last-layer features ``Sigma_L``, shape (n, d_L), float64.

        Parameters
        ----------
        X : array_like, shape (n, p)
        batch_size : int
            Rows per forward pass.
        """
        p = getattr(self.model, "p", None)
        X = _checks.real_array(X, "X", ndim=2, shape=None if p is None else (None, p),
                               nonempty=False, shape_hint="(n, p) (samples in rows)")
        batch_size = _checks.integer(batch_size, "batch_size", minimum=1)
        module = self.model if self.evaluator is None else self.evaluator
        out = []
        with torch.no_grad():
            for start in range(0, X.shape[0], batch_size):
                F = module.features(np.array(X[start:start + batch_size], dtype=np.float64))
                out.append(F.to(torch.float64).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.widths[-1]))

    def __repr__(self) -> str:
        return (f"FeatureNetwork({self.method!r}, sparsity={self.sparsity:.4g}, "
                f"kept={self.kept_fraction:.4g}, matched={self.matched!r}, "
                f"bits/weight: entropy {self.memory.bits_per_weight('entropy'):.4g}, "
                f"authors {self.memory.bits_per_weight('authors'):.4g}, shift={self.shift:.4g})")


def _nonzero_fraction(weights: Iterable[torch.Tensor]) -> float:
    nz = tot = 0
    for W in weights:
        nz += int(torch.count_nonzero(W))
        tot += W.numel()
    return nz / tot


def dense_network(p: int, widths: Sequence[int], layers: Sequence[Activation], tau0: float,
                  generator: torch.Generator, *,
                  dtype: torch.dtype = torch.float32) -> FeatureNetwork:
    """The original network: i.i.d. N(0, 1) hidden weights, original activations.

    Parameters
    ----------
    p : int
    widths : sequence of int, length L
    layers : sequence of Activation, length L
    tau0 : float
        Input scale of the training data (fixes the centring constants).
    generator : torch.Generator
        Draws ``W_1..W_L`` (and an unused readout) as :class:`lossless.networks.MLP` does.
    dtype : torch.dtype, default float32
    """
    p, widths = _checks.integer(p, "p", minimum=1), list(_checks.int_sequence(widths, "widths", minimum=1))
    model = networks.MLP(p, widths, list(layers), tau0, weights="gaussian",
                         generator=_checks.torch_generator(generator, "generator"), dtype=dtype)
    return FeatureNetwork("dense", model, dense_memory(_n_weights(p, widths)))


def compressed_network(plan: compress.CompressionPlan, p: int, widths: Sequence[int],
                       sparsity: float, generator: torch.Generator) -> FeatureNetwork:
    """The compressed network of the compression chapter: sparse ternary weights, ternary activations.

    A :class:`lossless.compress.CompressedMLP` drawn by ``CompressedMLP.from_plan``
    (weights stored as 2-bit codes; i.i.d. entries with ``P(0) = ε``); its predicted CK
    identity shift is ``plan.shift`` and its straight-through derivatives
    ``plan.surrogates()``. Features are computed by its unpacked float32 reference
    (``to_reference``), the same network.

    Parameters
    ----------
    plan : CompressionPlan
        From :func:`lossless.compress.compress` at the training data's ``tau0``.
    p : int
    widths : sequence of int
    sparsity : float
        ε in [0, 1).
    generator : torch.Generator
    """
    if not isinstance(plan, compress.CompressionPlan):
        raise TypeError("plan must be a lossless.compress.CompressionPlan, got "
                        f"{type(plan).__name__}")
    p, widths = _checks.integer(p, "p", minimum=1), list(_checks.int_sequence(widths, "widths", minimum=1))
    eps = _checks.fraction(sparsity, "sparsity")
    model = compress.CompressedMLP.from_plan(plan, p, widths, sparsity=eps,
                                             generator=_checks.torch_generator(generator, "generator"))
    kept = _nonzero_fraction(model.codes(i) for i in range(model.depth))
    return FeatureNetwork("compressed", model, ternary_memory(_n_weights(p, widths), eps),
                          sparsity=eps, kept_fraction=kept, shift=plan.shift,
                          surrogates=tuple(plan.surrogates()),
                          evaluator=model.to_reference(torch.float32))


def _transformed(method: str, p, widths, layers, tau0, generator, transform, memory: MemoryCost,
                 sparsity: float, matched: str) -> FeatureNetwork:
    base = dense_network(p, widths, layers, tau0, generator)
    model = base.model
    with torch.no_grad():
        for W in model.hidden:
            W.copy_(transform(W.detach()))
    kept = _nonzero_fraction(model.hidden)
    return FeatureNetwork(method, model, memory, sparsity=sparsity, kept_fraction=kept,
                          matched=matched)


def pruned_network(p: int, widths: Sequence[int], layers: Sequence[Activation], tau0: float,
                   kept_fraction: float, generator: torch.Generator, *,
                   matched: str = "-") -> FeatureNetwork:
    """Magnitude pruning of the dense network's weights (:func:`magnitude_prune`).

    The dense Gaussian weights are drawn exactly as :func:`dense_network` draws them
    (same generator state, same network), then each matrix keeps its ``round(k N)``
    largest entries and is rescaled to unit mean square; original activations.
    Memory: :func:`sparse_float_memory` (fp32 values).
    """
    p, widths = _checks.integer(p, "p", minimum=1), list(_checks.int_sequence(widths, "widths", minimum=1))
    k = _checks.fraction(kept_fraction, "kept_fraction", low_open=True, high_open=False)
    matched = _checks.choice(matched, "matched", MATCHED)
    return _transformed("magnitude pruning", p, widths, layers, tau0, generator,
                        lambda W: magnitude_prune(W, k),
                        sparse_float_memory(_n_weights(p, widths), k), 1.0 - k,
                        matched)


def naive_ternary_network(p: int, widths: Sequence[int], layers: Sequence[Activation],
                          tau0: float, sparsity: float,
                          generator: torch.Generator) -> FeatureNetwork:
    """Naive ternarisation of the dense network's weights (:func:`naive_ternarize`).

    Same dense draw as :func:`dense_network`; each matrix becomes ``c sign(W)`` with the
    ``ε`` fraction of smallest ``|w|`` set to 0; the **original** activations are kept.
    Memory: :func:`ternary_memory` (same bits as the compressed network at that ε).
    """
    p, widths = _checks.integer(p, "p", minimum=1), list(_checks.int_sequence(widths, "widths", minimum=1))
    eps = _checks.fraction(sparsity, "sparsity")
    return _transformed("naive ternary", p, widths, layers, tau0, generator,
                        lambda W: naive_ternarize(W, eps),
                        ternary_memory(_n_weights(p, widths), eps), eps, "-")


def random_sparse_network(p: int, widths: Sequence[int], layers: Sequence[Activation],
                          tau0: float, kept_fraction: float, generator: torch.Generator, *,
                          matched: str = "-") -> FeatureNetwork:
    """Random sparsification of the dense network's weights (:func:`random_sparsify`).

    Same dense draw as :func:`dense_network`, then (from the same generator) a uniformly
    random mask keeping ``round(k N)`` entries per matrix, rescaled to unit mean square;
    original activations. Memory: :func:`sparse_float_memory`.
    """
    p, widths = _checks.integer(p, "p", minimum=1), list(_checks.int_sequence(widths, "widths", minimum=1))
    k = _checks.fraction(kept_fraction, "kept_fraction", low_open=True, high_open=False)
    generator = _checks.torch_generator(generator, "generator")
    matched = _checks.choice(matched, "matched", MATCHED)
    return _transformed("random sparsification", p, widths, layers, tau0, generator,
                        lambda W: random_sparsify(W, k, generator),
                        sparse_float_memory(_n_weights(p, widths), k), 1.0 - k,
                        matched)


def narrow_widths(p: int, widths: Sequence[int], n_weights: float) -> list[int]:
    """Widths ``max(1, round(s d_l))`` of a scaled-down network with at most ``n_weights``.

    ``s`` is the largest scale (found by bisection on the exact count) for which the
    network with widths ``round(s d_l)`` has at most ``n_weights`` hidden weights.

    Raises
    ------
    ValueError
        If even widths of 1 exceed ``n_weights``.
    """
    p, widths = _checks.integer(p, "p", minimum=1), list(_checks.int_sequence(widths, "widths", minimum=1))
    target = _checks.positive(n_weights, "n_weights")

    def scaled(s: float) -> list[int]:
        return [max(1, int(round(s * d))) for d in widths]

    if _n_weights(p, scaled(0.0)) > target:
        raise ValueError(f"n_weights = {target:.6g} is below the {_n_weights(p, scaled(0.0))} "
                         f"weights of a network with widths 1")
    lo, hi = 0.0, 1.0
    if _n_weights(p, widths) <= target:
        return widths
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if _n_weights(p, scaled(mid)) <= target:
            lo = mid
        else:
            hi = mid
    return scaled(lo)


def narrow_dense_network(p: int, widths: Sequence[int], layers: Sequence[Activation],
                         tau0: float, bits: float, generator: torch.Generator, *,
                         matched: str = "-") -> FeatureNetwork:
    """A dense fp32 network made narrower to fit a memory budget.

    Widths from :func:`narrow_widths` with ``bits / 32`` weights, otherwise exactly
    :func:`dense_network` (Gaussian weights, original activations): the alternative to
    compressing a wide network is a smaller dense one.

    Parameters
    ----------
    bits : float
        Budget in bits for the hidden weights.
    """
    matched = _checks.choice(matched, "matched", MATCHED)
    w = narrow_widths(p, widths, _checks.positive(bits, "bits") / DENSE_BITS)
    net = dense_network(p, w, layers, tau0, generator)
    return FeatureNetwork("narrow dense", net.model, net.memory, sparsity=0.0, kept_fraction=1.0,
                          matched=matched)
