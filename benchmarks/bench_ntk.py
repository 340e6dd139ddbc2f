"""Benchmark: `lossless.kernels.empirical_ntk` against a `torch.func` Jacobian contraction.

The network of issue 3: p = 784, three centred ReLU layers of width 1024, NTK
parameterisation, float32. For each n it prints the wall time and the peak extra
resident memory of both methods, their ratio, and the largest difference relative to
the largest kernel entry; and the fraction of this machine's matrix-multiply throughput
that `empirical_ntk` reaches (its FLOPs are counted exactly: the forward and backward
passes, about 2 n P each, plus the Gram products, about n^2 sum(d) with the symmetry).

The `torch.func` NTK is what a PyTorch user writes today (the torch.func NTK tutorial):
`vmap(jacrev(f))` for the per-sample Jacobian, of size n x P, then sum over parameters
of `J_k J_k^T`. It needs about n P 4 bytes at float32 (3 GB at n = 256), so for the
larger n it is skipped, with the reason printed, when its estimated memory exceeds the
budget (`--budget-gib`, default 8 GiB; the machine is shared).

Each measurement runs in a fresh subprocess, so that its peak resident memory (the
`ru_maxrss` of that process minus its resident size just before the computation) is
its own; `empirical_ntk` is timed as the best of three runs after a warm-up, torch.func
as one run. The load average is printed: on a shared machine both timings suffer, and
PyTorch's multi-threaded elementwise kernels suffer most (`--threads 1` can then be
faster). The numbers are also written to `benchmarks/results/ntk.json`. Usage::

    python benchmarks/bench_ntk.py                     # n = 256 and n = 4096
    python benchmarks/bench_ntk.py --n 128 --n-large 1024 --width 512
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

SEED = 0


def _rss_bytes() -> int:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def build(p: int, width: int, depth: int, n: int):
    """The network and the data, identical in every process (fixed seeds)."""
    from lossless import activations, networks

    gen = torch.Generator().manual_seed(SEED)
    X = torch.randn(n, p, generator=gen, dtype=torch.float64) / math.sqrt(p)
    tau0 = float(torch.sqrt((X * X).sum(1).mean()))
    layers = [activations.get("relu") for _ in range(depth)]
    net = networks.MLP(p, [width] * depth, layers, tau0, generator=gen, dtype=torch.float32)
    return net, X.to(torch.float32)


def n_params(p: int, width: int, depth: int) -> int:
    return p * width + (depth - 1) * width * width + width


def ours_flops(n: int, p: int, width: int, depth: int, chunk: int) -> float:
    """Exact multiply-add count x 2 of `empirical_ntk` (matmuls only)."""
    dims = [p] + [width] * depth
    forward = 2.0 * n * sum(dims[i] * dims[i + 1] for i in range(depth))
    backward = 2.0 * n * sum(dims[i] * dims[i + 1] for i in range(1, depth))
    inner = sum(dims) + sum(dims[1:])  # H_0..H_L and G_1..G_L
    pairs = sum((min(n, a + chunk) - a) * min(n, a + chunk) for a in range(0, n, chunk))
    return forward + backward + 2.0 * pairs * inner


def torchfunc_bytes(n: int, p: int, width: int, depth: int) -> float:
    """Estimated peak of the torch.func NTK: the n x P Jacobian, plus as much again
    for vmap's intermediate per-sample gradients (measured ratio about 1-2)."""
    return 2.0 * n * n_params(p, width, depth) * 4


def ntk_torchfunc(net, X) -> torch.Tensor:
    from torch.func import functional_call, jacrev, vmap

    params = {k: v.detach() for k, v in net.named_parameters()}

    def f_single(prm, x):
        return functional_call(net, prm, (x.unsqueeze(0),)).squeeze(0)

    jac = vmap(jacrev(f_single), (None, 0))(params, X)
    K = None
    for j in jac.values():
        j = j.flatten(1)
        K = j @ j.T if K is None else K.addmm_(j, j.T)
    return K


def worker(method: str, p: int, width: int, depth: int, n: int, out: str, threads: int) -> None:
    from lossless import kernels

    if threads:
        torch.set_num_threads(threads)
    net, X = build(p, width, depth, n)
    if method == "ours":  # warm-up on a few samples (thread pools, allocator)
        kernels.empirical_ntk(net, X[:32])
    base = _rss_bytes()
    if method == "ours":  # cheap: best of 3
        elapsed = math.inf
        for _ in range(3):
            t0 = time.perf_counter()
            K = kernels.empirical_ntk(net, X)
            elapsed = min(elapsed, time.perf_counter() - t0)
    else:  # one run (seconds and gigabytes)
        t0 = time.perf_counter()
        K = ntk_torchfunc(net, X).double().numpy()
        elapsed = time.perf_counter() - t0
    peak = max(0, _peak_rss_bytes() - base)
    np.save(out, K)
    print(json.dumps({"time": elapsed, "peak": peak}))


def run_worker(method: str, args, n: int, out: str) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", method, "--p", str(args.p),
           "--width", str(args.width), "--depth", str(args.depth), "--n", str(n), "--out", out,
           "--threads", str(args.threads)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        return {"error": f"exit code {res.returncode}: {res.stderr.strip()[-400:]}"}
    return json.loads(res.stdout.strip().splitlines()[-1])


def matmul_rate(size: int = 2048, repeats: int = 5) -> float:
    """Best-of-`repeats` float32 matmul throughput in FLOP/s (2 size^3 per product)."""
    gen = torch.Generator().manual_seed(1)
    A = torch.randn(size, size, generator=gen)
    B = torch.randn(size, size, generator=gen)
    A @ B
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        A @ B
        best = min(best, time.perf_counter() - t0)
    return 2.0 * size**3 / best


def gib(x: float) -> str:
    return f"{x / 2**30:.2f} GiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--p", type=int, default=784)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--n", type=int, default=256, help="size where both methods run")
    parser.add_argument("--n-large", type=int, default=4096, help="larger size (0: skip)")
    parser.add_argument("--budget-gib", type=float, default=8.0,
                        help="skip torch.func when its estimated memory exceeds this")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads in the workers (0: torch's default)")
    parser.add_argument("--results", default=os.path.join(os.path.dirname(
                        os.path.abspath(__file__)), "results", "ntk.json"),
                        help="JSON file for the numbers ('' to skip)")
    parser.add_argument("--worker", choices=["ours", "torchfunc"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.p, args.width, args.depth, args.n, args.out, args.threads)
        return

    P = n_params(args.p, args.width, args.depth)
    if args.threads:
        torch.set_num_threads(args.threads)
    rate = matmul_rate()
    load = os.getloadavg()[0]
    print(f"network: p={args.p}, {args.depth} ReLU layers of width {args.width}, "
          f"P={P:,} parameters, float32, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load average {load:.1f} on {os.cpu_count()} CPUs")
    print(f"machine matmul throughput (2048^3 float32, best of 5): {rate / 1e9:.1f} GFLOP/s")
    rows = []
    sizes = [args.n] + ([args.n_large] if args.n_large else [])
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            print(f"\n--- n = {n} ---")
            f_ours, f_ref = os.path.join(tmp, "ours.npy"), os.path.join(tmp, "ref.npy")
            ours = run_worker("ours", args, n, f_ours)
            if "error" in ours:
                print(f"empirical_ntk failed: {ours['error']}")
                continue
            flops = ours_flops(n, args.p, args.width, args.depth, min(n, 512))
            frac = flops / ours["time"] / rate
            print(f"empirical_ntk : {ours['time']:8.3f} s, peak +{gib(ours['peak'])}, "
                  f"{flops / 1e9:.1f} GFLOP -> {flops / ours['time'] / 1e9:.1f} GFLOP/s "
                  f"= {100 * frac:.0f}% of the matmul throughput")
            row = {"n": n, "empirical_ntk_s": ours["time"], "empirical_ntk_peak_GiB":
                   ours["peak"] / 2**30, "matmul_fraction": frac, "torch_func_s": math.nan,
                   "torch_func_peak_GiB": math.nan, "speedup": math.nan,
                   "memory_ratio": math.nan, "max_rel_diff": math.nan, "note": ""}
            rows.append(row)
            need = torchfunc_bytes(n, args.p, args.width, args.depth)
            if need > args.budget_gib * 2**30:
                row["note"] = (f"torch.func skipped: its Jacobian alone is {gib(n * P * 4)}, "
                               f"estimated peak {gib(need)}")
                print(f"torch.func    : skipped: its n x P Jacobian alone is "
                      f"{gib(n * P * 4)} (estimated peak {gib(need)} > budget "
                      f"{args.budget_gib:g} GiB); empirical_ntk needs no Jacobian")
                continue
            ref = run_worker("torchfunc", args, n, f_ref)
            if "error" in ref:
                row["note"] = "torch.func failed"
                print(f"torch.func    : failed ({ref['error']})")
                continue
            print(f"torch.func    : {ref['time']:8.3f} s, peak +{gib(ref['peak'])}")
            K, Kr = np.load(f_ours), np.load(f_ref)
            diff = np.abs(K - Kr).max() / np.abs(Kr).max()
            op = np.linalg.norm(K - Kr, 2) / np.linalg.norm(Kr, 2)
            speedup = ref["time"] / ours["time"]
            mem = ref["peak"] / max(ours["peak"], 1)
            row.update(torch_func_s=ref["time"], torch_func_peak_GiB=ref["peak"] / 2**30,
                       speedup=speedup, memory_ratio=mem, max_rel_diff=diff)
            print(f"speed-up {speedup:.1f}x, memory ratio {mem:.1f}x; max |K - K_ref| / "
                  f"max |K_ref| = {diff:.2e}, relative operator-norm difference {op:.2e}")
    if args.results:
        os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
        machine = {"cpus": os.cpu_count(), "threads": torch.get_num_threads(),
                   "load_average": load, "matmul_GFLOPs": rate / 1e9,
                   "torch": torch.__version__, "p": args.p, "width": args.width,
                   "depth": args.depth, "parameters": P}
        with open(args.results, "w") as fh:
            json.dump({"machine": machine, "rows": rows}, fh, indent=1)
        print(f"\nwritten {args.results}")


if __name__ == "__main__":
    main()
