"""Benchmark: the asymptotic equivalents K̃ against the exact expected CK/NTK (issue 4).

For each activation (ReLU, leaky ReLU(0.1), abs, tanh, erf, sin, two quadratics
0.2t²+0.5t (ReLU-like g1, g2) and 0.5t²+t (steep: its scale grows with depth), and a
ternary step for the CK only), each depth L = 1..4 (the same activation in every layer) and
each p in --sizes (n = 2p samples of the reference mixture ``data.preset("reference", p)``, one sample per
p drawn from --seed), it computes

- the relative operator-norm error ‖K − K̃‖ / ‖K‖ against ``kernels.exact_ck`` /
  ``kernels.exact_ntk``, the same with both diagonals removed (‖off(K − K̃)‖ / ‖K‖:
  what is left once the O(p^-1/2) per-sample diagonal fluctuations, whose operator
  norm is their largest entry, are set aside), and, for the CK, the error of the
  authors' identity term;
- the two leading eigenvalues of K and K̃ and the alignments |⟨u_k, ũ_k⟩| of the
  corresponding eigenvectors;
- the mean diagonal offsets diag(K − K̃) of ours and of the authors' CK;

writes one row per (kernel, activation, depth, p) to ``benchmarks/results/equivalence.csv``
and prints the errors with their fitted log-log slopes (rate in p). Usage::

    python benchmarks/bench_equivalence.py                       # p = 256, 512, 1024
    python benchmarks/bench_equivalence.py --sizes 64 128 --out /tmp/eq.csv
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
from scipy.sparse.linalg import eigsh

from lossless import activations, data, kernels, spectra, theory
from lossless.spectra import opnorm

ACTIVATIONS: dict[str, tuple[str, dict]] = {
    "relu": ("relu", {}),
    "leaky_relu": ("leaky_relu", {"slope": 0.1}),
    "abs": ("abs", {}),
    "tanh": ("tanh", {}),
    "erf": ("erf", {}),
    "sin": ("sin", {}),
    "quadratic": ("quadratic", {"a": 0.2, "b": 0.5, "c": 0.0}),
    "quadratic_steep": ("quadratic", {"a": 0.5, "b": 1.0, "c": 0.0}),
    "ternary": ("ternary", {"s_minus": -0.4, "s_plus": 0.6, "scale": 1.0, "odd": True}),
}
CK_ONLY = {"ternary"}
FIELDS = ["kernel", "activation", "depth", "p", "n", "error", "error_offdiagonal",
          "error_authors",
          "lambda1", "lambda1_equivalent", "lambda2", "lambda2_equivalent",
          "alignment1", "alignment2", "diag_offset", "diag_offset_authors", "seconds"]


def leading(A: np.ndarray, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    vals, vecs = eigsh(A, k=k, which="LA")
    order = np.argsort(vals)[::-1]
    return vals[order], vecs[:, order]


def compare(K: np.ndarray, K_eq: np.ndarray, K_authors: np.ndarray | None) -> dict:
    norm = opnorm(K)
    vals, vecs = leading(K)
    vals_eq, vecs_eq = leading(K_eq)
    align = np.abs(np.sum(vecs * vecs_eq, axis=0))
    D = K - K_eq
    np.fill_diagonal(D, 0.0)
    row = {
        "error": opnorm(K - K_eq) / norm,
        "error_offdiagonal": opnorm(D) / norm,
        "error_authors": "" if K_authors is None else opnorm(K - K_authors) / norm,
        "lambda1": vals[0], "lambda1_equivalent": vals_eq[0],
        "lambda2": vals[1], "lambda2_equivalent": vals_eq[1],
        "alignment1": align[0], "alignment2": align[1],
        "diag_offset": float(np.mean(np.diag(K) - np.diag(K_eq))),
        "diag_offset_authors": ("" if K_authors is None
                                else float(np.mean(np.diag(K) - np.diag(K_authors)))),
    }
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--depths", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--activations", nargs="+", default=list(ACTIVATIONS),
                        choices=list(ACTIVATIONS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parent / "results" / "equivalence.csv")
    args = parser.parse_args(argv)

    rows = []
    for p in args.sizes:
        rng = np.random.default_rng(args.seed)  # one fresh generator per p
        sample = data.preset("reference", p).sample(2 * p, rng)
        for key in args.activations:
            name, params = ACTIVATIONS[key]
            act = activations.get(name, **params)
            for depth in args.depths:
                layers = [act] * depth
                start = time.perf_counter()
                if key in CK_ONLY:
                    exact = {"ck": kernels.exact_ck(sample.X, layers)}
                else:
                    K, N = kernels.exact_kernels(sample.X, layers)
                    exact = {"ck": K, "ntk": N}
                exact_seconds = time.perf_counter() - start
                for kind, K in exact.items():
                    start = time.perf_counter()
                    if kind == "ck":
                        K_eq = theory.equivalent_ck(sample, layers)
                        K_auth = theory.authors_equivalent_ck(sample, layers)
                    else:
                        K_eq = theory.equivalent_ntk(sample, layers)
                        K_auth = None
                    row = {"kernel": kind, "activation": key, "depth": depth, "p": p,
                           "n": sample.n, **compare(K, K_eq, K_auth)}
                    row["seconds"] = exact_seconds + time.perf_counter() - start
                    rows.append(row)
                    print(f"p={p:5d} {kind:3s} {key:15s} L={depth}  error {row['error']:.4f}"
                          f"  ({row['seconds']:.1f} s)", flush=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    print(f"\nwrote {len(rows)} rows to {args.out}\n")
    print(summary_table(rows, args.sizes))


def summary_table(rows: list[dict], sizes: list[int]) -> str:
    """Errors per (kernel, activation, depth) across sizes, with the fitted slope."""
    head = f"{'kernel':6s} {'activation':15s} {'L':>2s} " + " ".join(
        f"{'p=' + str(p):>8s}" for p in sizes) + f" {'slope':>7s}"
    lines = [head]
    keys = sorted({(r["kernel"], r["activation"], r["depth"]) for r in rows},
                  key=lambda k: (k[0], list(ACTIVATIONS).index(k[1]), k[2]))
    for kind, key, depth in keys:
        errs = [next(r["error"] for r in rows if (r["kernel"], r["activation"], r["depth"], r["p"])
                     == (kind, key, depth, p)) for p in sizes]
        slope = spectra.loglog_slope(sizes, errs) if len(sizes) > 1 else float("nan")
        lines.append(f"{kind:6s} {key:15s} {depth:2d} " + " ".join(f"{e:8.4f}" for e in errs)
                     + f" {slope:7.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
