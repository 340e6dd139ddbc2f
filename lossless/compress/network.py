"""The packed compressed network (:class:`CompressedMLP`): 2-bit ternary weights, ternary
activations, its inference paths and its saved file."""

from __future__ import annotations

import io
import math
import warnings
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lossless import _checks, activations
from lossless.compress import codec
from lossless.compress.fileformat import (
    _FORMAT,
    _FORMAT_VERSION,
    _READ_VERSIONS,
    _decode_payload,
    _encode_payload,
    pack_file,
    unpack_file,
    pack_ternary,
    unpack_ternary,
)
from lossless.compress import int8
from lossless.compress.int8 import Int8Engine, Int8SelfCheckError
from lossless.compress.plan import CompressionPlan
from lossless.memory import MemoryReport, memory_report
from lossless.networks import ternary_weights


def _numba_available() -> bool:
    """Whether the ternary engine (numba) can be used."""
    global _NUMBA
    if _NUMBA is None:
        try:
            import numba  # noqa: F401
            _NUMBA = True
        except ImportError:
            _NUMBA = False
    return _NUMBA


_NUMBA: bool | None = None

class CompressedMLP(torch.nn.Module):
    r"""The compressed network: 2-bit packed ternary weights, ternary activations.

    It computes exactly what :class:`lossless.networks.MLP` computes with the same
    ternary weights and the :class:`~lossless.activations.Ternary` activations of a
    :class:`CompressionPlan` (chapter 5), but stores each ``W_ℓ`` as 2-bit codes
    (:func:`pack_ternary`) and evaluates layers ℓ ≥ 2 in integer arithmetic: with
    ``T_{ℓ−1} ∈ {−1, 0, 1}^{n×d}`` the previous layer's ternary outputs (codes) and
    ``C_ℓ`` the weight codes,

    .. math::

        W_\ell \Sigma_{\ell-1} = \alpha_\ell\, C_\ell T_{\ell-1} + \beta_\ell, \quad
        \alpha_\ell = \frac{b_{\ell-1}}{\sqrt{(1-\varepsilon) d_{\ell-1}}},\;
        \beta_\ell = -\frac{m_{\ell-1}}{\sqrt{(1-\varepsilon) d_{\ell-1}}} C_\ell \mathbf 1,

    so the centring becomes a fixed bias, folded (with α) into per-neuron integer
    thresholds ``(s_± − β)/α`` compared with the integer ``C_ℓ T_{ℓ−1}``.

    Build it with :meth:`from_plan`; weights are drawn in the same order and with the
    same sampler as ``networks.MLP(..., weights="ternary")`` (``W_1..W_L`` then the
    readout ``w``), so the same generator seed gives the same network.

    Attributes
    ----------
    p : int
    widths : tuple of int
    layers : tuple of activations.Ternary
    tau0 : float
    sparsity : float
    taus : tuple of float
        τ^c_0..τ^c_L of the compressed network (from the ternary moments).
    centres : tuple of float
        ``m_ℓ = E[σ_ℓ(τ^c_{ℓ−1} ξ)]``.
    readout : Tensor, shape (d_L,)
        The readout ``w`` (float32, stored dense).
    """

    def __init__(self, p: int, widths: Sequence[int], layers: Sequence[Any], tau0: float, *,
                 sparsity: float, packed: Sequence[torch.Tensor], readout: torch.Tensor) -> None:
        super().__init__()
        self.p = _checks.integer(p, "p", minimum=1)
        self.widths = _checks.int_sequence(widths, "widths", minimum=1)
        if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence):
            raise TypeError(f"layers must be a sequence of activations.Ternary, got "
                            f"{_checks.describe(layers)}")
        layers = list(layers)
        if len(layers) != len(self.widths):
            raise ValueError(f"layers must have one Ternary per width ({len(self.widths)}), "
                             f"got {len(layers)}")
        for i, act in enumerate(layers):
            if not isinstance(act, activations.Ternary):
                raise TypeError(f"layers[{i}] must be an activations.Ternary, got {act!r}")
        self.layers = tuple(layers)
        self.tau0 = _checks.positive(tau0, "tau0")
        self.sparsity = _checks.fraction(sparsity, "sparsity")
        dims = (self.p, *self.widths)
        if isinstance(packed, (str, bytes, torch.Tensor)) or not isinstance(packed, Sequence):
            raise TypeError(f"packed must be a sequence of uint8 tensors (one per layer), got "
                            f"{_checks.describe(packed)}")
        packed = list(packed)
        if len(packed) != len(self.widths):
            raise ValueError(f"packed must hold one tensor per layer ({len(self.widths)}), "
                             f"got {len(packed)}")
        taus = [self.tau0]
        centres = []
        for i, act in enumerate(self.layers):
            mom = act.moments(taus[-1])
            if not (math.isfinite(mom.m) and math.isfinite(mom.v) and mom.v > 0):
                raise ValueError(f"layers[{i}] ({act!r}) has output mean {mom.m} and variance "
                                 f"{mom.v} at scale {taus[-1]:.4g}: they must be finite and the "
                                 "variance > 0 (thresholds beyond the input's range?)")
            centres.append(float(mom.m))
            taus.append(math.sqrt(mom.v))
        self.taus = tuple(taus)
        self.centres = tuple(centres)
        self.weight_scale = 1.0 / math.sqrt(1.0 - self.sparsity)
        for i, buf in enumerate(packed):
            shape = (dims[i + 1], dims[i])
            try:
                unpack_ternary(buf, shape)  # validates type, length and codes
            except (TypeError, ValueError) as err:
                raise type(err)(f"packed[{i}]: {err}") from None
            self.register_buffer(f"packed_{i}", buf.clone(), persistent=True)
        if isinstance(readout, torch.Tensor) and readout.dtype == torch.float32 \
                and not readout.requires_grad:
            readout = readout.detach().reshape(-1)
            if not bool(torch.isfinite(readout).all()):
                bad = int((~torch.isfinite(readout)).sum())
                raise ValueError(f"readout must be finite, got {bad} non-finite entries "
                                 "(NaN or inf)")
        else:
            arr = _checks.real_array(readout, "readout", ndim=(1, 2), dtype=np.float64)
            arr = np.require(arr, requirements=["C", "W"])
            readout = torch.from_numpy(arr).to(torch.float32).reshape(-1)
            if not bool(torch.isfinite(readout).all()):
                raise ValueError("readout must be finite in float32 (|w| < 3.4e38), got "
                                 f"{int((~torch.isfinite(readout)).sum())} entries that overflow")
        if readout.numel() != dims[-1]:
            raise ValueError(f"readout must have d_L = {dims[-1]} entries, got {readout.numel()}")
        self.register_buffer("readout", readout.clone(), persistent=True)
        # fold centring and scales into per-neuron thresholds (float64 buffers)
        for i in range(len(self.widths)):
            act = self.layers[i]
            if i == 0:
                alpha = self.weight_scale
                beta = torch.zeros(dims[1], dtype=torch.float64)
            else:
                prev = self.layers[i - 1]
                norm = self.weight_scale / math.sqrt(dims[i])
                alpha = prev.scale * norm
                rowsum = self.codes(i).to(torch.float64).sum(dim=1)
                beta = -self.centres[i - 1] * norm * rowsum
            self.register_buffer(f"upper_{i}", (act.s_plus - beta) / alpha, persistent=False)
            self.register_buffer(f"lower_{i}", (act.s_minus - beta) / alpha, persistent=False)

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_plan(cls, plan: CompressionPlan, p: int, widths: Sequence[int], *,
                  sparsity: float = 0.0, generator: torch.Generator,
                  exact_zeros: bool = False) -> "CompressedMLP":
        """Draw sparse ternary weights for the activations of ``plan``.

        Parameters
        ----------
        plan : CompressionPlan
        p : int
            Input dimension.
        widths : sequence of int, length L
        sparsity : float
            ε in [0, 1).
        generator : torch.Generator
        exact_zeros : bool
            Exactly ``round(ε N)`` zeros per matrix (see :func:`ternary_weights`).
        """
        if not isinstance(plan, CompressionPlan):
            raise TypeError(f"plan must be a CompressionPlan, got {type(plan).__name__}")
        dims = [_checks.integer(p, "p", minimum=1)] + list(_checks.int_sequence(widths, "widths", minimum=1))
        if len(dims) - 1 != plan.depth:
            raise ValueError(f"widths must have one entry per layer of plan ({plan.depth}), "
                             f"got {len(dims) - 1}: {widths!r}")
        eps = _checks.fraction(sparsity, "sparsity")
        _checks.torch_generator(generator, "generator")
        exact_zeros = _checks.flag(exact_zeros, "exact_zeros")
        packed = []
        for i in range(len(dims) - 1):
            W = ternary_weights((dims[i + 1], dims[i]), eps, generator, exact_zeros=exact_zeros)
            packed.append(pack_ternary(W))
        readout = ternary_weights((dims[-1],), eps, generator, exact_zeros=exact_zeros)
        return cls(p, widths, plan.layers, plan.tau0, sparsity=eps, packed=packed,
                   readout=readout)

    # -- weights -----------------------------------------------------------------------
    @property
    def depth(self) -> int:
        return len(self.widths)

    def codes(self, layer: int) -> torch.Tensor:
        """Weight codes ``C_ℓ`` (int8, entries in {-1, 0, 1}) of layer ``layer`` (0-based),
        shape (d_ℓ, d_{ℓ−1}); the weights are ``C_ℓ / sqrt(1 − ε)``."""
        try:
            layer = _checks.integer(layer, "layer", minimum=0, maximum=self.depth - 1)
        except ValueError:
            raise ValueError(f"layer must be an integer in [0, {self.depth - 1}], "
                             f"got {layer!r}") from None
        dims = (self.p, *self.widths)
        return unpack_ternary(getattr(self, f"packed_{layer}"), (dims[layer + 1], dims[layer]))

    def weights(self, layer: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Dense weights ``W_ℓ = C_ℓ / sqrt(1 − ε)`` of layer ``layer`` (0-based)."""
        dtype = _checks.float_dtype(dtype)
        return self.codes(layer).to(dtype) * self.weight_scale

    # -- evaluation --------------------------------------------------------------------
    def _check_input(self, X: Any) -> torch.Tensor:
        return torch.from_numpy(self._check_input_array(X))

    def _check_input_array(self, X: Any) -> np.ndarray:
        # real and finite: NaN compares false with every threshold and would silently
        # become code 0
        if (type(X) is np.ndarray and X.dtype == np.float64 and X.ndim == 2
                and X.shape[1] == self.p and X.flags.c_contiguous and X.flags.writeable
                and np.isfinite(X).all()):
            return X  # what the checks below return for it, without their cost (batch 1)
        if isinstance(X, (np.ndarray, torch.Tensor)) and X.ndim == 2 and X.shape[1] != self.p:
            raise ValueError(f"X must have shape (n, p) with p = {self.p} (samples in rows), "
                             f"got {tuple(X.shape)}")
        arr = _checks.real_array(X, "X", ndim=2, shape=(None, self.p), nonempty=False,
                                 shape_hint=f"(n, p) with p = {self.p}")
        return np.require(arr, requirements=["C", "W"])  # torch wants writable

    def activation_codes(self, X: Any, *, backend: str = "auto") -> list[torch.Tensor]:
        """Ternary outputs ``T_ℓ = σ_ℓ(·)/b_ℓ`` of every layer (int8, values in {-1, 0, 1}
        for odd layers, {0, 1} for even ones), each of shape (n, d_ℓ).

        Parameters
        ----------
        X : array_like, shape (n, p)
        backend : {"auto", "ternary", "int8", "float"}
            ``"float"``: layer 1 in float64, layers ℓ ≥ 2 as float32 products of the
            codes (exact integers), the reference. ``"ternary"``: the numba engine of
            :mod:`lossless.compress.ternary_engine` (zero-skipping and bit-plane kernels on the
            codes, layer 1 in float32 with every entry whose rounding error could cross a
            threshold recomputed in float64), exact; see :meth:`ternary_engine`.
            ``"int8"``: layer 1 as a sparse (CSR)
            float32 product with every entry whose rounding error could cross a
            threshold recomputed in float64 (a rigorous bound, so the codes are those of
            ``"float"``); layers ℓ ≥ 2 as int8 × uint8 products accumulated in int32 by
            oneDNN (``torch.ops.onednn.qlinear_pointwise``), exact; for up to 8 samples,
            or for layers with fewer than 4 % non-zero weights, as sparse (CSR) float32
            products of the codes, exact. ``"auto"``: ``"ternary"`` where numba is
            installed, else ``"int8"`` where this torch build has the oneDNN quantized
            ops, else ``"float"``.
        """
        return self._codes(X, backend, last_only=False)

    def _backend(self, backend: str) -> str:
        backend = _checks.choice(backend, "backend", ("auto", "ternary", "int8", "float"))
        if backend == "auto":
            if _numba_available():
                return "ternary"
            engine, reason = self._int8_state()
            if engine is None and reason is not None and "self-check" in reason:
                warnings.warn(f"CompressedMLP: the int8 path is not used, {reason}; falling "
                              f"back to the float path", RuntimeWarning, stacklevel=3)
            return "int8" if engine is not None else "float"
        if backend == "ternary" and not _numba_available():
            raise ValueError("backend 'ternary' needs numba (pip install numba), which is not "
                             "installed; use 'int8' or 'float'")
        return backend

    def ternary_engine(self, threads: int | None = None) -> Any:
        """The :class:`lossless.compress.ternary_engine.TernaryEngine` of this network (built on
        first use from the codes and thresholds, cached, not saved).

        Parameters
        ----------
        threads : int, optional
            Set the engine's thread count (1 to numba's pool size; default: all cores).
        """
        engine = self.__dict__.get("_ternary_engine")
        if engine is None:
            from lossless.compress import ternary_engine

            engine = ternary_engine.TernaryEngine(
                [self.codes(i).numpy() for i in range(self.depth)],
                [getattr(self, f"upper_{i}").numpy() for i in range(self.depth)],
                [getattr(self, f"lower_{i}").numpy() for i in range(self.depth)],
                [act.odd for act in self.layers], self.layers[-1].scale, self.centres[-1],
                self.readout.to(torch.float64).numpy())
            object.__setattr__(self, "_ternary_engine", engine)
        if threads is not None:
            engine.threads = threads
        return engine

    def _codes(self, X: Any, backend: str, *, last_only: bool) -> list[torch.Tensor]:
        """:meth:`activation_codes`; with ``last_only``, the last layer's codes alone (the
        earlier layers are freed as soon as the next is computed)."""
        backend = self._backend(backend)
        if backend == "ternary":
            codes = self.ternary_engine().codes(self._check_input_array(X), last_only=last_only)
            return [torch.from_numpy(T) for T in codes]
        H = self._check_input(X)
        if backend == "int8":
            return self.int8_engine().codes(H, last_only=last_only)
        out = []
        for i, act in enumerate(self.layers):
            C = self.codes(i)
            if i == 0:
                Z = H @ C.to(torch.float64).T
            else:  # integer-valued products, exact in float32 (|Z| <= d < 2^24)
                Z = (out[-1].to(torch.float32) @ C.to(torch.float32).T).to(torch.float64)
            upper = Z > getattr(self, f"upper_{i}")
            lower = Z < getattr(self, f"lower_{i}")
            T = upper.to(torch.int8) + (-1 if act.odd else 1) * lower.to(torch.int8)
            out.append(T)
        return out

    # -- the integer inference path ------------------------------------------------------
    def _int8_state(self) -> tuple[Int8Engine | None, str | None]:
        """The int8 engine and None, or None and the reason it is not used; built on first
        use, checked against the float path on a probe batch, cached, not saved."""
        state = self.__dict__.get("_int8_cache")
        if state is not None:
            return state
        if int8.onednn_ops() is None:
            state = (None, "this torch build has no torch.ops.onednn.qlinear_pointwise "
                           "(oneDNN quantized ops)")
        else:
            engine = Int8Engine([self.codes(i) for i in range(self.depth)],
                                [getattr(self, f"upper_{i}") for i in range(self.depth)],
                                [getattr(self, f"lower_{i}") for i in range(self.depth)],
                                [act.odd for act in self.layers])
            probe = torch.linspace(-2.0, 2.0, 3 * self.p, dtype=torch.float64)
            probe = probe.reshape(3, self.p) * self.tau0 / math.sqrt(self.p)
            probe = torch.cat([probe, probe.flip(0).repeat(int8.FEW_ROWS, 1)])
            try:
                engine.check(probe, self.activation_codes(probe.numpy(), backend="float"))
                state = (engine, None)
            except Int8SelfCheckError as err:
                state = (None, f"its self-check failed: {err}")
        object.__setattr__(self, "_int8_cache", state)
        return state

    def int8_engine(self) -> Int8Engine:
        """The :class:`lossless.compress.int8.Int8Engine` of this network (built on first
        use, checked against the float path on a probe batch, cached, not saved).

        Raises
        ------
        ValueError
            If the int8 path cannot be used here, saying why: this torch build has no
            oneDNN quantized ops, or the engine's self-check found codes that differ
            from the float reference.
        """
        engine, reason = self._int8_state()
        if engine is None:
            raise ValueError(f"backend 'int8' cannot be used: {reason}; use 'float'")
        return engine

    def runtime_bytes(self) -> dict[str, int]:
        """Bytes held for inference: the packed codes, the ternary engine's operands once
        built (index arrays, bit planes, thresholds; :meth:`ternary_engine`), and the int8
        path's once built (CSR codes of every layer, int8 codes of the layers ℓ ≥ 2 that
        oneDNN multiplies, counted at one byte per weight, and thresholds); 0 for a path
        not built."""
        packed = sum(getattr(self, f"packed_{i}").numel() for i in range(self.depth))
        engine = self.__dict__.get("_ternary_engine")
        fast = (self.__dict__.get("_int8_cache") or (None, None))[0]
        return {"packed": packed, "ternary engine": 0 if engine is None else engine.nbytes(),
                "int8 path": 0 if fast is None else fast.nbytes()}

    def features(self, X: Any, *, backend: str = "auto") -> torch.Tensor:
        r"""Last-layer features :math:`\Sigma_L`, shape (n, d_L), float64 (``backend`` as
        in :meth:`activation_codes`)."""
        T = self._codes(X, backend, last_only=True)[-1].to(torch.float64)
        act = self.layers[-1]
        return (act.scale * T - self.centres[-1]) / math.sqrt(self.widths[-1])

    def forward(self, X: Any, *, backend: str = "auto") -> torch.Tensor:
        """Output ``f(x_i) = w^T Sigma_L(x_i)``, shape (n,), float64 (``backend`` as in
        :meth:`activation_codes`)."""
        if self._backend(backend) == "ternary":
            return torch.from_numpy(self.ternary_engine().outputs(self._check_input_array(X)))
        return self.features(X, backend=backend) @ self.readout.to(torch.float64)

    def to_reference(self, dtype: torch.dtype = torch.float64) -> Any:
        """The unpacked reference: a :class:`lossless.networks.MLP` with the same dense
        ternary weights, activations, τ_0 and readout."""
        from lossless import networks

        dtype = _checks.float_dtype(dtype)
        ref = networks.MLP(self.p, self.widths, list(self.layers), self.tau0, weights="ternary",
                           sparsity=self.sparsity, generator=torch.Generator().manual_seed(0),
                           dtype=dtype)
        with torch.no_grad():
            for i, W in enumerate(ref.hidden):
                W.copy_(self.weights(i, dtype))
            ref.readout.copy_(self.readout.to(dtype))
        return ref

    # -- persistence -------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything :meth:`save` writes (plain types, the 2-bit packed codes as uint8
        tensors and the float32 readout; the file holds the codes entropy-coded)."""
        return {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "p": self.p,
            "widths": list(self.widths),
            "tau0": self.tau0,
            "sparsity": self.sparsity,
            "layers": [{"s_minus": a.s_minus, "s_plus": a.s_plus, "scale": a.scale,
                        "odd": a.odd} for a in self.layers],
            "packed": [getattr(self, f"packed_{i}") for i in range(self.depth)],
            "readout": self.readout,
        }

    def to_bytes(self) -> bytes:
        """The bytes :meth:`save` writes.

        Layout (format version 3): the line ``lossless.CompressedMLP``, one line of JSON
        ``{"format", "version", "payload_bytes", "sha256"}``, then the payload: one line of
        JSON metadata (``p``, ``widths``, ``tau0``, ``sparsity``, the thresholds and scales
        of ``layers``, the codec, and the shape and byte count of every section), then each
        layer's weight codes entropy-coded by :func:`lossless.compress.codec.encode_ternary`
        (ANS, within 0.1 % of the codes' entropy bound), then the fp32 readout. The
        SHA-256 of the payload lets :meth:`load` refuse a corrupted or truncated file.
        Files of version 2 (2-bit codes in a ``torch.save``) are still read.
        """
        codes = [self.codes(i).numpy() for i in range(self.depth)]
        return pack_file(_encode_payload(self.state(), codes))

    def save(self, path: str | Path) -> int:
        """Write the model to ``path``; returns the number of bytes written."""
        path = _checks.path(path)
        data = self.to_bytes()
        path.write_bytes(data)
        return len(data)

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = "<bytes>") -> "CompressedMLP":
        """Rebuild a model from :meth:`to_bytes` (``source`` names it in error messages).

        Raises
        ------
        ValueError
            Not a saved CompressedMLP, an unknown format version, a truncated or corrupted
            payload (size or SHA-256 mismatch), or a state that fails the range checks
            (finite values, codes in {0, 1, 2}, shapes consistent with ``p`` and
            ``widths``); the message names ``source``.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes, got {_checks.describe(data)}")
        data = bytes(data)
        where = f"{source!r}" if source != "<bytes>" else "data"
        version, payload = unpack_file(data, where)
        if version == 2:
            try:
                state = torch.load(io.BytesIO(payload), weights_only=True)
            except Exception as err:  # noqa: BLE001 - any unpickling failure means bad file
                raise ValueError(f"{where} is not a saved CompressedMLP: its payload does not "
                                 f"load ({err})") from None
        else:
            try:
                state = _decode_payload(payload)
            except (TypeError, ValueError) as err:
                raise ValueError(f"{where} is not a valid CompressedMLP file: {err}") from None
            if state.get("version") != version:
                raise ValueError(f"{where} is not a valid CompressedMLP file: its metadata "
                                 f"says version {state.get('version')!r}, its header {version}")
        shapes = state.pop("_shapes", None) if version == 3 else None
        try:
            net = cls._from_state(state)
        except (TypeError, ValueError, KeyError) as err:
            raise ValueError(f"{where} holds an invalid CompressedMLP state: {err}") from None
        dims = [net.p, *net.widths]
        expected = [(dims[i + 1], dims[i]) for i in range(net.depth)]
        if shapes is not None and shapes != expected:
            raise ValueError(f"{where} holds an invalid CompressedMLP state: its code sections "
                             f"have shapes {shapes}, p and widths need {expected}")
        return net

    @classmethod
    def _from_state(cls, state: Any) -> "CompressedMLP":
        if not isinstance(state, dict):
            raise TypeError(f"the state must be a dict, got {type(state).__name__}")
        keys = {"format", "version", "p", "widths", "tau0", "sparsity", "layers", "packed",
                "readout"}
        missing = sorted(keys - set(state))
        if missing:
            raise ValueError(f"missing keys {missing}")
        if state["format"] != _FORMAT or state["version"] not in _READ_VERSIONS \
                or isinstance(state["version"], bool):
            raise ValueError(f"format {state['format']!r} version {state['version']!r}, "
                             f"expected {_FORMAT!r} version in {list(_READ_VERSIONS)}")
        layers_state = state["layers"]
        if not isinstance(layers_state, list):
            raise TypeError(f"layers must be a list, got {type(layers_state).__name__}")
        layers = []
        for i, d in enumerate(layers_state):
            if not isinstance(d, dict) or set(d) != {"s_minus", "s_plus", "scale", "odd"}:
                raise ValueError(f"layers[{i}] must be a dict with keys s_minus, s_plus, "
                                 f"scale, odd, got {_checks.describe(d)}")
            s_minus = _checks.real(d["s_minus"], f"layers[{i}].s_minus")
            s_plus = _checks.real(d["s_plus"], f"layers[{i}].s_plus")
            layers.append(activations.Ternary(
                s_minus, s_plus, _checks.positive(d["scale"], f"layers[{i}].scale"),
                _checks.flag(d["odd"], f"layers[{i}].odd")))
        readout = state["readout"]
        if not isinstance(readout, torch.Tensor) or readout.dtype != torch.float32 \
                or readout.ndim != 1:
            raise TypeError(f"readout must be a 1-D float32 tensor, got "
                            f"{_checks.describe(readout)}")
        if not isinstance(state["packed"], list):
            raise TypeError(f"packed must be a list, got {type(state['packed']).__name__}")
        return cls(state["p"], state["widths"], layers, state["tau0"],
                   sparsity=state["sparsity"], packed=state["packed"], readout=readout)

    @classmethod
    def load(cls, path: str | Path) -> "CompressedMLP":
        """Read a model written by :meth:`save` (format version 3, or 2 of older lossless).

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            If the file is not a saved CompressedMLP, has another format version, is
            truncated or corrupted (SHA-256 mismatch), or holds values that fail the range
            checks (see :meth:`from_bytes`); the message names the file.
        """
        path = _checks.path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no saved CompressedMLP at {str(path)!r}")
        return cls.from_bytes(path.read_bytes(), source=str(path))

    # -- memory ------------------------------------------------------------------------
    def memory_bits(self) -> MemoryReport:
        """Actual storage of this model next to the bounds of :func:`memory_report`.

        Adds measured rows: the 2-bit packed codes held in memory; the size of what
        :meth:`save` writes (entropy-coded codes, fp32 readout, thresholds and the
        container's headers); the entropy-coded codes alone, next to the empirical entropy
        bound of these very codes (their own frequencies of 0, +1, −1); and, for
        comparison, the packed codes after zlib (deflate, level 9), a general-purpose
        compressor.
        """
        base = memory_report(self.p, self.widths, self.sparsity)
        packed_bytes = sum(getattr(self, f"packed_{i}").numel() for i in range(self.depth))
        deflated = sum(len(zlib.compress(getattr(self, f"packed_{i}").numpy().tobytes(), 9))
                       for i in range(self.depth))
        codes = [self.codes(i).numpy() for i in range(self.depth)]
        coded = sum(len(codec.encode_ternary(c)) for c in codes)
        empirical = sum(codec.entropy_bound_bits(c) for c in codes)
        rows = base.rows + (
            ("packed codes in memory (actual)", 8.0 * packed_bytes, "actual"),
            ("saved file incl. fp32 readout and headers (actual)", 8.0 * len(self.to_bytes()),
             "actual"),
            ("entropy-coded codes in the file (actual)", 8.0 * coded, "actual"),
            ("entropy bound of these codes (their own frequencies)", empirical, "bound"),
            ("packed codes + zlib deflate (actual)", 8.0 * deflated, "actual"),
        )
        return MemoryReport(n_weights=base.n_weights, sparsity=self.sparsity, rows=rows)

    def extra_repr(self) -> str:
        return (f"p={self.p}, widths={list(self.widths)}, sparsity={self.sparsity}, "
                f"tau0={self.tau0:.4g}, layers={list(self.layers)}")
