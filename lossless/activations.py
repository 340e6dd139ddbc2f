"""Activation functions of the book's networks and their Gaussian moments (the book's eq-equiv-moments).

An activation is an object: it evaluates itself on NumPy arrays and torch tensors, gives
its (almost-everywhere) derivative, its Gaussian moments ``moments(tau)`` at input scale
``tau`` (closed forms where they exist, one numerical fallback for anything else), and
the two-point Gaussian expectations ("dual kernels") that the exact CK/NTK recursion of
``lossless.kernels`` needs. Obtain the built-in ones with :func:`get`::

    from lossless import activations
    relu = activations.get("relu")
    relu.moments(1.0)                 # Moments(m=0.3989..., g1=0.5, ...)
    ternary = activations.get("ternary", s_minus=-0.5, s_plus=0.5, scale=1.0, odd=True)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

import numpy as np
from scipy import special

from lossless import _checks, _dual
from lossless import _gaussian as G
from lossless._dual import AccuracyWarning, DualExpectations

__all__ = [
    "Moments",
    "Activation",
    "PiecewiseLinear",
    "PiecewiseConstant",
    "Ternary",
    "Sign",
    "Step",
    "Polynomial",
    "Quadratic",
    "Erf",
    "Tanh",
    "Sigmoid",
    "Sin",
    "Cos",
    "Custom",
    "get",
    "names",
    "check_layers",
    "layer_moments",
    "layer_scales",
    "check_surrogates",
    "check_positive",
    "quadrature_moments",
    "DualExpectations",
    "AccuracyWarning",
]

ArrayLike = Any  # NumPy array, Python scalar, or torch.Tensor


@dataclass(frozen=True)
class Moments:
    """Gaussian moments of an activation ``sigma`` at input scale ``tau`` (the book's eq-equiv-moments).

    With ``xi ~ N(0, 1)`` (Stein forms, so that they exist for step functions):

    - ``m  = E[sigma(tau xi)]``
    - ``g1 = E[sigma'(tau xi)]  = E[xi sigma(tau xi)] / tau``
    - ``g2 = E[sigma''(tau xi)] = E[(xi^2 - 1) sigma(tau xi)] / tau^2``
    - ``h  = E[((sigma - m)^2)''(tau xi)] = E[(xi^2 - 1) (sigma(tau xi) - m)^2] / tau^2``
    - ``v  = Var[sigma(tau xi)]``
    - ``q  = E[sigma'(tau xi)^2]`` (``inf`` for an activation with a jump)
    """

    m: float
    g1: float
    g2: float
    h: float
    v: float
    q: float

    def to_dict(self) -> dict[str, float]:
        """The six moments as a plain dictionary."""
        return asdict(self)


# ----------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------
#: Input scales ``tau`` for which every closed form and quadrature is representable in
#: float64 (``tau**4`` and ``1/tau**2`` stay far from overflow); outside, :meth:`moments`
#: raises a range error instead of returning NaN or overflowing.
TAU_RANGE = _checks.SCALE_RANGE


def _check_scales(scales: Any) -> np.ndarray:
    arr = _checks.real_array(scales, "scales", ndim=(0, 1)).ravel()
    if not np.all(arr > 0):
        raise ValueError(
            "scales must be positive and finite (a sample with zero norm has no direction)"
        )
    return arr


def _as_float_array(x: Any) -> np.ndarray:
    """``x`` as a real floating array (integers promoted to float64); NaN and inf allowed
    (an activation maps NaN to NaN); complex, boolean, string or object input refused."""
    x = _checks.real_array(x, "x", nonempty=False, finite=False, dtype=None)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    return x


def _keep_nan(x: Any, out: Any) -> Any:
    """NaN where the input is NaN (step functions would otherwise map NaN to a level)."""
    if _checks.is_torch(x):
        import torch

        return torch.where(torch.isnan(x), x, out)
    return np.where(np.isnan(x), x, out)


def _fmt(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, int, np.floating, np.integer)):
        return f"{float(value):g}"
    if isinstance(value, (tuple, list, np.ndarray)):
        return (
            "("
            + ", ".join(_fmt(v) for v in np.ravel(value))
            + ("," if np.size(value) == 1 else "")
            + ")"
        )
    return repr(value)


def _check_torch_input(x: Any) -> None:
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")


# ----------------------------------------------------------------------------------
# base class
# ----------------------------------------------------------------------------------
class Activation:
    """Base class of all activations.

    Subclasses implement ``_numpy``/``_torch`` (values), ``_numpy_derivative``/
    ``_torch_derivative`` and, when they have them, closed-form moments
    (``_closed_moments``) and dual kernels (``dual_kernel``,
    ``derivative_dual_kernel``, in :mod:`lossless.kernels`' conventions).

    Attributes
    ----------
    name : str
        Registry name (``get(name)``), also used in ``repr``.
    has_jumps : bool
        True when the function is discontinuous; then ``moments(tau).q`` is ``inf`` and
        the exact NTK has an infinite diagonal.
    breakpoints : tuple of float
        Points (in the activation's input units) where the function or its derivative is
        not smooth; numerical integrals are split there.
    """

    name: str = "activation"
    has_jumps: bool = False
    breakpoints: tuple[float, ...] = ()
    #: whether ``derivative`` is exact (False: finite differences in :class:`Custom`)
    exact_derivative: bool = True

    # ---- evaluation -------------------------------------------------------------
    def __call__(self, x: ArrayLike) -> ArrayLike:
        """Evaluate elementwise on a NumPy array (or scalar) or a torch tensor.

        Parameters
        ----------
        x : array_like or torch.Tensor, any shape

        Returns
        -------
        Same type and shape as ``x`` (NumPy integers are promoted to float64).
        """
        if _checks.is_torch(x):
            _check_torch_input(x)
            out = self._torch(x)
            return _keep_nan(x, out) if self.has_jumps else out
        x = _as_float_array(x)
        out = self._numpy(x)
        if self.has_jumps:
            out = _keep_nan(x, out)
        return out[()] if np.ndim(out) == 0 else out

    def derivative(self, x: ArrayLike) -> ArrayLike:
        """Almost-everywhere derivative (0 between the jumps of a step function).

        The Dirac masses of a jump are *not* part of this function; they enter the
        Gaussian moments through Stein's identity and make ``q`` infinite.
        """
        if _checks.is_torch(x):
            _check_torch_input(x)
            out = self._torch_derivative(x)
            return _keep_nan(x, out) if self.has_jumps else out
        x = _as_float_array(x)
        out = self._numpy_derivative(x)
        if self.has_jumps:
            out = _keep_nan(x, out)
        return out[()] if np.ndim(out) == 0 else out

    def _numpy(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _torch(self, x: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _numpy_derivative(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _torch_derivative(self, x: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    # ---- moments ----------------------------------------------------------------
    def moments(self, tau: float) -> Moments:
        """Gaussian moments at input scale ``tau`` (closed form when available).

        Parameters
        ----------
        tau : float
            Standard deviation of the input ``tau * xi``; must be positive and finite.

        Returns
        -------
        Moments

        Raises
        ------
        ValueError
            If ``tau`` is not a positive finite number.

        Notes
        -----
        Numerical moments (no closed form) are remembered per ``tau`` on the instance
        (the recursion asks for the same scale several times).
        """
        tau = _checks.input_scale(tau, "tau")
        closed = self._guarded(self._closed_moments, tau)
        if closed is not None:
            return self._checked(closed, tau)
        cache = self.__dict__.setdefault("_moments_cache", {})
        if tau not in cache:
            if len(cache) >= 256:
                cache.clear()
            cache[tau] = self._checked(self._guarded(quadrature_moments, self, tau), tau)
        return cache[tau]

    def numerical_moments(self, tau: float) -> Moments:
        """The generic numerical moments (:func:`quadrature_moments`), for any activation."""
        tau = _checks.input_scale(tau, "tau")
        return self._checked(self._guarded(quadrature_moments, self, tau), tau)

    def _guarded(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a moment computation; float overflow or division by zero -> ValueError."""
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                return fn(*args)
        except (OverflowError, ZeroDivisionError, FloatingPointError) as err:
            raise ValueError(
                f"the Gaussian moments of {self!r} at tau = {args[-1]:g} are not representable "
                f"in float64 ({type(err).__name__}: {err}); use a tau, thresholds and scales "
                f"of moderate size"
            ) from None

    def _checked(self, mom: Moments, tau: float) -> Moments:
        """Refuse NaN/inf moments (``q = inf`` is legitimate only with jumps)."""
        bad = [k for k, v in mom.to_dict().items() if not math.isfinite(v)]
        if self.has_jumps and bad == ["q"] and mom.q == math.inf:
            bad = []
        if bad:
            raise ValueError(
                f"the Gaussian moments of {self!r} at tau = {tau:g} are not finite "
                f"({', '.join(f'{k}={getattr(mom, k)}' for k in bad)}): the activation returns "
                f"NaN/inf on the Gaussian's range, or its parameters are too large for float64"
            )
        return mom

    def _closed_moments(self, tau: float) -> Moments | None:
        return None

    def jumps(self) -> tuple[np.ndarray, np.ndarray]:
        """Locations and sizes ``sigma(r+) - sigma(r-)`` of the jumps.

        Returns
        -------
        locations, sizes : ndarray, shape (n_jumps,)
        """
        locs, sizes = [], []
        for r in self.breakpoints:
            size = _numerical_jump(self, r)
            if size != 0.0:
                locs.append(r)
                sizes.append(size)
        return np.asarray(locs, dtype=float), np.asarray(sizes, dtype=float)

    # ---- two-point expectations (dual kernels) ----------------------------------
    def dual(
        self, scales: np.ndarray, *, centre: float = 0.0, max_correlation: float = 1.0
    ) -> DualExpectations:
        """Two-point Gaussian expectations for samples of input scales ``scales``.

        Parameters
        ----------
        scales : ndarray, shape (n,)
            Standard deviations ``nu_i = sqrt(K_ii)`` of the pre-activations (positive;
            the book's ν_i, chapter "CK and NTK of deep fully-connected networks").
        centre : float
            Constant subtracted from the activation in ``values`` (the centring ``m``).
        max_correlation : float
            Largest off-diagonal ``|rho_ij|`` that will be asked for (lets the generic
            series choose its truncation; closed forms ignore it).

        Returns
        -------
        DualExpectations
            With ``values(rows, cols, rho)``, ``derivatives(rows, cols, rho)`` (blocks of
            ``E[(sigma(u) - c)(sigma(v) - c)]`` and ``E[sigma'(u) sigma'(v)]`` for
            ``u = nu_i xi``, ``v = nu_j eta``, ``corr = rho``), ``diagonal_values()`` and
            ``diagonal_derivatives()`` (``inf`` with jumps).

        Notes
        -----
        This base implementation is the generic Mehler–Hermite method
        (:class:`lossless._dual.HermiteDual`); subclasses with closed forms override it.
        """
        centre = _checks.real(centre, "centre")
        max_correlation = _checks.real(max_correlation, "max_correlation", low=0.0, high=1.0)
        return _dual.HermiteDual(self, _check_scales(scales), centre, max_correlation)

    def fast_kernel(self) -> Any:
        """The fast closed-form step of the exact kernel recursion, or None.

        Activations whose dual kernels depend on a pair only through ``(K_ij, K_ii,
        K_jj)`` by a short formula return a :class:`lossless._fastkernels.FastStep`
        (then :mod:`lossless.kernels` runs the fused recursion); the others return None
        and :meth:`dual` is used.
        """
        return None

    # ---- misc -------------------------------------------------------------------
    def _params(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={_fmt(v)}" for k, v in self._params().items())
        return f"{self.name}({args})"


def _numerical_jump(act: Activation, r: float) -> float:
    """``sigma(r+) - sigma(r-)`` from one-ulp neighbours; rounding-level values -> 0."""
    lo = np.nextafter(r, -np.inf)
    hi = np.nextafter(r, np.inf)
    with np.errstate(all="ignore"):
        v_lo = float(act._numpy(np.asarray(lo)))
        v_hi = float(act._numpy(np.asarray(hi)))
        try:
            slope = abs(float(act._numpy_derivative(np.asarray(lo)))) + abs(
                float(act._numpy_derivative(np.asarray(hi)))
            )
        except Exception:  # noqa: BLE001 - derivative unavailable: no slope allowance
            slope = 0.0
    size = v_hi - v_lo
    if not math.isfinite(slope):
        slope = 0.0
    allowance = 8.0 * (hi - lo) * slope + 16.0 * np.finfo(float).eps * (abs(v_lo) + abs(v_hi))
    return 0.0 if abs(size) <= allowance else size


# ----------------------------------------------------------------------------------
# the numerical fallback
# ----------------------------------------------------------------------------------
def quadrature_moments(act: Activation, tau: float) -> Moments:
    """Gaussian moments of any activation by adaptive quadrature split at its breakpoints.

    The real line (in units of ``xi = t / tau``) is cut at the breakpoints and at 0;
    every piece is integrated by :func:`scipy.integrate.quad` with the Gaussian weight
    factored out at the end nearer to 0 (relative accuracy in far tails). Jumps enter
    through Stein's identity integrated by parts piecewise,

    ``E[xi sigma] = tau E[sigma'] + sum_k Delta_k phi(u_k)``,
    ``E[(xi^2-1) sigma] = tau E[xi sigma'] + sum_k Delta_k u_k phi(u_k)``,

    (``u_k = r_k / tau``, ``Delta_k`` the jump at ``r_k``) and likewise for ``h``, so that
    constant pieces contribute exactly nothing and steps far in a tail stay accurate.
    The variance is assembled piece by piece (law of total variance) for the same
    reason. Without an exact derivative (a :class:`Custom` without one) the plain
    Stein forms are integrated instead.

    Parameters
    ----------
    act : Activation
    tau : float
        Positive input scale.

    Returns
    -------
    Moments
    """
    tau = _checks.input_scale(tau, "tau")
    if not isinstance(act, Activation):
        raise TypeError(f"act must be a lossless.activations.Activation, got {act!r}")
    f = act._numpy
    df = act._numpy_derivative
    cuts = sorted({float(r) / tau for r in act.breakpoints if math.isfinite(r / tau)})
    edges = [-math.inf] + cuts + [math.inf]
    pieces = list(zip(edges[:-1], edges[1:]))

    def ev(func: Callable[[np.ndarray], np.ndarray], xi: Any) -> np.ndarray:
        return func(tau * np.asarray(xi, dtype=float))

    def integral(g: Callable[[np.ndarray], np.ndarray]) -> float:
        return sum(G.gaussian_integral(g, a, b) for a, b in pieces)

    # mean and variance, piece by piece around a reference value of each piece
    probs, refs, offsets, inner = [], [], [], []
    for a, b in pieces:
        if math.isinf(a) and math.isinf(b):
            point = 0.0
        elif math.isinf(a):
            point = b - 1.0
        elif math.isinf(b):
            point = a + 1.0
        else:
            point = 0.5 * (a + b)
        ref = float(ev(f, point))
        prob = float(G.interval_probability(a, b))
        d = G.gaussian_integral(lambda s, ref=ref: ev(f, s) - ref, a, b)
        e2 = G.gaussian_integral(lambda s, ref=ref: (ev(f, s) - ref) ** 2, a, b)
        probs.append(prob)
        refs.append(ref)
        offsets.append(d)
        inner.append(e2)
    m = sum(p * r + d for p, r, d in zip(probs, refs, offsets))
    means = [r + (d / p if p > 0 else 0.0) for p, r, d in zip(probs, refs, offsets)]
    v = 0.0
    for p, d, e2 in zip(probs, offsets, inner):
        if p > 0:
            v += max(e2 - d * d / p, 0.0)
    for i in range(len(pieces)):
        for j in range(i + 1, len(pieces)):
            v += probs[i] * probs[j] * (means[i] - means[j]) ** 2

    locs, sizes = act.jumps()
    has_jumps = locs.size > 0
    u = locs / tau
    dens = G.phi(u)
    if act.exact_derivative:
        e1 = integral(lambda s: ev(df, s))
        e2 = integral(lambda s: s * ev(df, s))
        g1 = e1 + float(np.sum(sizes * dens)) / tau
        g2 = e2 / tau + float(np.sum(sizes * u * dens)) / tau**2
        left = np.array([float(f(np.nextafter(r, -np.inf))) for r in locs])
        jump_sq = sizes * (2.0 * left + sizes - 2.0 * m)  # (s(r+) - m)^2 - (s(r-) - m)^2
        cross = integral(lambda s: s * (ev(f, s) - m) * ev(df, s))
        h = (float(np.sum(jump_sq * u * dens)) + 2.0 * tau * cross) / tau**2
    else:
        g1 = integral(lambda s: s * ev(f, s)) / tau
        g2 = integral(lambda s: (s * s - 1.0) * ev(f, s)) / tau**2
        h = integral(lambda s: (s * s - 1.0) * (ev(f, s) - m) ** 2) / tau**2
    q = math.inf if has_jumps else integral(lambda s: ev(df, s) ** 2)
    return Moments(m=float(m), g1=float(g1), g2=float(g2), h=float(h), v=float(v), q=float(q))


# ----------------------------------------------------------------------------------
# piecewise-linear family (relu, leaky_relu, abs, linear, sign, step, ternary, ...)
# ----------------------------------------------------------------------------------
class PiecewiseLinear(Activation):
    """A piecewise-linear function with optional jumps.

    ``sigma(t) = offset + slopes[0] t + sum_k (jumps[k] 1[t > r_k] + (slopes[k+1] -
    slopes[k]) (t - r_k)_+)`` for breakpoints ``r_1 < ... < r_K``. This one class gives
    ReLU, leaky ReLU, abs, the identity, and (with all slopes zero) every
    piecewise-constant function, with closed-form moments and dual kernels.

    Parameters
    ----------
    breakpoints : sequence of float, shape (K,)
        Finite, strictly increasing after sorting (duplicates are merged).
    slopes : sequence of float, shape (K + 1,)
        Slope on each of the K + 1 pieces, left to right.
    jumps : sequence of float, shape (K,), optional
        ``sigma(r_k+) - sigma(r_k-)``; zeros by default (continuous).
    offset : float
        ``sigma(0)`` of the leftmost piece's line, i.e. its intercept.
    name : str
    """

    name = "piecewise_linear"

    def __init__(
        self,
        breakpoints: Sequence[float],
        slopes: Sequence[float],
        jumps: Sequence[float] | None = None,
        offset: float = 0.0,
        *,
        name: str | None = None,
    ) -> None:
        bp = _checks.real_array(breakpoints, "breakpoints", ndim=(0, 1), nonempty=False).ravel()
        sl = _checks.real_array(slopes, "slopes", ndim=(0, 1), nonempty=False).ravel()
        jp = np.zeros_like(bp) if jumps is None else _checks.real_array(jumps, "jumps", ndim=(0, 1), nonempty=False).ravel()
        if sl.size != bp.size + 1:
            raise ValueError(
                f"slopes must have len(breakpoints) + 1 = {bp.size + 1} entries, got {sl.size}"
            )
        if jp.size != bp.size:
            raise ValueError(f"jumps must have len(breakpoints) = {bp.size} entries, got {jp.size}")
        for arr, label in ((bp, "breakpoints"), (sl, "slopes"), (jp, "jumps")):
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{label} must be finite, got {arr.tolist()}")
        offset = _checks.real(offset, "offset")
        if np.any(np.diff(bp) <= 0):
            raise ValueError(f"breakpoints must be strictly increasing, got {bp.tolist()}")
        # drop breakpoints where nothing happens
        keep = (jp != 0) | (np.diff(sl) != 0)
        sl = np.concatenate([sl[:1], sl[1:][keep]])
        bp, jp = bp[keep], jp[keep]
        self._bp = bp
        self._slopes = sl
        self._jumps = jp
        self._offset = offset
        # intercepts a_j of each piece: sigma = a_j + b_j t on piece j
        d_slope = np.diff(sl)
        self._intercepts = offset + np.concatenate([[0.0], np.cumsum(jp - d_slope * bp)])
        self.breakpoints = tuple(float(r) for r in bp)
        self.has_jumps = bool(np.any(jp != 0))
        if name is not None:
            self.name = name

    # -- evaluation
    def _piece(self, x: np.ndarray) -> np.ndarray:
        return np.searchsorted(self._bp, x, side="left")

    def _numpy(self, x: np.ndarray) -> np.ndarray:
        if self._bp.size == 0:
            return (self._intercepts[0] + self._slopes[0] * x).astype(x.dtype, copy=False)
        idx = self._piece(x)
        return (self._intercepts[idx] + self._slopes[idx] * x).astype(x.dtype, copy=False)

    def _numpy_derivative(self, x: np.ndarray) -> np.ndarray:
        if self._bp.size == 0:
            return np.full_like(x, self._slopes[0])
        return self._slopes[self._piece(x)].astype(x.dtype, copy=False)

    def _torch_tables(self, x: Any) -> tuple[Any, Any, Any]:
        import torch

        kw = {"dtype": x.dtype, "device": x.device}
        bp = torch.as_tensor(self._bp, **kw)
        idx = torch.bucketize(x.detach(), bp, right=False)  # number of breakpoints < x
        return idx, torch.as_tensor(self._intercepts, **kw), torch.as_tensor(self._slopes, **kw)

    def _torch(self, x: Any) -> Any:
        idx, a, b = self._torch_tables(x)
        return a[idx] + b[idx] * x

    def _torch_derivative(self, x: Any) -> Any:
        idx, _a, b = self._torch_tables(x)
        return b[idx]

    def jumps(self) -> tuple[np.ndarray, np.ndarray]:
        nz = self._jumps != 0
        return self._bp[nz].copy(), self._jumps[nz].copy()

    # -- moments (closed form)
    def _closed_moments(self, tau: float) -> Moments:
        u = self._bp / tau
        lo = np.concatenate([[-np.inf], u])
        hi = np.concatenate([u, [np.inf]])
        a = self._intercepts
        b = self._slopes
        beta = b * tau  # sigma(tau xi) = a_j + beta_j xi on piece j
        m0, m1, m2 = G.truncated_moments(lo, hi)
        m = float(np.sum(a * m0 + beta * m1))
        # variance by the law of total variance (all terms >= 0: no cancellation)
        pos = m0 > 0
        cond_mean = a.copy()
        cond_var = np.zeros_like(a)
        cond_mean[pos] = a[pos] + beta[pos] * m1[pos] / m0[pos]
        cond_var[pos] = np.maximum(
            beta[pos] ** 2 * (m2[pos] / m0[pos] - (m1[pos] / m0[pos]) ** 2), 0.0
        )
        diff = cond_mean[:, None] - cond_mean[None, :]
        v = float(np.sum(m0 * cond_var) + 0.5 * np.sum(m0[:, None] * m0[None, :] * diff**2))
        dens = G.phi(u)
        xdens = u * dens
        jp = self._jumps
        dsl = np.diff(b)
        g1 = float(np.sum(b * m0) + np.sum(jp * dens) / tau)
        g2 = float(np.sum(dsl * dens) / tau + np.sum(jp * xdens) / tau**2)
        # h: F = (sigma - m)^2 = (alpha + beta xi)^2 on each piece; E[(xi^2 - 1) F] =
        # E[F''] + sum over breakpoints of (jump of F') phi(u) + (jump of F) u phi(u)
        alpha = a - m
        left = alpha[:-1] + beta[:-1] * u  # sigma(r-) - m
        right = alpha[1:] + beta[1:] * u  # sigma(r+) - m
        jump_f = jp * (left + right)  # right^2 - left^2, with right - left = jump
        jump_df = 2.0 * (beta[1:] * right - beta[:-1] * left)
        total = np.sum(2.0 * beta**2 * m0) + np.sum(jump_df * dens) + np.sum(jump_f * xdens)
        h = float(total / tau**2)
        q = math.inf if self.has_jumps else float(np.sum(b**2 * m0))
        return Moments(m=m, g1=g1, g2=g2, h=h, v=v, q=q)

    def dual(
        self, scales: np.ndarray, *, centre: float = 0.0, max_correlation: float = 1.0
    ) -> DualExpectations:
        """Closed-form two-point expectations (see :meth:`Activation.dual`)."""
        centre = _checks.real(centre, "centre")
        max_correlation = _checks.real(max_correlation, "max_correlation", low=0.0, high=1.0)
        return _dual.PiecewiseLinearDual(self, _check_scales(scales), centre, max_correlation)

    def fast_kernel(self) -> Any:
        """Arc-cosine (one kink at 0, or none) or arc-sine (one jump at 0, flat) fast
        step; None for other breakpoints (see :meth:`Activation.fast_kernel`)."""
        from lossless import _fastkernels

        return _fastkernels.piecewise_linear_step(
            self._bp, self._slopes, self._jumps, float(self._intercepts[0])
        )

    def _params(self) -> dict[str, Any]:
        return {
            "breakpoints": self._bp,
            "slopes": self._slopes,
            "jumps": self._jumps,
            "offset": self._offset,
        }


class _NamedPiecewiseLinear(PiecewiseLinear):
    """A piecewise-linear activation with a registry name and its own parameters."""

    def __init__(self, name: str, params: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self._named_params = params

    def _params(self) -> dict[str, Any]:
        return dict(self._named_params)


def _relu() -> PiecewiseLinear:
    return _NamedPiecewiseLinear("relu", {}, breakpoints=[0.0], slopes=[0.0, 1.0])


def _leaky_relu(slope: float = 0.01) -> PiecewiseLinear:
    slope = _checks.real(slope, "slope")
    return _NamedPiecewiseLinear(
        "leaky_relu", {"slope": slope}, breakpoints=[0.0], slopes=[slope, 1.0]
    )


def _abs() -> PiecewiseLinear:
    return _NamedPiecewiseLinear("abs", {}, breakpoints=[0.0], slopes=[-1.0, 1.0])


def _linear() -> PiecewiseLinear:
    return _NamedPiecewiseLinear("linear", {}, breakpoints=[], slopes=[1.0])


class PiecewiseConstant(PiecewiseLinear):
    """A finite sum of steps: ``sigma(t) = base + sum_j jumps[j] 1[t > thresholds[j]]``.

    Parameters
    ----------
    thresholds : sequence of float, shape (J,)
        Jump locations ``r_j`` (any order; equal thresholds are merged).
    jumps : sequence of float, shape (J,)
        Jump heights ``h_j`` (nonzero for the jump to count).
    base : float
        Value left of every threshold.
    name : str, optional
    """

    name = "piecewise_constant"

    def __init__(
        self,
        thresholds: Sequence[float],
        jumps: Sequence[float],
        base: float = 0.0,
        *,
        name: str | None = None,
    ) -> None:
        r = _checks.real_array(thresholds, "thresholds", ndim=(0, 1), nonempty=False).ravel()
        h = _checks.real_array(jumps, "jumps", ndim=(0, 1), nonempty=False).ravel()
        if r.size != h.size:
            raise ValueError(
                f"thresholds and jumps must have the same length, got {r.size} and {h.size}"
            )
        if not (np.all(np.isfinite(r)) and np.all(np.isfinite(h))):
            raise ValueError(f"thresholds and jumps must be finite, got {r.tolist()}, {h.tolist()}")
        uniq, inverse = np.unique(r, return_inverse=True)
        merged = np.zeros(uniq.size)
        np.add.at(merged, inverse, h)
        self._thresholds_in = r
        self._jumps_in = h
        self._base_in = _checks.real(base, "base")
        super().__init__(uniq, np.zeros(uniq.size + 1), merged, self._base_in, name=name)

    @property
    def levels(self) -> np.ndarray:
        """Values on the pieces, left to right, shape (J + 1,)."""
        return self._intercepts.copy()

    def _params(self) -> dict[str, Any]:
        return {"thresholds": self._thresholds_in, "jumps": self._jumps_in, "base": self._base_in}


class Sign(PiecewiseConstant):
    """``sign(t)`` (with ``sign(0) = 0`` as in NumPy and torch)."""

    name = "sign"

    def __init__(self) -> None:
        super().__init__([0.0], [2.0], -1.0, name="sign")

    def _numpy(self, x: np.ndarray) -> np.ndarray:
        return np.sign(x)

    def _torch(self, x: Any) -> Any:
        import torch

        return torch.sign(x)

    def _params(self) -> dict[str, Any]:
        return {}


class Step(PiecewiseConstant):
    """Heaviside step ``1[t > r]`` (values {0, 1})."""

    name = "step"

    def __init__(self, r: float = 0.0) -> None:
        self.r = _checks.real(r, "r")
        super().__init__([self.r], [1.0], 0.0, name="step")

    def _params(self) -> dict[str, Any]:
        return {"r": self.r}


class Ternary(PiecewiseConstant):
    """Two-threshold step function with values in ``{0, +-scale}`` (the book's eq-compress-ternary,
    where the compressed activation of layer ℓ is written σ^t_ℓ and its scale 𝔟).

    ``odd=True``:  ``sigma(t) = scale (1[t > s_plus] - 1[t < s_minus])``, values
    ``{-scale, 0, scale}``;
    ``odd=False``: ``sigma(t) = scale (1[t > s_plus] + 1[t < s_minus])``, values
    ``{0, scale}``.

    Parameters
    ----------
    s_minus, s_plus : float
        Thresholds, ``s_minus <= s_plus``.
    scale : float
        Positive output scale (the book's 𝔟; ``b`` is a class index there).
    odd : bool
        Sign pattern (``eta = -1`` when True, ``+1`` when False).
    """

    name = "ternary"

    def __init__(self, s_minus: float, s_plus: float, scale: float = 1.0, odd: bool = True) -> None:
        s_minus = _checks.real(s_minus, "s_minus")
        s_plus = _checks.real(s_plus, "s_plus")
        scale = _checks.positive(scale, "scale")
        odd = _checks.flag(odd, "odd")
        if s_minus > s_plus:
            raise ValueError(f"s_minus must be <= s_plus, got s_minus={s_minus}, s_plus={s_plus}")
        self.s_minus = s_minus
        self.s_plus = s_plus
        self.scale = scale
        self.odd = bool(odd)
        if self.odd:
            super().__init__([s_minus, s_plus], [scale, scale], -scale, name="ternary")
        else:
            super().__init__([s_minus, s_plus], [-scale, scale], scale, name="ternary")

    def _numpy(self, x: np.ndarray) -> np.ndarray:
        sign = -1.0 if self.odd else 1.0
        out = self.scale * (
            (x > self.s_plus).astype(x.dtype) + sign * (x < self.s_minus).astype(x.dtype)
        )
        return out

    def _torch(self, x: Any) -> Any:
        sign = -1.0 if self.odd else 1.0
        return self.scale * ((x > self.s_plus).to(x.dtype) + sign * (x < self.s_minus).to(x.dtype))

    def _params(self) -> dict[str, Any]:
        return {
            "s_minus": self.s_minus,
            "s_plus": self.s_plus,
            "scale": self.scale,
            "odd": self.odd,
        }


# ----------------------------------------------------------------------------------
# polynomials
# ----------------------------------------------------------------------------------
class Polynomial(Activation):
    """``sigma(t) = sum_k coefficients[k] t^k`` (``quadratic(a, b, c)`` is ``a t^2 + b t + c``).

    Moments and dual kernels are exact (finite Hermite expansions).

    Parameters
    ----------
    coefficients : sequence of float
        Power-series coefficients, lowest degree first.
    """

    name = "polynomial"

    def __init__(self, coefficients: Sequence[float], *, name: str | None = None) -> None:
        c = _checks.real_array(coefficients, "coefficients", ndim=(0, 1), nonempty=False).ravel()
        if c.size == 0:
            raise ValueError(
                f"coefficients must be a non-empty sequence of finite numbers, got {c.tolist()}"
            )
        self.coefficients = c
        if name is not None:
            self.name = name

    @staticmethod
    def _horner(c: np.ndarray, x: Any) -> Any:
        y = x * 0 + float(c[-1])
        for ck in c[-2::-1]:
            y = y * x + float(ck)
        return y

    def _numpy(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self._horner(self.coefficients, x), dtype=x.dtype)

    def _torch(self, x: Any) -> Any:
        return self._horner(self.coefficients, x)

    def _derivative_coefficients(self) -> np.ndarray:
        d = np.polynomial.polynomial.polyder(self.coefficients)
        return d if d.size else np.zeros(1)

    def _numpy_derivative(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self._horner(self._derivative_coefficients(), x), dtype=x.dtype)

    def _torch_derivative(self, x: Any) -> Any:
        return self._horner(self._derivative_coefficients(), x)

    def hermite_expansion(self, scale: float, derivative: bool = False) -> np.ndarray:
        """Coefficients ``e_k`` of ``sigma(scale xi) = sum_k e_k He_k(xi)`` (or of ``sigma'``)."""
        c = self._derivative_coefficients() if derivative else self.coefficients
        return np.polynomial.hermite_e.poly2herme(c * scale ** np.arange(c.size))

    def _closed_moments(self, tau: float) -> Moments:
        e = self.hermite_expansion(tau)
        fact = np.array([math.factorial(k) for k in range(e.size)], dtype=float)
        e2 = lambda arr, k: float(arr[k]) if arr.size > k else 0.0  # noqa: E731
        m = e2(e, 0)
        g1 = e2(e, 1) / tau
        g2 = 2.0 * e2(e, 2) / tau**2
        v = float(np.sum(fact[1:] * e[1:] ** 2))
        centred = e.copy()
        centred[0] = 0.0
        sq = np.polynomial.hermite_e.hermemul(centred, centred)
        h = 2.0 * e2(sq, 2) / tau**2
        d = self.hermite_expansion(tau, derivative=True)
        factd = np.array([math.factorial(k) for k in range(d.size)], dtype=float)
        q = float(np.sum(factd * d**2))
        return Moments(m=m, g1=g1, g2=g2, h=h, v=v, q=q)

    def _exact_hermite(
        self, scales: np.ndarray, _order: Any, derivative: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        rows = [self.hermite_expansion(float(s), derivative=derivative) for s in scales]
        width = max(r.size for r in rows)
        fact = np.sqrt([math.factorial(k) for k in range(width)])
        a = np.zeros((len(rows), width))
        for i, r in enumerate(rows):
            a[i, : r.size] = r * fact[: r.size]
        return a, np.sum(a * a, axis=1)

    def dual(
        self, scales: np.ndarray, *, centre: float = 0.0, max_correlation: float = 1.0
    ) -> DualExpectations:
        """Exact two-point expectations: a finite Mehler sum (see :meth:`Activation.dual`)."""
        centre = _checks.real(centre, "centre")
        max_correlation = _checks.real(max_correlation, "max_correlation", low=0.0, high=1.0)
        dual = _dual.HermiteDual(
            self, _check_scales(scales), centre, max_correlation, coefficients=self._exact_hermite
        )
        dual.method = "exact finite Mehler–Hermite sum"
        return dual

    def _params(self) -> dict[str, Any]:
        return {"coefficients": self.coefficients}


class Quadratic(Polynomial):
    """``a t^2 + b t + c`` (exact moments and dual kernels)."""

    name = "quadratic"

    def __init__(self, a: float = 1.0, b: float = 0.0, c: float = 0.0) -> None:
        self.a, self.b, self.c = (
            _checks.real(val, nm) for val, nm in ((a, "a"), (b, "b"), (c, "c"))
        )
        super().__init__([self.c, self.b, self.a], name="quadratic")

    def _params(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "c": self.c}


# ----------------------------------------------------------------------------------
# smooth activations
# ----------------------------------------------------------------------------------
class Erf(Activation):
    """``sigma(t) = erf(sharpness * t)``; a smoothed ``sign`` for large ``sharpness``.

    Closed forms, with ``𝔰`` the sharpness (the book's fraktur s: ``s`` is a threshold of a
    ternary activation): ``g1 = 2 𝔰 / sqrt(pi (1 + 2 𝔰^2 tau^2))``,
    ``v = (2/pi) arcsin(2 𝔰^2 tau^2 / (1 + 2 𝔰^2 tau^2))`` etc.
    """

    name = "erf"

    def __init__(self, sharpness: float = 1.0) -> None:
        self.sharpness = _checks.positive(sharpness, "sharpness")

    def _numpy(self, x: np.ndarray) -> np.ndarray:
        return special.erf(self.sharpness * x)

    def _torch(self, x: Any) -> Any:
        import torch

        return torch.erf(self.sharpness * x)

    def _numpy_derivative(self, x: np.ndarray) -> np.ndarray:
        b = self.sharpness
        return (2.0 * b / math.sqrt(math.pi)) * np.exp(-((b * x) ** 2))

    def _torch_derivative(self, x: Any) -> Any:
        import torch

        b = self.sharpness
        return (2.0 * b / math.sqrt(math.pi)) * torch.exp(-((b * x) ** 2))

    def _closed_moments(self, tau: float) -> Moments:
        b2t2 = (self.sharpness * tau) ** 2
        b2 = self.sharpness**2
        g1 = 2.0 * self.sharpness / math.sqrt(math.pi * (1.0 + 2.0 * b2t2))
        v = (2.0 / math.pi) * math.asin(2.0 * b2t2 / (1.0 + 2.0 * b2t2))
        h = 8.0 * b2 / (math.pi * (1.0 + 2.0 * b2t2) * math.sqrt(1.0 + 4.0 * b2t2))
        q = 4.0 * b2 / (math.pi * math.sqrt(1.0 + 4.0 * b2t2))
        return Moments(m=0.0, g1=g1, g2=0.0, h=h, v=v, q=q)

    def dual(
        self, scales: np.ndarray, *, centre: float = 0.0, max_correlation: float = 1.0
    ) -> DualExpectations:
        """Closed-form (arc-sine) two-point expectations (see :meth:`Activation.dual`)."""
        centre = _checks.real(centre, "centre")
        max_correlation = _checks.real(max_correlation, "max_correlation", low=0.0, high=1.0)
        return _dual.ErfDual(self.sharpness, _check_scales(scales), centre)

    def fast_kernel(self) -> Any:
        """Arc-sine fast step (see :meth:`Activation.fast_kernel`)."""
        from lossless import _fastkernels

        return _fastkernels.ErfStep(self.sharpness)

    def _params(self) -> dict[str, Any]:
        return {"sharpness": self.sharpness}


class Tanh(Activation):
    """``tanh(t)`` (moments by the numerical method)."""

    name = "tanh"

    def _numpy(self, x: np.ndarray) -> np.ndarray:
        return np.tanh(x)

    def _torch(self, x: Any) -> Any:
        import torch

        return torch.tanh(x)

    def _numpy_derivative(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / np.cosh(np.clip(x, -350.0, 350.0)) ** 2

    def _torch_derivative(self, x: Any) -> Any:
        import torch

        return 1.0 - torch.tanh(x) ** 2


class Sigmoid(Activation):
    """Logistic ``1 / (1 + exp(-t))`` (moments by the numerical method)."""

    name = "sigmoid"

    def _numpy(self, x: np.ndarray) -> np.ndarray:
        return special.expit(x)

    def _torch(self, x: Any) -> Any:
        import torch

        return torch.sigmoid(x)

    def _numpy_derivative(self, x: np.ndarray) -> np.ndarray:
        s = special.expit(x)
        return s * special.expit(-x)

    def _torch_derivative(self, x: Any) -> Any:
        import torch

        return torch.sigmoid(x) * torch.sigmoid(-x)


class Sin(Activation):
    """``sin(frequency * t)``; closed-form moments and dual kernels."""

    name = "sin"

    def __init__(self, frequency: float = 1.0) -> None:
        self.frequency = _checks.positive(frequency, "frequency")

    def _numpy(self, x: np.ndarray) -> np.ndarray:
        return np.sin(self.frequency * x)

    def _torch(self, x: Any) -> Any:
        import torch

        return torch.sin(self.frequency * x)

    def _numpy_derivative(self, x: np.ndarray) -> np.ndarray:
        return self.frequency * np.cos(self.frequency * x)

    def _torch_derivative(self, x: Any) -> Any:
        import torch

        return self.frequency * torch.cos(self.frequency * x)

    def _closed_moments(self, tau: float) -> Moments:
        w2 = self.frequency**2
        s = w2 * tau**2
        g1 = self.frequency * math.exp(-0.5 * s)
        v = -0.5 * math.expm1(-2.0 * s)
        h = 2.0 * w2 * math.exp(-2.0 * s)
        q = 0.5 * w2 * (1.0 + math.exp(-2.0 * s))
        return Moments(m=0.0, g1=g1, g2=0.0, h=h, v=v, q=q)

    def dual(
        self, scales: np.ndarray, *, centre: float = 0.0, max_correlation: float = 1.0
    ) -> DualExpectations:
        """Closed-form two-point expectations (see :meth:`Activation.dual`)."""
        centre = _checks.real(centre, "centre")
        max_correlation = _checks.real(max_correlation, "max_correlation", low=0.0, high=1.0)
        return _dual.TrigDual(self.frequency, False, _check_scales(scales), centre)

    def _params(self) -> dict[str, Any]:
        return {"frequency": self.frequency}


class Cos(Activation):
    """``cos(frequency * t)``; closed-form moments and dual kernels."""

    name = "cos"

    def __init__(self, frequency: float = 1.0) -> None:
        self.frequency = _checks.positive(frequency, "frequency")

    def _numpy(self, x: np.ndarray) -> np.ndarray:
        return np.cos(self.frequency * x)

    def _torch(self, x: Any) -> Any:
        import torch

        return torch.cos(self.frequency * x)

    def _numpy_derivative(self, x: np.ndarray) -> np.ndarray:
        return -self.frequency * np.sin(self.frequency * x)

    def _torch_derivative(self, x: Any) -> Any:
        import torch

        return -self.frequency * torch.sin(self.frequency * x)

    def _closed_moments(self, tau: float) -> Moments:
        w2 = self.frequency**2
        s = w2 * tau**2
        m = math.exp(-0.5 * s)
        g2 = -w2 * m
        v = 0.5 * math.expm1(-s) ** 2
        h = -2.0 * w2 * math.exp(-s) * math.expm1(-s)
        q = -0.5 * w2 * math.expm1(-2.0 * s)
        return Moments(m=m, g1=0.0, g2=g2, h=h, v=v, q=q)

    def dual(
        self, scales: np.ndarray, *, centre: float = 0.0, max_correlation: float = 1.0
    ) -> DualExpectations:
        """Closed-form two-point expectations (see :meth:`Activation.dual`)."""
        centre = _checks.real(centre, "centre")
        max_correlation = _checks.real(max_correlation, "max_correlation", low=0.0, high=1.0)
        return _dual.TrigDual(self.frequency, True, _check_scales(scales), centre)

    def _params(self) -> dict[str, Any]:
        return {"frequency": self.frequency}


# ----------------------------------------------------------------------------------
# user callables
# ----------------------------------------------------------------------------------
class Custom(Activation):
    """Wrap any elementwise callable as an activation.

    Parameters
    ----------
    fn : callable
        ``fn(x)`` for a NumPy array ``x`` (and, to use it in a torch network, for a
        torch tensor) returning an array of the same shape.
    derivative : callable, optional
        Its almost-everywhere derivative. Without it, :meth:`derivative` uses central
        finite differences (approximate) and the numerical moments use the plain Stein
        forms.
    breakpoints : sequence of float
        Points where ``fn`` or its derivative is not smooth (integrals are split there).
        Jumps at these points are detected automatically.
    name : str

    Notes
    -----
    Moments come from :func:`quadrature_moments`; dual kernels from the generic
    Mehler–Hermite method of :mod:`lossless.kernels`.
    """

    name = "custom"

    def __init__(
        self,
        fn: Callable[[Any], Any],
        derivative: Callable[[Any], Any] | None = None,
        breakpoints: Sequence[float] = (),
        *,
        name: str = "custom",
    ) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {fn!r}")
        if derivative is not None and not callable(derivative):
            raise TypeError(f"derivative must be callable or None, got {derivative!r}")
        bp = _checks.real_array(breakpoints, "breakpoints", ndim=(0, 1), nonempty=False).ravel()
        if not isinstance(name, str):
            raise TypeError(f"name must be a string, got {name!r}")
        self.fn = fn
        self._derivative_fn = derivative
        self.exact_derivative = derivative is not None
        self.breakpoints = tuple(float(r) for r in np.unique(bp))
        self.name = name
        self.has_jumps = bool(self.jumps()[0].size)

    def _numpy(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.fn(x), dtype=float)

    def _torch(self, x: Any) -> Any:
        return self.fn(x)

    def _finite_difference(self, x: Any) -> Any:
        step = 1e-6 * (1.0 + abs(x))
        return (self.fn(x + step) - self.fn(x - step)) / (2.0 * step)

    def _numpy_derivative(self, x: np.ndarray) -> np.ndarray:
        if self._derivative_fn is not None:
            return np.asarray(self._derivative_fn(x), dtype=float)
        return np.asarray(self._finite_difference(x), dtype=float)

    def _torch_derivative(self, x: Any) -> Any:
        if self._derivative_fn is not None:
            return self._derivative_fn(x)
        return self._finite_difference(x)

    def _params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"fn": getattr(self.fn, "__name__", repr(self.fn))}
        if self.breakpoints:
            out["breakpoints"] = self.breakpoints
        return out

    def __repr__(self) -> str:
        args = ", ".join(
            f"{k}={v if isinstance(v, str) else _fmt(v)}" for k, v in self._params().items()
        )
        return f"{self.name}({args})"


# ----------------------------------------------------------------------------------
# registry
# ----------------------------------------------------------------------------------
_REGISTRY: dict[str, Callable[..., Activation]] = {
    "linear": _linear,
    "relu": _relu,
    "leaky_relu": _leaky_relu,
    "abs": _abs,
    "quadratic": Quadratic,
    "tanh": Tanh,
    "erf": Erf,
    "sigmoid": Sigmoid,
    "sin": Sin,
    "cos": Cos,
    "sign": Sign,
    "step": Step,
    "ternary": Ternary,
}


def names() -> list[str]:
    """Names accepted by :func:`get`."""
    return list(_REGISTRY)



def check_layers(layers: Any, name: str = "layers") -> list[Activation]:
    """Validate a network's list of activations (one per layer) and return it as a list.

    Raises
    ------
    TypeError
        A single Activation instead of a list, something that is not a sequence, or an
        element that is not an :class:`Activation` (the message names its index).
    ValueError
        An empty list.
    """
    if isinstance(layers, Activation):
        raise TypeError(
            f"{name} must be a list of Activation objects (one per layer), got a single "
            f"Activation {layers!r}; wrap it in a list"
        )
    if not isinstance(layers, Sequence) or isinstance(layers, (str, bytes)):
        raise TypeError(
            f"{name} must be a non-empty list of Activation objects, got {type(layers).__name__}"
        )
    if len(layers) == 0:
        raise ValueError(f"{name} must contain at least one Activation, got an empty list")
    for i, act in enumerate(layers):
        if not isinstance(act, Activation):
            raise TypeError(
                f"{name}[{i}] must be a lossless.activations.Activation (build one with "
                f"activations.get(name), e.g. activations.get('relu')), got {act!r}"
            )
    return list(layers)



def layer_moments(layers: Sequence[Activation], tau0: float) -> list[Moments]:
    """Moments of each layer at its input scale: the recursion ``tau_l^2 = v_l(tau_{l-1})``
    of the book's eq-ckntk-centring, the one place it is computed.

    Parameters
    ----------
    layers : list of Activation, length L
    tau0 : float
        Input scale (``sqrt(mean_i ||x_i||^2)`` for data ``X``), not squared.

    Returns
    -------
    list of Moments, length L
        Entry ``l - 1`` is ``sigma_l``'s moments at ``tau_{l-1}`` (its ``m`` is the centring
        constant of layer ``l``, its ``v`` is ``tau_l^2``).

    Raises
    ------
    TypeError
        ``tau0`` not a real number, or ``layers`` not a list of Activation objects.
    ValueError
        If ``tau0`` is not positive and finite, or a layer's output variance is 0 or not
        finite (a constant activation, or a user callable returning NaN/inf); the message
        names the layer.
    """
    layers = check_layers(layers)
    tau = _checks.input_scale(tau0, "tau0")
    out = []
    for i, act in enumerate(layers):
        try:
            mom = act.moments(tau)
        except ValueError as err:  # e.g. a user callable returning NaN: name the layer
            raise ValueError(f"layers[{i}] = {act!r}: {err}") from None
        if mom.v == 0:
            raise ValueError(
                f"layers[{i}] = {act!r} is constant at input scale {tau:.6g} (zero output "
                "variance): the next scale τ would be 0; a positive finite variance is needed"
            )
        if not (mom.v > 0 and math.isfinite(mom.v)):
            raise ValueError(
                f"layers[{i}] = {act!r} has output variance {mom.v!r} at input scale {tau:.6g}; "
                "a positive finite variance is needed to feed the next layer"
            )
        out.append(mom)
        tau = math.sqrt(mom.v)
    return out


def layer_scales(layers: Sequence[Activation], tau0: float) -> list[float]:
    """Scales ``tau_0, ..., tau_L`` of the centring recursion ``tau_l^2 = v_l(tau_{l-1})``
    (the book's eq-ckntk-centring; :func:`layer_moments`).

    Returns
    -------
    list of float, length L + 1
        ``tau_l = sqrt(Var[sigma_l(tau_{l-1} xi)])``.

    Raises
    ------
    TypeError, ValueError
        As :func:`layer_moments`.
    """
    moments = layer_moments(layers, tau0)
    return [float(tau0)] + [math.sqrt(m.v) for m in moments]


def check_surrogates(surrogates: Any, depth: int) -> list[Activation | None]:
    """Validate the per-layer derivative surrogates of an NTK computation.

    ``surrogates`` is None (every layer uses its true derivative) or a list with one entry
    per layer: None, an :class:`Activation` or a callable ``s`` standing for ``sigma_l'``
    (wrapped in :class:`Custom`). Returns a list of length ``depth``.

    Raises
    ------
    TypeError
        Not None and not a list, or an entry of another kind (the message names its index).
    ValueError
        A list whose length is not ``depth``.
    """
    if surrogates is None:
        return [None] * depth
    if not isinstance(surrogates, Sequence) or isinstance(surrogates, (str, bytes)):
        raise TypeError(
            "surrogates must be None or a list with one entry (None, an Activation or a callable "
            f"standing for the derivative) per layer, got {type(surrogates).__name__}"
        )
    if len(surrogates) != depth:
        raise ValueError(
            f"surrogates must have one entry per layer ({depth}), got {len(surrogates)}"
        )
    out: list[Activation | None] = []
    for i, s in enumerate(surrogates):
        if s is None or isinstance(s, Activation):
            out.append(s)
        elif callable(s):
            out.append(Custom(s, name="surrogate"))
        else:
            raise TypeError(
                f"surrogates[{i}] must be None, an Activation or a callable standing for the "
                f"derivative, got {s!r}"
            )
    return out


def check_positive(value: Any, name: str) -> float:
    """``value`` as a float if it is a finite real number > 0.

    Raises
    ------
    TypeError
        Not a real number (a bool, a string or a complex number counts as not one); the
        message names ``name``.
    ValueError
        NaN, infinite, zero or negative.
    """
    return _checks.positive(value, name)


def get(name: str, **params: Any) -> Activation:
    """Build a built-in activation by name.

    Parameters
    ----------
    name : str
        One of ``linear, relu, leaky_relu(slope), abs, quadratic(a, b, c), tanh,
        erf(sharpness), sigmoid, sin(frequency), cos(frequency), sign, step(r),
        ternary(s_minus, s_plus, scale, odd)``.
    **params
        Parameters of that activation.

    Returns
    -------
    Activation

    Raises
    ------
    ValueError
        For an unknown name (the message lists the allowed ones) or bad parameter values.
    TypeError
        For parameters the activation does not take.
    """
    if isinstance(name, Activation):
        if params:
            raise TypeError("parameters cannot be given together with an Activation instance")
        return name
    try:
        factory = _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown activation {name!r}; allowed names: {', '.join(_REGISTRY)}"
        ) from None
    try:
        return factory(**params)
    except TypeError as err:
        raise TypeError(f"bad parameters for activation {name!r}: {err}") from None
