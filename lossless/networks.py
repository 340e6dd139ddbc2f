"""The finite-width network of the book (the book's eq-ckntk-network, chapter 3) and its
weight distributions.

A depth-``L`` fully-connected network without biases, with centred activations and the
``1/sqrt(d)`` scaling, whose weights are i.i.d. standard Gaussian or sparse ternary
(zero mean, unit variance), drawn from a caller-supplied :class:`torch.Generator`.
Samples are in rows: ``X`` has shape ``(n, p)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from numbers import Integral
from typing import Any, Union

import numpy as np
import torch

from lossless import _checks, activations

__all__ = ["gaussian_weights", "ternary_weights", "MLP", "WEIGHT_SAMPLERS"]

#: Signature of a weight sampler: ``sampler(shape, generator, dtype) -> Tensor``.
WeightSampler = Callable[..., torch.Tensor]


def _check_shape(shape: object) -> tuple[int, ...]:
    if isinstance(shape, (Integral, np.integer)) and not isinstance(shape, (bool, np.bool_)):
        shape = (shape,)
    if isinstance(shape, (str, bytes)) or not isinstance(shape, (Sequence, torch.Size)):
        raise TypeError(f"shape must be an int or a sequence of ints, got {shape!r}")
    return tuple(_checks.integer(d, f"shape[{i}]", minimum=0) for i, d in enumerate(shape))


def gaussian_weights(
    shape: int | Sequence[int],
    generator: torch.Generator,
    *,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """I.i.d. standard Gaussian weights.

    Parameters
    ----------
    shape : int or sequence of int
        Shape of the tensor, e.g. ``(d_out, d_in)``.
    generator : torch.Generator
        Source of randomness (CPU generator).
    dtype : torch.dtype, default float32
        Floating dtype of the result.

    Returns
    -------
    Tensor, shape ``shape``
        Entries ``N(0, 1)``.
    """
    dims = _check_shape(shape)
    _checks.torch_generator(generator, "generator")
    dtype = _checks.float_dtype(dtype)
    _checks.allocation(dims, "shape", shape, itemsize=dtype.itemsize, what="a weight tensor")
    return torch.randn(dims, generator=generator, dtype=dtype)


def ternary_weights(
    shape: int | Sequence[int],
    sparsity: float,
    generator: torch.Generator,
    *,
    exact_zeros: bool = False,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """I.i.d. sparse ternary weights with zero mean and unit variance (the book's eq-compress-weights).

    ``P(W = 0) = eps`` and ``P(W = +1/sqrt(1 - eps)) = P(W = -1/sqrt(1 - eps)) =
    (1 - eps)/2``, with ``eps = sparsity``.

    Parameters
    ----------
    shape : int or sequence of int
        Shape of the tensor, e.g. ``(d_out, d_in)``.
    sparsity : float
        Probability ``eps`` of a zero, in ``[0, 1)``.
    generator : torch.Generator
        Source of randomness (CPU generator).
    exact_zeros : bool, default False
        If True, exactly ``round(eps * N)`` of the ``N`` entries are zero, at uniformly
        random positions (a random permutation), and the signs of the others are
        i.i.d. fair; otherwise every entry is independent.
    dtype : torch.dtype, default float32
        Floating dtype of the result.

    Returns
    -------
    Tensor, shape ``shape``
        Values in ``{-1/sqrt(1-eps), 0, +1/sqrt(1-eps)}``.

    Raises
    ------
    ValueError
        If ``sparsity`` is not in ``[0, 1)`` or ``shape`` has a negative entry.
    """
    dims = _check_shape(shape)
    eps = _checks.fraction(sparsity, "sparsity")
    _checks.torch_generator(generator, "generator")
    exact_zeros = _checks.flag(exact_zeros, "exact_zeros")
    dtype = _checks.float_dtype(dtype)
    # the float64 uniforms (or int64 permutation) are the largest temporary
    _checks.allocation(dims, "shape", shape, itemsize=8, what="a weight tensor")
    scale = 1.0 / math.sqrt(1.0 - eps)
    numel = math.prod(dims)
    if exact_zeros:
        signs = torch.randint(0, 2, (numel,), generator=generator, dtype=torch.int8)
        values = (2.0 * signs.to(dtype) - 1.0) * scale
        n_zeros = int(round(eps * numel))
        if n_zeros:
            zeros = torch.randperm(numel, generator=generator)[:n_zeros]
            values[zeros] = 0.0
        return values.reshape(dims)
    # one uniform per entry: [0, eps) -> 0, [eps, (1+eps)/2) -> -, [(1+eps)/2, 1) -> +
    u = torch.rand(dims, generator=generator, dtype=torch.float64)
    values = torch.full(dims, scale, dtype=dtype)
    values[u < 0.5 * (1.0 + eps)] = -scale
    values[u < eps] = 0.0
    return values


def _gaussian_sampler(shape, generator, dtype, sparsity):  # noqa: ARG001 - uniform signature
    return gaussian_weights(shape, generator, dtype=dtype)


def _ternary_sampler(shape, generator, dtype, sparsity):
    return ternary_weights(shape, sparsity, generator, dtype=dtype)


#: Named weight distributions accepted by :class:`MLP` (``weights=`` argument).
WEIGHT_SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {
    "gaussian": _gaussian_sampler,
    "ternary": _ternary_sampler,
}


def _as_activation_list(layers: object) -> tuple:
    from lossless.activations import check_layers

    return tuple(check_layers(layers))


_INT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


# ----------------------------------------------------------------------------------
# the forward pass (one home: MLP, the dynamics chapter and fine-tuning call it)
# ----------------------------------------------------------------------------------
class _StraightThrough(torch.autograd.Function):
    """``activation(z)`` forward, ``grad * surrogate(z)`` backward."""

    @staticmethod
    def forward(ctx, z, activation, surrogate):  # noqa: D401 - autograd signature
        ctx.save_for_backward(z)
        ctx.surrogate = surrogate
        return torch.as_tensor(activation(z.detach()), dtype=z.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        (z,) = ctx.saved_tensors
        slope = torch.as_tensor(ctx.surrogate(z), dtype=z.dtype)
        return grad_out * slope, None, None


def straight_through(activation: Callable, surrogate: Callable, z: torch.Tensor) -> torch.Tensor:
    r"""``activation(z)`` whose backward pass uses ``surrogate(z)`` in place of ``σ'(z)``.

    The straight-through estimator (Bengio, Léonard and Courville 2013, arXiv:1308.3432):
    the forward value is exact (a step function stays a step function), the derivative
    is replaced, so autograd propagates ``grad * surrogate(z)`` through a layer whose
    true derivative is zero almost everywhere.

    Parameters
    ----------
    activation : callable
        ``σ``, evaluated on a tensor (an :class:`lossless.activations.Activation`).
    surrogate : callable
        ``s``, evaluated on a tensor, standing for ``σ'``.
    z : Tensor, any shape
        Pre-activations.

    Returns
    -------
    Tensor, shape of ``z``
    """
    _checks.check_callable(activation, "activation")
    _checks.check_callable(surrogate, "surrogate")
    if not isinstance(z, torch.Tensor) or not z.is_floating_point():
        raise TypeError(f"z must be a floating-point torch.Tensor, got {_checks.describe(z)}")
    return _StraightThrough.apply(z, activation, surrogate)


def propagate(H: torch.Tensor, widths: Sequence[int], layers: Sequence,
              hidden: Sequence[torch.Tensor], centres: Sequence[float], *,
              surrogates: Sequence | None = None, checked: Any = None) -> torch.Tensor:
    r"""The hidden layers of the book's eq-ckntk-network: from :math:`\Sigma_0 = H` to
    :math:`\Sigma_L`, with :math:`\Sigma_\ell = (\sigma_\ell(\Sigma_{\ell-1}
    W_\ell^\top) - m_\ell)/\sqrt{d_\ell}`.

    The one forward pass of the package (:class:`MLP`, the dynamics chapter's
    straight-through output and the practice chapter's fine-tuning call it); arguments
    are not checked here (the callers check them).

    Parameters
    ----------
    H : Tensor, shape (n, d_0)
    widths : sequence of int
        ``d_l``.
    layers : sequence of Activation
    hidden : sequence of Tensor
        ``W_l`` of shape ``(d_l, d_{l-1})``.
    centres : sequence of float
        ``m_l``.
    surrogates : sequence of (None | callable), optional
        Where entry ``l`` is a callable, layer ``l`` is :func:`straight_through` with it as
        the derivative; None (or an entry None) leaves autograd's own derivative.
    checked : array_like, optional
        The user's input ``X``: if given, a pre-activation that overflows raises a
        ValueError naming ``X``, and an activation returning NaN/inf from finite values
        raises one naming the layer.

    Returns
    -------
    Tensor, shape (n, d_L)
    """
    surr = [None] * len(layers) if surrogates is None else surrogates
    for i, (W, act, s, m, d) in enumerate(zip(hidden, layers, surr, centres, widths)):
        Z = H @ W.T
        if checked is not None:
            Z = _checks.no_overflow(Z, "X", checked, f"the pre-activation of layer {i + 1}")
        A = act(Z) if s is None else _StraightThrough.apply(Z, act, s)
        if checked is not None and (not isinstance(A, torch.Tensor) or A.is_floating_point()):
            try:  # a finite input gave NaN/inf: the activation is to blame
                _checks.finite_output(A, f"layers[{i}] = {act!r}")
            except RuntimeError:  # inside torch.func transforms no value is readable
                pass
        H = (A - m) / math.sqrt(d)
    return H



class MLP(torch.nn.Module):
    r"""Fully-connected network of the book's eq-ckntk-network: no biases, centred activations.

    .. math::

        \Sigma_0 = X,\quad
        \Sigma_\ell = \tfrac{1}{\sqrt{d_\ell}}\,
        \bigl(\sigma_\ell(\Sigma_{\ell-1} W_\ell^\top) - m_\ell\bigr),\quad
        f = \Sigma_L w,

    (samples in rows) with ``m_l = E[sigma_l(tau_{l-1} xi)]`` a fixed number per layer,
    ``tau_l`` given by the recursion ``tau_l^2 = Var[sigma_l(tau_{l-1} xi)]`` from
    ``tau0`` (:func:`lossless.activations.layer_scales`).

    Parameters
    ----------
    p : int
        Input dimension ``d_0``.
    widths : sequence of int, length L
        Hidden widths ``d_1, ..., d_L``.
    layers : sequence of Activation, length L
        Activations ``sigma_1, ..., sigma_L``.
    tau0 : float
        Input scale ``tau_0 = sqrt(mean_i ||x_i||^2)`` (not squared), ``> 0``.
    weights : {"gaussian", "ternary"} or callable, default "gaussian"
        Distribution of the i.i.d. entries of ``W_1..W_L`` and of the readout ``w``
        (zero mean, unit variance). A callable is called as
        ``weights(shape, generator, dtype, sparsity)``.
    sparsity : float, default 0.0
        Zero probability ``eps`` of the ternary weights, in ``[0, 1)``.
    generator : torch.Generator
        Source of randomness; weights are drawn in the order ``W_1, ..., W_L, w``.
    dtype : torch.dtype, default float32
        Dtype of the parameters.
    centred : bool, default True
        If False, the activations are not centred (``m_l = 0``); used to show why the
        paper centres them.

    Attributes
    ----------
    hidden : ParameterList
        ``W_l`` of shape ``(d_l, d_{l-1})``.
    readout : Parameter, shape (d_L,)
        The readout vector ``w``.
    taus : tuple of float
        ``tau_0, ..., tau_L``.
    centres : tuple of float
        ``m_1, ..., m_L`` (zeros if ``centred=False``).
    """

    def __init__(
        self,
        p: int,
        widths: Sequence[int],
        layers: Sequence,
        tau0: float,
        *,
        weights: Union[str, WeightSampler] = "gaussian",
        sparsity: float = 0.0,
        generator: torch.Generator,
        dtype: torch.dtype = torch.float32,
        centred: bool = True,
    ) -> None:
        super().__init__()
        p = _checks.integer(p, "p", minimum=1)
        self.layers = _as_activation_list(layers)
        self.widths = _checks.layer_widths(widths, len(self.layers))
        tau0 = _checks.positive(tau0, "tau0")
        eps = _checks.fraction(sparsity, "sparsity")
        centred = _checks.flag(centred, "centred")
        if isinstance(weights, str):
            if weights not in WEIGHT_SAMPLERS:
                raise ValueError(
                    f"weights must be one of {sorted(WEIGHT_SAMPLERS)} or a callable, "
                    f"got {weights!r}"
                )
            if weights == "gaussian" and eps != 0.0:
                raise ValueError(
                    f"sparsity must be 0 with weights='gaussian' (Gaussian weights have no "
                    f"zeros; use weights='ternary' for sparse weights), got {sparsity!r}"
                )
            sampler = WEIGHT_SAMPLERS[weights]
        elif callable(weights):
            sampler = weights
        else:
            raise TypeError(f"weights must be a string or a callable, got {weights!r}")
        _checks.torch_generator(generator, "generator")
        dtype = _checks.float_dtype(dtype)

        self.p = int(p)
        self.tau0 = float(tau0)
        moments = activations.layer_moments(list(self.layers), self.tau0)
        self.taus = (self.tau0, *(math.sqrt(m.v) for m in moments))
        self.centred = bool(centred)
        self.centres = tuple(float(m.m) if self.centred else 0.0 for m in moments)
        self.weight_distribution = weights if isinstance(weights, str) else "custom"
        self.sparsity = eps
        dims = (self.p, *self.widths)
        n_params = sum(dims[i + 1] * dims[i] for i in range(len(self.widths))) + dims[-1]
        big = "p" if self.p > max(self.widths) else "widths"
        _checks.allocation(n_params, big, p if big == "p" else widths,
                           itemsize=max(dtype.itemsize, 8), what="weights")

        def draw(shape: tuple[int, ...]) -> torch.Tensor:
            W = sampler(shape, generator, dtype, eps)
            if not isinstance(W, torch.Tensor) or tuple(W.shape) != shape or W.dtype != dtype:
                got = (f"a tensor of shape {tuple(W.shape)} and dtype {W.dtype}"
                       if isinstance(W, torch.Tensor) else _checks.describe(W))
                raise ValueError(
                    f"weights must return a torch.Tensor of the requested shape {shape} and "
                    f"dtype {dtype} when called as weights(shape, generator, dtype, sparsity), "
                    f"got {got}")
            return _checks.finite_output(W, "weights", "weights")

        self.hidden = torch.nn.ParameterList(
            torch.nn.Parameter(draw((dims[i + 1], dims[i]))) for i in range(len(self.widths))
        )
        self.readout = torch.nn.Parameter(draw((dims[-1],)))

    @property
    def depth(self) -> int:
        """Number of layers ``L``."""
        return len(self.layers)

    @property
    def dtype(self) -> torch.dtype:
        """Dtype of the parameters."""
        return self.readout.dtype

    def _as_input(self, X) -> torch.Tensor:
        if isinstance(X, torch.Tensor):
            # a tensor may require grad here (input gradients are legitimate)
            if X.is_complex() or not (X.is_floating_point() or X.dtype in _INT_DTYPES):
                raise TypeError(f"X must be a real tensor, got dtype {X.dtype}")
            if X.ndim != 2 or X.shape[1] != self.p or X.shape[0] < 1:
                raise ValueError(
                    f"X must have shape (n, p) with n >= 1, p = {self.p} (samples in rows), "
                    f"got {tuple(X.shape)}"
                )
            if X.is_floating_point():
                try:
                    finite = bool(torch.isfinite(X.detach()).all())
                except RuntimeError:  # inside torch.func transforms (vmap) no value is readable
                    finite = True
                if not finite:
                    bad = int((~torch.isfinite(X.detach())).sum())
                    raise ValueError(f"X must be finite, got {bad} non-finite entries (NaN or inf)")
            return X.to(self.dtype)
        arr = _checks.real_array(
            X, "X", shape=(None, self.p), dtype=None, shape_hint=f"(n, {self.p})"
        )
        return torch.from_numpy(np.require(arr, requirements=["C", "W"])).to(self.dtype)

    def pre_activations(self, X) -> list[torch.Tensor]:
        r"""Pre-activations :math:`Z_\ell = \Sigma_{\ell-1} W_\ell^\top` of every layer.

        Parameters
        ----------
        X : Tensor or ndarray, shape (n, p)

        Returns
        -------
        list of Tensor, length L
            ``Z_l`` of shape ``(n, d_l)``; in the wide limit each column (one unit) is
            Gaussian across draws with covariance ``K_CK,l-1``.
        """
        H = self._as_input(X)
        out = []
        for W, act, m, d in zip(self.hidden, self.layers, self.centres, self.widths):
            Z = _checks.no_overflow(H @ W.T, "X", X, "a pre-activation")
            out.append(Z)
            H = (act(Z) - m) / math.sqrt(d)
        return out

    def features(self, X, *, surrogates: Sequence | None = None) -> torch.Tensor:
        r"""Last-layer features :math:`\Sigma_L` (:func:`propagate`).

        Parameters
        ----------
        X : Tensor or ndarray, shape (n, p)
        surrogates : list of (None | Activation | callable), length L, optional
            Straight-through derivatives (:func:`straight_through`) for the layers that
            have one: the forward values are unchanged, the backward pass multiplies by
            ``surrogates[l](Z_l)`` in place of ``sigma_l'(Z_l)``.

        Returns
        -------
        Tensor, shape (n, d_L)
            Rows ``Sigma_L(x_i)``; ``features(X) @ features(X).T`` is the empirical CK.
        """
        from lossless.activations import check_surrogates

        surr = None if surrogates is None else check_surrogates(surrogates, self.depth)
        H = propagate(self._as_input(X), self.widths, self.layers, self.hidden, self.centres,
                      surrogates=surr, checked=X)
        return _checks.no_overflow(H, "X", X, "the features")

    def forward(self, X, *, surrogates: Sequence | None = None) -> torch.Tensor:
        """Network output ``f(x_i) = w^T Sigma_L(x_i)``.

        Parameters
        ----------
        X : Tensor or ndarray, shape (n, p)
        surrogates : list, optional
            As in :meth:`features`.

        Returns
        -------
        Tensor, shape (n,)
        """
        return _checks.no_overflow(self.features(X, surrogates=surrogates) @ self.readout, "X",
                                   X, "the output")

    def extra_repr(self) -> str:
        acts = ", ".join(repr(a) for a in self.layers)
        return (
            f"p={self.p}, widths={list(self.widths)}, layers=[{acts}], tau0={self.tau0:.4g}, "
            f"weights={self.weight_distribution!r}, sparsity={self.sparsity}, "
            f"centred={self.centred}"
        )

