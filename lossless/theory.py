"""Asymptotic equivalents of the conjugate and neural tangent kernels (the book's eq-equiv-theorem).

:func:`coefficients` runs the scalar recursion (α, β, τ, κ per layer) from the Gaussian
moments of the activations; :func:`equivalent_ck` and :func:`equivalent_ntk` assemble
the n×n matrices K̃ from a :class:`~lossless.data.Sample`
(:func:`lossless.explore.compare_equivalent_spectra` puts them against the exact kernels
of :mod:`lossless.kernels`). With non-Gaussian
first-layer weights (``first_layer_m4``, fourth moment m₄ = 3 + κ₄) the equivalents gain
the first layer's κ₄ block ``α_L,5 (J/√p) D (J/√p)ᵀ`` (eq-first-layer-equivalent,
:func:`first_layer_term`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lossless import _checks, activations
from lossless.display import fmt_sig, html_table, text_table
from lossless.activations import (Activation, Moments, check_layers, check_surrogates)

__all__ = [
    "DerivativeMoments",
    "LayerCoefficients",
    "Coefficients",
    "EquivalentTerms",
    "coefficients",
    "ck_terms",
    "ntk_terms",
    "equivalent_ck",
    "equivalent_ntk",
    "first_layer_term",
    "authors_ck_shift",
    "authors_equivalent_ck",
    "authors_ntk_shift",
    "authors_equivalent_ntk",
    "hermite_twin",
]

_DIAGONAL_MODES = ("raise", "nan")
_KERNELS = ("ck", "ntk")

# ---------------------------------------------------------------------------------
# validation helpers


def _check_sample(sample: Any) -> None:
    missing = [a for a in ("X", "V", "t", "T", "tau0") if not hasattr(sample, a)]
    if missing:
        raise TypeError(
            "sample must be a lossless.data.Sample (with X, V, t, T, tau0), got "
            f"{type(sample).__name__} lacking {', '.join(missing)}"
        )


# ---------------------------------------------------------------------------------
# coefficients


@dataclass(frozen=True)
class DerivativeMoments:
    """Gaussian moments of the derivative σ' (or of its surrogate) at scale τ.

    These are what the NTK recursion needs from ``K'_CK``: ``g1 = E[σ'(τξ)]``,
    ``g2 = E[σ''(τξ)]`` (both via Stein's identity, so they exist for step functions)
    and ``q = E[σ'(τξ)²]`` (infinite for an activation with a jump).
    """

    g1: float
    g2: float
    q: float
    surrogate: bool = False


def _derivative_moments(act: Activation, surrogate: Activation | None, tau: float,
                        moments: Moments) -> DerivativeMoments:
    if surrogate is None:
        return DerivativeMoments(g1=moments.g1, g2=moments.g2, q=moments.q)
    sm = surrogate.moments(tau)
    # the surrogate ς (varsigma) stands for σ' itself: E[ς], E[ς'] and E[ς²] = Var ς + (E ς)².
    return DerivativeMoments(g1=sm.m, g2=sm.g1, q=sm.v + sm.m**2, surrogate=True)


@dataclass(frozen=True)
class LayerCoefficients:
    """The scalars of one layer ℓ of the recursion (layer 0 is the input).

    Attributes
    ----------
    index : int
        ℓ, from 0 (input) to L.
    activation : Activation or None
        σ_ℓ (None for ℓ = 0).
    tau_in : float or None
        τ_{ℓ-1}, the scale at which the moments are evaluated (None for ℓ = 0).
    moments : Moments or None
        ``σ_ℓ.moments(τ_{ℓ-1})`` (None for ℓ = 0).
    derivative : DerivativeMoments or None
        Moments of σ_ℓ' (or of its surrogate) used by the NTK (None for ℓ = 0).
    alpha : tuple of 4 floats
        (α_ℓ,1, α_ℓ,2, α_ℓ,3, α_ℓ,4).
    beta : tuple of 3 floats
        (β_ℓ,1, β_ℓ,2, β_ℓ,3).
    tau : float
        τ_ℓ (not squared).
    kappa2 : float
        κ_ℓ² (``inf`` once a layer with a jump and no surrogate has been crossed).
    alpha5, beta5 : float
        α_ℓ,5 and β_ℓ,5, the coefficients of the first layer's κ₄ block
        ``(J/√p) D (J/√p)ᵀ`` in K̃_CK,ℓ and K̃_NTK,ℓ (the book's
        eq-first-layer-equivalent); 0 with Gaussian first-layer weights.
    """

    index: int
    activation: Activation | None
    tau_in: float | None
    moments: Moments | None
    derivative: DerivativeMoments | None
    alpha: tuple[float, float, float, float]
    beta: tuple[float, float, float]
    tau: float
    kappa2: float
    alpha5: float = 0.0
    beta5: float = 0.0


_COLUMNS = (
    ("layer", "ℓ"), ("activation", "σ"), ("tau_in", "τ_in"), ("g1sq", "g1²"),
    ("g2sq", "g2²"), ("h", "h"), ("q", "q"), ("alpha1", "α1"), ("alpha2", "α2"),
    ("alpha3", "α3"), ("alpha4", "α4"), ("beta1", "β1"), ("beta2", "β2"),
    ("beta3", "β3"), ("tau", "τ"), ("kappa2", "κ²"),
)


def _fmt(value: Any) -> str:
    # four significant digits after rounding to twelve (display.fmt_sig): exact values
    # such as alpha_3,1 = 1/64 for ReLU print the same whatever the rounding noise
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return fmt_sig(value)


@dataclass(frozen=True)
class Coefficients:
    """Per-layer coefficients of the CK/NTK equivalents (eq-equiv-alpha, eq-equiv-beta), a small table.

    ``rows[0]`` is the input (α_0 = (1, 0, 0, 1), β_0 = (1, 0, 0), κ_0² = τ_0²),
    ``rows[ℓ]`` layer ℓ = 1..L. Indexing (``coeffs[ℓ]``) returns a
    :class:`LayerCoefficients`; the array properties stack all rows.
    ``first_layer_m4`` is E w⁴ of the first layer's weights (3: Gaussian); the first
    layer's κ₄ block has the coefficients :attr:`alpha5`, :attr:`beta5`
    (eq-first-layer-equivalent), shown in the table only when κ₄ ≠ 0.
    """

    tau0: float
    rows: tuple[LayerCoefficients, ...]
    first_layer_m4: float = 3.0

    # -- table access ------------------------------------------------------------
    @property
    def depth(self) -> int:
        """L, the number of layers."""
        return len(self.rows) - 1

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> LayerCoefficients:
        return self.rows[index]

    def __iter__(self):
        return iter(self.rows)

    @property
    def alpha(self) -> np.ndarray:
        """ndarray, shape (L+1, 4): α_ℓ,1..4 for ℓ = 0..L."""
        return np.array([r.alpha for r in self.rows], dtype=float)

    @property
    def beta(self) -> np.ndarray:
        """ndarray, shape (L+1, 3): β_ℓ,1..3 for ℓ = 0..L."""
        return np.array([r.beta for r in self.rows], dtype=float)

    @property
    def tau(self) -> np.ndarray:
        """ndarray, shape (L+1,): τ_0..τ_L (not squared)."""
        return np.array([r.tau for r in self.rows], dtype=float)

    @property
    def kappa2(self) -> np.ndarray:
        """ndarray, shape (L+1,): κ_0²..κ_L²."""
        return np.array([r.kappa2 for r in self.rows], dtype=float)

    @property
    def kappa4(self) -> float:
        """κ₄ = m₄ − 3 of the first layer's weights (0 for Gaussian weights)."""
        return self.first_layer_m4 - 3.0

    @property
    def alpha5(self) -> np.ndarray:
        """ndarray, shape (L+1,): α_ℓ,5 (first layer's κ₄ block of K̃_CK,ℓ), ℓ = 0..L."""
        return np.array([r.alpha5 for r in self.rows], dtype=float)

    @property
    def beta5(self) -> np.ndarray:
        """ndarray, shape (L+1,): β_ℓ,5 (first layer's κ₄ block of K̃_NTK,ℓ), ℓ = 0..L."""
        return np.array([r.beta5 for r in self.rows], dtype=float)

    @property
    def invariants(self) -> np.ndarray:
        """ndarray, shape (L, 3): (g1², g2², h) of each layer at its input scale.

        With τ_L these fix every α (eq-equiv-alpha): two networks with equal invariants
        (the last layer's h excepted, it never enters) and equal τ_L have the same
        asymptotic CK.
        """
        return np.array([[r.moments.g1**2, r.moments.g2**2, r.moments.h]
                         for r in self.rows[1:]], dtype=float)

    # -- the pieces of the equivalents -------------------------------------------
    def _row(self, layer: int | None) -> LayerCoefficients:
        if layer is None:
            return self.rows[-1]
        layer = _checks.integer(layer, "layer", minimum=-len(self.rows), maximum=self.depth)
        return self.rows[layer]

    def ck_shift(self, layer: int | None = None) -> float:
        """Identity coefficient τ_ℓ² − τ_0² α_ℓ,1 of K̃_CK,ℓ (default ℓ = L)."""
        r = self._row(layer)
        return r.tau**2 - self.tau0**2 * r.alpha[0]

    def ntk_shift(self, layer: int | None = None) -> float:
        """Identity coefficient κ_ℓ² − τ_0² β_ℓ,1 of K̃_NTK,ℓ (default ℓ = L)."""
        r = self._row(layer)
        return r.kappa2 - self.tau0**2 * r.beta[0]

    def A(self, t: np.ndarray, T: np.ndarray, layer: int | None = None,
          D: np.ndarray | None = None) -> np.ndarray:
        """The (K+1)×(K+1) matrix A_ℓ of the low-rank part V A_ℓ Vᵀ of K̃_CK,ℓ.

        Parameters
        ----------
        t : ndarray, shape (K,)
            ``t_a = tr C_a° / √p``.
        T : ndarray, shape (K, K)
            ``T_ab = tr(C_a C_b) / p``.
        layer : int, optional
            ℓ (default L).
        D : ndarray, shape (K, K), optional
            ``D_ab = Σ_k (C_a)_kk (C_b)_kk / p`` (:attr:`lossless.data.Sample.D`); needed
            when the first layer's weights are not Gaussian (α_ℓ,5 ≠ 0), where
            ``α_ℓ,5 D`` is added to the class block (eq-first-layer-equivalent).
        """
        r = self._row(layer)
        return _lowrank_block(r.alpha[1], r.alpha[2], t, T, r.alpha5, D)

    def B(self, t: np.ndarray, T: np.ndarray, layer: int | None = None,
          D: np.ndarray | None = None) -> np.ndarray:
        """The (K+1)×(K+1) matrix B_ℓ of the low-rank part V B_ℓ Vᵀ of K̃_NTK,ℓ
        (``β_ℓ,5 D`` added to the class block, see :meth:`A`)."""
        r = self._row(layer)
        return _lowrank_block(r.beta[1], r.beta[2], t, T, r.beta5, D)

    # -- conversions ---------------------------------------------------------------
    def to_dict(self) -> dict[str, list]:
        """Column-oriented plain dict (``{"alpha1": [...], ...}``), one entry per row.

        Keys: ``layer, activation, tau_in, m, g1, g2, h, v, q, ntk_g1, ntk_g2, ntk_q,
        alpha1..alpha4, beta1..beta3, tau, kappa2`` and the scalar ``tau0`` is repeated
        in ``tau0``; with non-Gaussian first-layer weights (``first_layer_m4 != 3``)
        also ``first_layer_m4``, ``alpha5`` and ``beta5``. Entries that do not exist for
        the input row (moments) are None.
        """
        out: dict[str, list] = {k: [] for k in (
            "layer", "activation", "tau0", "tau_in", "m", "g1", "g2", "h", "v", "q",
            "ntk_g1", "ntk_g2", "ntk_q", "alpha1", "alpha2", "alpha3", "alpha4",
            "beta1", "beta2", "beta3", "tau", "kappa2")}
        for r in self.rows:
            out["layer"].append(r.index)
            out["activation"].append(None if r.activation is None else _act_label(r.activation))
            out["tau0"].append(self.tau0)
            out["tau_in"].append(r.tau_in)
            for key in ("m", "g1", "g2", "h", "v", "q"):
                out[key].append(None if r.moments is None else float(getattr(r.moments, key)))
            for key in ("g1", "g2", "q"):
                out["ntk_" + key].append(None if r.derivative is None
                                         else float(getattr(r.derivative, key)))
            for k in range(4):
                out[f"alpha{k + 1}"].append(float(r.alpha[k]))
            for k in range(3):
                out[f"beta{k + 1}"].append(float(r.beta[k]))
            out["tau"].append(float(r.tau))
            out["kappa2"].append(float(r.kappa2))
        if self.kappa4 != 0.0:
            out["first_layer_m4"] = [self.first_layer_m4] * len(self.rows)
            out["alpha5"] = [float(r.alpha5) for r in self.rows]
            out["beta5"] = [float(r.beta5) for r in self.rows]
        return out

    def _cells(self) -> list[list[str]]:
        rows = []
        for r in self.rows:
            mom = r.moments
            rows.append([
                str(r.index),
                "input" if r.activation is None else _act_label(r.activation),
                _fmt(r.tau_in),
                _fmt(None if mom is None else mom.g1**2),
                _fmt(None if mom is None else mom.g2**2),
                _fmt(None if mom is None else mom.h),
                _fmt(None if r.derivative is None else r.derivative.q),
                *(_fmt(a) for a in r.alpha),
                *(_fmt(b) for b in r.beta),
                _fmt(r.tau),
                _fmt(r.kappa2),
            ] + ([_fmt(r.alpha5), _fmt(r.beta5)] if self.kappa4 != 0.0 else []))
        return rows

    def _labels(self) -> list[str]:
        extra = ["α5", "β5"] if self.kappa4 != 0.0 else []
        return [label for _, label in _COLUMNS] + extra

    def _title_m4(self) -> str:
        return "" if self.kappa4 == 0.0 else f", first-layer m4={self.first_layer_m4:.4g}"

    def __repr__(self) -> str:
        return text_table(f"Coefficients(L={self.depth}, tau0={self.tau0:.4g}{self._title_m4()})",
                          self._labels(), self._cells())

    def _repr_html_(self) -> str:
        return html_table(f"Coefficients (L = {self.depth}, τ<sub>0</sub> = {self.tau0:.4g}"
                          f"{self._title_m4()})", self._labels(), self._cells())


def _act_label(act: Activation) -> str:
    return str(getattr(act, "name", type(act).__name__))


def _lowrank_block(c2: float, c3: float, t: np.ndarray, T: np.ndarray, c5: float = 0.0,
                   D: np.ndarray | None = None) -> np.ndarray:
    t = _checks.real_array(t, "t", ndim=1, shape_hint="(K,)")
    T = _checks.square_symmetric(T, "T")
    K = t.shape[0]
    if T.shape != (K, K):
        raise ValueError(f"T must have shape ({K}, {K}) to match t of shape ({K},), got {T.shape}")
    if c5 != 0.0:
        if D is None:
            raise ValueError(
                "D is needed: the first layer's weights are not Gaussian (alpha5/beta5 = "
                f"{c5:.6g} != 0), so the class block gets alpha5 * D with "
                "D_ab = sum_k (C_a)_kk (C_b)_kk / p (lossless.data.Sample.D)")
        D = _checks.square_symmetric(D, "D")
        if D.shape != (K, K):
            raise ValueError(f"D must have shape ({K}, {K}) to match t of shape ({K},), got {D.shape}")
    A = np.empty((K + 1, K + 1))
    A[:K, :K] = c2 * np.outer(t, t) + c3 * T
    if c5 != 0.0:
        A[:K, :K] += c5 * D
    A[:K, K] = c2 * t
    A[K, :K] = c2 * t
    A[K, K] = c2
    return A


def coefficients(layers: Sequence[Activation], tau0: float, *,
                 surrogates: Sequence[Activation | Callable | None] | None = None,
                 first_layer_m4: float = 3.0) -> Coefficients:
    """Run the recursion of eq-equiv-alpha and eq-equiv-beta for the α, β, τ and κ of every layer.

    Starting from α_0 = (1, 0, 0, 1), β_0 = (1, 0, 0), κ_0² = τ_0², layer ℓ uses the
    moments of σ_ℓ at scale τ_{ℓ-1}::

        α_ℓ,1 = g1² α_ℓ-1,1
        α_ℓ,2 = g1² α_ℓ-1,2 + g2² α_ℓ-1,4² / 4
        α_ℓ,3 = g1² α_ℓ-1,3 + g2² α_ℓ-1,1² / 2
        α_ℓ,4 = h α_ℓ-1,4 / 2
        β_ℓ,1 = α_ℓ,1 + ġ1² β_ℓ-1,1
        β_ℓ,2 = α_ℓ,2 + ġ1² β_ℓ-1,2
        β_ℓ,3 = α_ℓ,3 + ġ1² β_ℓ-1,3 + ġ2² α_ℓ-1,1 β_ℓ-1,1
        τ_ℓ² = v,   κ_ℓ² = τ_ℓ² + q̇ κ_ℓ-1²

    where (ġ1, ġ2, q̇) are (g1, g2, q) of σ_ℓ, or (E ς, E ς', E ς²) of the surrogate
    derivative ς_ℓ of that layer if one is given (the same convention as
    :func:`lossless.kernels.exact_ntk`).

    With first-layer weights of fourth moment m₄ (κ₄ = m₄ − 3; eq-first-layer-equivalent)
    two more coefficients carry the first layer's κ₄ block ``(J/√p) D (J/√p)ᵀ``::

        α_1,5 = κ₄ g2,1² / 4,        α_ℓ,5 = g1² α_ℓ-1,5      (ℓ ≥ 2)
        β_ℓ,5 = α_ℓ,5 + ġ1² β_ℓ-1,5  (β_0,5 = 0)

    (g2,1 of σ_1 at τ_0); τ, κ and α_1..4, β_1..3 are unchanged at leading order.

    Parameters
    ----------
    layers : list of Activation, length L
        The activation of each layer.
    tau0 : float
        The input scale, not squared, > 0. The book's τ_0 is ``sqrt(tr C° / p)``
        (notation page); every computation passes its data estimate
        τ̂_0 = sqrt(mean_i ‖x_i‖²) (:attr:`lossless.data.Sample.tau0`, which differs
        from τ_0² by O(1/p) in squares), as the exact kernels of :mod:`lossless.kernels`
        do.
    surrogates : list of (None | Activation | callable), length L, optional
        Straight-through derivative per layer for the NTK (a callable is wrapped in
        :class:`lossless.activations.Custom`). Only β's ġ and κ are affected.
    first_layer_m4 : float, default 3.0
        E w⁴ of the first layer's i.i.d. unit-variance weights (3: Gaussian, all
        α_ℓ,5 = β_ℓ,5 = 0; 1/(1 − ε) for sparse ternary weights), finite and ≥ 1.

    Returns
    -------
    Coefficients
        Table with L+1 rows (input, then layers 1..L). ``kappa2`` is ``inf`` from the
        first layer with a jump and no surrogate on (q = ∞): the NTK diagonal is
        infinite there; the α, β stay finite.

    Raises
    ------
    TypeError, ValueError
        On a malformed ``layers``, ``tau0`` or ``surrogates``.
    """
    layers = check_layers(layers)
    tau0 = _checks.input_scale(tau0, "tau0")
    surrogates = check_surrogates(surrogates, len(layers))
    m4 = _checks.real(first_layer_m4, "first_layer_m4", low=1.0)
    kappa4 = m4 - 3.0

    alpha = (1.0, 0.0, 0.0, 1.0)
    alpha5 = beta5 = 0.0
    beta = (1.0, 0.0, 0.0)
    tau = tau0
    kappa2 = tau0**2
    rows = [LayerCoefficients(0, None, None, None, None, alpha, beta, tau, kappa2)]
    moments = activations.layer_moments(layers, tau0)  # the τ recursion (eq-ckntk-centring)
    for index, (act, sur, mom) in enumerate(zip(layers, surrogates, moments), start=1):
        der = _derivative_moments(act, sur, tau, mom)
        g1sq, g2sq = mom.g1**2, mom.g2**2
        a1, a2, a3, a4 = alpha
        new_alpha = (
            g1sq * a1,
            g1sq * a2 + 0.25 * g2sq * a4**2,
            g1sq * a3 + 0.5 * g2sq * a1**2,
            0.5 * mom.h * a4,
        )
        d1sq, d2sq = der.g1**2, der.g2**2
        b1, b2, b3 = beta
        new_beta = (
            new_alpha[0] + d1sq * b1,
            new_alpha[1] + d1sq * b2,
            new_alpha[2] + d1sq * b3 + d2sq * a1 * b1,
        )
        if mom.v < 0 or not math.isfinite(mom.v):
            raise ValueError(
                f"layers[{index - 1}] ({_act_label(act)}) has variance {mom.v!r} at scale "
                f"{tau:.4g}; a finite non-negative variance is required"
            )
        new_tau = math.sqrt(mom.v)
        if new_tau == 0.0:
            raise ValueError(
                f"layers[{index - 1}] ({_act_label(act)}) is constant at scale {tau:.4g} "
                "(zero output variance): the next scale τ would be 0"
            )
        q = der.q
        new_kappa2 = math.inf if math.isinf(q) or math.isinf(kappa2) else mom.v + q * kappa2
        alpha, beta, tau, kappa2 = new_alpha, new_beta, new_tau, new_kappa2
        alpha5 = 0.25 * kappa4 * g2sq if index == 1 else g1sq * alpha5
        beta5 = alpha5 + d1sq * beta5
        rows.append(LayerCoefficients(index, act, rows[-1].tau, mom, der, alpha, beta, tau,
                                      kappa2, alpha5, beta5))
    return Coefficients(tau0=tau0, rows=tuple(rows), first_layer_m4=m4)


# ---------------------------------------------------------------------------------
# equivalents


@dataclass(frozen=True)
class EquivalentTerms:
    """K̃ = scale · X Xᵀ + V C Vᵀ + shift · I_n, kept factored (never n×n).

    Attributes
    ----------
    scale : float
        α_L,1 (CK) or β_L,1 (NTK).
    V : ndarray, shape (n, K+1)
        ``[J/√p, ψ]``.
    C : ndarray, shape (K+1, K+1)
        A_L (CK) or B_L (NTK).
    shift : float
        τ_L² − τ_0² α_L,1 (CK) or κ_L² − τ_0² β_L,1 (NTK); may be ``inf`` (NTK with
        jumps).
    coefficients : Coefficients
        The recursion the terms came from.
    p : int or None
        Dimension of the sample the terms were built for (checked by :meth:`matrix`).
    """

    scale: float
    V: np.ndarray
    C: np.ndarray
    shift: float
    coefficients: Coefficients = field(repr=False)
    p: int | None = None

    def matrix(self, X: np.ndarray, *, diagonal: str = "raise") -> np.ndarray:
        """Assemble the n×n matrix in O(n² p) (one Gram product, one rank-(K+1) update).

        Parameters
        ----------
        X : ndarray, shape (n, p)
            The data the terms were built for (rows are samples).
        diagonal : {"raise", "nan"}
            What to do with an infinite ``shift``: raise ValueError, or put NaN on the
            diagonal (the off-diagonal part stays exact).
        """
        _checks.choice(diagonal, "diagonal", _DIAGONAL_MODES)
        X = _checks.real_array(X, "X", ndim=2, shape_hint="(n, p)")
        if X.shape[0] != self.V.shape[0] or (self.p is not None and X.shape[1] != self.p):
            raise ValueError(
                f"X must have shape (n, p) with n = {self.V.shape[0]}"
                + ("" if self.p is None else f", p = {self.p}")
                + f" (the sample the terms were built for), got {X.shape}"
            )
        if math.isinf(self.shift) and diagonal == "raise":
            raise ValueError(_INFINITE_DIAGONAL)
        K = X @ X.T
        K *= self.scale
        VC = self.V @ self.C
        K += VC @ self.V.T
        K = _checks.symmetrize(K)  # exactly symmetric whatever the BLAS's summation order
        idx = np.diag_indices_from(K)
        if math.isinf(self.shift):
            K[idx] = np.nan
        else:
            K[idx] += self.shift
        return K


_INFINITE_DIAGONAL = (
    "the NTK diagonal is infinite: a layer has an activation with a jump (q = E[σ'(τξ)²] "
    "= ∞) and no surrogate derivative; pass surrogates=[...] (straight-through "
    "derivative per layer) or diagonal='nan' to get the exact off-diagonal part with NaN "
    "on the diagonal"
)


def _sample_parts(sample: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    _check_sample(sample)
    X = _checks.real_array(sample.X, "sample.X", ndim=2, shape_hint="(n, p)")
    V = _checks.real_array(sample.V, "sample.V", ndim=2, shape_hint="(n, K+1)")
    t = _checks.real_array(sample.t, "sample.t", ndim=1, shape_hint="(K,)")
    T = _checks.real_array(sample.T, "sample.T", ndim=2, shape_hint="(K, K)")
    return X, V, t, T


def _sample_D(sample: Any, coeffs: Coefficients) -> np.ndarray | None:
    """``sample.D`` when the first layer's weights are not Gaussian, else None."""
    if coeffs.kappa4 == 0.0:
        return None
    if not hasattr(sample, "D"):
        raise TypeError(
            f"sample must provide D (D_ab = sum_k (C_a)_kk (C_b)_kk / p, a lossless.data.Sample) "
            f"for first_layer_m4 = {coeffs.first_layer_m4!r} != 3; "
            f"{type(sample).__name__} has none")
    return _checks.real_array(sample.D, "sample.D", ndim=2, shape_hint="(K, K)")


_M4_DOC = """first_layer_m4 : float, default 3.0
        E w⁴ of the first layer's i.i.d. unit-variance weights (3: Gaussian;
        1/(1 − ε) for sparse ternary weights), finite and ≥ 1. Otherwise the first
        layer's κ₄ block ``α_L,5 (J/√p) D (J/√p)ᵀ`` (``β_L,5`` for the NTK) is
        added, with ``D = sample.D`` (eq-first-layer-equivalent, :func:`coefficients`)."""


def ck_terms(sample: Any, layers: Sequence[Activation], *,
             tau0: float | None = None, first_layer_m4: float = 3.0) -> EquivalentTerms:
    """Factored K̃_CK,L of ``sample`` (see :func:`equivalent_ck`)."""
    X, V, t, T = _sample_parts(sample)
    c = coefficients(layers, sample.tau0 if tau0 is None else tau0,
                     first_layer_m4=first_layer_m4)
    return EquivalentTerms(scale=c[-1].alpha[0], V=V, C=c.A(t, T, D=_sample_D(sample, c)),
                           shift=c.ck_shift(), coefficients=c, p=X.shape[1])


def ntk_terms(sample: Any, layers: Sequence[Activation], *,
              surrogates: Sequence[Activation | Callable | None] | None = None,
              tau0: float | None = None, first_layer_m4: float = 3.0) -> EquivalentTerms:
    """Factored K̃_NTK,L of ``sample`` (see :func:`equivalent_ntk`)."""
    X, V, t, T = _sample_parts(sample)
    c = coefficients(layers, sample.tau0 if tau0 is None else tau0, surrogates=surrogates,
                     first_layer_m4=first_layer_m4)
    return EquivalentTerms(scale=c[-1].beta[0], V=V, C=c.B(t, T, D=_sample_D(sample, c)),
                           shift=c.ntk_shift(), coefficients=c, p=X.shape[1])


def equivalent_ck(sample: Any, layers: Sequence[Activation], *,
                  tau0: float | None = None, first_layer_m4: float = 3.0) -> np.ndarray:
    """Asymptotic equivalent K̃_CK,L of the expected conjugate kernel (eq-equiv-theorem).

    ``K̃ = α_L,1 X Xᵀ + V A_L Vᵀ + (τ_L² − τ_0² α_L,1) I_n`` with
    ``A_L = [[α_L,2 t tᵀ + α_L,3 T + α_L,5 D, α_L,2 t], [α_L,2 tᵀ, α_L,2]]``
    (``α_L,5 = 0`` for Gaussian first-layer weights; eq-first-layer-equivalent);
    ‖K_CK − K̃‖ → 0 in operator norm as n, p → ∞ (with ``α_L,5 ≠ 0``: up to the
    first layer's cumulants of order six and more, relative size about the inverse
    number of non-zero weights per first-layer neuron). Built in O(n² p); nothing larger
    than n×n is formed.

    Parameters
    ----------
    sample : lossless.data.Sample
        Data ``X`` (n, p) and its statistics ``V`` (n, K+1), ``t`` (K,), ``T`` (K, K),
        ``tau0`` (population statistics from its mixture, or class estimates), and ``D``
        (K, K) when ``first_layer_m4 != 3``.
    layers : list of Activation, length L
    tau0 : float, optional
        Override ``sample.tau0`` (use the same τ_0 as the exact kernel you compare to).
    {m4}

    Returns
    -------
    ndarray, shape (n, n)
    """
    X, *_ = _sample_parts(sample)
    return ck_terms(sample, layers, tau0=tau0, first_layer_m4=first_layer_m4).matrix(X)


def equivalent_ntk(sample: Any, layers: Sequence[Activation], *,
                   surrogates: Sequence[Activation | Callable | None] | None = None,
                   diagonal: str = "raise", tau0: float | None = None,
                   first_layer_m4: float = 3.0) -> np.ndarray:
    """Asymptotic equivalent K̃_NTK,L of the expected NTK (eq-equiv-theorem).

    ``K̃ = β_L,1 X Xᵀ + V B_L Vᵀ + (κ_L² − τ_0² β_L,1) I_n``, B_L as A_L with β
    (``β_L,5 D`` in the class block, eq-first-layer-equivalent).

    Parameters
    ----------
    sample : lossless.data.Sample
    layers : list of Activation, length L
    surrogates : list of (None | Activation | callable), optional
        Straight-through derivative per layer, as in :func:`lossless.kernels.exact_ntk`.
    diagonal : {{"raise", "nan"}}
        For a layer with a jump and no surrogate, κ² (the diagonal) is infinite:
        ``"raise"`` raises ValueError, ``"nan"`` returns the off-diagonal equivalent
        with NaN on the diagonal (what ``exact_ntk(..., diagonal="nan")`` returns).
    tau0 : float, optional
        Override ``sample.tau0``.
    {m4}

    Returns
    -------
    ndarray, shape (n, n)
    """
    _checks.choice(diagonal, "diagonal", _DIAGONAL_MODES)
    X, *_ = _sample_parts(sample)
    terms = ntk_terms(sample, layers, surrogates=surrogates, tau0=tau0,
                      first_layer_m4=first_layer_m4)
    return terms.matrix(X, diagonal=diagonal)


def first_layer_term(sample: Any, layers: Sequence[Activation], first_layer_m4: float, *,
                     kernel: str = "ck",
                     surrogates: Sequence[Activation | Callable | None] | None = None,
                     tau0: float | None = None) -> np.ndarray:
    """The first layer's κ₄ block of K̃ alone: ``c_L (J/√p) D (J/√p)ᵀ`` (eq-first-layer-equivalent).

    ``c_L = α_L,5`` (CK) or ``β_L,5`` (NTK) of :func:`coefficients`, e.g.
    ``α_1,5 = κ₄ g2² / 4`` for one layer: what ``equivalent_ck(..., first_layer_m4=m4)``
    adds to ``equivalent_ck(...)``, the leading order in p of
    :func:`lossless.kernels.first_layer_correction`.

    Parameters
    ----------
    sample : lossless.data.Sample
        Needs ``J``, ``D``, ``p`` and ``tau0``.
    layers : list of Activation, length L
    first_layer_m4 : float
        E w⁴ of the first layer's weights, finite and ≥ 1.
    kernel : {"ck", "ntk"}
    surrogates : optional
        NTK only (they change ġ1 in β_ℓ,5).
    tau0 : float, optional
        Override ``sample.tau0``.

    Returns
    -------
    ndarray, shape (n, n)
        Exactly symmetric, rank ≤ K.
    """
    kernel = _checks.choice(kernel, "kernel", _KERNELS)
    _check_sample(sample)
    c = coefficients(layers, sample.tau0 if tau0 is None else tau0,
                     surrogates=surrogates if kernel == "ntk" else None,
                     first_layer_m4=first_layer_m4)
    coef = float(c.beta5[-1] if kernel == "ntk" else c.alpha5[-1])
    J = _checks.real_array(sample.J, "sample.J", ndim=2, shape_hint="(n, K)")
    if c.kappa4 == 0.0:
        return np.zeros((J.shape[0], J.shape[0]))
    D = _sample_D(sample, c)
    if D.shape != (J.shape[1], J.shape[1]):
        raise ValueError(f"sample.D must have shape {(J.shape[1], J.shape[1])}, got {D.shape}")
    Jp = J / math.sqrt(int(sample.p))
    return _checks.symmetrize(coef * (Jp @ D @ Jp.T))


for _f in (equivalent_ck, equivalent_ntk):
    _f.__doc__ = _f.__doc__.replace("{m4}", _M4_DOC).replace("{{", "{").replace("}}", "}")
del _f


# ---------------------------------------------------------------------------------
# the authors' public code (for the book's notes)


def authors_ck_shift(coeffs: Coefficients, layer: int | None = None) -> float:
    """Identity coefficient of K̃_CK in the authors' public code.

    ``tilde_CK.py`` of github.com/Model-Compression/Lossless_Compression uses
    ``τ_L² − α_L,1 τ_0² − α_L,3 τ_0⁴``: an extra ``−α_L,3 τ_0⁴`` against
    :meth:`Coefficients.ck_shift`, so its diagonal is off by exactly that (for one ReLU
    layer ``α_1,3 = g2²/2 = 1/(4π τ_0²)``, i.e. ``τ_0²/(4π)``).
    """
    r = coeffs._row(layer)
    return coeffs.ck_shift(layer) - r.alpha[2] * coeffs.tau0**4


def authors_equivalent_ck(sample: Any, layers: Sequence[Activation], *,
                          tau0: float | None = None) -> np.ndarray:
    """K̃_CK with the authors' identity term (see :func:`authors_ck_shift`).

    Everything else is as in :func:`equivalent_ck`; the difference is
    ``−α_L,3 τ_0⁴ I_n``, which does not vanish as p grows.
    """
    X, *_ = _sample_parts(sample)
    terms = ck_terms(sample, layers, tau0=tau0)
    shifted = EquivalentTerms(terms.scale, terms.V, terms.C,
                              authors_ck_shift(terms.coefficients), terms.coefficients, terms.p)
    return shifted.matrix(X)


def authors_ntk_shift(layers: Sequence[Activation], tau0: float) -> float:
    """Identity coefficient of K̃_NTK in the authors' public code (``tilde_ntk.py``).

    Reproduces its loop: κ² starts at τ_0 (not τ_0²), is updated after τ with both the
    variance and q evaluated at the *new* scale, ``κ² ← v(τ_ℓ) + q(τ_ℓ) κ²``, and the
    identity term is ``(κ_L²)² − β_L,1 τ_0² − β_L,3 τ_0⁴`` (κ² squared once more and an
    extra β_L,3 τ_0⁴). Activations with a jump are refused (their q is infinite).
    """
    layers = check_layers(layers)
    tau0 = _checks.input_scale(tau0, "tau0")
    for index, act in enumerate(layers):
        if act.has_jumps:
            raise ValueError(
                f"layers[{index}] ({_act_label(act)}) has a jump: the authors' NTK code "
                "only handles differentiable activations"
            )
    c = coefficients(layers, tau0)
    tau = tau0
    kappa2 = tau0  # the authors' initialisation (τ_0, not τ_0²)
    for act in layers:
        tau = math.sqrt(act.moments(tau).v)
        later = act.moments(tau)  # evaluated after the update of τ
        kappa2 = later.v + later.q * kappa2
    last = c[-1]
    return kappa2**2 - last.beta[0] * tau0**2 - last.beta[2] * tau0**4


def authors_equivalent_ntk(sample: Any, layers: Sequence[Activation], *,
                           tau0: float | None = None) -> np.ndarray:
    """K̃_NTK with the authors' identity term (see :func:`authors_ntk_shift`)."""
    X, *_ = _sample_parts(sample)
    terms = ntk_terms(sample, layers, tau0=tau0)
    shift = authors_ntk_shift(layers, terms.coefficients.tau0)
    return EquivalentTerms(terms.scale, terms.V, terms.C, shift, terms.coefficients,
                           terms.p).matrix(X)


# ---------------------------------------------------------------------------------
# a different-looking network with the same equivalents


def hermite_twin(layers: Sequence[Activation], tau0: float, *, flip: bool = True
                 ) -> list[Activation]:
    """Quartic-polynomial activations with the same CK equivalent as ``layers``.

    For each layer ℓ the twin is given by its Hermite coefficients ζ_r (the book's
    notation, eq-toolbox-zeta): ``σ̃_ℓ(τ_{ℓ-1} ξ) = Σ_{r=1..4} ζ_r He_r(ξ)`` where
    ζ_1 = ∓ g1 τ, ζ_2 = g2 τ² / 2 (same g1², g2² as σ_ℓ; ``flip=True`` takes the
    opposite sign of g1, so the curve looks nothing like σ_ℓ), and (ζ_3, ζ_4) solve the
    two equations

        Σ_r r! ζ_r² = v(σ_ℓ)                      (same τ_ℓ)
        Σ_r 2r·r! ζ_r² + 12 ζ_1 ζ_3 + 48 ζ_2 ζ_4 = h(σ_ℓ) τ²   (same h)

    so every (g1², g2², h, τ) agrees and the α's are identical: the two networks have
    the same K̃_CK (their NTKs differ only through q, i.e. the identity shift).

    Parameters
    ----------
    layers : list of Activation
    tau0 : float
    flip : bool
        Use ζ_1 = −g1 τ (default) instead of +g1 τ.

    Returns
    -------
    list of Activation
        ``activations.Polynomial`` objects of degree 4 (exact moments and dual kernels).

    Raises
    ------
    ValueError
        If no real (ζ_3, ζ_4) exists for some layer (the residual is reported).
    """
    from numpy.polynomial import hermite_e
    from scipy.optimize import least_squares

    layers = check_layers(layers)
    tau = _checks.input_scale(tau0, "tau0")
    flip = _checks.flag(flip, "flip")
    twins: list[Activation] = []
    for index, (act, mom) in enumerate(zip(layers, activations.layer_moments(layers, tau))):
        d1 = (-1.0 if flip else 1.0) * mom.g1 * tau
        d2 = 0.5 * mom.g2 * tau**2
        rv = mom.v - d1**2 - 2.0 * d2**2          # 6 d3² + 24 d4²
        rh = mom.h * tau**2 - 2.0 * d1**2 - 8.0 * d2**2  # 36 d3² + 192 d4² + 12 d1 d3 + 48 d2 d4
        scale = math.sqrt(max(mom.v, 1e-300))

        def residual(z: np.ndarray, rv=rv, rh=rh, d1=d1, d2=d2) -> np.ndarray:
            d3, d4 = z
            return np.array([6 * d3**2 + 24 * d4**2 - rv,
                             36 * d3**2 + 192 * d4**2 + 12 * d1 * d3 + 48 * d2 * d4 - rh])

        best = None
        for guess in ((1.0, 0.0), (0.0, 1.0), (0.0, -1.0), (-1.0, 0.0), (0.5, 0.5),
                      (0.5, -0.5), (-0.5, 0.5), (-0.5, -0.5)):
            z0 = np.array(guess) * 0.1 * scale
            sol = least_squares(residual, z0, xtol=1e-15, ftol=1e-15, gtol=1e-15)
            res = float(np.max(np.abs(residual(sol.x))))
            # prefer the smallest coefficients among exact roots
            key = (res > 1e-10 * max(1.0, mom.v), float(np.sum(sol.x**2)), res)
            if best is None or key < best[0]:
                best = (key, sol.x, res)
        if best[2] > 1e-10 * max(1.0, mom.v):
            raise ValueError(
                f"layers[{index}] ({_act_label(act)}): no quartic twin at scale {tau:.4g} "
                f"(best residual {best[2]:.3g})"
            )
        herm = np.array([0.0, d1, d2, best[1][0], best[1][1]])
        power = hermite_e.herme2poly(herm) / tau ** np.arange(herm.size)  # in t, not t/τ
        twins.append(activations.Polynomial(power, name=f"quartic twin of {_act_label(act)}"))
        tau = math.sqrt(mom.v)
    return twins
