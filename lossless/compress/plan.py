"""The plan for a whole network: :func:`compress` solves every layer in turn and returns a
:class:`CompressionPlan` (the book's compression chapter, eq-compress-ternary)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lossless import _checks, activations
from lossless.display import fmt_residual, fmt_sig, html_table, text_table
from lossless.activations import Activation, check_layers
from lossless.compress.solver import CompressionError, _label, solve_layer

# =====================================================================================
# the plan for a whole network
# =====================================================================================


_LAST_LAYER_MODES = ("closest_tau", "match_h")


@dataclass(frozen=True)
class CompressionPlan:
    """The compressed network's activations and how well they match (eq-compress-equations).

    Attributes
    ----------
    original_layers : list of Activation
        σ_1..σ_L of the original network.
    layers : list of activations.Ternary
        The compressed activations σ^t_1..σ^t_L (thresholds and scale in absolute units
        of the pre-activation, whose scale is τ^c_{ℓ−1}).
    tau0 : float
        Input scale τ_0 (shared by both networks).
    solutions : tuple of LayerSolution
        Per-layer details (targets, achieved moments, all roots found).
    tau, tau_compressed : ndarray, shape (L+1,)
        τ_0..τ_L of the original and of the compressed network (not squared).
    kappa2 : ndarray, shape (L+1,)
        κ_0²..κ_L² of the original network (``inf`` from a layer with a jump on).
    elapsed : float
        Seconds spent solving (not part of the repr).
    """

    original_layers: list
    layers: list
    tau0: float
    solutions: tuple
    tau: np.ndarray
    tau_compressed: np.ndarray
    kappa2: np.ndarray
    last_layer: str = "closest_tau"
    elapsed: float = field(default=0.0, compare=False)

    @property
    def depth(self) -> int:
        return len(self.layers)

    @property
    def residuals(self) -> np.ndarray:
        """ndarray, shape (L, 3): relative residuals of (g1², g2², h) per layer.

        NaN where an equation is not imposed (h at the last layer with
        ``last_layer="closest_tau"``).
        """
        return np.array([[s.residuals.get(k, np.nan) for k in ("g1^2", "g2^2", "h")]
                         for s in self.solutions])

    @property
    def max_residual(self) -> float:
        """Largest relative residual over all imposed equations."""
        return float(np.nanmax(self.residuals))

    @property
    def shift(self) -> float:
        """CK identity shift ``(τ^c_L)² − τ_L²``: K_CK^c ≈ K_CK + shift · I_n."""
        return float(self.tau_compressed[-1] ** 2 - self.tau[-1] ** 2)

    @property
    def tau_mismatch(self) -> np.ndarray:
        """ndarray, shape (L+1,): ``(τ^c_ℓ)² − τ_ℓ²`` at every layer."""
        return self.tau_compressed**2 - self.tau**2

    def surrogates(self) -> list[Activation]:
        """Affine straight-through derivatives ``ς_ℓ(t) = g1 + g2 t`` of the compressed
        layers (``g1, g2`` of the ternary activation at τ^c_{ℓ−1}); the book's
        compression chapter, section "The NTK: off the diagonal, and on it".

        They have ``E[ς] = g1`` and ``E[ς'] = g2``, so the NTK coefficients β of the
        compressed network equal the original's (eq-equiv-beta), and the smallest possible
        ``q = E[ς²] = g1² + τ_c² g2²`` among such surrogates (the book's exercise
        ex-compress-affine-q). Matching β controls the NTK off its diagonal only: on the
        diagonal ``K'_ℓ(i,i) = g1² + g2² ν_i²`` grows with the sample's squared norm
        (slope ``g2²``, see :func:`ntk_diagonal_slopes`). Pass them as
        ``surrogates=`` to :func:`lossless.theory.coefficients` or
        :func:`lossless.kernels.exact_ntk`.
        """
        return [activations.get("quadratic", a=0.0, b=float(s.achieved["g2"]),
                                c=float(s.achieved["g1"])) for s in self.solutions]

    def kappa2_compressed(self, surrogates: Sequence[Any] | None = None) -> np.ndarray:
        """κ_0²..κ_L² of the compressed network (``inf`` without surrogates: q = ∞).

        Parameters
        ----------
        surrogates : list, optional
            One straight-through derivative per layer (see :meth:`surrogates`); any
            Activation or callable accepted by :func:`lossless.theory.coefficients`.
        """
        from lossless import theory

        return theory.coefficients(self.layers, self.tau0, surrogates=surrogates).kappa2

    def ntk_shift(self, surrogates: Sequence[Any] | None = None) -> float:
        """NTK identity shift ``(κ^c_L)² − κ_L²`` (``inf`` without surrogates).

        Off the diagonal the NTKs agree (the β match); on the diagonal the compressed
        network's exact NTK is infinite (a step has q = E[σ'²] = ∞), and with
        straight-through derivatives its κ depends on them.
        """
        return float(self.kappa2_compressed(surrogates)[-1] - self.kappa2[-1])

    # -- conversions -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain-Python summary (JSON-serializable)."""
        def num(v: float) -> float | None:
            return None if not math.isfinite(v) else float(v)

        return {
            "tau0": self.tau0,
            "last_layer": self.last_layer,
            "original": [_label(a) for a in self.original_layers],
            "odd": [bool(t.odd) for t in self.layers],
            "s_minus": [float(t.s_minus) for t in self.layers],
            "s_plus": [float(t.s_plus) for t in self.layers],
            "scale": [float(t.scale) for t in self.layers],
            "residuals": [{k: float(v) for k, v in s.residuals.items()} for s in self.solutions],
            "tau": [float(t) for t in self.tau],
            "tau_compressed": [float(t) for t in self.tau_compressed],
            "kappa2": [num(k) for k in self.kappa2],
            "shift": self.shift,
        }

    def table_rows(self) -> list[list[str]]:
        """The plan as table rows of strings, one per layer (the rows of its text and HTML
        tables). Residuals at rounding level print as "< 1e-12" (their digits depend on
        the machine); the last layer with ``last_layer="closest_tau"`` matches g1², g2²
        and minimises |(τ^c_L)² − τ_L²|, which the last column says."""
        rows = []
        for s, t in zip(self.solutions, self.layers):
            equations = [k.replace("^2", "²") for k in s.matched if k != "tau^2"]
            solved = "+".join(equations) + " matched"
            if "tau^2" in s.matched:
                solved += "; τ² minimised"
            rows.append([
                str(s.index), _label(s.original), "odd" if t.odd else "even",
                fmt_sig(t.s_minus), fmt_sig(t.s_plus), fmt_sig(t.scale),
                fmt_sig(self.tau[s.index]), fmt_sig(self.tau_compressed[s.index]),
                fmt_residual(s.max_residual), solved,
            ])
        return rows

    _HEADER = ("ℓ", "original", "pattern", "s₋", "s₊", "𝔟", "τ_ℓ", "τᶜ_ℓ", "residual",
               "equations")

    def __repr__(self) -> str:
        return text_table(f"CompressionPlan(L={self.depth}, tau0={self.tau0:.4g}, "
                          f"shift (τᶜ_L² − τ_L²) = {self.shift:.4g})", self._HEADER, self.table_rows())

    def _repr_html_(self) -> str:
        return html_table(f"CompressionPlan (L = {self.depth}, τ<sub>0</sub> = {self.tau0:.4g}, "
                          f"identity shift τᶜ<sub>L</sub>² − τ<sub>L</sub>² = {self.shift:.4g})",
                          self._HEADER, self.table_rows())


def compress(layers: Sequence[Activation], tau0: float, *,
             last_layer: str = "closest_tau", tol: float = 1e-10) -> CompressionPlan:
    r"""Solve the ternary activations σ^t_ℓ of the compressed network, layer by layer.

    Layer ℓ is solved at the compressed network's own input scale τ^c_{ℓ−1} (which
    the previous compressed layers produce), against the original moments at τ_{ℓ−1}:
    hidden layers match ``g1², g2², h``; the last layer matches ``g1², g2²`` and makes
    ``(τ^c_L)²`` as close to ``τ_L²`` as the family allows (``last_layer="closest_tau"``)
    or matches ``h`` too (``"match_h"``). Every α and β of the two networks then agree
    (eq-equiv-alpha, eq-compress-equations) and their CKs differ asymptotically by
    ``shift · I_n`` only (with Gaussian first-layer weights: a first layer with another
    weight law adds its fourth-cumulant term, the book's section sec-first-layer-law).
    At each hidden layer the root of smallest output variance is kept (greedy; that
    this minimises the final shift is not proved, :func:`root_paths` checks it for a
    given network).

    Parameters
    ----------
    layers : list of Activation, length L
        The original network's activations.
    tau0 : float
        τ_0 = sqrt(mean_i ‖x_i‖²) (not squared), > 0.
    last_layer : {"closest_tau", "match_h"}
        What the last layer matches besides ``g1², g2²``.
    tol : float, default 1e-10
        Largest relative residual accepted per equation.

    Returns
    -------
    CompressionPlan

    Raises
    ------
    CompressionError
        When some layer's targets are out of reach of the two-threshold family (the
        message names the layer and the equation).
    """
    start = time.perf_counter()
    layers = check_layers(layers)
    tau0 = _checks.input_scale(tau0, "tau0")
    last_layer = _checks.choice(last_layer, "last_layer", _LAST_LAYER_MODES)
    tol = _checks.real(tol, "tol", low=0.0, high=1.0, low_open=True, high_open=True)
    try:
        moments = activations.layer_moments(layers, tau0)
    except ValueError as err:  # a layer with no finite positive output variance
        raise CompressionError(str(err)) from None
    tau = [tau0] + [math.sqrt(m.v) for m in moments]
    tau_c = [tau0]
    kappa2 = [tau0**2]
    solutions, ternaries = [], []
    L = len(layers)
    for index, (act, target) in enumerate(zip(layers, moments), start=1):
        bad = [k for k, v in target.to_dict().items() if k != "q" and not math.isfinite(v)]
        if bad:
            raise ValueError(
                f"layer {index} ({_label(act)}) returned non-finite moments "
                f"({', '.join(f'{k} = {getattr(target, k)}' for k in bad)}) at scale "
                f"{tau[index - 1]:.4g}: the activation must be finite on the Gaussian's support")
        tau_next = tau[index]
        last = index == L
        sol = solve_layer(target, tau_c[-1], match_h=not last or last_layer == "match_h",
                          tau_target=tau_next, index=index, original=act,
                          tau_in=tau[index - 1],
                          tol=tol)
        solutions.append(sol)
        ternaries.append(sol.ternary)
        kappa2.append(target.v + target.q * kappa2[-1] if math.isfinite(target.q) else math.inf)
        tau_c.append(math.sqrt(sol.variance))
    return CompressionPlan(original_layers=layers, layers=ternaries, tau0=tau0,
                           solutions=tuple(solutions), tau=np.array(tau),
                           tau_compressed=np.array(tau_c), kappa2=np.array(kappa2),
                           last_layer=last_layer, elapsed=time.perf_counter() - start)
