"""Benchmark: the verdict study, every method at its stored bytes (book ``ch-verdict-report``).

The question a practitioner asks of the compressed network: which network reaches the
accuracy of the paper's dense network (widths 2000 x 2000 x 1000, random hidden
weights, ridge readout: the paper's protocol) in the fewest stored bytes? Here every
method runs at every width ``f x (2000, 2000, 1000)``, ``f`` in {1/2, 1, 2, 4}, on the
three data sets of ``run_practice.py``, with the same split of the training set into a
fitting part and a validation part (every fifth sample), and a test set used only for
the reported accuracy:

- **random features** (hidden weights random and fixed, ridge readout fitted on the
  fitting part, its ridge ``gamma`` chosen on the validation part over a 19-point grid
  from 1e-6 to 1e3 times the feature scale, the ``grid_edge`` column flags an optimum at
  the grid's end): ``dense`` (fp32), ``compressed`` at ε = 0.9 and 0.99, ``naive
  ternary`` at the same ε, and ``magnitude pruning`` and ``random sparsification``
  whose CSR file (fp16 values, uint16 indices) has the compressed network's bytes;
- **trained** (every layer trained with Adam on cross-entropy, one budget for all:
  ``EPOCHS`` epochs, learning rate ``LR``, batches of ``BATCH``, on the fitting part):
  ``trained dense`` (fp32) and the same network after post-training quantisation
  (``+ int8``, ``+ int4``, per-row round-to-nearest) and after magnitude pruning to 10 %
  (rescaled to the matrix's mean square, as for random weights) then int8 (``pruned
  90 % + int8``, CSR); ``trained narrow dense + int8``, a dense
  network made narrow so that its int8 file has the compressed network's bytes (at
  each ε); and ``compressed, fine-tuned`` (ε = 0.9 and 0.99, zeros kept, the ternary
  activations' straight-through derivative), stored as CSR fp16 since its weights are
  no longer ternary;
- **limit**: kernel ridge with the exact CK of the dense and of the compressed
  activations (the infinite-width accuracy ``a_inf`` of each seed), same split and grid.

Stored bytes (``bytes``) are the length of a real file (``lossless.memory.encode_weights``
for the hidden weights, decoded exactly by ``decode_weights``) plus the fp32 readout
(``4 d_L K``) that every method needs; ``bytes_bound`` is the entropy bound of the
ternary codes where there are some. Rows go to ``benchmarks/results/verdict.csv``
(rewritten after every job, so a run stopped at ``--minutes`` keeps what it computed);
``verdict.json`` records the command, the machine, the date and the jobs done.

Jobs run in the order of ``SCHEDULE``: ten seeds at widths 1/2 and 1, three at width 2,
one at width 4 (a trained network of 102 million weights takes 30 s per epoch on 2
cores). ``--resume`` keeps the rows of an earlier run and skips its jobs. The compressed network is fine-tuned
at ε = 0.99 at every width and at ε = 0.9 at widths 1/2 and 1 only, for the same
reason.

Usage::

    python benchmarks/run_verdict.py                 # the committed run (~1 h, 2 cores)
    python benchmarks/run_verdict.py --quick         # 1 seed, widths 1/2 and 1, small sets
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from lossless import activations, baselines, compress, experiments, kernels, memory, readout
from lossless.compress import codec
from run_frontier import kernel_features
from run_practice import WIDTHS, cpu_model, tasks

RESULTS = Path(__file__).resolve().parent / "results"
LAYERS = [activations.get("relu")] * 3
SPARSITIES = (0.9, 0.99)
#: (factor, seeds) in the order they run
SCHEDULE = [(0.5, range(10)), (1.0, range(10)), (2.0, range(3)), (4.0, range(1))]
#: widths at which the compressed network is also fine-tuned at ε = 0.9 (0.99 everywhere)
FINETUNE_09 = (0.5, 1.0)
GRID = tuple(float(x) for x in 10.0 ** np.arange(-6.0, 3.01, 0.5))
EPOCHS, LR, BATCH = 3, 1e-2, 128
PRUNE_KEPT = 0.1
EVERY = 5                      # one training sample in EVERY is held out for validation


def split(task: experiments.Task) -> tuple[experiments.Task, np.ndarray]:
    """(the fitting part as a task whose 'test' set is the validation part, the mask
    of validation samples in the training set)."""
    val = np.arange(task.n_train) % EVERY == 0
    fit = experiments.Task(name=task.name, X_train=task.X_train[~val], y_train=task.y_train[~val],
                           X_test=task.X_train[val], y_test=task.y_train[val],
                           n_classes=task.n_classes, class_names=task.class_names)
    return fit, val


def file_bytes(weights, fmt: str, d_L: int, n_classes: int) -> int:
    """Bytes of the hidden weights' file plus the fp32 readout."""
    data = memory.encode_weights([np.asarray(W, dtype=np.float32) for W in weights], fmt)
    return len(data) + 4 * d_L * n_classes


def ridge_row(net_F, task, val, name, **extra) -> dict:
    F_train, F_test = net_F
    r = readout.validated_ridge_readout(F_train, task.y_train, task.n_classes, grid=GRID,
                                        every=EVERY, refit=False)
    return {"method": name, "protocol": extra.pop("protocol", "random features"),
            "val_accuracy": r.validation_accuracy,
            "train_accuracy": r.accuracy(F_train[~val], task.y_train[~val]),
            "test_accuracy": r.accuracy(F_test, task.y_test), "ridge": r.penalty,
            "grid_edge": r.grid_edge, **extra}


def train(net, fit: experiments.Task, seed: int, init=None):
    """The trained networks' one budget (Adam, EPOCHS epochs, LR, BATCH)."""
    return experiments.finetune(net, fit, torch.Generator().manual_seed(seed), readout=init,
                                epochs=EPOCHS, batch_size=BATCH, lr=LR)


def trained_fields(task, fit, name: str, result, net, weights, fmt: str, eps: float = 0.0,
                   kept: float = 1.0) -> dict:
    """A trained network's row: its weights ``weights`` (as stored) scored on the
    validation, fitting and test samples, and the bytes of their file."""
    def acc(X, y):
        return experiments.weights_accuracy(net, weights, result.readout, X, y)

    return {"method": name, "protocol": "trained", "sparsity": eps, "kept_fraction": kept,
            "fmt": fmt, "net_widths": "x".join(map(str, net.widths)),
            "bytes": file_bytes(weights, fmt, net.widths[-1], task.n_classes),
            "val_accuracy": acc(fit.X_test, fit.y_test),
            "train_accuracy": acc(fit.X_train, fit.y_train),
            "test_accuracy": acc(task.X_test, task.y_test),
            "epochs": EPOCHS, "lr": LR, "train_loss": float(result.train_loss[-1])}


def narrow_network(task, fit, seed: int, widths, target: int):
    """The dense network made narrow (widths in the proportions of ``widths``) whose int8
    file plus fp32 readout is the largest that fits in ``target`` bytes."""
    p, K = task.p, task.n_classes

    def nbytes(w):
        return file_bytes([np.zeros((b, a)) for a, b in zip([p] + w[:-1], w)], "int8",
                          w[-1], K)

    def scaled(s):
        return [max(1, int(round(s * d))) for d in widths]

    lo, hi = 0.0, 1.0                     # the largest scale whose file fits (bisection)
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if nbytes(scaled(mid)) <= target else (lo, mid)
    w_n = scaled(lo)
    return baselines.dense_network(p, w_n, LAYERS, fit.tau0,
                                   torch.Generator().manual_seed(seed))


def pixel_rows(task: experiments.Task, seed: int) -> list[dict]:
    """A linear classifier on the pixels (ridge, penalty validated like the readouts):
    the first thing a practitioner tries, stored as its fp32 weights."""
    fit, val = split(task)
    t0 = time.perf_counter()
    row = ridge_row((task.X_train, task.X_test), task, val, "linear on the inputs",
                    protocol="linear", sparsity=0.0, kept_fraction=1.0, fmt="fp32",
                    bytes=4 * task.p * task.n_classes)
    return [{"dataset": task.name, "seed": seed, "factor": 0.0, "widths": "none",
             "n_weights": 0, "n_fit": fit.n_train, "n_val": fit.n_test,
             "n_test": task.n_test, **row, "seconds": round(time.perf_counter() - t0, 2)}]


def redo_narrow(rows: list[dict], quick: bool) -> list[dict]:
    """The narrow rows of ``rows`` recomputed at their compressed network's bytes."""
    out = [r for r in rows if r["method"] != "trained narrow dense + int8"]
    jobs = sorted({(float(r["factor"]), int(r["seed"]), r["dataset"]) for r in rows
                   if r["method"] == "compressed"})
    for factor, seed, name in jobs:
        task = next(t for t in tasks(seed, quick) if t.name == name)
        fit, _ = split(task)
        widths = [int(round(factor * w)) for w in WIDTHS]
        base = next(r for r in rows if r["method"] == "dense" and r["seed"] == seed
                    and r["dataset"] == name and float(r["factor"]) == factor)
        for eps in SPARSITIES:
            comp = next(r for r in rows if r["method"] == "compressed" and r["seed"] == seed
                        and r["dataset"] == name and float(r["factor"]) == factor
                        and r["sparsity"] == eps)
            t0 = time.perf_counter()
            net = narrow_network(task, fit, seed, widths, int(comp["bytes"]))
            res = train(net, fit, seed)
            W = [baselines.quantize_rows(w, 8) for w in res.hidden]
            out.append({k: base[k] for k in ("dataset", "seed", "factor", "widths",
                                             "n_weights", "n_fit", "n_val", "n_test")}
                       | trained_fields(task, fit, "trained narrow dense + int8", res, net,
                                        W, "int8", eps=eps)
                       | {"seconds": round(time.perf_counter() - t0, 2)})
            assert out[-1]["bytes"] <= comp["bytes"], (out[-1]["bytes"], comp["bytes"])
        print(f"narrow: f = {factor:g}, seed {seed}, {name}", flush=True)
    return out


def job(task: experiments.Task, factor: float, seed: int, limit: bool) -> list[dict]:
    fit, val = split(task)
    tau0, p, K = fit.tau0, task.p, task.n_classes
    widths = [int(round(factor * w)) for w in WIDTHS]
    n_w = baselines._n_weights(p, widths)
    plan = compress.compress(LAYERS, tau0)
    base = {"dataset": task.name, "seed": seed, "factor": factor,
            "widths": "x".join(map(str, widths)), "n_weights": n_w, "n_fit": fit.n_train,
            "n_val": fit.n_test, "n_test": task.n_test}
    rows: list[dict] = []

    def gen() -> torch.Generator:
        return torch.Generator().manual_seed(seed)

    def add(row: dict, t0: float) -> None:
        rows.append({**base, **row, "seconds": round(time.perf_counter() - t0, 2)})

    def features(net) -> tuple[np.ndarray, np.ndarray]:
        return net.features(task.X_train), net.features(task.X_test)

    # ---- random features --------------------------------------------------------
    t0 = time.perf_counter()
    dense = baselines.dense_network(p, widths, LAYERS, tau0, gen())
    add(ridge_row(features(dense), task, val, "dense", sparsity=0.0, kept_fraction=1.0,
                  fmt="fp32", bytes=file_bytes(dense.hidden_weights(), "fp32", widths[-1], K)),
        t0)
    del dense
    comp_bytes = {}
    for eps in SPARSITIES:
        t0 = time.perf_counter()
        net = baselines.compressed_network(plan, p, widths, eps, gen())
        codes = [net.model.codes(i).numpy() for i in range(net.model.depth)]
        nbytes = file_bytes(codes, "ternary", widths[-1], K)
        bound = sum(codec.entropy_bound_bits(c) for c in codes) / 8 + 4 * widths[-1] * K
        comp_bytes[eps] = nbytes
        add(ridge_row(features(net), task, val, "compressed", sparsity=eps,
                      kept_fraction=net.kept_fraction, fmt="ternary", bytes=nbytes,
                      bytes_bound=bound, shift=plan.shift), t0)
        del net, codes
        t0 = time.perf_counter()
        net = baselines.naive_ternary_network(p, widths, LAYERS, tau0, eps, gen())
        add(ridge_row(features(net), task, val, "naive ternary", sparsity=eps,
                      kept_fraction=net.kept_fraction, fmt="ternary",
                      bytes=file_bytes(net.hidden_weights(), "ternary", widths[-1], K)), t0)
        del net
        # CSR fp16 at the compressed network's bytes: 4 bytes per non-zero + row pointers
        rows_bytes = 4 * sum(d + 1 for d in widths) + 4 * widths[-1] * K
        k = (nbytes - rows_bytes) / (4.0 * n_w)
        for name, build in (("magnitude pruning", baselines.pruned_network),
                            ("random sparsification", baselines.random_sparse_network)):
            t0 = time.perf_counter()
            net = build(p, widths, LAYERS, tau0, k, gen(), matched="-")
            with torch.no_grad():                      # the values as stored (fp16)
                for W in net.model.hidden:
                    W.copy_(W.half().float())
            add(ridge_row(features(net), task, val, name, sparsity=eps, kept_fraction=k,
                          fmt="csr-fp16",
                          bytes=file_bytes(net.hidden_weights(), "csr-fp16", widths[-1], K)),
                t0)
            del net

    # ---- trained ------------------------------------------------------------------
    def trained_row(name, result, net, weights, fmt, eps=0.0, kept=1.0, t0=0.0):
        add(trained_fields(task, fit, name, result, net, weights, fmt, eps, kept), t0)

    t0 = time.perf_counter()
    dense = baselines.dense_network(p, widths, LAYERS, tau0, gen())
    res = train(dense, fit, seed)
    W = list(res.hidden)
    trained_row("trained dense", res, dense, W, "fp32", t0=t0)
    t1 = time.perf_counter()
    trained_row("trained dense + int8", res, dense, [baselines.quantize_rows(w, 8) for w in W],
                "int8", t0=t1)
    t1 = time.perf_counter()
    trained_row("trained dense + int4", res, dense, [baselines.quantize_rows(w, 4) for w in W],
                "int4", t0=t1)
    t1 = time.perf_counter()
    pq = [baselines.quantize_rows(baselines.magnitude_prune(w, PRUNE_KEPT), 8) for w in W]
    trained_row("trained dense, pruned 90 % + int8", res, dense, pq, "csr-int8",
                eps=1 - PRUNE_KEPT, kept=PRUNE_KEPT, t0=t1)
    del dense, res, W, pq
    for eps in SPARSITIES:
        t0 = time.perf_counter()
        net = narrow_network(task, fit, seed, widths, comp_bytes[eps])
        res = train(net, fit, seed)
        trained_row("trained narrow dense + int8", res, net,
                    [baselines.quantize_rows(w, 8) for w in res.hidden], "int8", eps=eps,
                    t0=t0)
        del net, res
        if eps < 0.99 and factor not in FINETUNE_09:
            continue
        t0 = time.perf_counter()
        net = baselines.compressed_network(plan, p, widths, eps, gen())
        F = net.features(fit.X_train)
        init = readout.validated_ridge_readout(F, fit.y_train, K, grid=GRID, every=EVERY)
        res = train(net, fit, seed, init)
        trained_row("compressed, fine-tuned", res, net, list(res.hidden), "csr-fp16", eps=eps,
                    kept=net.kept_fraction, t0=t0)
        del net, res, F

    # ---- the infinite-width limit (once per seed and data set) ---------------------
    if limit:
        X = np.vstack([task.X_train, task.X_test])
        n = task.n_train
        for name, layers in (("dense limit", LAYERS), ("compressed limit", plan.layers)):
            t0 = time.perf_counter()
            F = kernel_features(kernels.exact_ck(X, layers, tau0=tau0))
            add(ridge_row((F[:n], F[n:]), task, val, name, protocol="limit",
                          sparsity=math.nan, factor=math.inf), t0)
            rows[-1]["factor"] = math.inf
            rows[-1]["widths"] = "inf"
            del F
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="1 seed, widths 1/2 and 1, a quarter of the samples")
    parser.add_argument("--minutes", type=float, default=math.inf,
                        help="stop starting new jobs after this many minutes")
    parser.add_argument("--factors", type=float, nargs="+", default=None,
                        help="run only these width factors of the schedule")
    parser.add_argument("--redo-narrow", nargs="+", type=Path, default=None,
                        help="recompute the narrow networks' rows of these CSV files at "
                             "their compressed network's bytes (and nothing else)")
    parser.add_argument("--pixels", type=int, default=None, metavar="SEEDS",
                        help="only the linear classifier on the inputs, for SEEDS seeds, "
                             "to results/verdict_pixels.csv")
    parser.add_argument("--resume", action="store_true",
                        help="keep the rows already in --out and skip their jobs")
    parser.add_argument("--out", type=Path, default=None,
                        help="CSV path (default results/verdict.csv, with --quick "
                             "results/verdict_quick.csv)")
    args = parser.parse_args(argv)
    if args.redo_narrow:
        for path in args.redo_narrow:
            experiments.write_csv(redo_narrow(experiments.read_csv(path), args.quick), path)
        return
    if args.pixels:
        out = [r for seed in range(args.pixels) for t in tasks(seed, args.quick)
               for r in pixel_rows(t, seed)]
        experiments.write_csv(out, RESULTS / "verdict_pixels.csv")
        return
    if args.out is None:
        args.out = RESULTS / ("verdict_quick.csv" if args.quick else "verdict.csv")
    schedule = [(0.5, range(1)), (1.0, range(1))] if args.quick else SCHEDULE
    if args.factors:
        schedule = [(f, s) for f, s in schedule if f in args.factors]
    start = time.perf_counter()
    rows: list[dict] = []
    done: dict[str, float] = {}
    if args.resume and args.out.is_file():
        rows = experiments.read_csv(args.out)
        old_meta = args.out.with_suffix(".json")
        if old_meta.is_file():
            done = json.loads(old_meta.read_text()).get("jobs", {})
    have = {(float(r["factor"]), int(r["seed"]), r["dataset"]) for r in rows
            if r["protocol"] == "trained"}
    stopped = None
    for factor, seeds in schedule:
        for seed in seeds:
            for task in tasks(seed, args.quick):
                if (factor, seed, task.name) in have:
                    continue
                if (time.perf_counter() - start) / 60 > args.minutes:
                    stopped = f"stopped after {args.minutes:g} minutes (--minutes)"
                    break
                t0 = time.perf_counter()
                rows += job(task, factor, seed, limit=factor == 1.0)
                done[f"f={factor:g} seed {seed} {task.name}"] = round(time.perf_counter() - t0, 1)
                print(f"f = {factor:g}, seed {seed}, {task.name}: "
                      f"{done[f'f={factor:g} seed {seed} {task.name}']:.0f} s", flush=True)
                experiments.write_csv(rows, args.out)
            if stopped:
                break
        if stopped:
            break
    elapsed = time.perf_counter() - start
    meta = {
        "command": " ".join(["python", "benchmarks/run_verdict.py"] +
                            [shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(elapsed, 1), "stopped": stopped,
        "machine": {"nproc": os.cpu_count(), "cpu": cpu_model(),
                    "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                    "numpy": np.__version__, "python": platform.python_version()},
        "widths": WIDTHS, "sparsities": list(SPARSITIES), "grid": [GRID[0], GRID[-1], len(GRID)],
        "epochs": EPOCHS, "lr": LR, "batch": BATCH, "prune_kept": PRUNE_KEPT, "every": EVERY,
        "schedule": [[f, list(s)] for f, s in schedule], "rows": len(rows), "jobs": done,
    }
    args.out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {len(rows)} rows to {args.out} in {elapsed / 60:.1f} min")


if __name__ == "__main__":
    main()
