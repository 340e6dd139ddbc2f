"""Benchmark: the compressed network's forward pass against dense fp32 (chapter 7 and the appendix).

Time and peak memory of one forward pass (inputs to outputs) at batch 1 and 256:

- ``compressed, int8``: :class:`lossless.compress.CompressedMLP` with its integer path:
  layer 1 as a sparse (CSR) float32 product with a float64 fix-up near the thresholds,
  layers 2.. as int8 x uint8 products in int32 through oneDNN, or as CSR products for up
  to 8 samples and for layers with fewer than 4 % non-zero weights;
- ``compressed, float``: the same network through its float reference path
  (``backend="float"``: float64 first layer, float32 products of the codes);
- ``dense fp32``: a plain torch network, ``nn.Linear`` (no bias) and ReLU layers and a
  linear readout, float32, under ``torch.inference_mode``: what a user would otherwise run.

Widths are ``f x (2000, 2000, 1000)`` on p = 784 inputs. The compressed networks
(``--compressed FACTOR:SPARSITY``) default to ``1:0.9`` and ``1:0.99`` (equal widths,
the paper's sparsities) and ``4:0.99``, where chapter 7's frontier finds the compressed
network within one point of the dense network at ``f = 1`` on two of its three data
sets (equal accuracy); the dense network defaults to ``f = 1``.

Each configuration runs ``--rounds`` times, the configurations interleaved round by
round so that a change in the machine's load hits all of them alike, and each round in
two fresh subprocesses:

- a **timing** process with the default allocator, as a user runs it: the time is the
  fastest pass over all rounds (``--repeats`` passes per round, after two warm-up
  passes);
- a **memory** process with glibc's mmap threshold fixed at 64 KiB
  (``MALLOC_MMAP_THRESHOLD_``, the same for every network), so that freed arrays go back
  to the system and the resident set counts live memory only (the fixed threshold makes
  every large allocation a fresh mapping, which slows the passes: hence two processes):

  - ``resident_bytes``: the anonymous resident memory (``RssAnon``) the network adds
    once built and warmed up: weights, caches, packed operands (library code excluded);
  - ``pass_bytes``: the peak resident set during three passes above the resident set
    before them (``VmHWM``): the workspace of a pass;
  - ``peak_bytes``: their sum (the smallest over the rounds).

The outputs of the integer path are checked equal to the float path's (codes exactly,
outputs to 1e-12) on every batch. Results go to ``benchmarks/results/inference.json``.

Usage::

    python benchmarks/bench_inference.py       # dense x1; compressed 1:0.9, 1:0.99, 4:0.99
    python benchmarks/bench_inference.py --compressed 1:0.9 --repeats 5 --rounds 1
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
WIDTHS = [2000, 2000, 1000]
P = 784


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def saved_network(factor: float, sparsity: float) -> Path:
    """The compressed network at ``factor`` x the paper's widths and ``sparsity``, saved
    once (seed 0)."""
    path = (Path(os.environ.get("TMPDIR", "/tmp"))
            / f"lossless_bench_inference_x{factor:g}_eps{sparsity:g}.lossless")
    if not path.exists():
        import numpy as np
        import torch

        from lossless import activations, compress

        plan = compress.compress([activations.get("relu")] * 3, float(np.sqrt(P)))
        widths = [int(round(factor * w)) for w in WIDTHS]
        net = compress.CompressedMLP.from_plan(plan, P, widths, sparsity=sparsity,
                                               generator=torch.Generator().manual_seed(0))
        net.save(path)
    return path


def run_one(kind: str, factor: float, sparsity: float, batch: int, repeats: int,
            mode: str) -> dict:
    """One configuration in this process: ``mode="time"`` times ``repeats`` passes (and
    checks the int8 outputs afterwards); ``mode="memory"`` reads the resident memory the
    network adds and the peak of ``repeats`` passes (run with the mmap threshold fixed)."""
    import numpy as np
    import torch

    from lossless import activations, compress

    widths = [int(round(factor * w)) for w in WIDTHS]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((batch, P))
    layers = [activations.get("relu")] * 3
    plan = compress.compress(layers, float(np.sqrt(P)))
    try:
        Path("/proc/self/clear_refs").write_text("5")       # reset VmHWM
    except OSError:
        pass
    import ctypes
    import gc

    def settle() -> None:
        gc.collect()
        try:                                  # hand freed heap back: count live memory only
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except OSError:
            pass

    settle()
    base = _status("RssAnon")
    gen = torch.Generator().manual_seed(0)
    check = None
    if kind.startswith("compressed"):
        net = compress.CompressedMLP.load(saved_network(factor, sparsity))  # as deployed
        backend = "int8" if kind.endswith("int8") else "float"

        def step():
            return net(X, backend=backend)

        held = net.runtime_bytes()
    else:
        dims = [P] + widths
        mods = []
        for a, b in zip(dims[:-1], dims[1:]):
            lin = torch.nn.Linear(a, b, bias=False)
            torch.nn.init.normal_(lin.weight, generator=gen)
            mods += [lin, torch.nn.ReLU()]
        mods.append(torch.nn.Linear(dims[-1], 1, bias=False))
        net = torch.nn.Sequential(*mods).float().eval()
        Xt = torch.from_numpy(X).float()

        def step():
            with torch.inference_mode():
                return net(Xt)

        held = {"fp32 weights": 4 * sum(p.numel() for p in net.parameters())}
    for _ in range(2):
        step()
    settle()
    built = _status("RssAnon") - base        # weights and caches
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    before = _status("VmRSS")
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    pass_bytes = _status("VmHWM") - before
    if mode == "memory":
        return {"kind": kind, "factor": factor, "sparsity": sparsity, "widths": widths,
                "batch": batch, "peak_bytes": built + pass_bytes, "resident_bytes": built,
                "pass_bytes": pass_bytes, "held_bytes": held}
    if kind == "compressed, int8":  # after the measurement: the float path's buffers
        fast = net.activation_codes(X, backend="int8")  # would count as the network's
        ref = net.activation_codes(X, backend="float")
        check = all(torch.equal(a, b) for a, b in zip(fast, ref)) and bool(
            torch.allclose(net(X, backend="int8"), net(X, backend="float"), atol=1e-12))
    return {"kind": kind, "factor": factor, "sparsity": sparsity, "widths": widths,
            "batch": batch, "seconds": min(times), "median_seconds": float(np.median(times)),
            "outputs_equal": check}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compressed", nargs="*", default=["1:0.9", "1:0.99", "4:0.99"],
                        metavar="FACTOR:SPARSITY",
                        help="compressed networks: width factor and sparsity "
                             "(default 1:0.9 1:0.99 4:0.99)")
    parser.add_argument("--dense-factors", type=float, nargs="*", default=[1.0],
                        help="width factors of the dense network (default 1)")
    parser.add_argument("--batches", type=int, nargs="*", default=[1, 256])
    parser.add_argument("--repeats", type=int, default=20, help="timed passes per round")
    parser.add_argument("--rounds", type=int, default=3,
                        help="fresh processes per configuration, interleaved (default 3)")
    parser.add_argument("--one", nargs=6,
                        metavar=("KIND", "FACTOR", "SPARSITY", "BATCH", "REPEATS", "MODE"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS / "inference.json")
    args = parser.parse_args(argv)
    if args.one:
        kind, factor, sparsity, batch, repeats, mode = args.one
        print(json.dumps(run_one(kind, float(factor), float(sparsity), int(batch),
                                 int(repeats), mode)))
        return
    import torch

    start = time.perf_counter()
    try:
        compressed = [tuple(float(x) for x in spec.split(":")) for spec in args.compressed]
        assert all(len(c) == 2 and c[0] > 0 and 0 <= c[1] < 1 for c in compressed)
    except (ValueError, AssertionError):
        parser.error(f"--compressed takes FACTOR:SPARSITY pairs (factor > 0, 0 <= sparsity "
                     f"< 1), got {args.compressed}")
    configs = ([("dense fp32", f, 0.0) for f in args.dense_factors]
               + [("compressed, int8", f, e) for f, e in compressed]
               + [("compressed, float", f, e) for f, e in compressed if (f, e) == (1.0, 0.9)])
    for factor, sparsity in compressed:
        saved_network(factor, sparsity)
    envs = {"time": dict(os.environ), "memory": dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")}
    envs["time"].pop("MALLOC_MMAP_THRESHOLD_", None)
    load_start = os.getloadavg()
    runs: dict[tuple, list[dict]] = {}
    mems: dict[tuple, list[dict]] = {}

    def one(kind, factor, sparsity, batch, repeats, mode):
        proc = subprocess.run(
            [sys.executable, __file__, "--one", kind, str(factor), str(sparsity), str(batch),
             str(repeats), mode], capture_output=True, text=True, check=True, env=envs[mode])
        return json.loads(proc.stdout.strip().splitlines()[-1])

    for round_ in range(args.rounds):
        for kind, factor, sparsity in configs:
            for batch in args.batches:
                r = one(kind, factor, sparsity, batch, args.repeats, "time")
                m = one(kind, factor, sparsity, batch, 3, "memory")
                runs.setdefault((kind, factor, sparsity, batch), []).append(r)
                mems.setdefault((kind, factor, sparsity, batch), []).append(m)
                print(f"round {round_ + 1}: x{factor:g} eps {sparsity:<4g} batch {batch:>3} "
                      f"{kind:>18}: "
                      f"{1e3 * r['seconds']:8.2f} ms, peak {m['peak_bytes'] / 2**20:7.1f} MiB",
                      flush=True)
    results = []
    for key, rs in runs.items():
        best = min(rs, key=lambda r: r["seconds"])
        mem = min(mems[key], key=lambda m: m["peak_bytes"])
        results.append(dict(best, round_seconds=[r["seconds"] for r in rs],
                            peak_bytes=mem["peak_bytes"], resident_bytes=mem["resident_bytes"],
                            pass_bytes=mem["pass_bytes"], held_bytes=mem["held_bytes"],
                            outputs_equal=(None if rs[0]["outputs_equal"] is None
                                           else all(r["outputs_equal"] for r in rs))))
    from run_practice import cpu_model

    meta = {
        "command": " ".join(["python", "benchmarks/bench_inference.py"] +
                            (argv if argv is not None else sys.argv[1:])),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - start, 1),
        "machine": {"nproc": os.cpu_count(), "cpu": cpu_model(), "torch": torch.__version__,
                    "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
                    "loadavg": os.getloadavg(), "loadavg_start": load_start},
        "p": P, "paper_widths": WIDTHS, "repeats": args.repeats,
        "rounds": args.rounds, "malloc_mmap_threshold": 65536,
        "results": results,
    }
    args.out.write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
