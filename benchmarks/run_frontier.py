"""Benchmark: the accuracy-memory frontier with the width free (the practice chapter, ``book/09_practice.ipynb``).

``run_practice.py`` compares networks at the paper's widths 2000 x 2000 x 1000. Here
the width is free: the dense network and the compressed one (three ReLU layers, the
paper's protocol: random hidden weights, a trained ridge readout) at widths
``f x (2000, 2000, 1000)`` for several factors ``f``, on the same three data sets and
seeds as ``run_practice.py`` (so the factor-1 networks are those of ``practice.csv``).
Three parts, written to one CSV (column ``part``):

- ``limit``: the infinite-width check on every data set: kernel ridge regression with
  the exact CK of the original network and of the compressed one (the validated ridge
  of ``validated_ridge_readout``, applied to a square root of the kernel, so the rule
  is the finite-width one), and the centred kernel-target alignment of the exact CK;
- ``rotation``: the paper-size networks on inputs rotated by a random orthogonal
  matrix (which leaves the dense network's distribution and every limit kernel
  unchanged, but not what a very sparse neuron sees);
- ``width``: dense and compressed networks at every width factor, with the empirical
  CK's error against the exact CK on 500 training samples;
- ``check``: the compressed network alone at a width the fitted finite-width law
  predicts (the practice chapter), e.g. ``--parts check --factors 5 --sparsities 0.9``.

Rows go to ``benchmarks/results/frontier.csv`` (rewritten after every trial, so a run
stopped early keeps what it computed) and ``frontier.json`` records the command,
the machine, the date and what ran.

Usage::

    python benchmarks/run_frontier.py                         # the committed run
    python benchmarks/run_frontier.py --factors 8 --seeds 2 --datasets fashion-mnist-2 \\
        --sparsities 0.9 --parts width --out benchmarks/results/frontier_check.csv
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from lossless import activations, baselines, compress, experiments, kernels, readout
from run_practice import WIDTHS, cpu_model, tasks

RESULTS = Path(__file__).resolve().parent / "results"
LAYERS = [activations.get("relu")] * 3
#: width factor -> sparsities of the compressed network at that width
FACTORS = {0.5: (0.5, 0.9, 0.99), 2.0: (0.5, 0.9, 0.99), 4.0: (0.9, 0.99)}
N_KERNEL = 500


def kernel_target_alignment(K: np.ndarray, labels: np.ndarray, n_classes: int) -> float:
    """Centred kernel-target alignment ``<HKH, YY^T> / (||HKH|| ||HYY^TH||)``."""
    n = K.shape[0]
    H = np.eye(n) - 1.0 / n
    Kc = H @ K @ H
    Y = readout.class_targets(labels, n_classes)
    T = H @ Y @ Y.T @ H
    return float(np.sum(Kc * T) / (np.linalg.norm(Kc) * np.linalg.norm(T)))


def kernel_features(K: np.ndarray) -> np.ndarray:
    """``F`` with ``F F^T = K`` (eigenvalues clipped at 0): a kernel as features."""
    s, U = np.linalg.eigh(K)
    keep = s > s[-1] * 1e-12
    return U[:, keep] * np.sqrt(s[keep])


def limit_rows(task: experiments.Task, seed: int) -> list[dict]:
    plan = compress.compress(LAYERS, task.tau0)
    X = np.vstack([task.X_train, task.X_test])
    n = task.n_train
    rows = []
    for method, layers, shift in (("dense", LAYERS, 0.0),
                                  ("compressed", plan.layers, plan.shift)):
        t0 = time.perf_counter()
        K = kernels.exact_ck(X, layers, tau0=task.tau0)
        F = kernel_features(K)
        r = readout.validated_ridge_readout(F[:n], task.y_train, task.n_classes)
        rows.append({
            "part": "limit", "dataset": task.name, "seed": seed, "method": method,
            "sparsity": 0.0, "factor": float("inf"), "net_widths": "inf",
            "n_train": task.n_train, "n_test": task.n_test, "shift": shift,
            "readout": "kernel ridge (validated)", "penalty": r.penalty,
            "train_accuracy": r.accuracy(F[:n], task.y_train),
            "test_accuracy": r.accuracy(F[n:], task.y_test),
            "alignment": kernel_target_alignment(K[:n, :n] - shift * np.eye(n),
                                                 task.y_train, task.n_classes),
            "seconds": time.perf_counter() - t0})
    return rows


def rotated(task: experiments.Task, seed: int) -> experiments.Task:
    """The task with every input multiplied by one Haar-random orthogonal matrix."""
    rng = np.random.default_rng(10_000 + seed)
    Q, R = np.linalg.qr(rng.standard_normal((task.p, task.p)))
    Q *= np.sign(np.diag(R))
    return experiments.Task(name=task.name, X_train=task.X_train @ Q, y_train=task.y_train,
                            X_test=task.X_test @ Q, y_test=task.y_test, n_classes=task.n_classes,
                            class_names=task.class_names)


def trial_rows(part: str, task: experiments.Task, factor: float, seed: int,
               sparsities) -> list[dict]:
    widths = [int(round(factor * w)) for w in WIDTHS]
    trial = experiments.run_trial(task, widths, LAYERS, seed=seed, ridges=(None,),
                                  sparsities=sparsities, baselines=(), n_kernel=N_KERNEL,
                                  activation="relu")
    return [{"part": part, "factor": factor, **r} for r in trial]


def check_rows(task: experiments.Task, factor: float, seed: int, sparsity: float) -> list[dict]:
    """The compressed network alone at one width (the check of the fitted width law)."""
    t0 = time.perf_counter()
    widths = [int(round(factor * w)) for w in WIDTHS]
    plan = compress.compress(LAYERS, task.tau0)
    net = baselines.compressed_network(plan, task.p, widths, sparsity,
                                       torch.Generator().manual_seed(seed))
    F_train, F_test = net.features(task.X_train), net.features(task.X_test)
    subset = np.unique(np.linspace(0, task.n_train - 1, N_KERNEL).round().astype(int))
    K_ref = kernels.exact_ck(task.X_train[subset], LAYERS, tau0=task.tau0)
    agreement = experiments.kernel_agreement(F_train[subset], K_ref, net.shift)
    r = readout.validated_ridge_readout(F_train, task.y_train, task.n_classes)
    return [{"part": "check", "factor": factor, "dataset": task.name, "activation": "relu",
             "widths": "x".join(map(str, widths)), "n_train": task.n_train,
             "n_test": task.n_test, "seed": seed, "method": "compressed",
             "sparsity": sparsity, "matched": "-", "net_widths": "x".join(map(str, widths)),
             "kept_fraction": net.kept_fraction, "bits_entropy": net.memory.entropy_bits,
             "bits_authors": net.memory.authors_bits, "readout": "ridge (validated)",
             "ridge_rule": "own validated", "ridge": r.penalty, "penalty": r.penalty,
             "shift": net.shift, "train_accuracy": r.accuracy(F_train, task.y_train),
             "test_accuracy": r.accuracy(F_test, task.y_test), "ck_error": agreement.error,
             "ck_error_corrected": agreement.error_corrected,
             "ck_alignment": agreement.alignment, "seconds": time.perf_counter() - t0}]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (default 5)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="run seeds first-seed, ..., first-seed + seeds - 1 (default 0)")
    parser.add_argument("--rotation-seeds", type=int, default=3)
    parser.add_argument("--factors", type=float, nargs="*", default=None,
                        help="width factors (default 0.5 2 4)")
    parser.add_argument("--sparsities", type=float, nargs="*", default=None,
                        help="override the sparsities of every factor")
    parser.add_argument("--datasets", nargs="*", default=None)
    parser.add_argument("--parts", nargs="*", default=["limit", "rotation", "width"])
    parser.add_argument("--out", type=Path, default=RESULTS / "frontier.csv")
    args = parser.parse_args(argv)
    factors = {f: FACTORS.get(f, (0.9,)) for f in (args.factors or FACTORS)}
    if args.sparsities:
        factors = {f: tuple(args.sparsities) for f in factors}
    start = time.perf_counter()
    rows: list[dict] = []
    ran: dict[str, list] = {}

    def keep(new: list[dict], what: str) -> None:
        rows.extend(new)
        ran.setdefault(what, []).append(round(time.perf_counter() - t0, 1))
        experiments.write_csv(rows, args.out)
        print(f"{what}: {len(new)} rows, {time.perf_counter() - t0:.0f} s "
              f"(total {(time.perf_counter() - start) / 60:.1f} min)", flush=True)

    def selected(seed: int) -> list[experiments.Task]:
        return [t for t in tasks(seed, False) if args.datasets is None or t.name in args.datasets]

    if "limit" in args.parts:
        for task in selected(0):
            t0 = time.perf_counter()
            keep(limit_rows(task, 0), f"limit {task.name}")
    if "rotation" in args.parts:
        for seed in range(args.rotation_seeds):
            for task in selected(seed):
                t0 = time.perf_counter()
                keep(trial_rows("rotation", rotated(task, seed), 1.0, seed, (0.9, 0.99)),
                     f"rotation seed {seed} {task.name}")
    if "width" in args.parts:
        for factor, sparsities in factors.items():
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                for task in selected(seed):
                    t0 = time.perf_counter()
                    keep(trial_rows("width", task, factor, seed, sparsities),
                         f"width x{factor:g} seed {seed} {task.name}")
    if "check" in args.parts:
        for factor, sparsities in factors.items():
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                for task in selected(seed):
                    for eps in sparsities:
                        t0 = time.perf_counter()
                        keep(check_rows(task, factor, seed, eps),
                             f"check x{factor:g} eps {eps:g} seed {seed} {task.name}")
    elapsed = time.perf_counter() - start
    meta = {
        "command": " ".join(["python", "benchmarks/run_frontier.py"] +
                            [shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(elapsed, 1),
        "machine": {"nproc": os.cpu_count(), "cpu": cpu_model(),
                    "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                    "numpy": np.__version__, "python": platform.python_version()},
        "paper_widths": WIDTHS, "factors": {str(f): list(s) for f, s in factors.items()},
        "parts": args.parts, "seeds": args.seeds, "first_seed": args.first_seed, "rotation_seeds": args.rotation_seeds,
        "n_kernel": N_KERNEL, "rows": len(rows), "trials": {k: v for k, v in ran.items()},
    }
    args.out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {len(rows)} rows to {args.out} in {elapsed / 60:.1f} min")


if __name__ == "__main__":
    main()
