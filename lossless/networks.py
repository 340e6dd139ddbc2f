"""The finite-width network of the book (math-spec §2) and its weight distributions.

A depth-``L`` fully-connected network without biases, with centred activations and the
``1/sqrt(d)`` scaling, whose weights are i.i.d. standard Gaussian or sparse ternary
(zero mean, unit variance), drawn from a caller-supplied :class:`torch.Generator`.
Samples are in rows: ``X`` has shape ``(n, p)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from numbers import Integral, Real
from typing import Union

import numpy as np
import torch

from lossless import kernels

__all__ = ["gaussian_weights", "ternary_weights", "MLP", "WEIGHT_SAMPLERS"]

#: Signature of a weight sampler: ``sampler(shape, generator, dtype) -> Tensor``.
WeightSampler = Callable[..., torch.Tensor]


def _check_generator(generator: object) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator (e.g. torch.Generator().manual_seed(0)), "
            f"got {type(generator).__name__}"
        )
    return generator


def _check_shape(shape: object) -> tuple[int, ...]:
    if isinstance(shape, Integral):
        shape = (shape,)
    try:
        dims = tuple(shape)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"shape must be an int or a sequence of ints, got {shape!r}") from None
    if not all(isinstance(d, Integral) and not isinstance(d, bool) and d >= 0 for d in dims):
        raise ValueError(f"shape must contain non-negative integers, got {shape!r}")
    return tuple(int(d) for d in dims)


def _check_sparsity(sparsity: object) -> float:
    if isinstance(sparsity, bool) or not isinstance(sparsity, Real):
        raise TypeError(f"sparsity must be a real number in [0, 1), got {sparsity!r}")
    eps = float(sparsity)
    if not (0.0 <= eps < 1.0):
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity!r}")
    return eps


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
    _check_generator(generator)
    return torch.randn(dims, generator=generator, dtype=dtype)


def ternary_weights(
    shape: int | Sequence[int],
    sparsity: float,
    generator: torch.Generator,
    *,
    exact_zeros: bool = False,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """I.i.d. sparse ternary weights with zero mean and unit variance (math-spec §5).

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
    eps = _check_sparsity(sparsity)
    _check_generator(generator)
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
    try:
        layers = tuple(layers)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"layers must be a list of Activation objects (one per layer), got {layers!r}"
        ) from None
    if not layers:
        raise ValueError("layers must contain at least one Activation, got an empty list")
    for i, act in enumerate(layers):
        if not (callable(act) and hasattr(act, "moments") and hasattr(act, "derivative")):
            raise TypeError(
                f"layers[{i}] must be an Activation (from lossless.activations.get), got {act!r}"
            )
    return layers


def _check_widths(widths: object, n_layers: int) -> tuple[int, ...]:
    try:
        dims = tuple(widths)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"widths must be a sequence of positive ints, got {widths!r}") from None
    if len(dims) != n_layers:
        raise ValueError(
            f"widths must have one entry per layer (len(layers) = {n_layers}), got {len(dims)}: "
            f"{widths!r}"
        )
    if not all(isinstance(d, Integral) and not isinstance(d, bool) and d > 0 for d in dims):
        raise ValueError(f"widths must be positive integers, got {widths!r}")
    return tuple(int(d) for d in dims)


class MLP(torch.nn.Module):
    r"""Fully-connected network of math-spec §2: no biases, centred activations.

    .. math::

        \Sigma_0 = X,\quad
        \Sigma_\ell = \tfrac{1}{\sqrt{d_\ell}}\,
        \bigl(\sigma_\ell(\Sigma_{\ell-1} W_\ell^\top) - m_\ell\bigr),\quad
        f = \Sigma_L w,

    (samples in rows) with ``m_l = E[sigma_l(tau_{l-1} xi)]`` a fixed number per layer,
    ``tau_l`` given by the recursion ``tau_l^2 = Var[sigma_l(tau_{l-1} xi)]`` from
    ``tau0`` (:func:`lossless.kernels.layer_scales`).

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
        if isinstance(p, bool) or not isinstance(p, Integral) or p <= 0:
            raise ValueError(f"p must be a positive integer, got {p!r}")
        self.layers = _as_activation_list(layers)
        self.widths = _check_widths(widths, len(self.layers))
        if isinstance(tau0, bool) or not isinstance(tau0, Real) or not (
            math.isfinite(tau0) and tau0 > 0
        ):
            raise ValueError(f"tau0 must be a finite positive number, got {tau0!r}")
        eps = _check_sparsity(sparsity)
        if isinstance(weights, str):
            if weights not in WEIGHT_SAMPLERS:
                raise ValueError(
                    f"weights must be one of {sorted(WEIGHT_SAMPLERS)} or a callable, "
                    f"got {weights!r}"
                )
            sampler = WEIGHT_SAMPLERS[weights]
        elif callable(weights):
            sampler = weights
        else:
            raise TypeError(f"weights must be a string or a callable, got {weights!r}")
        _check_generator(generator)
        if not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating torch dtype, got {dtype}")

        self.p = int(p)
        self.tau0 = float(tau0)
        self.taus = tuple(float(t) for t in kernels.layer_scales(list(self.layers), self.tau0))
        self.centred = bool(centred)
        self.centres = tuple(
            float(act.moments(tau).m) if self.centred else 0.0
            for act, tau in zip(self.layers, self.taus[:-1])
        )
        self.weight_distribution = weights if isinstance(weights, str) else "custom"
        self.sparsity = eps
        dims = (self.p, *self.widths)
        self.hidden = torch.nn.ParameterList(
            torch.nn.Parameter(sampler((dims[i + 1], dims[i]), generator, dtype, eps))
            for i in range(len(self.widths))
        )
        self.readout = torch.nn.Parameter(sampler((dims[-1],), generator, dtype, eps))

    @property
    def depth(self) -> int:
        """Number of layers ``L``."""
        return len(self.layers)

    @property
    def dtype(self) -> torch.dtype:
        """Dtype of the parameters."""
        return self.readout.dtype

    def _as_input(self, X) -> torch.Tensor:
        if isinstance(X, np.ndarray):
            X = np.require(X, requirements=["C", "W"])  # torch wants writable memory
        X = torch.as_tensor(X)
        if X.ndim != 2 or X.shape[1] != self.p:
            raise ValueError(
                f"X must have shape (n, p) with p = {self.p} (samples in rows), "
                f"got {tuple(X.shape)}"
            )
        if not X.is_floating_point():
            X = X.to(self.dtype)
        return X.to(self.dtype)

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
            Z = H @ W.T
            out.append(Z)
            H = (act(Z) - m) / math.sqrt(d)
        return out

    def features(self, X) -> torch.Tensor:
        r"""Last-layer features :math:`\Sigma_L`.

        Parameters
        ----------
        X : Tensor or ndarray, shape (n, p)

        Returns
        -------
        Tensor, shape (n, d_L)
            Rows ``Sigma_L(x_i)``; ``features(X) @ features(X).T`` is the empirical CK.
        """
        H = self._as_input(X)
        for W, act, m, d in zip(self.hidden, self.layers, self.centres, self.widths):
            H = (act(H @ W.T) - m) / math.sqrt(d)
        return H

    def forward(self, X) -> torch.Tensor:
        """Network output ``f(x_i) = w^T Sigma_L(x_i)``.

        Parameters
        ----------
        X : Tensor or ndarray, shape (n, p)

        Returns
        -------
        Tensor, shape (n,)
        """
        return self.features(X) @ self.readout

    def extra_repr(self) -> str:
        acts = ", ".join(repr(a) for a in self.layers)
        return (
            f"p={self.p}, widths={list(self.widths)}, layers=[{acts}], tau0={self.tau0:.4g}, "
            f"weights={self.weight_distribution!r}, sparsity={self.sparsity}, "
            f"centred={self.centred}"
        )

