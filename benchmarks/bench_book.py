"""Benchmark: how long the book takes to execute and to build.

Nothing in the repository is modified: every run works in a fresh temporary directory.

1. Chapters. The notebooks that ``_toc.yml`` lists (``.ipynb``, in the table of
   contents' order: the chapters) are copied, with the rest
   of ``book/`` and ``benchmarks/results/`` (the practice chapter finds ``benchmarks/`` by walking up
   from its working directory; other chapters read files through ``lossless.__file__``,
   i.e. the installed package), to ``<tmp>/book`` and ``<tmp>/benchmarks/results``. Each chapter
   is executed with nbclient (kernel ``python3`` of this environment, working directory
   ``<tmp>/book`` as under Jupyter Book, 600 s per cell as in ``_config.yml``, errors
   fatal), and its wall time is recorded: kernel start-up plus every cell, the same
   work ``jupyter nbconvert --to notebook --execute`` does. Executed copies stay in the
   temporary directory, which is deleted at the end (``--keep`` to keep it).

2. Full build (on by default, ``--no-build`` to skip). The files of the repository that
   git knows about (``git ls-files --cached --others --exclude-standard``: tracked
   files as they are in the working tree, plus new files that are not ignored; no
   ``_build``, so the execution cache starts empty and every chapter is executed) are
   copied to ``<tmp>/repo`` and built with
   ``<venv>/bin/jupyter-book build <tmp>/repo -W -n --keep-going``, the command of
   ``make book``, timed as a whole. The offline assets step of ``make book``
   (``make assets``: ``npm ci`` and copies, not timed) is skipped: the already-built
   ``_build/assets`` of the repository is copied into the build copy if it exists (the
   book's ``html_extra_path`` points there), otherwise an empty directory stands in and
   the pages will lack MathJax and the widget scripts. The chapter rows measured in
   step 1 are written to the copy's ``benchmarks/results/book.json`` first, so the
   performance appendix in that build shows them. The per-chapter execution times
   that Jupyter Book measured inside the build are read back from its execution cache.

Threads are left as they are (``OMP_NUM_THREADS`` etc. are inherited unchanged);
``PYDEVD_DISABLE_FILE_VALIDATION=1`` is set as the Makefile does. The load average is
printed and recorded: on a shared machine, times grow with it.

Rows go to ``benchmarks/results/book.json`` as ``{"machine": {...}, "rows": [...]}``,
e.g. ``{"what": "chapter 01_gaussian_mixture", "part": "chapters", "seconds": 41.2,
"cells": 19, "ok": true}``, plus ``{"what": "total chapters", ...}``, ``{"what":
"jupyter-book build (full, no assets)", "part": "build", ...}`` and the build's own
per-chapter execution times (``"part": "build execution"``).

Usage::

    python benchmarks/bench_book.py                 # every chapter, then the full build
    python benchmarks/bench_book.py --no-build      # chapters only
    python benchmarks/bench_book.py --only 01 --no-build --results ''   # one chapter, no file
    python benchmarks/bench_book.py --only 03 07 --no-build             # chapters 3 and 7
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "book.json"
CELL_TIMEOUT = 600  # seconds per cell, as execute.timeout in _config.yml
ENV_EXTRA = {"PYDEVD_DISABLE_FILE_VALIDATION": "1"}  # as the Makefile exports


def toc_files(toc: Path) -> list[str]:
    """Every ``file:`` of a Jupyter Book ``_toc.yml`` (root, parts, chapters, sections), in
    the table of contents' order, as written (relative to the repository, no suffix)."""
    files: list[str] = []

    def walk(entry) -> None:
        if isinstance(entry, list):
            for item in entry:
                walk(item)
        elif isinstance(entry, dict):
            for key in ("root", "file"):
                if isinstance(entry.get(key), str):
                    files.append(entry[key])
            for key in ("parts", "chapters", "sections"):
                walk(entry.get(key))

    walk(yaml.safe_load(toc.read_text(encoding="utf-8")))
    return files


def chapters(only: list[str] | None) -> list[Path]:
    """The notebooks ``_toc.yml`` lists, in its order, filtered by name prefixes."""
    found = []
    for name in toc_files(REPO / "_toc.yml"):
        path = REPO / name
        path = path if path.suffix == ".ipynb" else path.with_name(path.name + ".ipynb")
        if path.is_file() and path.parent == REPO / "book":
            found.append(path)
    if not found:
        raise SystemExit(f"no notebook book/*.ipynb listed in {REPO / '_toc.yml'}")
    if only:
        picked = [p for p in found if any(p.stem.startswith(o) for o in only)]
        if not picked:
            raise SystemExit(f"--only {' '.join(only)} matches no chapter; chapters are: "
                             + ", ".join(p.stem for p in found))
        found = picked
    return found


def run_chapter(nb_path: Path, cwd: Path, out_dir: Path) -> dict:
    """Execute one notebook with nbclient in ``cwd``; returns seconds, cells, ok, error and
    the number of stderr outputs (Jupyter Book turns those into warnings, errors under -W)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(nb_path, as_version=4)
    cells = sum(c.cell_type == "code" for c in nb.cells)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                            allow_errors=False, resources={"metadata": {"path": str(cwd)}})
    error = ""
    start = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as err:
        error = str(err).strip().splitlines()[-1][:300] if str(err).strip() else repr(err)
    except Exception as err:  # noqa: BLE001 - kernel died, timeout...: report and go on
        error = f"{type(err).__name__}: {err}"[:300]
    seconds = time.perf_counter() - start
    nbformat.write(nb, out_dir / nb_path.name)
    stderr = sum(o.get("output_type") == "stream" and o.get("name") == "stderr"
                 for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    return {"seconds": seconds, "cells": cells, "ok": not error, "error": error,
            "stderr_outputs": stderr}


def copy_for_chapters(tmp: Path) -> Path:
    """``book/`` and ``benchmarks/results/`` into ``tmp``; returns ``tmp/book``."""
    shutil.copytree(REPO / "book", tmp / "book",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "_build"))
    results = REPO / "benchmarks" / "results"
    if results.is_dir():
        shutil.copytree(results, tmp / "benchmarks" / "results")
    return tmp / "book"


def git_files() -> list[str]:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others",
             "--exclude-standard"], check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        raise SystemExit(f"cannot list the repository's files with git: {err}") from None
    return [f for f in out.split("\0") if f]


def copy_repo(dest: Path) -> int:
    """The files git knows about (working-tree contents) into ``dest``; returns the count."""
    n = 0
    for rel in git_files():
        src = REPO / rel
        if not src.is_file():  # deleted in the working tree, or a submodule
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
        n += 1
    assets = REPO / "_build" / "assets"
    if assets.is_dir():
        shutil.copytree(assets, dest / "_build" / "assets")
    else:
        (dest / "_build" / "assets").mkdir(parents=True)
        print("note: no _build/assets in the repository (run `make assets`); the build "
              "copy gets an empty one")
    return n


def build_chapter_times(repo_copy: Path, log: str) -> dict[str, float]:
    """Per-notebook execution seconds measured by Jupyter Book inside the build."""
    times: dict[str, float] = {}
    try:
        from jupyter_cache import get_cache

        cache = get_cache(repo_copy / "_build" / ".jupyter_cache")
        for record in cache.list_cache_records():
            secs = (record.data or {}).get("execution_seconds")
            if secs is not None:
                times[Path(record.uri).stem] = float(secs)
    except Exception:  # noqa: BLE001 - fall back to the log
        pass
    if not times:
        for m in re.finditer(r"([^\s:]+)\.ipynb[^\n]*?Executed notebook in ([0-9.]+) seconds",
                             log):
            times[Path(m.group(1)).stem] = float(m.group(2))
    return times


def run_build(tmp: Path, measured: dict | None) -> tuple[dict, dict[str, float]]:
    """Full build of a copy of the repository. ``measured`` (this run's chapter rows, as
    written to book.json) replaces the copy's ``benchmarks/results/book.json``, so the
    performance appendix built here shows the chapter times just measured."""
    dest = tmp / "repo"
    n_files = copy_repo(dest)
    if measured is not None:
        target = dest / "benchmarks" / "results" / "book.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(measured, indent=1))
    jb = Path(sys.executable).parent / "jupyter-book"
    if not jb.exists():
        raise SystemExit(f"jupyter-book not found next to {sys.executable}")
    cmd = [str(jb), "build", str(dest), "-W", "-n", "--keep-going"]
    print(f"\nbuilding a copy of {n_files} files: {' '.join(cmd)}", flush=True)
    env = {**os.environ, **ENV_EXTRA}
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=dest)
    seconds = time.perf_counter() - start
    log = proc.stdout + proc.stderr
    (tmp / "build.log").write_text(log)
    ok = proc.returncode == 0
    if not ok:
        print(f"jupyter-book build failed (exit code {proc.returncode}); last lines:")
        print("\n".join(log.strip().splitlines()[-25:]))
    return ({"seconds": seconds, "ok": ok, "returncode": proc.returncode,
             "files": n_files}, build_chapter_times(dest, log))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="See the module docstring for what is measured and how.")
    parser.add_argument("--only", nargs="+", metavar="PREFIX",
                        help="chapters whose file name starts with one of these "
                             "(e.g. --only 01 03)")
    parser.add_argument("--no-chapters", action="store_true",
                        help="skip the per-chapter executions")
    build = parser.add_mutually_exclusive_group()
    build.add_argument("--build", dest="build", action="store_true", default=True,
                       help="also time a full jupyter-book build of a copy (default)")
    build.add_argument("--no-build", dest="build", action="store_false",
                       help="skip the full build")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory (executed notebooks, build log)")
    parser.add_argument("--results", default=str(RESULTS),
                        help="JSON file for the numbers ('' to skip)")
    args = parser.parse_args()
    if args.no_chapters and not args.build:
        parser.error("--no-chapters with --no-build leaves nothing to do")

    os.environ.update(ENV_EXTRA)  # inherited by the kernels
    load = os.getloadavg()[0]
    print(f"load average {load:.2f} on {os.cpu_count()} CPUs; OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', '(unset)')}")
    machine = {"cpus": os.cpu_count(), "load_average": load,
               "python": platform.python_version(), "platform": platform.platform(),
               "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
               "cell_timeout_s": CELL_TIMEOUT, "only": " ".join(args.only or []),
               "build": args.build, "command": " ".join(["python"] + sys.argv)}
    rows: list[dict] = []
    failed = False
    tmp = Path(tempfile.mkdtemp(prefix="lossless-bench-book-"))
    try:
        if not args.no_chapters:
            nbs = chapters(args.only)
            book_dir = copy_for_chapters(tmp)
            out_dir = tmp / "executed"
            out_dir.mkdir()
            print(f"{'chapter':<28} {'cells':>5} {'seconds':>9} {'stderr':>6}  status")
            total = 0.0
            for nb in nbs:
                res = run_chapter(book_dir / nb.name, book_dir, out_dir)
                total += res["seconds"]
                failed |= not res["ok"]
                status = "ok" if res["ok"] else f"FAILED: {res['error']}"
                print(f"{nb.stem:<28} {res['cells']:>5} {res['seconds']:>9.1f} "
                      f"{res['stderr_outputs']:>6}  {status}", flush=True)
                rows.append({"what": f"chapter {nb.stem}", "part": "chapters",
                             "seconds": res["seconds"], "cells": res["cells"],
                             "stderr_outputs": res["stderr_outputs"], "ok": res["ok"],
                             "error": res["error"]})
            print(f"{'total':<28} {'':>5} {total:>9.1f}")
            rows.append({"what": "total chapters", "part": "chapters", "seconds": total,
                         "cells": sum(r["cells"] for r in rows),
                         "stderr_outputs": sum(r["stderr_outputs"] for r in rows),
                         "ok": not failed, "error": ""})
        if args.build:
            res, per_nb = run_build(
                tmp, {"machine": machine, "rows": list(rows)} if rows else None)
            failed |= not res["ok"]
            print(f"jupyter-book build: {res['seconds']:.1f} s "
                  f"({'ok' if res['ok'] else 'FAILED'}; offline assets step not timed)")
            rows.append({"what": "jupyter-book build (full, no assets)", "part": "build",
                         "seconds": res["seconds"], "ok": res["ok"],
                         "returncode": res["returncode"], "files": res["files"]})
            order = {p.stem: i for i, p in enumerate(chapters(None))}  # the toc's, then by name
            for stem, secs in sorted(per_nb.items(),
                                     key=lambda kv: (order.get(kv[0], len(order)), kv[0])):
                print(f"  executed inside the build: {stem:<26} {secs:>9.1f} s")
                rows.append({"what": f"build execution {stem}", "part": "build execution",
                             "seconds": secs, "ok": True})
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    if args.results:
        out = Path(args.results)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w") as fh:
            json.dump({"machine": machine, "rows": rows}, fh, indent=1)
        print(f"written {out}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
