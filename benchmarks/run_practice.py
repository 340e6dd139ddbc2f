"""Benchmark: compression in practice at the paper's size (the practice chapter, ``book/09_practice.ipynb``).

The paper's protocol (hidden weights random and fixed, trained linear readout) for a
network of the paper's size, widths 2000 x 2000 x 1000 on p = 784 inputs (7.57 million
hidden weights), against the baselines at equal memory, over several seeds and three
data sets:

- ``gmm-mixed``: chapter 1's "mixed" Gaussian mixture (two classes, p = 784),
  2000 training and 1000 test samples;
- ``fashion-mnist-2``: sneakers against ankle boots, 1000 training images per class
  from the shipped training split, all 2000 images of the two classes from the shipped
  test split, normalised as in chapter 1 (training mean and scale);
- ``fashion-mnist-10``: the ten classes, 300 training and 100 test images per class.

Architectures: three ReLU layers (every baseline, budgets matched under both memory
accountings) and three tanh layers (every baseline, budgets matched under the entropy
accounting). Readouts: ridge at the dense network's validated ridge and at twice the
identity shift (where the shift-corrected ridge is always feasible), the shift-corrected
ridge at both, each network's own validated ridge, and logistic regression. The second
protocol (all layers fine-tuned for 3 epochs, ReLU, ε = 0.9) runs on every data set.

The sizes were chosen so that the whole run takes about 20-30 minutes on 2 shared cores.
Rows go to ``benchmarks/results/practice.csv`` (long format, one row per network and
readout or fine-tuning epoch) and ``practice.json`` records the command, the machine and
the date.

Usage::

    python benchmarks/run_practice.py              # the full run (5 seeds)
    python benchmarks/run_practice.py --quick      # 1 seed, smaller sets (a few minutes)
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

from lossless import activations, experiments

RESULTS = Path(__file__).resolve().parent / "results"
WIDTHS = [2000, 2000, 1000]
SPARSITIES = (0.0, 0.5, 0.9, 0.95, 0.99)
FMNIST_2 = (7, 9)                       # sneaker, ankle boot (as in chapter 1)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def tasks(seed: int, quick: bool) -> list[experiments.Task]:
    """The three data sets, drawn with a generator seeded by ``seed``."""
    scale = 4 if quick else 1
    rng = np.random.default_rng(seed)
    return [
        experiments.mixture_task(784, 2000 // scale, 1000 // scale, rng, preset="mixed"),
        experiments.fashion_mnist_task(FMNIST_2, 1000 // scale, None if not quick else 250, rng),
        experiments.fashion_mnist_task(tuple(range(10)), 300 // scale, 100 // scale, rng),
    ]


ARCHITECTURES = {
    "relu": dict(layers=[activations.get("relu")] * 3, matchings=("entropy", "authors")),
    "tanh": dict(layers=[activations.get("tanh")] * 3, matchings=("entropy",)),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (default 5)")
    parser.add_argument("--quick", action="store_true", help="1 seed, a quarter of the samples")
    parser.add_argument("--out", type=Path, default=None,
                        help="CSV path (default results/practice.csv, with --quick "
                             "results/practice_quick.csv)")
    parser.add_argument("--progress", action="store_true", help="tqdm progress bars")
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = RESULTS / ("practice_quick.csv" if args.quick else "practice.csv")
    seeds = range(1 if args.quick else args.seeds)
    start = time.perf_counter()
    rows: list[dict] = []
    for seed in seeds:
        for task in tasks(seed, args.quick):
            for arch, spec in ARCHITECTURES.items():
                layers = spec["layers"]
                t0 = time.perf_counter()
                trial = experiments.run_trial(
                    task, WIDTHS, layers, seed=seed, ridges=(None,), shift_ridges=(2.0,),
                    sparsities=SPARSITIES, matchings=spec["matchings"],
                    logistic_penalty=1e-3, n_kernel=500, activation=arch,
                    progress=args.progress)
                rows += [{"protocol": "random features", "epoch": "", **r} for r in trial]
                print(f"seed {seed} {task.name:>17} {arch}: {len(trial)} rows, "
                      f"{time.perf_counter() - t0:.0f} s", flush=True)
            if "relu" in ARCHITECTURES:
                t0 = time.perf_counter()
                tuned = experiments.run_finetune_trial(
                    task, WIDTHS, ARCHITECTURES["relu"]["layers"], seed=seed, sparsity=0.9,
                    epochs=3, lr=1e-2, activation="relu", progress=args.progress)
                rows += [{"protocol": "fine-tune", **r} for r in tuned]
                print(f"seed {seed} {task.name:>17} fine-tune: {len(tuned)} rows, "
                      f"{time.perf_counter() - t0:.0f} s", flush=True)
            experiments.write_csv(rows, args.out)          # keep partial results
    elapsed = time.perf_counter() - start
    meta = {
        "command": " ".join(["python", "benchmarks/run_practice.py"] +
                            [shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(elapsed, 1),
        "machine": {"nproc": os.cpu_count(), "cpu": cpu_model(),
                    "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                    "numpy": np.__version__, "python": platform.python_version(),
                    "platform": platform.platform()},
        "widths": WIDTHS, "p": 784, "sparsities": list(SPARSITIES),
        "seeds": list(seeds), "rows": len(rows),
        "datasets": sorted({r["dataset"] for r in rows}),
        "samples": {r["dataset"]: {"n_train": r["n_train"], "n_test": r["n_test"]} for r in rows},
    }
    args.out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {len(rows)} rows to {args.out} in {elapsed / 60:.1f} min")


if __name__ == "__main__":
    main()
