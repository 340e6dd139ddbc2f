"""Benchmark: `lossless.compress.compress` against a multi-start SLSQP baseline.

The authors' public code (``solve_equation.py``) finds each compressed layer's
two-threshold activation by drawing many random starting points ``(s_1, s_2, b)`` and
calling ``scipy.optimize.minimize(method="SLSQP")`` on the squared mismatch of the
moments (constraint ``s_2 >= s_1``, ``ftol = 1e-30``), keeping the start with the
smallest objective. This script implements a baseline *of that kind* (our own code,
not theirs) and runs it side by side with our solver on the same per-layer equations.

What both methods solve
    For every layer ℓ, at the compressed network's own input scale τ^c_{ℓ−1} (each
    method propagates the scale its own solutions produce, layer by layer), find a
    two-threshold step ``σ(t) = b (1[t > s_+] + η 1[t < s_−])`` (η = −1 "odd", values
    {−b, 0, b}; η = +1 "even", values {0, b}) with ``g1², g2², h`` equal to the original
    layer's at τ_{ℓ−1}.

    Last layer (``--last-layer``):

    - ``match_h`` (default): the last layer solves the same three equations as the
      hidden ones; our solver is called as ``compress(layers, tau0, last_layer="match_h")``.
    - ``closest_tau``: our solver's default (match ``g1², g2²``, make τ^c_L as close to
      τ_L as possible). The baseline then minimises ``(v/τ_L² − 1)²`` subject to the two
      equations as SLSQP equality constraints, and keeps, among the starts whose
      residual is below the tolerance, the one closest to τ_L.

The baseline
    Variables ``(s_−, s_+, b)`` in absolute units, as in the authors' code; starts
    ``τ^c · (−0.5 z_1, 0.5 z_2, 0.5 z_3)``, ``z ~ N(0, 1)`` (their ``ratios``, scaled by
    the layer's input scale), drawn from ``np.random.default_rng`` seeded per
    (activation, depth) so that every network's numbers are reproducible on their own.
    Starts alternate between the even pattern (the authors' ``binary_zero``) and the
    odd one (needed for tanh, erf, sigmoid, where g2 = 0), so both patterns get half
    the budget. Objective: the sum of the squared *relative* mismatches of
    ``g1², g2² τ_c², h`` (the same normalisation as the residual below; the authors
    use absolute mismatches, which only makes small targets harder), computed with
    the closed forms of :func:`lossless.compress.ternary_shape_moments`, gradients by
    SLSQP's default finite differences (as in their code), ``ftol = 1e-30``,
    ``maxiter = 100`` (SciPy's default). ``b`` may go negative (only ``b²`` enters the
    equations; the activation uses ``|b|``). A fixed budget of ``--starts`` starts per
    layer is always spent (100 by default, 20 with ``--quick``); the kept start is the
    one with the smallest objective (``match_h``).

What is measured (one row per activation and depth)
    - ``ours_s``: wall time of ``compress`` (best of ``--repeats``; fresh activation
      objects each time, so numerical target moments are recomputed), ``ours_residual``;
    - ``slsqp_s``: wall time of the whole baseline with the fixed budget (one run,
      includes the target moments too), ``slsqp_residual`` of the kept solutions,
      ``slsqp_layers_converged`` (layers whose kept residual is at most ``tol = 1e-10``,
      our solver's acceptance tolerance) and ``slsqp_hit_rate`` (share of all starts
      that ended at a residual of at most 1e-6: how often a random start finds a root);
    - ``slsqp_to_tol_s`` / ``slsqp_starts_to_tol``: time and number of starts until, at
      every layer, a first start reached a residual of at most ``tol`` (the sum over
      layers of the time from the layer's first start to the end of that start; null in
      the JSON, "-" in the table, if some layer never got there within the budget);
      ``slsqp_to_1e-6_s`` / ``slsqp_starts_to_1e-6`` the same for the looser level 1e-6.
      The next layer is always solved at the scale of the kept (best-of-budget)
      solution, so this is the time an early-stopping variant would need if it kept the
      same roots;
    - ``speedup`` = ``slsqp_s / ours_s``, ``speedup_to_tol`` and ``speedup_to_1e-6``
      likewise with the times to those levels;
    - ``ours_shift``, ``slsqp_shift``: the CK identity shift ``(τ^c_L)² − τ_L²`` that
      each compressed network ends with (our solver keeps the root of smallest output
      variance, the baseline the smallest objective, so they may differ), and the sign
      patterns chosen per layer (``o`` odd, ``e`` even).

    With SciPy's default finite-difference step (about 1.5e-8, as in the authors' code)
    SLSQP's gradient is only accurate to about that level, and it stops at residuals of
    about 1e-8 to 1e-6, never at 1e-10; ``--eps 1e-11`` gets it closer (a diagnostic,
    not what the authors ran).

    Residual (identical for both, re-computed from the final activations with
    ``activations.Ternary(...).moments(τ^c_{ℓ−1})``): for each matched equation,
    ``|achieved − target| / |target|`` in the dimensionless quantities
    ``g1², g2² τ_c², h``, with ``g1² + g2² τ_c²`` as the denominator when the target is
    (numerically) zero, e.g. g2² for tanh; the largest over equations and layers.

    Input scale: τ_0 of the reference mixture at p = 512, as in
    ``bench_compression.py``. Residuals, starts and roots are deterministic (fixed
    seeds); wall times depend on the machine and its load (printed).

Usage::

    python benchmarks/bench_solver.py                  # all 24 networks, 100 starts (~2-4 min)
    python benchmarks/bench_solver.py --quick          # 20 starts per layer (< 1 min)
    python benchmarks/bench_solver.py --last-layer closest_tau --starts 50
    python benchmarks/bench_solver.py --quick --eps 1e-11   # smaller FD step for SLSQP

Writes ``benchmarks/results/solver.json`` as ``{"machine": {...}, "rows": [...]}``
(``--results ''`` to skip).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import scipy
from scipy.optimize import minimize

from bench_compression import SOLVER_ACTIVATIONS, TAU0  # the same cases as its solver sweep
from lossless import activations, compress

SEED = 0
TOL = 1e-10  # our solver's default acceptance tolerance (compress(..., tol=1e-10))
LOOSE = 1e-6  # a looser level, reported as well (SLSQP with finite differences rarely gets to TOL)
RESULTS = Path(__file__).resolve().parent / "results" / "solver.json"



# ------------------------------------------------------------------------ residuals
def _relative(achieved: float, target: float, scale: float) -> float:
    """|achieved − target| / |target|, or / scale when the target is ~0 (as our solver)."""
    den = abs(target) if abs(target) > 1e-12 * scale else scale
    return abs(achieved - target) / den


def layer_residual(act: activations.Ternary, target: activations.Moments, tau_c: float,
                   match_h: bool) -> float:
    """Largest relative residual of (g1², g2² τ_c², h) of ``act`` at ``tau_c``; h only
    when ``match_h``. Used for both methods."""
    got = act.moments(tau_c)
    S = target.g1**2 + target.g2**2 * tau_c**2
    res = [_relative(got.g1**2, target.g1**2, S),
           _relative(got.g2**2 * tau_c**2, target.g2**2 * tau_c**2, S)]
    if match_h:
        res.append(_relative(got.h, target.h, S))
    return max(res)


# ------------------------------------------------------------------------- baseline
class _Layer:
    """The equations of one layer in the baseline's variables z = (s_−, s_+, b)."""

    def __init__(self, target: activations.Moments, tau_c: float, odd: bool) -> None:
        self.tau_c, self.odd = tau_c, odd
        self.T = np.array([target.g1**2, target.g2**2 * tau_c**2, target.h])
        S = self.T[0] + self.T[1]
        self.den = np.array([abs(t) if abs(t) > 1e-12 * S else S for t in self.T])

    def moments(self, z: np.ndarray) -> tuple[np.ndarray, float]:
        """Achieved (g1², g2² τ_c², h) and the output variance v at z."""
        s_minus, s_plus, b = z
        mom = compress.ternary_shape_moments(s_minus / self.tau_c, s_plus / self.tau_c,
                                             self.odd)
        a2 = (b / self.tau_c) ** 2
        got = a2 * np.array([float(mom["c1"]) ** 2, float(mom["c2"]) ** 2, float(mom["cH"])])
        return got, b * b * float(mom["var"])

    def relative(self, z: np.ndarray) -> np.ndarray:
        return (self.moments(z)[0] - self.T) / self.den


def _ternary(z: np.ndarray, odd: bool, tau_c: float) -> activations.Ternary | None:
    """The activation of a baseline solution (None if the order constraint is broken
    by more than rounding, or the point is degenerate)."""
    s_minus, s_plus, b = (float(v) for v in z)
    if not all(math.isfinite(v) for v in (s_minus, s_plus, b)) or b == 0.0:
        return None
    if s_minus > s_plus:
        if s_minus - s_plus > 1e-9 * tau_c:
            return None
        s_minus = s_plus = 0.5 * (s_minus + s_plus)
    return activations.Ternary(s_minus, s_plus, abs(b), odd)


def slsqp_layer(target: activations.Moments, tau_c: float, match_h: bool,
                tau_target: float, starts: int, rng: np.random.Generator,
                eps: float | None) -> dict:
    """Multi-start SLSQP for one layer; returns the kept activation and the timings.

    ``to[level]`` is the time from the first start to the end of the first start whose
    residual is at most ``level`` (NaN if none), ``starts_to[level]`` its number (1-based,
    0 if none); ``hits`` counts the starts that ended at a residual of at most LOOSE.
    """
    cons_order = {"type": "ineq", "fun": lambda z: z[1] - z[0]}
    options = {"ftol": 1e-30, "maxiter": 100}
    if eps is not None:
        options["eps"] = eps
    layers = {odd: _Layer(target, tau_c, odd) for odd in (False, True)}
    best = None  # (key, activation)
    start_time = time.perf_counter()
    to = {TOL: math.nan, LOOSE: math.nan}
    starts_to = {TOL: 0, LOOSE: 0}
    hits = 0
    for k in range(starts):
        odd = bool(k % 2)  # even pattern first (the authors' binary_zero), then odd
        lay = layers[odd]
        z0 = tau_c * np.array([-0.5, 0.5, 0.5]) * rng.standard_normal(3)
        if match_h:
            def objective(z, lay=lay):
                r = lay.relative(z)
                return float(r @ r)
            res = minimize(objective, z0, method="SLSQP", constraints=[cons_order],
                           options=options)
        else:
            def objective(z, lay=lay):
                return (lay.moments(z)[1] / tau_target**2 - 1.0) ** 2

            cons_eq = {"type": "eq", "fun": lambda z, lay=lay: lay.relative(z)[:2]}
            res = minimize(objective, z0, method="SLSQP", constraints=[cons_order, cons_eq],
                           options=options)
        act = _ternary(res.x, odd, tau_c)
        if act is None:
            continue
        resid = float(np.max(np.abs(lay.relative(res.x)[: 3 if match_h else 2])))
        if not math.isfinite(resid):
            continue
        hits += resid <= LOOSE
        for level in to:
            if math.isnan(to[level]) and resid <= level:
                to[level] = time.perf_counter() - start_time
                starts_to[level] = k + 1
        if match_h:
            key = (float(res.fun),)
        else:  # feasible first, then closest to τ_L², then residual
            gap = abs(lay.moments(res.x)[1] - tau_target**2)
            key = (resid > TOL, gap if resid <= TOL else resid)
        if best is None or key < best[0]:
            best = (key, act)
    if best is None:
        raise RuntimeError(f"SLSQP: no usable solution in {starts} starts at tau_c={tau_c:.4g}")
    return {"act": best[1], "to": to, "starts_to": starts_to, "hits": hits}


def slsqp_network(make, depth: int, tau0: float, last_layer: str, starts: int,
                  rng: np.random.Generator, eps: float | None) -> dict:
    """The baseline for a whole network, layer by layer at its own compressed scale."""
    start = time.perf_counter()
    layers = [make() for _ in range(depth)]
    tau, tau_c = tau0, tau0
    kept, hits = [], 0
    to = {TOL: 0.0, LOOSE: 0.0}
    starts_to = {TOL: 0, LOOSE: 0}
    for index, act in enumerate(layers, start=1):
        target = act.moments(tau)
        tau_next = math.sqrt(target.v)
        match_h = index < depth or last_layer == "match_h"
        out = slsqp_layer(target, tau_c, match_h, tau_next, starts, rng, eps)
        kept.append((out["act"], target, tau_c, match_h))
        for level in to:
            to[level] += out["to"][level]  # NaN as soon as one layer never got there
            starts_to[level] += out["starts_to"][level]
        hits += out["hits"]
        tau, tau_c = tau_next, math.sqrt(out["act"].moments(tau_c).v)
    elapsed = time.perf_counter() - start
    residuals = [layer_residual(a, t, tc, mh) for a, t, tc, mh in kept]
    return {"seconds": elapsed, "residual": max(residuals),
            "layers_converged": sum(r <= TOL for r in residuals),
            "to": to,
            "starts_to": {k: (v if math.isfinite(to[k]) else None) for k, v in starts_to.items()},
            "hit_rate": hits / (starts * depth),
            "shift": tau_c**2 - tau**2,
            "odd": "".join("o" if a.odd else "e" for a, *_ in kept)}


# ------------------------------------------------------------------------------ ours
def ours_network(make, depth: int, tau0: float, last_layer: str, repeats: int) -> dict:
    best, plan = math.inf, None
    for _ in range(repeats):
        layers = [make() for _ in range(depth)]  # fresh: no cached numerical moments
        t0 = time.perf_counter()
        plan = compress.compress(layers, tau0, last_layer=last_layer, tol=TOL)
        best = min(best, time.perf_counter() - t0)
    residual = max(layer_residual(t, s.target, s.tau_in_compressed, "h" in s.residuals)
                   for s, t in zip(plan.solutions, plan.layers))
    return {"seconds": best, "residual": residual, "shift": plan.shift,
            "odd": "".join("o" if t.odd else "e" for t in plan.layers)}


def fmt_s(x: float) -> str:
    return "   -   " if not math.isfinite(x) else f"{x:7.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="See the module docstring for what is measured.")
    parser.add_argument("--quick", action="store_true",
                        help="20 SLSQP starts per layer, 2 repeats of ours (< 1 minute)")
    parser.add_argument("--starts", type=int, default=None,
                        help="SLSQP starts per layer (default 100, or 20 with --quick)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timing repeats of our solver (best of; default 5, 2 with --quick)")
    parser.add_argument("--depths", type=int, nargs="*", default=[1, 2, 3, 4])
    parser.add_argument("--activations", nargs="*", default=list(SOLVER_ACTIVATIONS),
                        choices=list(SOLVER_ACTIVATIONS))
    parser.add_argument("--last-layer", choices=["match_h", "closest_tau"], default="match_h",
                        help="what the last layer matches (see the docstring)")
    parser.add_argument("--eps", type=float, default=None,
                        help="SLSQP finite-difference step (default: SciPy's, about 1.5e-8, "
                             "as in the authors' code)")
    parser.add_argument("--results", default=str(RESULTS),
                        help="JSON file for the numbers ('' to skip)")
    args = parser.parse_args()
    starts = args.starts if args.starts is not None else (20 if args.quick else 100)
    repeats = args.repeats if args.repeats is not None else (2 if args.quick else 5)
    if starts < 1 or repeats < 1 or not args.depths or min(args.depths) < 1:
        parser.error("--starts, --repeats and --depths must be positive")
    if args.eps is not None and not (math.isfinite(args.eps) and args.eps > 0):
        parser.error("--eps must be a positive number")
    warnings.simplefilter("ignore", UserWarning)
    warnings.simplefilter("ignore", RuntimeWarning)  # SLSQP probing far tails
    load = os.getloadavg()[0]
    eps_text = "SciPy default" if args.eps is None else f"{args.eps:g}"
    print(f"tau0 = {TAU0:.6f}, last layer: {args.last_layer}; SLSQP: {starts} starts per "
          f"layer (alternating even/odd pattern), finite-difference step {eps_text}; "
          f"tol = {TOL:g}; load average {load:.2f} on {os.cpu_count()} CPUs")
    head = (f"{'activation':>16} {'L':>2} | {'ours [s]':>8} {'residual':>8} | "
            f"{'SLSQP [s]':>9} {'residual':>8} {'conv':>5} {'hits':>5} "
            f"{'to 1e-10':>8} {'to 1e-6':>13} | {'speedup':>7} | {'shift: ours':>11} "
            f"{'SLSQP':>7} {'patterns':>9}")
    print(head)
    print("-" * len(head))
    rows = []
    t_all = time.perf_counter()
    for a_index, name in enumerate(SOLVER_ACTIVATIONS):
        if name not in args.activations:
            continue
        make = SOLVER_ACTIVATIONS[name]
        for depth in args.depths:
            ours = ours_network(make, depth, TAU0, args.last_layer, repeats)
            rng = np.random.default_rng([SEED, a_index, depth])
            base = slsqp_network(make, depth, TAU0, args.last_layer, starts, rng, args.eps)
            speed = base["seconds"] / ours["seconds"]
            loose = (f"{base['to'][LOOSE]:.2f}s/{base['starts_to'][LOOSE]}"
                     if math.isfinite(base["to"][LOOSE]) else "-")
            tight = (f"{base['to'][TOL]:.2f}s" if math.isfinite(base["to"][TOL]) else "-")
            print(f"{name:>16} {depth:>2} | {ours['seconds']:>8.3f} {ours['residual']:>8.0e} | "
                  f"{base['seconds']:>9.2f} {base['residual']:>8.0e} "
                  f"{base['layers_converged']:>2}/{depth:<2} {base['hit_rate']:>5.0%} "
                  f"{tight:>8} {loose:>13} | {speed:>7.0f} | {ours['shift']:>11.4g} "
                  f"{base['shift']:>7.4g} {ours['odd'] + '/' + base['odd']:>9}", flush=True)
            rows.append({
                "activation": name, "depth": depth, "last_layer": args.last_layer,
                "ours_s": ours["seconds"], "ours_residual": ours["residual"],
                "ours_patterns": ours["odd"],
                "slsqp_s": base["seconds"], "slsqp_starts_per_layer": starts,
                "slsqp_residual": base["residual"],
                "slsqp_layers_converged": base["layers_converged"],
                "slsqp_hit_rate": base["hit_rate"],
                "slsqp_to_tol_s": base["to"][TOL],
                "slsqp_starts_to_tol": base["starts_to"][TOL],
                "slsqp_to_1e-6_s": base["to"][LOOSE],
                "slsqp_starts_to_1e-6": base["starts_to"][LOOSE],
                "slsqp_patterns": base["odd"],
                "speedup": speed,
                "speedup_to_tol": base["to"][TOL] / ours["seconds"],
                "speedup_to_1e-6": base["to"][LOOSE] / ours["seconds"],
                "ours_shift": ours["shift"], "slsqp_shift": base["shift"],
            })
    total = time.perf_counter() - t_all
    print(f"\nresidual: largest relative residual over equations and layers (same formula "
          f"for both). conv: layers whose SLSQP residual is <= {TOL:g}. hits: share of "
          f"SLSQP starts ending at a residual <= {LOOSE:g}. to 1e-10, to 1e-6: SLSQP time "
          f"(and starts) until every layer had one start at that residual ('-': never "
          f"within the budget). speedup: SLSQP budget time / ours. shift: "
          f"(tau^c_L)^2 - tau_L^2. patterns: o = odd {{-b,0,b}}, e = even {{0,b}} per "
          f"layer (ours/SLSQP). Total {total:.0f} s.")
    if args.results:
        out = Path(args.results)
        out.parent.mkdir(parents=True, exist_ok=True)
        machine = {"cpus": os.cpu_count(), "load_average": load,
                   "python": platform.python_version(), "numpy": np.__version__,
                   "scipy": scipy.__version__, "tau0": TAU0, "tol": TOL,
                   "slsqp_starts_per_layer": starts, "slsqp_fd_step": args.eps,
                   "ours_repeats": repeats, "last_layer": args.last_layer, "seed": SEED,
                   "total_seconds": total}
        # strict JSON has no NaN: missing values (never reached) are written as null
        clean = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                  for k, v in r.items()} for r in rows]
        with out.open("w") as fh:
            json.dump({"machine": machine, "rows": clean}, fh, indent=1)
        print(f"written {out}")


if __name__ == "__main__":
    main()
