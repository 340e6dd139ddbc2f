#!/usr/bin/env python3
"""Open every chapter in JupyterLab, in headless Chromium: fail on MyST left raw in its
rendered markdown; run the chapters that have live ipywidgets and move one control of
each widget.

Starts JupyterLab (``python -m jupyterlab``) on 127.0.0.1, at a free port, with a random
token, on a temporary COPY of the book's folder (JupyterLab autosaves: the committed
notebooks are never touched) and with temporary Jupyter config, data and runtime folders
and IPython folder (the user's settings, workspaces and startup files do not apply;
``MPLBACKEND`` is removed from the server's environment, so that the kernels draw
inline; ``PYTHONPATH`` starts with this checkout, so the kernels import its
``lossless``, whose ``__file__`` the chapters use to find ``benchmarks/``; the notebook's
windowing mode is "none", so that every cell is in the page). Every notebook of the
book's folder is opened in Debian's ``/usr/bin/chromium`` through Playwright, in a
workspace of its own (``/lab/workspaces/<name>/tree/<chapter>.ipynb``), and the test

- waits until every markdown cell is rendered and holds still, then fails on MyST left
  as text (``{prf:``, ``{exercise``, ``{solution``, ``{eq}``, ``{ref}``, ``{doc}``,
  ``{numref}``, ``{cite}``, fenced directives, ``{{``, targets ``(label)=``, or a
  directive shown as a code block: what JupyterLab's own renderer does without
  jupyterlab-myst), not looking into math or code blocks; on a reference that
  jupyterlab-myst left unresolved to a label defined nowhere in the book (labels of other
  chapters and figures named in code-cell metadata are expected: it sees one notebook;
  noted); and on a first cell that is not the front matter with the math macros of
  ``_config.yml`` (KaTeX's, for jupyterlab-myst; tagged ``remove-cell``). jupyterlab-myst's
  "Cross reference target was not found" console messages are not console errors here.

The chapters with a saved widget view (``application/vnd.jupyter.widget-view+json``) or
code that uses ``ipywidgets`` are then run (``--markdown-only``: none), and the test

- waits for the kernel, clears the outputs and runs every cell (JupyterLab's
  ``notebook:run-all-cells`` command, through ``window.jupyterapp``, which
  ``--LabApp.expose_app_in_browser`` exposes), printing progress, and fails on a cell
  error (an ``error`` output, or a traceback on stderr), on a dead kernel, or when the
  run does not finish within ``--timeout`` seconds;
- requires every widget view that the run produced to be rendered by the widget
  manager (``.jupyter-widgets`` elements, not the text/plain fallback, not "Loading
  widget..." or "Error displaying widget"): a broken front-end widget extension fails
  here, and so does a chapter that produced fewer widget views than its committed copy;
- for every live widget, moves ONE control, as a reader would: a slider by the
  keyboard (ArrowRight on its handle; ArrowLeft at the maximum), else a dropdown (the
  next option), else toggle buttons (another button), else a checkbox; it requires the
  control's value to change, then the widget's output area (its ``Output`` widgets) to
  redraw within ``--redraw-timeout`` seconds, with the kernel idle again: the figure
  (base64 PNG) or the printed numbers must differ from before, with no traceback in the
  output, no error published by the kernel in answer to the widget's messages (e.g. an
  exception raised by an ``observe`` callback outside an ``Output``), none in the
  server's log (where the kernel's own log goes) and no output in JupyterLab's log
  console (where a callback's output lands when no ``Output`` widget takes it: a
  figure that escaped its widget). Before the move the test waits, as a reader would,
  until the widget is quiet (kernel idle, output unchanged and no widget message either
  way for 5 s: slider views send their value back snapped to their step when they are
  drawn, which can redraw a widget at display); a move that leaves the kernel idle
  with no widget message for 20 s and the output unchanged fails at once. A failed
  move prints the widget messages that followed it;
- fails on any console error or uncaught exception in the page, and on any request to a
  host other than the local server (logged and blocked, as in ``browser_test.py``);
- checks that the client-side explorers (``.lossless-explorer``: they run in the built
  book only) replaced their "Loading" note by the JupyterLab one, i.e. that their
  script ran without error.

Screenshots go to ``--screenshots``: per chapter the page after the run
(``<chapter>.png``), and each widget before and after its control was moved
(``<chapter>__widget<k>-before.png``, ``-after.png``). The server (its process group)
and any kernel left over are stopped at the end, also on an error, Ctrl-C or SIGTERM.
Exit status 0 when every chapter passes, 1 otherwise, 2 on a usage error. Usage::

    python .ci/lab_test.py --book book --screenshots _build/lab-screenshots [CHAPTER ...]
    python .ci/lab_test.py --markdown-only --disable-extension jupyterlab-myst  # must fail

Playwright (PyPI) drives Debian's Chromium over a pipe (``executable_path``, the
browser settings of ``.ci/browser_test.py``, shared in ``.ci/_browser.py``), so no
browser is downloaded. The JavaScript run in JupyterLab's page is in ``.ci/js/lab/``.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _browser import CHROMIUM, console_error, launch, offline, read_js  # noqa: E402 (shared)

REPO = Path(__file__).resolve().parents[1]  # the checkout whose package is tested
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
# Code that makes a live widget without a saved view (e.g. a chapter never executed).
USES_IPYWIDGETS = re.compile(r"\bipywidgets\b|\binteract(?:ive|_manual)?\s*\(|\bwidgets\.\w+\(")
# Lines of the server's log (which holds the kernels' stderr) that mean an exception.
LOG_ERROR = re.compile(r"Traceback \(most recent call last\)|Exception in comm_msg|"
                       r"\[E [0-9-]+ [0-9:.]+ ")
# MyST left as text in a rendered markdown cell (math and code blocks are not looked at):
# roles, directives (in backtick, tilde or colon fences), substitutions, targets
# "(label)=", and jupyterlab-myst's own mark for a directive it does not know.
RAW_MYST = re.compile(r"\{prf:|\{exercise|\{solution|\{eq\}|\{ref\}|\{doc\}|\{numref\}|"
                      r"\{cite(?::\w+)?\}|\{math\}|\{figure\}|\{admonition\}|\{\{|\}\}|"
                      r"(?:```|~~~|:::)\s*\{[\w:-]+\}|\([\w:.-]+\)=|Unknown Directive")
# Where the book defines a label: a target "(label)=", a directive's :label: or :name:,
# an equation "$$ ... $$ (label)", and a figure's name in a code cell's metadata (myst-nb).
LABEL_DEFINITION = re.compile(r"^\(([\w:.-]+)\)=[ \t]*$|^[ \t]*:(?:label|name):[ \t]*(\S+)|"
                              r"\$\$[ \t]*\(([\w:.-]+)\)[ \t]*$", re.M)
# jupyterlab-myst's console.error for a reference it cannot resolve yet (it renders cell
# by cell, then resolves over the notebook) or at all (a label of another chapter): what
# stays unresolved is checked in the page instead (check_markdown).
XREF_NOT_FOUND = re.compile(r"^Cross reference target was not found: \S+$")

# JavaScript run in JupyterLab's page, from .ci/js/lab/ (each file says what it does);
# the ones on the open notebook start from its panel, window.jupyterapp's current widget.
# The state of the notebook named `name` (loading, or its kernel's status); "Run All
# Cells" started (outcome in window.__labTestRun) and its progress and errors.
JS_NOTEBOOK_STATE = read_js("js/lab/notebook-state.js")
JS_START_RUN = read_js("js/lab/start-run.js")
JS_RUN_STATUS = read_js("js/lab/run-status.js")
# The widget views of the notebook marked data-lab-test-widget=k; whether widget k is
# rendered; what its output area shows; its control to move (marked
# data-lab-test-control=k) and that control's value.
JS_TAG_WIDGETS = read_js("js/lab/tag-widgets.js")
JS_WIDGET_RENDERED = read_js("js/lab/widget-rendered.js")
JS_OUTPUT_SNAPSHOT = read_js("js/lab/output-snapshot.js")
JS_PICK_CONTROL = read_js("js/lab/pick-control.js")
JS_CONTROL_VALUE = read_js("js/lab/control-value.js")
# The kernel's errors, stderr and widget redraws (window.__labTestIopub), and a trace of
# the widget traffic (window.__labTestTrace, window.__labTestCommAt), read since entry n.
JS_HOOK_KERNEL = read_js("js/lab/hook-kernel.js")
JS_IOPUB_SINCE = "(n) => (window.__labTestIopub || []).slice(n)"
JS_HOOK_TRACE = read_js("js/lab/hook-trace.js")
JS_TRACE_SINCE = "(n) => (window.__labTestTrace || []).slice(n)"
JS_COMM_QUIET = "() => (performance.now() - (window.__labTestCommAt || 0)) / 1000"
# The notebook's entries in JupyterLab's log console (null when it cannot be reached),
# and the note of each client-side explorer of lossless.explore.
JS_LOG_CONSOLE = read_js("js/lab/log-console.js")
JS_EXPLORER_NOTES = read_js("js/lab/explorer-notes.js")
# The markdown cells of the open notebook as rendered: renderer, text, unresolved marks.
JS_MARKDOWN_CELLS = read_js("js/lab/markdown-cells.js")


@dataclass
class ChapterResult:
    """What was checked in one chapter and what went wrong."""

    name: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stats: dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0
    escaped: int = 0  # log console entries already reported by a widget's check

    @property
    def ok(self) -> bool:
        return not self.problems


def chapters_of(book: Path) -> list[tuple[str, int]]:
    """Every notebook of ``book``: (file name, widget views expected), 0 for a chapter
    without live widgets.

    The count is that of the committed widget views; a notebook whose code uses
    ipywidgets without any saved view expects at least one.
    """
    found = []
    for path in sorted(book.glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        views, uses = 0, False
        for cell in nb.get("cells", []):
            if cell.get("cell_type") != "code":
                continue
            source = "".join(cell.get("source", []))
            uses = uses or bool(USES_IPYWIDGETS.search(source))
            views += sum(WIDGET_MIME in out.get("data", {}) for out in cell.get("outputs", []))
        found.append((path.name, max(views, 1) if views or uses else 0))
    return found


def front_matter_problems(path: Path, config: Path) -> list[str]:
    """The math macros of a chapter's front matter against the book's: jupyterlab-myst
    typesets with KaTeX, which reads the macros of the notebook's first markdown cell
    (YAML front matter, in a cell tagged ``remove-cell``, which the book leaves out);
    the book's MathJax reads ``mathjax3_config`` in ``config`` (``_config.yml``)."""
    import yaml

    if not config.is_file():
        return []
    tex = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("sphinx", {}).get(
        "config", {}).get("mathjax3_config", {}).get("tex", {})
    expected = {f"\\{name}": value for name, value in (tex.get("macros") or {}).items()}
    if not expected:
        return []
    cells = [c for c in json.loads(path.read_text(encoding="utf-8")).get("cells", [])
             if c.get("cell_type") == "markdown"]
    source = "".join(cells[0].get("source", [])) if cells else ""
    match = re.match(r"---\n(.*?)\n---\s*$", source, re.S)
    if not match:
        return ["front matter: the first markdown cell is not the YAML front matter with the "
                f"math macros of {config.name} (a cell tagged remove-cell)"]
    problems = []
    if "remove-cell" not in cells[0].get("metadata", {}).get("tags", []):
        problems.append("front matter: its cell is not tagged remove-cell (the book shows it)")
    math = (yaml.safe_load(match.group(1)) or {}).get("math") or {}
    if math != expected:
        differ = sorted(k for k in set(math) | set(expected) if math.get(k) != expected.get(k))
        problems.append(f"front matter: math macros differ from {config.name}'s "
                        f"mathjax3_config: {differ}")
    return problems


def book_labels(book: Path) -> dict[str, set[str]]:
    """The labels each page of ``book`` defines (notebooks and .md pages): file name ->
    labels, for telling a reference to another chapter from a broken one."""
    labels: dict[str, set[str]] = {}
    for path in sorted(book.glob("*.ipynb")) + sorted(book.glob("*.md")):
        found: set[str] = set()
        if path.suffix == ".ipynb":
            texts = []
            for cell in json.loads(path.read_text(encoding="utf-8")).get("cells", []):
                source = "".join(cell.get("source", []))
                if cell.get("cell_type") == "markdown":
                    texts.append(source)
                name = cell.get("metadata", {}).get("mystnb", {}).get("figure", {}).get("name")
                if name:
                    found.add(name)
        else:
            texts = [path.read_text(encoding="utf-8")]
        for text in texts:
            found.update(next(g for g in m.groups() if g)
                         for m in LABEL_DEFINITION.finditer(text))
        labels[path.name] = found
    return labels


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """JupyterLab on 127.0.0.1 over a temporary copy of ``book``, stopped by :meth:`stop`
    (registered with atexit; SIGTERM and SIGHUP are turned into SystemExit)."""

    def __init__(self, book: Path, startup_timeout: float = 120.0,
                 disabled_extensions: tuple[str, ...] = ()) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="lossless-lab-test-"))
        self.root = self.tmp / "book"
        shutil.copytree(book, self.root, ignore=shutil.ignore_patterns(
            ".ipynb_checkpoints", "__pycache__", "_build", ".jupyter_cache"))
        self.token = secrets.token_hex(24)
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}/"
        self.log_path = self.tmp / "server.log"
        self.proc: subprocess.Popen | None = None
        self.startup_timeout = startup_timeout
        self.disabled_extensions = disabled_extensions
        self._stopped = False

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("MPLBACKEND", None)  # the kernels must use the inline backend
        for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                         ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython")):
            env[var] = str(self.tmp / sub)
            (self.tmp / sub).mkdir()
        env.pop("JUPYTER_PATH", None)
        env.pop("JUPYTER_CONFIG_PATH", None)
        # The kernels import this checkout's package (the copy of the book is elsewhere;
        # chapters find benchmarks/ through lossless.__file__).
        env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        # No "news?" toast over the notebook, no autosave of the copy.
        settings = self.tmp / "config" / "lab" / "user-settings" / "@jupyterlab"
        for rel, value in (("apputils-extension/notification", {"fetchNews": "false",
                                                                "checkForUpdates": False}),
                           ("docmanager-extension/plugin", {"autosave": False}),
                           # every cell in the page (no virtual scrolling): the MyST check
                           # reads every rendered markdown cell
                           ("notebook-extension/tracker", {"windowingMode": "none"})):
            path = settings / f"{rel}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(value))
        if self.disabled_extensions:  # in this server's config only, not the venv's
            page_config = self.tmp / "config" / "labconfig" / "page_config.json"
            page_config.parent.mkdir(parents=True, exist_ok=True)
            page_config.write_text(json.dumps(
                {"disabledExtensions": {name: True for name in self.disabled_extensions}}))
        return env

    def start(self) -> None:
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
               f"--ServerApp.root_dir={self.root}", "--ServerApp.terminals_enabled=False",
               "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LabApp.extension_manager=readonly"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--ServerApp.allow_root=True")
        env = self._env()
        atexit.register(self.stop)
        with open(self.log_path, "wb") as log:
            # Its own process group, so that stop() reaches everything it started
            # (kernels start their own sessions: stop() finds those by connection file).
            self.proc = subprocess.Popen(cmd, cwd=self.root, env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited ({self.proc.returncode}):\n"
                                   + self.log_tail())
            try:
                if self.api("GET", "api/status", timeout=5).get("started"):
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.5)
        raise RuntimeError(f"JupyterLab did not answer within {self.startup_timeout:.0f} s:\n"
                           + self.log_tail())

    def api(self, method: str, path: str, timeout: float = 10.0) -> dict:
        request = urllib.request.Request(self.base + path, method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else {}

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_since(self, offset: int) -> str:
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_since(0).splitlines()[-lines:])

    def _kernel_pids(self) -> list[int]:
        """Kernels of this server: their command line names its runtime folder."""
        marker = str(self.tmp / "runtime").encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if marker in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
        return pids

    def stop(self) -> None:
        """Shut the server and its kernels down (API, then SIGTERM, then SIGKILL)."""
        if self._stopped:
            return
        self._stopped = True
        proc = self.proc
        if proc is not None and proc.poll() is None:
            try:  # shuts every kernel down, then the server
                self.api("POST", "api/shutdown", timeout=10)
            except (OSError, ValueError):
                pass
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
                    try:
                        os.killpg(proc.pid, sig)
                        proc.wait(timeout=wait)
                        break
                    except ProcessLookupError:
                        break
                    except subprocess.TimeoutExpired:
                        continue
        if proc is not None:  # the group may hold children even if the server is gone
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for pid in self._kernel_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks


def shot_name(chapter: str, suffix: str = "") -> str:
    return chapter.removesuffix(".ipynb") + suffix + ".png"


def poll(page, js: str, arg: object, done, timeout: float, interval: float = 0.5):
    """Evaluates ``js(arg)`` until ``done(value)``; returns (finished, last value)."""
    deadline = time.monotonic() + timeout
    value = None
    while True:
        value = page.evaluate(js, arg)
        if done(value):
            return True, value
        if time.monotonic() >= deadline:
            return False, value
        time.sleep(interval)


def run_all_cells(page, result: ChapterResult, timeout: float) -> bool:
    """Runs every cell of the open notebook; True when all of them ran without error."""
    page.evaluate(JS_START_RUN)
    started = time.monotonic()
    last_print = started
    while True:
        status = page.evaluate(JS_RUN_STATUS)
        run = status["run"] or {}
        if run.get("done") and status["kernel"] == "idle":
            break
        if status["kernel"] in ("dead", "unknown", "none") or "restart" in status["kernel"]:
            result.problems.append(f"kernel {status['kernel']} during the run "
                                   f"({status['executed']}/{status['cells']} cells ran)")
            return False
        elapsed = time.monotonic() - started
        if elapsed > timeout:
            result.problems.append(f"run not finished after {timeout:.0f} s "
                                   f"({status['executed']}/{status['cells']} cells ran)")
            return False
        if time.monotonic() - last_print >= 15:
            print(f"       ... {status['executed']}/{status['cells']} cells, "
                  f"{elapsed:.0f} s, kernel {status['kernel']}", flush=True)
            last_print = time.monotonic()
        time.sleep(1.0)
    result.stats["cells"] = status["cells"]
    result.stats["run s"] = round(time.monotonic() - started, 1)
    result.problems += [f"cell error: {e}" for e in status["errors"]]
    result.notes += [f"stderr: {e}" for e in status["stderr"]]
    if not run.get("ok"):
        result.problems.append("Run All Cells did not succeed"
                               + (f": {run['error']}" if run.get("error") else ""))
    if status["executed"] != status["cells"]:
        result.problems.append(f"only {status['executed']} of {status['cells']} code cells ran")
    return result.ok


def move_control(page, k: int, control: dict) -> None:
    """Moves the control of widget k that JS_PICK_CONTROL marked, as a reader would."""
    el = page.locator(f'[data-lab-test-control="{k}"]')
    el.scroll_into_view_if_needed()
    if control["kind"] == "slider":
        el.press("ArrowLeft" if control["atMax"] else "ArrowRight")
    elif control["kind"] == "dropdown":
        n, i = el.evaluate("e => [e.options.length, e.selectedIndex]")
        el.select_option(index=(i + 1) % n)
    elif control["kind"] == "toggle":
        el.locator("button:not(.mod-active)").first.click()
    else:
        el.click()


NO_REDRAW_QUIET = 20.0
KERNEL_GONE = ("dead", "restarting", "autorestarting", "unknown", "no kernel")


def settle(page, chapter: str, k: int, timeout: float, quiet: float = 5.0
           ) -> tuple[bool, dict | None]:
    """Waits until widget k's output has not changed for ``quiet`` seconds with the
    kernel idle and no widget message either way (redraws queued by the display itself,
    e.g. a slider view that sends back its value snapped to its step, must be over
    before a control is moved, as a reader would wait); returns (settled, snapshot)."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while True:
        snap = page.evaluate(JS_OUTPUT_SNAPSHOT, k)
        idle = page.evaluate(JS_NOTEBOOK_STATE, chapter) == "idle"
        now = time.monotonic()
        if not idle or snap != last:
            last, since = (snap if idle else None), now
        elif now - since >= quiet and page.evaluate(JS_COMM_QUIET) >= quiet:
            return True, snap
        if now >= deadline:
            return False, snap
        time.sleep(0.5)


def wait_redraw(page, chapter: str, k: int, before: dict, n_iopub: int, timeout: float
                ) -> tuple[str, dict | None]:
    """Waits until widget k's output differs from ``before`` and holds still with the
    kernel idle (two equal looks 0.5 s apart, no widget message for 2 s). Returns
    ("redrawn" | "error" | "no redraw" | "kernel <status>" | "timeout", last snapshot);
    "error" when the kernel published an error since message ``n_iopub`` and the output
    then stayed as it was; "no redraw" when the output stayed as it was with the kernel
    idle and no widget message for ``NO_REDRAW_QUIET`` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        snap = page.evaluate(JS_OUTPUT_SNAPSHOT, k)
        state = page.evaluate(JS_NOTEBOOK_STATE, chapter)
        if state in KERNEL_GONE:
            return f"kernel {state}", snap
        idle = state == "idle"
        quiet = page.evaluate(JS_COMM_QUIET)
        if idle and snap is not None and snap == last and quiet >= 2.0:
            if snap["html"] != before["html"]:
                return "redrawn", snap
            if any(m["error"] for m in page.evaluate(JS_IOPUB_SINCE, n_iopub)):
                return "error", snap
            if quiet >= NO_REDRAW_QUIET:  # nothing is coming: no need to wait any longer
                return "no redraw", snap
        if time.monotonic() >= deadline:
            return "timeout", snap
        last = snap if idle else None
        time.sleep(0.5)


def _last_line(traceback: str) -> str:
    """The exception line of a traceback (its last non-empty line)."""
    lines = [line.strip() for line in traceback.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def check_widget(page, server: LabServer, chapter: str, k: int, shots: Path,
                 result: ChapterResult, timeout: float) -> tuple[bool, bool]:
    """Moves one control of widget k and checks the redraw; returns (the control moved,
    the output redrew); a problem, if any, is in ``result``."""
    name = f"widget {k}"
    rendered = page.evaluate(JS_WIDGET_RENDERED, k)
    if not rendered["ok"]:
        result.problems.append(f"{name}: not rendered by the widget manager (shows "
                               f"{rendered.get('mime') or 'widget'}: {rendered.get('text', '')!r})")
        return False, False
    widget = page.locator(f'[data-lab-test-widget="{k}"]')
    widget.scroll_into_view_if_needed()
    n_start = len(page.evaluate(JS_IOPUB_SINCE, 0))
    settled, before = settle(page, chapter, k, timeout)
    if not settled or before is None:
        result.problems.append(f"{name}: still redrawing {timeout:.0f} s after the run, "
                               "with no control moved")
        return False, False
    unasked = sum(m["clear"] for m in page.evaluate(JS_IOPUB_SINCE, n_start))
    if unasked:
        result.notes.append(f"{name}: {unasked} redraw(s) with no control moved (after the "
                            "widget was displayed)")
    widget.screenshot(path=str(shots / shot_name(chapter, f"__widget{k}-before")))
    if not before["areas"]:
        result.problems.append(f"{name}: no Output widget whose redraw could be watched")
        return False, False
    if before["errors"]:
        result.problems.append(f"{name}: error shown before any move: "
                               f"{_last_line(before['errors'][0])}")
    control = page.evaluate(JS_PICK_CONTROL, k)
    if control is None:
        result.problems.append(f"{name}: no slider, dropdown, toggle or checkbox to move")
        return False, False
    what = f"{name}: {control['kind']} {control['label'] or '(no label)'}"
    value = page.evaluate(JS_CONTROL_VALUE, k)
    log_offset = server.log_size()
    n_iopub = len(page.evaluate(JS_IOPUB_SINCE, 0))
    n_trace = len(page.evaluate(JS_TRACE_SINCE, 0))
    logged = page.evaluate(JS_LOG_CONSOLE, chapter)
    started = time.monotonic()
    move_control(page, k, control)
    new_value = page.evaluate(JS_CONTROL_VALUE, k)
    if new_value == value:
        result.problems.append(f"{what}: the control did not move (value {value!r})")
        return False, False
    moved = f"{what} {value} -> {new_value}"
    outcome, after = wait_redraw(page, chapter, k, before, n_iopub, timeout)
    seconds = time.monotonic() - started
    widget.scroll_into_view_if_needed()
    widget.screenshot(path=str(shots / shot_name(chapter, f"__widget{k}-after")))
    published = page.evaluate(JS_IOPUB_SINCE, n_iopub)
    raised = [m for m in published if m["error"]]
    escaped = [] if logged is None else page.evaluate(JS_LOG_CONSOLE, chapter)[len(logged):]
    result.escaped += len(escaped)
    kernel_log = [line for line in server.log_since(log_offset).splitlines()
                  if LOG_ERROR.search(line)]
    result.notes += [f"{moved}: stderr {_last_line(m['text'])}" for m in published
                     if not m["error"] and not m["clear"]]
    redraws = sum(m["clear"] for m in published)
    if redraws > 1:
        result.notes.append(f"{moved}: {redraws} redraws for one move")
    problems = []
    if raised:
        problems.append(f"the callback raised (kernel answer to {raised[0]['parent'] or '?'}): "
                        f"{_last_line(raised[0]['text'])}")
    elif after and after["errors"]:
        problems.append(f"the output shows an error: {_last_line(after['errors'][0])}")
    if kernel_log:
        problems.append(f"kernel error in the server log: {kernel_log[0][:300]}")
    if escaped:
        problems.append(f"{len(escaped)} output(s) went to JupyterLab's log console instead "
                        f"of the widget: " + "; ".join(e[:120] for e in escaped[:4]))
    if after is None:
        problems.append("the widget's output vanished")
    elif outcome.startswith("kernel"):
        problems.append(f"{outcome} after the move")
    elif outcome != "redrawn":
        problems.append("the output did not redraw" + (
            f" within {timeout:.0f} s" if outcome == "timeout" else
            f" (kernel idle, no widget message for {NO_REDRAW_QUIET:.0f} s)"
            if outcome == "no redraw" else ""))
    else:
        changed = [part for part, key in (("figure", "images"), ("printed text", "text"))
                   if before[key] != after[key]]
        if before["images"] and not after["images"]:
            problems.append("the figure disappeared")
        elif len(after["images"]) != len(before["images"]):
            problems.append(f"{len(before['images'])} figure(s) before, "
                            f"{len(after['images'])} after (drawn twice?)")
        elif not changed:
            problems.append("redrawn, but with the same figure and the same text")
    if problems:
        result.problems += [f"{moved}: {p}" for p in problems]
        first = max(0, n_trace - 6)  # with the last messages before the move
        trace = page.evaluate(JS_TRACE_SINCE, first)
        trace.insert(n_trace - first, "-- the move --")
        result.notes.append(f"{moved}: widget messages around the move (s, > sent [id], "
                            "< received [id of the request answered]):"
                            + "".join(f"\n           {line[:160]}" for line in trace[:70])
                            + (f"\n           ... {len(trace) - 70} more"
                               if len(trace) > 70 else ""))
        return True, outcome == "redrawn"
    print(f"       {moved}: {' and '.join(changed)} changed in {seconds:.1f} s", flush=True)
    return True, True


def check_markdown(page, chapter: str, labels: dict[str, set[str]], result: ChapterResult,
                   timeout: float = 90.0) -> None:
    """Waits until every markdown cell of the open notebook is rendered and holds still
    (jupyterlab-myst renders cell by cell, then resolves the references over the
    notebook), then fails the chapter on MyST left as text (:data:`RAW_MYST`, or a
    directive shown as a code block), on a cell not rendered, and on a reference that
    jupyterlab-myst could not resolve to a label defined nowhere in the book."""
    deadline = time.monotonic() + timeout
    cells, last = None, None
    while True:
        cells = page.evaluate(JS_MARKDOWN_CELLS)
        done = cells is not None and all(c["renderer"] or c["empty"] for c in cells)
        if (done and cells == last) or time.monotonic() >= deadline:
            break
        last = cells
        time.sleep(1.0)
    if cells is None:
        result.problems.append("markdown: the notebook is not the current widget")
        return
    result.stats["markdown"] = len(cells)
    unrendered = [c["index"] for c in cells if not c["renderer"] and not c["empty"]]
    if unrendered:
        result.problems.append(f"markdown: {len(unrendered)} cell(s) not rendered after "
                               f"{timeout:.0f} s (cells {unrendered[:10]})")
    renderers = Counter(c["renderer"] for c in cells if c["renderer"])
    result.stats["renderer"] = "/".join(sorted(renderers)) or "-"
    raw = []
    for c in cells:
        found = [(m.group(0), c["text"][max(0, m.start() - 30):m.end() + 30])
                 for m in RAW_MYST.finditer(c["text"])]
        found += [(f"```{f.split('language-', 1)[1]}", "(a directive shown as code)")
                  for f in c["fences"]]
        if found:
            raw.append((c, found))
    if raw:
        renderer = ("JupyterLab's default markdown renderer, not jupyterlab-myst"
                    if renderers.get("default") else "jupyterlab-myst")
        result.problems.append(
            f"markdown: raw MyST in {len(raw)} of {len(cells)} rendered cell(s) (renderer: "
            f"{renderer}): " + "; ".join(
                f"cell {c['index']}: {sorted({m for m, _ in found})[:4]}, e.g. "
                f"{found[0][1]!r}" for c, found in raw[:6])
            + (f"; ... {len(raw) - 6} more cell(s)" if len(raw) > 6 else ""))
    own = labels.get(chapter, set())
    elsewhere = set().union(*(v for k, v in labels.items() if k != chapter))
    xrefs = Counter(x for c in cells for x in c["xrefs"])
    broken = sorted(x for x in xrefs if x not in own and x not in elsewhere)
    if broken:
        result.problems.append(f"markdown: reference(s) to no label of the book: {broken[:10]}")
    if xrefs:
        other = sorted(x for x in xrefs if x not in own and x in elsewhere)
        here = sorted(x for x in xrefs if x in own)
        result.notes.append(
            f"markdown: {sum(xrefs.values())} reference(s) left unresolved by jupyterlab-myst "
            f"(it sees one notebook): {len(other)} label(s) of other pages"
            + (f", {len(here)} of this chapter ({', '.join(here[:4])}"
               f"{', ...' if len(here) > 4 else ''}: figures named in code-cell metadata)"
               if here else ""))
    cites = {x for c in cells for x in c["cites"]}
    if cites:
        result.notes.append(f"markdown: {len(cites)} citation key(s) shown as keys "
                            "(jupyterlab-myst does not read references.bib)")


def check_chapter(context, server: LabServer, chapter: str, expected: int, shots: Path,
                  timeout: float, redraw_timeout: float,
                  labels: dict[str, set[str]]) -> ChapterResult:
    """Opens one chapter in its own workspace, checks its rendered markdown and, when it
    has live widgets (``expected`` > 0), runs it and moves each widget."""
    result = ChapterResult(chapter)
    result.problems += front_matter_problems(server.root / chapter, REPO / "_config.yml")
    started = time.monotonic()
    page = context.new_page()
    page.set_default_timeout(60_000)
    console: list[str] = []

    def on_console(msg) -> None:
        if (line := console_error(msg)) is not None:
            lines = msg.text.strip().splitlines()
            if lines and all(XREF_NOT_FOUND.match(x.strip()) for x in lines):
                return  # jupyterlab-myst's log; check_markdown checks what stays unresolved
            console.append(line)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: console.append(f"uncaught: {str(exc)[:300]}"))
    workspace = "lab-test-" + re.sub(r"[^A-Za-z0-9_-]", "-", chapter.removesuffix(".ipynb"))
    url = f"{server.base}lab/workspaces/{workspace}/tree/{quote(chapter)}?token={server.token}"
    log_offset = server.log_size()
    try:
        page.goto(url, wait_until="domcontentloaded", timeout=120_000)
        ready, state = poll(page, JS_NOTEBOOK_STATE, chapter, lambda s: s == "idle", 180)
        if not ready:
            result.problems.append(f"notebook or kernel not ready after 180 s: {state}")
            return result
        check_markdown(page, chapter, labels, result)
        if not expected:  # no live widget: the rendered chapter as committed is enough
            page.screenshot(path=str(shots / shot_name(chapter)))
            return result
        page.evaluate(JS_HOOK_KERNEL)
        page.evaluate(JS_HOOK_TRACE)
        if not run_all_cells(page, result, timeout):
            page.screenshot(path=str(shots / shot_name(chapter)))
            return result
        widgets = page.evaluate(JS_TAG_WIDGETS, WIDGET_MIME)
        result.stats["widgets"] = len(widgets)
        if len(widgets) < expected:
            result.problems.append(f"{len(widgets)} widget view(s) after the run, "
                                   f"{expected} in the committed notebook")
        missing = [w for w in widgets if not w["attached"]]
        if missing:
            result.problems.append(f"widget output(s) of cell(s) {[w['cell'] for w in missing]}"
                                   " not in the page")
        live = [k for k, w in enumerate(widgets) if w["attached"]]
        # The widget manager renders asynchronously: give it time, bounded.
        poll(page, "(ks) => ks.every(k => (" + JS_WIDGET_RENDERED + ")(k).ok)", live,
             bool, 60)
        explorers = page.evaluate(JS_EXPLORER_NOTES)
        result.stats["explorers"] = len(explorers)
        for e in explorers:
            if "JupyterLab" not in e["note"]:
                result.problems.append(f"explorer {e['id']}: its script did not run in "
                                       f"JupyterLab (note: {e['note'][:80]!r})")
        moved = redrawn = 0
        for k in live:
            did_move, did_redraw = check_widget(page, server, chapter, k, shots, result,
                                                redraw_timeout)
            moved += did_move
            redrawn += did_redraw
        result.stats["moved"] = moved
        result.stats["redrawn"] = redrawn
        logged = page.evaluate(JS_LOG_CONSOLE, chapter)
        if logged is None:
            result.notes.append("JupyterLab's log console could not be read: outputs that "
                                "escaped a widget were not looked for")
        elif len(logged) > result.escaped:  # e.g. a redraw at display, before any move
            result.problems.append(
                f"{len(logged) - result.escaped} output(s) in JupyterLab's log console (outputs "
                "no cell and no Output widget took) besides those reported above: "
                + "; ".join(e[:120] for e in logged[:4]))
        if live:  # the page with the (moved) first widget in view
            page.locator(f'[data-lab-test-widget="{live[0]}"]').scroll_into_view_if_needed()
        page.screenshot(path=str(shots / shot_name(chapter)))
    except Exception as exc:  # noqa: BLE001 - one chapter's failure must not stop the run
        result.problems.append(f"could not check the chapter: {type(exc).__name__}: "
                               f"{str(exc).splitlines()[0][:300]}")
    finally:
        try:  # free the kernel's memory before the next chapter
            page.evaluate("async () => { const w = window.jupyterapp.shell.currentWidget;"
                          " if (w && w.sessionContext) await w.sessionContext.shutdown(); }")
        except Exception:  # noqa: BLE001 - the server stops them all at the end anyway
            pass
        page.close()
        for message, count in Counter(console).items():
            result.problems.append(f"console: {message}" + (f" ({count}x)" if count > 1 else ""))
        kernel_log = [line for line in server.log_since(log_offset).splitlines()
                      if LOG_ERROR.search(line)]
        if kernel_log and not any("kernel error in the server log" in p for p in result.problems):
            result.problems.append(f"server log: {kernel_log[0][:300]}")
        result.seconds = time.monotonic() - started
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*",
                        help="notebook file names to test (default: every one)")
    parser.add_argument("--book", type=Path, default=Path("book"),
                        help="the folder of the chapters (default: book); a copy is served")
    parser.add_argument("--screenshots", type=Path, default=Path("_build/lab-screenshots"),
                        help="where to save the screenshots (default: _build/lab-screenshots)")
    parser.add_argument("--chromium", default=CHROMIUM, help=f"browser binary ({CHROMIUM})")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds allowed to run all cells of one chapter (default 900)")
    parser.add_argument("--redraw-timeout", type=float, default=300.0,
                        help="seconds allowed for one widget to redraw (default 300)")
    parser.add_argument("--markdown-only", action="store_true",
                        help="only check the rendered markdown of each chapter (run none)")
    parser.add_argument("--disable-extension", action="append", default=[], metavar="NAME",
                        help="disable this JupyterLab extension in the test's server (its "
                             "own config; e.g. jupyterlab-myst, to see the MyST check fail)")
    args = parser.parse_args(argv)

    book = args.book.resolve()
    if not book.is_dir():
        print(f"lab-test: no folder {book}", file=sys.stderr)
        return 2
    if not Path(args.chromium).is_file():
        print(f"lab-test: no browser at {args.chromium} (apt-get install chromium)",
              file=sys.stderr)
        return 2
    chapters = chapters_of(book)
    labels = book_labels(book)
    if args.chapters:
        unknown = set(args.chapters) - {name for name, _ in chapters}
        if unknown:
            print(f"lab-test: not a notebook under {book}: {sorted(unknown)}",
                  file=sys.stderr)
            return 2
        chapters = [(n, e) for n, e in chapters if n in args.chapters]
    if args.markdown_only:
        chapters = [(n, 0) for n, _ in chapters]
    from playwright.sync_api import sync_playwright  # after the cheap checks

    shots = args.screenshots.resolve()
    if shots.exists():
        shutil.rmtree(shots)
    shots.mkdir(parents=True)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)

    started = time.monotonic()
    print(f"lab-test: {len(chapters)} chapter(s) in {book}, rendered markdown checked in "
          f"each, {sum(e > 0 for _, e in chapters)} run with live widgets: "
          f"{', '.join(n + (' (run)' if e else '') for n, e in chapters) or 'none'}",
          flush=True)
    if args.disable_extension:
        print(f"lab-test: disabled in the test's JupyterLab: "
              f"{', '.join(args.disable_extension)}", flush=True)
    server = LabServer(book, disabled_extensions=tuple(args.disable_extension))
    results: list[ChapterResult] = []
    foreign: list[str] = []
    profile = tempfile.mkdtemp(prefix="lossless-chromium-")
    try:
        server.start()
        print(f"lab-test: JupyterLab at {server.base} (token in the URL), serving a copy in "
              f"{server.root}", flush=True)
        origin = server.base.rstrip("/")
        with sync_playwright() as pw:
            context = launch(pw, profile, args.chromium, 60_000)
            offline(context, origin,
                    lambda request: foreign.append(f"{request.method} {request.url}"))
            for chapter, expected in chapters:
                print(f"  {chapter}: " + ("checking the markdown, running all cells"
                                          if expected else "checking the markdown"), flush=True)
                n_foreign = len(foreign)
                result = check_chapter(context, server, chapter, expected, shots, args.timeout,
                                       args.redraw_timeout, labels)
                result.problems += [f"blocked request to a foreign host: {r}"
                                    for r in foreign[n_foreign:]]
                results.append(result)
                flag = "ok  " if result.ok else "FAIL"
                stats = ", ".join(f"{k} {v}" for k, v in result.stats.items())
                print(f"  {flag} {chapter}  ({stats}; {result.seconds:.1f} s)", flush=True)
                for problem in result.problems:
                    print(f"       - {problem}", flush=True)
                for note in result.notes:
                    print(f"       note: {note}", flush=True)
            context.close()
    except RuntimeError as exc:  # the server did not start
        print(f"lab-test: {exc}", file=sys.stderr)
        return 1
    finally:
        server.stop()
        shutil.rmtree(profile, ignore_errors=True)

    failed = [r for r in results if not r.ok]
    print(f"lab-test: {len(results)} chapter(s) in {time.monotonic() - started:.0f} s, "
          f"screenshots in {shots}")
    for r in results:
        print(f"lab-test:   {r.name}: {r.stats.get('markdown', 0)} markdown cell(s) "
              f"({r.stats.get('renderer', '-')}), {r.stats.get('widgets', 0)} widget(s), "
              f"{r.stats.get('moved', 0)} control(s) moved, {r.stats.get('redrawn', 0)} "
              f"redraw(s) seen, run all {r.stats.get('run s', '-')} s, "
              f"{r.seconds:.0f} s in all{'' if r.ok else ' - FAILED'}")
    if foreign:
        hosts = sorted({urlsplit(req.split(' ', 1)[1]).netloc for req in foreign})
        print(f"lab-test: foreign hosts requested: {', '.join(hosts)}")
    print(f"lab-test: {len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
