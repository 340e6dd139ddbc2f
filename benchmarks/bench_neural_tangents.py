"""Benchmark: exact CK/NTK of `lossless.kernels` against neural-tangents, in one process.

For the same data (the first n Fashion-MNIST training images, normalised to mean
``||x_i||^2 = 1``; Gaussian data if the Debian package is missing) and the same network
(L layers of one activation, NTK parameterisation, no biases), both libraries compute
the CK and the NTK in float64:

- lossless: ``kernels.exact_kernels(X, [act] * L)`` (NumPy backend, the default);
- neural-tangents: ``jax.jit(kernel_fn)(x, None, get=("nngp", "ntk"))`` for
  ``stax.serial(Dense, act, ..., Dense, act, Dense)`` with ``W_std = 1``, on
  ``x = sqrt(p) X`` (neural-tangents divides ``x x^T`` by the input dimension).
  ReLU and erf use its closed forms (``stax.Relu``, ``stax.Erf``), tanh its numerical
  Gauss–Hermite quadrature (``stax.ElementwiseNumerical(jnp.tanh, deg)``).

Times are the best of k calls after a warm-up (the first neural-tangents call, which
compiles, is reported separately as ``nt_compile_s``); both libraries run on the same
two threads (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, XLA's intra-op threads),
interleaved call by call so that both see the same machine load.

Agreement: erf and tanh have mean 0, so the centred kernels of lossless and the
uncentred ones of neural-tangents are the same matrices. ReLU is centred in lossless
(``sigma - E[sigma(tau xi)]``) and not in neural-tangents: its agreement is measured on
the same fused recursion with zero centring constants
(``lossless._fastkernels.recursion(..., centres=[0] * L)``), which is the code path
``exact_kernels`` times. ``max_rel_diff`` is the largest entrywise difference over the
largest entry, the worst of the CK and the NTK off its diagonal; ``ntk_diag_rel_diff``
is the same on the NTK diagonal, reported apart: there neural-tangents takes the ReLU
angle as ``arctan2(sqrt(K_ii K_jj - K_ij^2), K_ij)`` also for ``i = j``, where the
rounding left under the square root (about ``eps K_ii^2``) gives an angle of about
``sqrt(eps)`` and an error of about 1e-8 on ``E[relu'(u)^2] = 1/2``, while lossless
uses the univariate closed forms on the diagonal.

neural-tangents 0.6.5 pins an old jax and pulls tensorflow: it lives in its own virtual
environment (``benchmarks/requirements-nt.txt``), with lossless on ``PYTHONPATH``::

    python3 -m venv ~/.venvs/nt && ~/.venvs/nt/bin/pip install -r benchmarks/requirements-nt.txt
    PYTHONPATH=. ~/.venvs/nt/bin/python benchmarks/bench_neural_tangents.py

Results: ``benchmarks/results/neural_tangents.json`` (``{"machine": ..., "rows": [...]}``)
and ``neural_tangents.csv``, one row per (activation, n, L).
"""

from __future__ import annotations

import os

THREADS = int(os.environ.get("BENCH_THREADS", "2"))
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(THREADS)
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "")
    + f" --xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={THREADS}"
)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from lossless import _fastkernels, activations, kernels  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SEED = 0


def fashion_mnist(n: int) -> tuple[np.ndarray, str]:
    """The first n training images, centred and scaled (mean ||x_i||^2 = 1)."""
    try:
        from lossless import data

        images, _labels = data.load_fashion_mnist("train")
        X = data.normalize(images[:n].reshape(n, -1).astype(np.float64))
        return X, "Fashion-MNIST train[:n], lossless.data.normalize"
    except Exception as err:  # noqa: BLE001 - fall back to Gaussian data, and say so
        rng = np.random.default_rng(SEED)
        return rng.standard_normal((n, 784)) / math.sqrt(784), f"Gaussian (no Fashion-MNIST: {err})"


def best_of(fn, k: int) -> tuple[float, object]:
    best, out = math.inf, None
    for _ in range(k):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, nargs="*", default=[256, 512, 4096])
    parser.add_argument("--depths", type=int, nargs="*", default=[1, 2, 3])
    parser.add_argument("--activations", nargs="*", default=["relu", "erf", "tanh"])
    parser.add_argument("--k", type=int, default=31, help="best of k (n <= 512)")
    parser.add_argument("--k-large", type=int, default=5, help="best of k (n > 512)")
    parser.add_argument("--deg", type=int, default=25, help="neural-tangents quadrature degree")
    parser.add_argument("--nt-tanh-max-n", type=int, default=512,
                        help="largest n for neural-tangents' tanh quadrature (memory ~ n^2 deg^2)")
    parser.add_argument("--results", default=str(RESULTS / "neural_tangents"),
                        help="path stem of the .json/.csv results ('' to skip)")
    args = parser.parse_args()

    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import neural_tangents as nt
    from neural_tangents import stax

    nt_acts = {
        "relu": lambda: stax.Relu(),
        "erf": lambda: stax.Erf(),
        "tanh": lambda: stax.ElementwiseNumerical(jnp.tanh, deg=args.deg),
    }
    ours = {"relu": activations.get("relu"), "erf": activations.get("erf"),
            "tanh": activations.get("tanh")}

    load = os.getloadavg()[0]
    print(f"load average {load:.2f}, {os.cpu_count()} CPUs, {THREADS} threads; jax {jax.__version__}, "
          f"neural-tangents {getattr(nt, '__version__', '?')}, numpy {np.__version__}")
    head = (f"{'act':<5} {'n':>5} {'L':>2} {'lossless ms':>12} {'NT ms':>10} {'NT/lossless':>12} "
            f"{'NT compile s':>13} {'max rel diff':>13} {'NTK diag diff':>14}")
    print(head)
    rows = []
    total_start = time.perf_counter()
    for n in args.n:
        X, source = fashion_mnist(n)
        p = X.shape[1]
        x_nt = jnp.asarray(X * math.sqrt(p))
        k = args.k if n <= 512 else args.k_large
        for name in args.activations:
            for L in args.depths:
                act = ours[name]
                layers = [act] * L
                run_nt = not (name == "tanh" and n > args.nt_tanh_max_n)
                row = {"activation": name, "n": n, "p": p, "depth": L, "k": k,
                       "lossless_ms": math.nan, "nt_ms": math.nan, "speedup": math.nan,
                       "nt_compile_s": math.nan, "max_rel_diff": math.nan,
                       "ntk_diag_rel_diff": math.nan,
                       "lossless_path": "fused closed form" if act.fast_kernel() is not None
                       else "generic (Mehler–Hermite)", "note": ""}
                if run_nt:
                    stack = []
                    for _ in range(L):
                        stack += [stax.Dense(1, W_std=1.0, parameterization="ntk"), nt_acts[name]()]
                    stack.append(stax.Dense(1, W_std=1.0, parameterization="ntk"))
                    _init, _apply, kernel_fn = stax.serial(*stack)
                    kfn = jax.jit(kernel_fn, static_argnames="get")

                    def nt_call():
                        out = kfn(x_nt, None, get=("nngp", "ntk"))
                        out.ntk.block_until_ready()
                        return out

                    start = time.perf_counter()
                    nt_call()
                    row["nt_compile_s"] = time.perf_counter() - start
                else:
                    row["note"] = (f"neural-tangents' quadrature skipped at n = {n} "
                                   f"(about n^2 deg^2 = {n * n * args.deg**2 * 8 / 2**30:.0f} GiB)")
                kernels.exact_kernels(X, layers)  # warm-up (imports, moment caches)
                t_ours, t_nt = math.inf, math.inf
                reps = k if name != "tanh" else (min(k, 2) if n <= 512 else 1)
                row["k"] = reps
                for _ in range(reps):  # interleaved
                    t, (ck, ntk) = best_of(lambda: kernels.exact_kernels(X, layers), 1)
                    t_ours = min(t_ours, t)
                    if run_nt:
                        t, out = best_of(nt_call, 1)
                        t_nt = min(t_nt, t)
                row["lossless_ms"] = 1e3 * t_ours
                if run_nt:
                    row["nt_ms"] = 1e3 * t_nt
                    row["speedup"] = t_nt / t_ours
                    if name == "relu":  # same fused code path, uncentred like neural-tangents
                        steps = [act.fast_kernel()] * L
                        ck, ntk = _fastkernels.recursion(X, steps, [0.0] * L, ntk=True)
                    nngp = np.asarray(out.nngp)
                    nt_ntk = np.asarray(out.ntk)
                    off = ~np.eye(n, dtype=bool)
                    scale = np.max(np.abs(nt_ntk))
                    row["max_rel_diff"] = float(max(
                        np.max(np.abs(ck - nngp)) / np.max(np.abs(nngp)),
                        np.max(np.abs(ntk - nt_ntk)[off]) / scale,
                    ))
                    row["ntk_diag_rel_diff"] = float(
                        np.max(np.abs(np.diag(ntk) - np.diag(nt_ntk))) / scale)
                rows.append(row)
                print(f"{name:<5} {n:>5} {L:>2} {row['lossless_ms']:>12.1f} {row['nt_ms']:>10.1f} "
                      f"{row['speedup']:>12.2f} {row['nt_compile_s']:>13.2f} "
                      f"{row['max_rel_diff']:>13.2e} {row['ntk_diag_rel_diff']:>14.2e} {row['note']}",
                      flush=True)
    if args.results:
        stem = Path(args.results)
        stem.parent.mkdir(parents=True, exist_ok=True)
        machine = {
            "cpus": os.cpu_count(), "threads": THREADS, "load_average": load,
            "load_average_end": os.getloadavg()[0], "python": platform.python_version(),
            "numpy": np.__version__, "jax": jax.__version__,
            "neural_tangents": getattr(nt, "__version__", "0.6.5"), "x64": True,
            "data": source, "nt_tanh_quadrature_degree": args.deg,
            "total_seconds": time.perf_counter() - total_start,
            "timing": "best of k interleaved calls after one warm-up each; NT compile = first call",
        }
        with stem.with_suffix(".json").open("w") as fh:
            json.dump({"machine": machine, "rows": rows}, fh, indent=1)
        with stem.with_suffix(".csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        print(f"written {stem.with_suffix('.json')} and {stem.with_suffix('.csv')}")


if __name__ == "__main__":
    main()
