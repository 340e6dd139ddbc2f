"""Benchmark: the ternary compression construction (book chapter on compression), verified.

Four sweeps, each printed as a table and written (long format) to
``benchmarks/results/compression.csv``:

1. ``solver``: relative residuals and wall time of :func:`lossless.compress.compress`
   for ReLU, leaky ReLU, abs, tanh, erf, sigmoid at depths 1..4 (§6 input scale).
2. ``exact_ck``: three ReLU layers on the reference mixture, p = 256, 512, 1024
   (n = 2p): exact CK of the compressed network against the original's, relative
   operator-norm error without and with the identity shift removed, the shift as a
   fraction of ‖K‖, and the alignment of the two leading eigenvectors.
3. ``empirical_ck``: one compressed network of finite width with sparse ternary
   weights, ε in {0, 0.5, 0.9, 0.99}, against ``K + shift I`` (the prediction); the
   dense Gaussian original at the same width for reference. High sparsity breaks when
   ``p (1 − ε)`` (non-zeros per row of W_1) is small: rows with no non-zero at all
   give constant neurons, i.e. a rank-one ``1 1ᵀ`` term.
4. ``ntk``: exact NTK of the compressed network (step activations: infinite diagonal)
   against the original's: off-diagonal agreement, and the full matrix with
   straight-through derivatives, the affine ones of
   :meth:`lossless.compress.CompressionPlan.surrogates` (which keep every β) and the
   naive one that reuses the original activation's derivative.

Usage::

    python benchmarks/bench_compression.py            # everything (a few minutes)
    python benchmarks/bench_compression.py --quick    # smaller sizes (< 1 minute)
"""

from __future__ import annotations

import argparse
import csv
import math
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from lossless import activations, compress, data, kernels, spectra
from lossless.spectra import opnorm

SEED = 0
RESULTS = Path(__file__).resolve().parent / "results" / "compression.csv"
ROWS: list[dict] = []
# The solver sweep: the reference mixture's input scale at p = 512, and the activations it covers
# (bench_solver.py runs the same cases against SLSQP).
TAU0 = math.sqrt(1.0 + 1.5 / math.sqrt(512) + 9.0 / 512)
SOLVER_ACTIVATIONS = {
    "relu": lambda: activations.get("relu"),
    "leaky_relu(0.1)": lambda: activations.get("leaky_relu", slope=0.1),
    "abs": lambda: activations.get("abs"),
    "tanh": lambda: activations.get("tanh"),
    "erf": lambda: activations.get("erf"),
    "sigmoid": lambda: activations.get("sigmoid"),
}


def record(section: str, quantity: str, value: float, **keys) -> None:
    ROWS.append({"section": section, "quantity": quantity, "value": float(value), **keys})


def sample(p: int) -> data.Sample:
    return data.preset("reference", p).sample(2 * p, np.random.default_rng(SEED))


def offdiag(A: np.ndarray) -> np.ndarray:
    B = A.copy()
    np.fill_diagonal(B, 0.0)
    return B


# --------------------------------------------------------------------------- 1. solver
def bench_solver() -> None:
    print("\n1. solver: largest relative residual (hidden layers: g1², g2², h; last: g1², g2²)")
    print(f"{'activation':>16} {'L':>2} {'residual':>10} {'time [s]':>9} {'τ_L':>7} {'τᶜ_L':>7}")
    for name, make in SOLVER_ACTIVATIONS.items():
        for depth in (1, 2, 3, 4):
            layers = [make() for _ in range(depth)]
            start = time.perf_counter()
            plan = compress.compress(layers, TAU0)
            elapsed = time.perf_counter() - start
            print(f"{name:>16} {depth:>2} {plan.max_residual:>10.1e} {elapsed:>9.3f} "
                  f"{plan.tau[-1]:>7.3f} {plan.tau_compressed[-1]:>7.3f}")
            keys = {"activation": name, "depth": depth}
            record("solver", "max_residual", plan.max_residual, **keys)
            record("solver", "seconds", elapsed, **keys)
            record("solver", "tau_L", plan.tau[-1], **keys)
            record("solver", "tau_c_L", plan.tau_compressed[-1], **keys)


# ------------------------------------------------------------------------ 2. exact CK
def bench_exact_ck(ps: list[int]) -> None:
    relu = [activations.get("relu")] * 3
    print("\n2. exact CK, three ReLU layers (reference mixture, n = 2p)")
    print(f"{'p':>5} {'τ':>20} {'τᶜ':>20} {'shift/‖K‖':>9} {'raw':>7} {'corr.':>7} "
          f"{'align u1':>8} {'align u2':>8}")
    for p in ps:
        s = sample(p)
        plan = compress.compress(relu, s.tau0)
        K = kernels.exact_ck(s.X, relu, tau0=s.tau0)
        Kc = kernels.exact_ck(s.X, plan.layers, tau0=s.tau0)
        norm = opnorm(K)
        diff = np.linalg.eigvalsh(Kc - K)
        raw = float(np.max(np.abs(diff))) / norm
        corr = float(np.max(np.abs(diff - plan.shift))) / norm
        _, U = spectra.eigh_desc(K)
        _, Uc = spectra.eigh_desc(Kc)
        align = [spectra.eigenvector_alignment(U[:, k], Uc[:, k]) for k in range(2)]
        taus = ", ".join(f"{t:.3f}" for t in plan.tau[1:])
        tausc = ", ".join(f"{t:.3f}" for t in plan.tau_compressed[1:])
        print(f"{p:>5} {taus:>20} {tausc:>20} {plan.shift / norm:>9.3f} {raw:>7.3f} "
              f"{corr:>7.3f} {align[0]:>8.4f} {align[1]:>8.4f}")
        keys = {"activation": "relu", "depth": 3, "p": p, "n": 2 * p}
        record("exact_ck", "shift_over_norm", plan.shift / norm, **keys)
        record("exact_ck", "error_raw", raw, **keys)
        record("exact_ck", "error_corrected", corr, **keys)
        record("exact_ck", "alignment_u1", align[0], **keys)
        record("exact_ck", "alignment_u2", align[1], **keys)
        for ell in range(1, 4):
            record("exact_ck", f"tau_{ell}", plan.tau[ell], **keys)
            record("exact_ck", f"tau_c_{ell}", plan.tau_compressed[ell], **keys)


# -------------------------------------------------------------------- 3. empirical CK
def bench_empirical_ck(ps: list[int], width: int, sparsities: list[float]) -> None:
    relu = [activations.get("relu")] * 3
    print(f"\n3. empirical CK of one compressed network, width {width}, against K + shift I "
          "(operator norm relative to ||K||)")
    print(f"{'p':>5} {'ε':>5} {'p(1-ε)':>7} {'dead rows':>9} {'error':>7} {'align u1':>8} "
          f"{'gauss. dense':>12}")
    for p in ps:
        s = sample(p)
        plan = compress.compress(relu, s.tau0)
        K = kernels.exact_ck(s.X, relu, tau0=s.tau0)
        target = K + plan.shift * np.eye(K.shape[0])
        _, U = spectra.eigh_desc(K)
        gen = torch.Generator().manual_seed(SEED)
        Kg = kernels.empirical_ck(s.X, [width] * 3, relu, 1, gen, weights="gaussian",
                                  tau0=s.tau0)
        norm = opnorm(K)
        gauss = opnorm(Kg - K) / norm
        for eps in sparsities:
            gen = torch.Generator().manual_seed(SEED)
            Ke = kernels.empirical_ck(s.X, [width] * 3, plan.layers, 1, gen, weights="ternary",
                                      sparsity=eps, tau0=s.tau0)
            err = opnorm(Ke - target) / norm  # relative to ||K||, as in section 2
            _, Ue = spectra.eigh_desc(Ke)
            align = spectra.eigenvector_alignment(U[:, 0], Ue[:, 0])
            dead = eps**p  # P(a row of W_1 has no non-zero)
            print(f"{p:>5} {eps:>5.2f} {p * (1 - eps):>7.1f} {dead:>9.2e} {err:>7.3f} "
                  f"{align:>8.3f} {gauss:>12.3f}")
            keys = {"activation": "relu", "depth": 3, "p": p, "n": 2 * p, "width": width,
                    "sparsity": eps}
            record("empirical_ck", "error_vs_shifted_exact", err, **keys)
            record("empirical_ck", "alignment_u1", align, **keys)
            record("empirical_ck", "dead_row_probability", dead, **keys)
            record("empirical_ck", "gaussian_dense_error", gauss, **keys)


# ----------------------------------------------------------------------------- 4. NTK
def bench_ntk(ps: list[int]) -> None:
    relu = activations.get("relu")
    layers = [relu] * 3
    print("\n4. exact NTK, three ReLU layers: compressed against original")
    print(f"{'p':>5} {'off-diag':>9} {'affine ST':>9} {'κ shift/‖K‖':>11} {'naive ST':>9}")
    for p in ps:
        s = sample(p)
        plan = compress.compress(layers, s.tau0)
        K = kernels.exact_ntk(s.X, layers, tau0=s.tau0)
        norm = opnorm(K)
        Kn = kernels.exact_ntk(s.X, plan.layers, diagonal="nan", tau0=s.tau0)
        off = opnorm(offdiag(Kn) - offdiag(K)) / norm
        sur = plan.surrogates()
        Ks = kernels.exact_ntk(s.X, plan.layers, surrogates=sur, tau0=s.tau0)
        kshift = plan.ntk_shift(sur)
        affine = opnorm(Ks - kshift * np.eye(K.shape[0]) - K) / norm
        # naive straight-through: the original ReLU's derivative, a unit step at 0
        naive_sur = [activations.get("step", r=0.0)] * 3
        Kv = kernels.exact_ntk(s.X, plan.layers, surrogates=naive_sur, tau0=s.tau0)
        nshift = plan.ntk_shift(naive_sur)
        naive = opnorm(Kv - nshift * np.eye(K.shape[0]) - K) / norm
        print(f"{p:>5} {off:>9.3f} {affine:>9.3f} {kshift / norm:>11.3f} {naive:>9.3f}")
        keys = {"activation": "relu", "depth": 3, "p": p, "n": 2 * p}
        record("ntk", "offdiagonal_error", off, **keys)
        record("ntk", "affine_surrogate_error_corrected", affine, **keys)
        record("ntk", "affine_surrogate_shift_over_norm", kshift / norm, **keys)
        record("ntk", "naive_surrogate_error_corrected", naive, **keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (< 1 minute)")
    args = parser.parse_args()
    warnings.simplefilter("ignore", UserWarning)
    start = time.perf_counter()
    bench_solver()
    if args.quick:
        bench_exact_ck([128, 256])
        bench_empirical_ck([128], 1024, [0.0, 0.5, 0.9, 0.99])
        bench_ntk([128])
    else:
        bench_exact_ck([256, 512, 1024])
        bench_empirical_ck([128, 256, 512], 2048, [0.0, 0.5, 0.9, 0.99])
        bench_ntk([256, 512])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    fields = ["section", "activation", "depth", "p", "n", "width", "sparsity", "quantity",
              "value"]
    with RESULTS.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for row in ROWS:
            writer.writerow({k: row.get(k, "") for k in fields})
    print(f"\nwrote {len(ROWS)} rows to {RESULTS} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
