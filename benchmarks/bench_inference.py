"""Benchmark: the compressed network's forward pass against the dense networks it would replace.

Time and peak memory of one forward pass (inputs to outputs) of networks ``784 -> f x 2000
-> f x 2000 -> f x 1000 -> 1`` at the paper's widths (``f = 1``) and four times wider
(``f = 4``), at batch 1, 16 and 256, in one run:

- ``dense fp32``: ``nn.Linear`` (no bias) and ReLU layers and a linear readout, float32,
  under ``torch.inference_mode``: what a user would otherwise run;
- ``dense int8``: the same network through torch's dynamic quantisation
  (``torch.ao.quantization.quantize_dynamic`` on every ``nn.Linear``, int8 weights, the
  activations quantised on the fly; fbgemm/x86 kernels): what a user would run to make
  the dense network fast, one call;
- ``torch CSR``: the compressed network's sparse ternary matrices as torch sparse CSR
  tensors (layer 1 in float64, layers 2.. in float32, exact on the integer codes), with
  the same thresholds: what torch's own sparse support gives;
- ``compressed, int8 path``: :class:`lossless.compress.CompressedMLP`, ``backend="int8"``
  (the previous engine: layer 1 as CSR float32 with a float64 fix-up, layers 2.. as dense
  int8 GEMM through oneDNN or CSR products);
- ``compressed, ternary``: ``backend="ternary"``, the numba engine of
  :mod:`lossless.compress.ternary_engine` (zero-skipping and bit-plane kernels);
- ``compressed, float``: the float reference path (``backend="float"``), at ``f = 1`` and
  ε = 0.9 only.

The compressed networks have ε = 0.9 and 0.99 (``--sparsities``).

Every configuration runs ``--rounds`` times, the configurations interleaved round by
round (a change in the machine's load hits all of them alike), each round in a fresh
subprocess, and in the first ``--memory-rounds`` rounds (default 1) in a second one.
Before each timing process the script waits until other processes leave the CPUs idle
(``--quiet``: busy less than 15 % of half a second, waiting at most 5 minutes) and
records the busy fraction it saw (``busy_before``):

- a **timing** process with the default allocator: after two warm-up passes (which also
  load the engine's compiled kernels from numba's cache), timed passes: at least
  ``--repeats`` and for a tenth of ``--budget`` seconds (up to 3,000 passes), at most
  ``--budget`` seconds (at least 3 passes); the result keeps every pass, and reports the
  minimum and the median over all passes of all rounds;
- a **memory** process with glibc's mmap threshold fixed at 64 KiB
  (``MALLOC_MMAP_THRESHOLD_``), so that freed arrays go back to the system and the
  resident set counts live memory:

  - ``library_bytes``: what loading and warming up the libraries costs once per process
    (torch's quantised kernels, numba's runtime and the engine's compiled code: a tiny
    network of the same kind runs twice first) — not counted as the network's;
  - ``resident_bytes``: the anonymous resident memory (``RssAnon``) the network then adds
    once built and warmed up: weights, caches, packed operands;
  - ``pass_bytes``: the peak resident set during three passes above the resident set
    before them (``VmHWM``): the workspace of a pass;
  - ``peak_bytes``: their sum (the smallest over the memory rounds).

The codes of the compressed paths are checked equal to the float reference's and their
outputs to 1e-12 on every batch (``outputs_equal``); the torch CSR outputs too.

**The machine's limit.** One more process per round measures, on all cores, the
primitive operations the kernels are made of: random 64-byte lines gathered from a
buffer the size of a core's L2 cache and added into int8 lanes (the zero-skipping
kernels), random 8-byte gathers from an L1-sized buffer (layer 1 for small batches),
``popcount(a & b)`` on L1-resident words (the bit-plane kernels), and the memory read
bandwidth. For each ternary-engine row, ``limit_seconds`` is the time those rates allow
for the work of the pass (best round), and ``fraction_of_limit`` the ratio to the
measured time.

Results go to ``benchmarks/results/inference.json`` and ``inference.csv``, written after
every round.

Usage::

    python benchmarks/bench_inference.py                         # the full run (~1 h)
    python benchmarks/bench_inference.py --factors 1 --rounds 1 --repeats 5   # quick look
"""

from __future__ import annotations

import argparse
import csv
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
KINDS = ("dense fp32", "dense int8", "torch CSR", "compressed, int8 path", "compressed, ternary",
         "compressed, float")
BACKEND = {"compressed, int8 path": "int8", "compressed, ternary": "ternary",
           "compressed, float": "float"}
FLAGS = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx512_vpopcntdq", "avx512_bitalg",
         "amx_int8")


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def busy_fraction(seconds: float = 0.5) -> float:
    """The fraction of the machine's CPU time spent busy (all processes) over ``seconds``,
    from ``/proc/stat``; nan where it cannot be read."""
    def sample():
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        values = [int(v) for v in fields]
        idle = values[3] + (values[4] if len(values) > 4 else 0)   # idle + iowait
        return sum(values[:8]), idle
    try:
        t0, i0 = sample()
        time.sleep(seconds)
        t1, i1 = sample()
    except (OSError, ValueError, IndexError):
        return float("nan")
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def wait_quiet(threshold: float, max_wait: float) -> float:
    """Wait (up to ``max_wait`` seconds) until other processes keep the CPUs busy less
    than ``threshold`` of the time; returns the last busy fraction measured."""
    start = time.perf_counter()
    while True:
        busy = busy_fraction()
        if not busy > threshold or time.perf_counter() - start > max_wait:
            return busy
        time.sleep(2.0)


def cpu_info() -> dict:
    """CPU model, family/model numbers and the SIMD flags that matter here."""
    info = {"cpu": platform.processor() or "unknown", "family": None, "model": None,
            "flags": []}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name":
            info["cpu"] = value
        elif key == "cpu family" and info["family"] is None:
            info["family"] = int(value)
        elif key == "model" and info["model"] is None:
            info["model"] = int(value)
        elif key == "flags" and not info["flags"]:
            have = set(value.split())
            info["flags"] = [f for f in FLAGS if f in have]
    return info


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


def _dense(widths: list[int], gen, quantised: bool):
    import torch

    dims = [P] + widths
    mods = []
    for a, b in zip(dims[:-1], dims[1:]):
        lin = torch.nn.Linear(a, b, bias=False)
        torch.nn.init.normal_(lin.weight, generator=gen)
        with torch.no_grad():
            lin.weight /= a ** 0.5
        mods += [lin, torch.nn.ReLU()]
    mods.append(torch.nn.Linear(dims[-1], 1, bias=False))
    net = torch.nn.Sequential(*mods).float().eval()
    if quantised:
        import warnings

        with warnings.catch_warnings():  # torch.ao.quantization deprecation notice
            warnings.simplefilter("ignore")
            net = torch.ao.quantization.quantize_dynamic(net, {torch.nn.Linear},
                                                         dtype=torch.qint8)
    return net


class TorchCSR:
    """The compressed network's ternary matrices as torch sparse CSR tensors, samples in
    columns: layer 1 in float64 (the float reference's precision), layers 2.. in float32
    (integer sums, exact), the same thresholds and readout."""

    def __init__(self, net) -> None:
        import torch

        from lossless.compress import int8

        self.layers = []
        for i in range(net.depth):
            csr = int8.csr32(net.codes(i))
            if i == 0:
                csr = torch.sparse_csr_tensor(csr.crow_indices(), csr.col_indices(),
                                              csr.values().double(), csr.shape,
                                              check_invariants=False)
                up, lo = net.upper_0[:, None], net.lower_0[:, None]
            else:
                up = torch.floor(getattr(net, f"upper_{i}")).float()[:, None]
                lo = torch.ceil(getattr(net, f"lower_{i}")).float()[:, None]
            self.layers.append((csr, up, lo, -1.0 if net.layers[i].odd else 1.0))
        act = net.layers[-1]
        self.w = net.readout.double()
        self.scale, self.centre, self.root = act.scale, net.centres[-1], net.widths[-1] ** 0.5

    def __call__(self, X):
        import torch

        H = torch.from_numpy(X).T.contiguous()
        for i, (csr, up, lo, sign) in enumerate(self.layers):
            Z = torch.sparse.mm(csr, H)
            H = (Z > up).float() + sign * (Z < lo).float()
            if i == 0:
                H = H.contiguous()
        F = (self.scale * H.double() - self.centre) / self.root
        return self.w @ F


def _settle() -> None:
    import ctypes
    import gc

    gc.collect()
    try:                                  # hand freed heap back: count live memory only
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def _build(kind: str, factor: float, sparsity: float, small: bool = False):
    """``(step, held, check)`` for one configuration; ``small`` builds a tiny network of the
    same kind (to load and warm up the libraries before the memory baseline)."""
    import numpy as np
    import torch

    from lossless import activations, compress

    widths = [int(round(factor * w)) for w in WIDTHS]
    gen = torch.Generator().manual_seed(0)
    if small:
        widths = [64, 64, 32]
        if kind.startswith("compressed") or kind == "torch CSR":
            plan = compress.compress([activations.get("relu")] * 3, float(np.sqrt(P)))
            net = compress.CompressedMLP.from_plan(plan, P, widths, sparsity=sparsity,
                                                   generator=gen)
    elif kind.startswith("compressed") or kind == "torch CSR":
        net = compress.CompressedMLP.load(saved_network(factor, sparsity))  # as deployed
    if kind.startswith("compressed"):
        backend = BACKEND[kind]

        def step(X):
            return net(X, backend=backend)

        def check(X):
            fast = net.activation_codes(X, backend=backend)
            ref = net.activation_codes(X, backend="float")
            return all(torch.equal(a, b) for a, b in zip(fast, ref)) and bool(
                torch.allclose(net(X, backend=backend), net(X, backend="float"), rtol=0,
                               atol=1e-12))

        return step, (lambda: net.runtime_bytes()), check
    if kind == "torch CSR":
        model = TorchCSR(net)
        held = sum(t.numel() * t.element_size() for csr, up, lo, _ in model.layers
                   for t in (csr.crow_indices(), csr.col_indices(), csr.values(), up, lo))

        def check(X):
            ref = compress.CompressedMLP.load(saved_network(factor, sparsity))
            return bool(torch.allclose(model(X), ref(X, backend="float"), rtol=0, atol=1e-12))

        del net
        return model, (lambda: {"csr operands": held}), check
    model = _dense(widths, gen, quantised=kind == "dense int8")

    def step(X):
        with torch.inference_mode():
            return model(torch.from_numpy(X).float())

    def held():
        total = 0
        for m in model.modules():
            if isinstance(m, torch.nn.Linear):
                total += 4 * m.weight.numel()
            elif isinstance(m, torch.ao.nn.quantized.dynamic.Linear):  # int8 weights
                total += m.weight().numel()
        return {"weights": total}

    return step, held, None


def run_one(kind: str, factor: float, sparsity: float, batch: int, repeats: int, mode: str,
            budget: float) -> dict:
    """One configuration in this process: ``mode="time"`` times the passes (and checks the
    outputs afterwards); ``mode="memory"`` reads the memory the network adds and the peak
    of three passes (run with the mmap threshold fixed)."""
    import numpy as np
    import torch

    rng = np.random.default_rng(0)
    X = rng.standard_normal((batch, P))
    widths = [int(round(factor * w)) for w in WIDTHS]
    _settle()
    bare = _status("RssAnon")
    step, _, _ = _build(kind, factor, sparsity, small=True)   # libraries loaded, warm
    for _ in range(2):
        step(X)
    del step
    _settle()
    base = _status("RssAnon")
    step, held, check = _build(kind, factor, sparsity)
    for _ in range(2):
        step(X)
    _settle()
    built = _status("RssAnon") - base        # weights and caches
    try:
        Path("/proc/self/clear_refs").write_text("5")       # reset VmHWM
    except OSError:
        pass
    before = _status("VmRSS")
    times = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        step(X)
        times.append(time.perf_counter() - t0)
        if mode == "memory":
            if len(times) == 3:
                break
            continue
        spent = time.perf_counter() - start
        # at least `repeats` passes and a tenth of the budget (many passes for a fast
        # configuration: more chances of a quiet moment), at most the budget
        if len(times) >= 3 and spent > budget or len(times) >= max(repeats, 10) and (
                spent > budget / 10 or len(times) >= 3000):
            break
    pass_bytes = _status("VmHWM") - before
    out = {"kind": kind, "factor": factor, "sparsity": sparsity, "widths": widths,
           "batch": batch}
    if mode == "memory":
        return dict(out, peak_bytes=built + pass_bytes, resident_bytes=built,
                    pass_bytes=pass_bytes, library_bytes=base - bare, held_bytes=held())
    return dict(out, times=times, torch_threads=torch.get_num_threads(),
                outputs_equal=None if check is None else check(X))


# -------------------------------------------------------------------------------------
# the machine's limit
# -------------------------------------------------------------------------------------


def machine_limits(seconds: float = 0.3) -> dict:
    """Rates of the kernels' primitive operations on all cores (best of a few runs)."""
    import numba
    import numpy as np
    from numba import njit, prange

    from lossless.compress import ternary_engine as ti

    threads = numba.config.NUMBA_NUM_THREADS

    @njit(parallel=True)
    def lines(T, idx, reps):        # random 64-byte rows of an L2-sized buffer into int8 lanes
        acc = np.zeros((threads, 64), np.int8)
        for t in prange(threads):
            out = np.empty(64, np.int8)
            for _ in range(reps):
                ti._rows_sum_w(T, idx, 0, idx.shape[0], out, 64)
                for b in range(64):
                    acc[t, b] += out[b]
        return acc

    @njit(parallel=True)
    def gathers(x, idx, reps):      # random 8-byte loads from an L1-sized buffer
        s = np.zeros(threads)
        for t in prange(threads):
            for _ in range(reps):
                s[t] += ti._gather4(x, idx, np.zeros(1, np.uint64), False, 0,
                                    idx.shape[0] // 4)
        return s

    @njit(parallel=True)
    def popcounts(a, b, reps):      # popcount(a & b) on L1-resident words
        s = np.zeros(threads, np.uint64)
        for t in prange(threads):
            for _ in range(reps):
                acc = np.uint64(0)
                for q in range(a.shape[0]):
                    acc += ti._popcount(a[q] & b[q])
                s[t] += acc
        return s

    @njit(parallel=True)
    def stream(a):                  # sequential read of a large buffer
        s = 0.0
        for i in prange(a.shape[0]):
            s += a[i]
        return s

    rng = np.random.default_rng(0)
    T = rng.integers(-1, 2, (6000, 64)).astype(np.int8)      # 384 KB: L2, not L1
    idx = rng.integers(0, 6000, 100_000).astype(np.uint16)
    x = rng.standard_normal(785)
    gidx = rng.integers(0, 785, 100_000).astype(np.uint16)
    a = rng.integers(0, 2 ** 63, 1024, dtype=np.int64).astype(np.uint64)
    b = rng.integers(0, 2 ** 63, 1024, dtype=np.int64).astype(np.uint64)
    big = np.ones(2 ** 26)                                   # 512 MB
    ops = {"l2_lines_per_s": (lambda r: lines(T, idx, r), idx.size * threads),
           "gathers_per_s": (lambda r: gathers(x, gidx, r), gidx.size * threads),
           "popcount_words_per_s": (lambda r: popcounts(a, b, r), a.size * threads),
           "read_bytes_per_s": (lambda r: stream(big), big.nbytes)}
    rates = {}
    for name, (fn, per_rep) in ops.items():
        fn(1)
        reps = 1
        while True:
            t0 = time.perf_counter()
            fn(reps)
            dt = time.perf_counter() - t0
            if dt > seconds / 4 or name == "read_bytes_per_s":
                break
            reps *= 4
        best = dt
        for _ in range(4):
            t0 = time.perf_counter()
            fn(reps)
            best = min(best, time.perf_counter() - t0)
        rates[name] = per_rep * (reps if name != "read_bytes_per_s" else 1) / best
    rates["threads"] = threads
    return rates


def engine_work(factor: float, sparsity: float, batch: int) -> dict:
    """The primitive operations of one pass of the ternary engine (see
    :meth:`lossless.compress.ternary_engine.TernaryEngine.plan`)."""
    from lossless import compress

    net = compress.CompressedMLP.load(saved_network(factor, sparsity))
    return net.ternary_engine().plan(batch)


def limit_seconds(work: dict, rates: dict) -> float:
    return (work["l2_lines"] / rates["l2_lines_per_s"]
            + work["gathers"] / rates["gathers_per_s"]
            + work["popcount_words"] / rates["popcount_words_per_s"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--factors", type=float, nargs="*", default=[1.0, 4.0],
                        help="width factors (default 1 4)")
    parser.add_argument("--sparsities", type=float, nargs="*", default=[0.9, 0.99])
    parser.add_argument("--batches", type=int, nargs="*", default=[1, 16, 256])
    parser.add_argument("--repeats", type=int, default=30, help="timed passes per round")
    parser.add_argument("--budget", type=float, default=2.0,
                        help="seconds of timed passes per round and configuration, at most "
                             "(at least 3 passes)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="fresh processes per configuration, interleaved (default 3)")
    parser.add_argument("--memory-rounds", type=int, default=1,
                        help="rounds that also run the memory processes (default 1: memory "
                             "varies little)")
    parser.add_argument("--quiet", type=float, nargs=2, default=[0.15, 300.0],
                        metavar=("BUSY", "SECONDS"),
                        help="before each timing process, wait until the CPUs are busy less "
                             "than BUSY of the time (other processes), at most SECONDS "
                             "(default 0.15 300); the busy fraction is recorded")
    parser.add_argument("--kinds", nargs="*", default=list(KINDS), choices=KINDS)
    parser.add_argument("--one", nargs=7, help=argparse.SUPPRESS,
                        metavar=("KIND", "FACTOR", "SPARSITY", "BATCH", "REPEATS", "MODE",
                                 "BUDGET"))
    parser.add_argument("--limits", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--work", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS / "inference.json")
    args = parser.parse_args(argv)
    if args.one:
        kind, factor, sparsity, batch, repeats, mode, budget = args.one
        print(json.dumps(run_one(kind, float(factor), float(sparsity), int(batch),
                                 int(repeats), mode, float(budget))))
        return
    if args.limits:
        print(json.dumps(machine_limits()))
        return
    if args.work:
        print(json.dumps(engine_work(float(args.work[0]), float(args.work[1]),
                                     int(args.work[2]))))
        return
    import numba
    import numpy as np
    import torch

    start = time.perf_counter()
    configs = []
    for f in args.factors:
        for kind in args.kinds:
            if kind.startswith("dense"):
                configs.append((kind, f, 0.0))
            elif kind == "compressed, float":
                if f == 1.0 and 0.9 in args.sparsities:
                    configs.append((kind, f, 0.9))
            else:
                configs += [(kind, f, e) for e in args.sparsities]
    for f in args.factors:
        for e in args.sparsities:
            saved_network(f, e)
    envs = {"time": dict(os.environ), "memory": dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")}
    envs["time"].pop("MALLOC_MMAP_THRESHOLD_", None)

    def sub(*extra, env="time"):
        proc = subprocess.run([sys.executable, __file__, *map(str, extra)], capture_output=True,
                              text=True, env=envs[env])
        if proc.returncode:
            raise RuntimeError(f"{extra} failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    sub("--one", "compressed, ternary", 1.0, args.sparsities[0], 1, 1, "time", 1.0)  # compile
    load_start = os.getloadavg()
    runs: dict[tuple, list[dict]] = {}
    mems: dict[tuple, list[dict]] = {}
    limits, loads = [], []
    works: dict[tuple, dict] = {}

    def write(done_rounds: int) -> None:
        rates = {k: max(lim[k] for lim in limits) for k in limits[0]}
        results = []
        for key, rs in runs.items():
            kind, factor, sparsity, batch = key
            times = [t for r in rs for t in r["times"]]
            mem = min(mems[key], key=lambda m: m["peak_bytes"])
            row = {"kind": kind, "factor": factor, "sparsity": sparsity, "widths": rs[0]["widths"],
                   "batch": batch, "seconds": min(times), "median_seconds": float(np.median(times)),
                   "round_min_seconds": [min(r["times"]) for r in rs],
                   "round_median_seconds": [float(np.median(r["times"])) for r in rs],
                   "passes": len(times), "busy_before": [r["busy_before"] for r in rs],
                   "peak_bytes": mem["peak_bytes"], "resident_bytes": mem["resident_bytes"],
                   "pass_bytes": mem["pass_bytes"], "library_bytes": mem["library_bytes"],
                   "held_bytes": mem["held_bytes"],
                   "outputs_equal": (None if rs[0]["outputs_equal"] is None
                                     else all(r["outputs_equal"] for r in rs))}
            if kind == "compressed, ternary":
                if key not in works:
                    works[key] = sub("--work", factor, sparsity, batch)
                work = row["work"] = works[key]
                row["limit_seconds"] = limit_seconds(work, rates)
                row["fraction_of_limit"] = row["limit_seconds"] / row["seconds"]
            results.append(row)
        info = cpu_info()
        meta = {
            "command": " ".join(["python", "benchmarks/bench_inference.py"] +
                                (argv if argv is not None else sys.argv[1:])),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "seconds": round(time.perf_counter() - start, 1),
            "machine": {"nproc": os.cpu_count(), "cpu": info["cpu"], "cpu_family": info["family"],
                        "cpu_model": info["model"], "flags": info["flags"],
                        "torch": torch.__version__, "numba": numba.__version__,
                        "numpy": np.__version__,
                        "torch_threads": runs[next(iter(runs))][0]["torch_threads"],
                        "numba_threads": numba.config.NUMBA_NUM_THREADS,
                        "numba_threading_layer": _threading_layer(),
                        "quantized_engine": torch.backends.quantized.engine,
                        "python": platform.python_version(),
                        "loadavg": os.getloadavg(), "loadavg_start": load_start,
                        "loadavg_rounds": loads},
            "limits": rates, "limits_rounds": limits,
            "p": P, "paper_widths": WIDTHS, "repeats": args.repeats, "budget": args.budget,
            "rounds": done_rounds, "memory_rounds": args.memory_rounds, "quiet": args.quiet,
            "malloc_mmap_threshold": 65536,
            "results": results,
        }
        args.out.write_text(json.dumps(meta, indent=2) + "\n")
        cols = ["kind", "factor", "sparsity", "batch", "seconds", "median_seconds", "peak_bytes",
                "resident_bytes", "pass_bytes", "library_bytes", "outputs_equal", "limit_seconds",
                "fraction_of_limit"]
        with open(args.out.with_suffix(".csv"), "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(results)

    for round_ in range(args.rounds):
        loads.append(os.getloadavg()[0])
        wait_quiet(*args.quiet)
        limits.append(sub("--limits"))
        for kind, factor, sparsity in configs:
            for batch in args.batches:
                key = (kind, factor, sparsity, batch)
                busy = wait_quiet(*args.quiet)
                r = sub("--one", kind, factor, sparsity, batch, args.repeats, "time", args.budget)
                r["busy_before"] = busy
                runs.setdefault(key, []).append(r)
                if round_ < args.memory_rounds:
                    mems.setdefault(key, []).append(
                        sub("--one", kind, factor, sparsity, batch, 3, "memory", args.budget,
                            env="memory"))
                m = min(mems[key], key=lambda m: m["peak_bytes"])
                print(f"round {round_ + 1}: x{factor:g} eps {sparsity:<4g} batch {batch:>3} "
                      f"{kind:>22}: {1e3 * min(r['times']):9.3f} ms (median "
                      f"{1e3 * float(np.median(r['times'])):9.3f}), peak "
                      f"{m['peak_bytes'] / 2**20:7.1f} MiB; busy before {busy:.2f}",
                      flush=True)
        write(round_ + 1)   # after every round: a run cut short keeps its rounds
        print(f"wrote {args.out} and {args.out.with_suffix('.csv')} ({round_ + 1} rounds)",
              flush=True)


def _threading_layer() -> str:
    """numba's threading layer as the engine's processes get it."""
    code = ("import numba, numpy as np\n"
            "@numba.njit(parallel=True)\n"
            "def f(a):\n"
            "    s = 0.0\n"
            "    for i in numba.prange(a.shape[0]):\n"
            "        s += a[i]\n"
            "    return s\n"
            "f(np.ones(4)); print(numba.threading_layer())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return proc.stdout.strip() or "unknown"


if __name__ == "__main__":
    main()
