#!/usr/bin/env python3
"""Check every page of the built book in headless Chromium, offline.

Serves ``_build/html`` on 127.0.0.1 (a ``http.server`` on a free port, started and
stopped here), opens every HTML page of the build in Debian's ``/usr/bin/chromium``
through Playwright, and fails on

- an HTTP error (the page or any resource it loads) or a broken internal link or anchor,
- a console error or an uncaught JavaScript exception,
- an image that did not load (``naturalWidth == 0``),
- math left untypeset (raw ``$$``, ``\\(``, ``\\[`` or ``\\begin{`` in the visible text,
  a Sphinx ``.math`` element without an ``mjx-container``, or a MathJax error),
- a saved ipywidgets view that the embedded widget manager did not render,
- any request to a host other than the local server (logged and blocked),
- a client-side explorer (``.lossless-explorer``, from ``lossless.explore``) that does
  not render, or a control of it that does not move the picture: for every control
  listed in the explorer's ``data-controls`` (two values, and the values of other
  controls under which it matters), the test sets each value through DOM events
  (``input``/``change``, as a reader's browser would) and requires both the rendered
  marks and the printed readout to differ between the two values,
- a display equation wider than the text column at a 1,280 × 900 window (after MathJax
  has typeset: the ``mjx-container[display="true"]``'s drawn width against the width it
  has, and its box against the article column), each reported with its page, number,
  label and overflow in px. The page is then measured again at 390 × 844 (a phone):
  equations that overflow there are counted, not failed, but each must be in a box
  that scrolls horizontally inside the column (``overflow-x: auto``), else the page
  fails (nothing may be clipped without a scroll bar),
- a code cell's input wider than its box at 1,280 px (outputs wider than theirs are
  counted, not failed: they scroll), and a site title in the sidebar not shown whole.

A full-page screenshot of each page goes to ``--screenshots``, plus the explorer of
the compression chapter in its default state and with the threshold ``s₊`` moved by 0.5
(``*__explorer-default.png``, ``*__explorer-moved.png``). Exit status 0 when every
page passes, 1 otherwise, 2 on a usage error. Usage::

    python .ci/browser_test.py --html _build/html --screenshots _build/screenshots

Playwright (PyPI) drives the browser: its request routing blocks and logs foreign
requests, its console/pageerror/response events and full-page screenshots are what this
test needs, with bounded waits; it talks to Debian's Chromium over a pipe
(``executable_path``), so no browser is downloaded. The server, the browser's launch
and settings and the request blocking are shared with ``lab_test.py`` and
``make_pdf.py`` (``.ci/_browser.py``); the JavaScript run in the page is in
``.ci/js/browser/`` (and ``.ci/js/`` for the shared snippets).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _browser import (  # noqa: E402 (the shared helpers, next to this script)
    CHROMIUM, JS_BROKEN_IMAGES, JS_EAGER_IMAGES, JS_EXPLORERS_RENDERED, JS_IMAGES_SETTLED,
    JS_TWO_FRAMES, JS_WAIT_MATHJAX, console_error, launch, offline, read_js, start_server)

META_REFRESH = re.compile(r"""<meta[^>]+http-equiv=["']?refresh""", re.IGNORECASE)

# Text that must not survive typesetting (outside code, scripts and rendered math).
RAW_MATH_MARKERS = ("$$", "\\(", "\\)", "\\[", "\\]", "\\begin{")

# JavaScript run in the page after load, from .ci/js/browser/ (the shared snippets,
# JS_WAIT_MATHJAX and the image ones, come from _browser). Each returns plain JSON.
JS_MATH_REPORT = read_js("js/browser/math-report.js")
JS_WIDGETS = read_js("js/browser/widgets.js")
JS_EXPLORERS = read_js("js/browser/explorers.js")
# Sets one control of an explorer as a reader would (returns false when no such
# input/option exists); the current value of every bound input (to restore them); what
# the reader sees (the marks and the printed readout).
JS_SET_CONTROL = read_js("js/browser/set-control.js")
JS_CONTROL_VALUES = read_js("js/browser/control-values.js")
JS_EXPLORER_STATE = read_js("js/browser/explorer-state.js")
JS_LINKS_AND_IDS = read_js("js/browser/links-and-ids.js")
# Display equations (and code blocks) wider than the column at the current window width.
JS_EQUATION_FIT = read_js("js/browser/equation-fit.js")
PHONE_VIEWPORT = {"width": 390, "height": 844}


@dataclass
class PageResult:
    """What was checked on one page and what went wrong."""

    path: str
    problems: list[str] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    screenshot: str = ""
    fit: dict = field(default_factory=dict)  # equation-fit reports, by window width

    @property
    def ok(self) -> bool:
        return not self.problems


def discover_pages(root: Path) -> list[str]:
    """Every ``.html`` file of the build, relative, except Sphinx's support folders."""
    pages = []
    for path in sorted(root.rglob("*.html")):
        rel = path.relative_to(root)
        if any(part.startswith(("_", ".")) for part in rel.parts[:-1]):
            continue  # _static, _sources, _images, ... hold assets, not pages
        pages.append(rel.as_posix())
    return pages


def url_to_rel(url: str, base: str) -> str | None:
    """The build-relative path of a local URL (``index.html`` for ``/``), else None."""
    if not url.startswith(base):
        return None
    rel = unquote(urlsplit(url).path)[len(urlsplit(base).path):]
    if rel == "" or rel.endswith("/"):
        rel += "index.html"
    return rel


def screenshot_name(rel: str) -> str:
    return rel.removesuffix(".html").replace("/", "__") + ".png"


def _settle(page) -> None:
    """Two animation frames: vega re-renders on the frame after a signal changes."""
    page.evaluate(JS_TWO_FRAMES)
    page.wait_for_timeout(60)


def check_explorer(page, explorer: dict, shots: Path, rel: str) -> tuple[list[str], int]:
    """Move every control of one explorer; returns (problems, controls that moved)."""
    eid = explorer["id"]
    if not explorer["rendered"]:
        return [f"explorer {eid}: not rendered (vega-embed did not finish)"], 0
    problems: list[str] = []
    moved = 0
    initial = page.evaluate(JS_CONTROL_VALUES, eid)
    default_state = page.evaluate(JS_EXPLORER_STATE, eid)
    if not default_state or not default_state["readout"]:
        return [f"explorer {eid}: no chart or no printed readout"], 0
    if eid == "lossless-compression":
        page.locator(f"#{eid}").scroll_into_view_if_needed()
        page.locator(f"#{eid}").screenshot(
            path=str(shots / screenshot_name(rel).replace(".png", "__explorer-default.png")))

    def restore() -> None:
        for name, value in initial.items():
            page.evaluate(JS_SET_CONTROL, [eid, name, value])
        _settle(page)

    for control in explorer["controls"]:
        name, values, context = control["name"], control["values"], control.get("context", {})
        ok = all(page.evaluate(JS_SET_CONTROL, [eid, k, v]) for k, v in context.items())
        seen = []
        for value in values:
            ok = page.evaluate(JS_SET_CONTROL, [eid, name, value]) and ok
            _settle(page)
            seen.append(page.evaluate(JS_EXPLORER_STATE, eid))
        if not ok:
            problems.append(f"explorer {eid}: no input or option for {name} in {values} "
                            f"(context {context})")
        elif not seen[0] or not seen[1]:
            problems.append(f"explorer {eid}: chart vanished when setting {name}")
        elif seen[0]["marks"] == seen[1]["marks"]:
            problems.append(f"explorer {eid}: {name} = {values[0]} and {values[1]} draw the "
                            f"same marks")
        elif seen[0]["readout"] == seen[1]["readout"]:
            problems.append(f"explorer {eid}: {name} = {values[0]} and {values[1]} print the "
                            f"same readout: {seen[0]['readout'][:120]}")
        elif not seen[0]["readout"].strip() or not seen[1]["readout"].strip():
            problems.append(f"explorer {eid}: {name} = {values}: a state is missing from "
                            f"the grid (empty readout)")
        else:
            moved += 1
        restore()
    back = page.evaluate(JS_EXPLORER_STATE, eid)
    if back != default_state:
        problems.append(f"explorer {eid}: restoring the controls did not restore the picture")
    if eid == "lossless-compression":
        page.evaluate(JS_SET_CONTROL, [eid, "dsp", 0.5])
        _settle(page)
        page.locator(f"#{eid}").screenshot(
            path=str(shots / screenshot_name(rel).replace(".png", "__explorer-moved.png")))
        restore()
    return problems, moved


def _equation_name(eq: dict) -> str:
    """An overflowing display equation as the reader finds it: number, label, TeX."""
    where = " ".join(x for x in (eq["number"], f"#{eq['id']}" if eq["id"] else "") if x)
    if not eq["id"]:
        where = (where + " " if where else "") + f"(unlabelled, in #{eq['section']})"
    return f"{where} `{eq['tex'][:60]}`"


def check_page(context, base: str, rel: str, shots: Path, timeout_ms: int,
               foreign: list[tuple[str, str]], redirects: bool = False,
               ) -> tuple[PageResult, list[str], set[str]]:
    """Open one page and run every check; returns the result, its links and its ids.

    A page that ``redirects`` (meta refresh) is checked where it lands.
    """
    result = PageResult(rel)
    started = time.monotonic()
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    console_errors: list[str] = []
    http_errors: list[str] = []
    failed: list[str] = []

    def on_console(msg) -> None:
        if (line := console_error(msg)) is not None:
            console_errors.append(line)

    def on_response(response) -> None:
        if response.status >= 400:
            http_errors.append(f"HTTP {response.status} {response.url}")

    def on_failed(request) -> None:
        if request.url.startswith(base):  # foreign ones are reported by the router
            failed.append(f"{request.failure} {request.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: console_errors.append(f"uncaught: {str(exc)[:300]}"))
    page.on("response", on_response)
    page.on("requestfailed", on_failed)
    page.on("websocket", lambda ws: foreign.append((rel, f"websocket {ws.url}")))
    links: list[str] = []
    ids: set[str] = set()
    try:
        response = page.goto(base + rel, wait_until="load", timeout=timeout_ms)
        if response is None or response.status >= 400:
            result.problems.append(f"page itself: HTTP {response.status if response else 'none'}")
        elif redirects:  # e.g. the root index.html: a meta refresh to the first page
            page.wait_for_url(lambda url: url != base + rel, timeout=timeout_ms)
            page.wait_for_load_state("load", timeout=timeout_ms)
            result.stats["redirect"] = 1
        try:
            page.wait_for_load_state("networkidle", timeout=min(timeout_ms, 10_000))
        except Exception:  # noqa: BLE001 - a page that keeps polling is still checked
            pass

        # Math: wait for MathJax, then look for leftovers and errors.
        state = page.evaluate(JS_WAIT_MATHJAX, timeout_ms)
        math = page.evaluate(JS_MATH_REPORT, list(RAW_MATH_MARKERS))
        result.stats["math"] = math["nmath"]
        if math["nmath"] and state != "done":
            result.problems.append(f"MathJax did not finish ({state}) on a page with "
                                   f"{math['nmath']} math elements")
        if math["nuntypeset"]:
            result.problems.append(f"{math['nuntypeset']} math element(s) not typeset, e.g. "
                                   f"{math['untypeset']}")
        if math["nraw"]:
            result.problems.append(f"raw TeX in the visible text ({math['nraw']}x), e.g. "
                                   f"{math['raw']}")
        if math["errors"]:
            result.problems.append(f"MathJax errors: {math['errors']}")

        # Images: load lazy ones, wait (bounded), then every one must have pixels.
        page.evaluate(JS_EAGER_IMAGES)
        try:
            page.wait_for_function(JS_IMAGES_SETTLED, timeout=timeout_ms)
        except Exception:  # noqa: BLE001 - reported below as broken images
            pass
        broken = page.evaluate(JS_BROKEN_IMAGES)
        result.stats["images"] = page.evaluate("() => document.images.length")
        if broken:
            result.problems.append(f"{len(broken)} image(s) did not load: {broken[:5]}")

        # Saved ipywidgets views: rendered by the embedded html-manager.
        widgets = page.evaluate(JS_WIDGETS)
        result.stats["widgets"] = widgets["views"]
        if widgets["views"]:
            try:
                page.wait_for_function(
                    "() => (" + JS_WIDGETS + ")().unrendered === 0", timeout=timeout_ms)
            except Exception:  # noqa: BLE001
                widgets = page.evaluate(JS_WIDGETS)
                result.problems.append(
                    f"{widgets['unrendered']} of {widgets['views']} widget view(s) not rendered "
                    f"(state saved: {widgets['state']}, require.js loaded: {widgets['requirejs']})")

        # Client-side explorers: rendered, and every control moves the picture.
        explorers = page.evaluate(JS_EXPLORERS)
        result.stats["explorers"] = len(explorers)
        if explorers:
            try:
                page.wait_for_function(JS_EXPLORERS_RENDERED, timeout=timeout_ms)
            except Exception:  # noqa: BLE001 - reported per explorer below
                pass
        moved = 0
        for explorer in page.evaluate(JS_EXPLORERS):
            problems, n_moved = check_explorer(page, explorer, shots, rel)
            result.problems += problems
            moved += n_moved
        result.stats["controls moved"] = moved

        found = page.evaluate(JS_LINKS_AND_IDS)
        links, ids = found["links"], set(found["ids"])
        result.stats["links"] = len(links)

        # Display equations fit the column at 1,280 px (the test's window).
        wide = page.evaluate(JS_EQUATION_FIT)
        result.fit["desktop"] = wide
        result.stats["display equations"] = wide["equations"]
        for eq in wide["overflowing"]:
            result.problems.append(f"display equation too wide at {wide['viewport']} px: "
                                   f"{_equation_name(eq)} overflows by {eq['overflow']} px "
                                   f"(drawn {eq['drawn']} px, room {eq['available']} px)")
        if wide["code"]:
            result.stats["code blocks too wide"] = wide["code"]
        # Code cells fit the column at 1,280 px (their outputs may scroll).
        for ex in wide["codeInputExamples"]:
            result.problems.append(f"code cell wider than the column at {wide['viewport']} px "
                                   f"by {ex['overflow']} px: {ex['line']!r}")
        if wide["codeInputs"] > len(wide["codeInputExamples"]):
            result.problems.append(f"{wide['codeInputs']} code cells wider than the column "
                                   f"at {wide['viewport']} px in all")
        title = wide.get("title")
        if title is not None and (title["clipped"] or not title["visible"]):
            result.problems.append(f"site title not shown whole in the sidebar: {title}")

        shot = shots / screenshot_name(rel)
        page.evaluate("() => { if (document.activeElement) document.activeElement.blur();"
                      " window.scrollTo(0, 0); }")
        page.screenshot(path=str(shot), full_page=True, timeout=timeout_ms)
        result.screenshot = str(shot)

        # The same at a phone's width: counted, and each must scroll, not be clipped.
        desktop = page.viewport_size
        page.set_viewport_size(PHONE_VIEWPORT)
        _settle(page)
        phone = page.evaluate(JS_EQUATION_FIT)
        page.set_viewport_size(desktop)
        result.fit["phone"] = phone
        result.stats[f"equations wider at {phone['viewport']} px"] = len(phone["overflowing"])
        for eq in phone["overflowing"]:
            if not eq["scrollable"]:
                result.problems.append(
                    f"display equation clipped at {phone['viewport']} px (no horizontal "
                    f"scroll): {_equation_name(eq)}, {eq['overflow']} px")
    except Exception as exc:  # noqa: BLE001 - one bad page must not stop the run
        result.problems.append(f"could not check the page: {type(exc).__name__}: "
                               f"{str(exc).splitlines()[0][:300]}")
    finally:
        page.close()
    result.problems += [f"console: {e}" for e in console_errors]
    result.problems += http_errors
    result.problems += [f"request failed: {f}" for f in failed]
    result.seconds = time.monotonic() - started
    return result, links, ids


def http_status(url: str) -> int:
    """Status of a local URL fetched directly (for link targets that are not pages)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, default=Path("_build/html"),
                        help="the built book (default: _build/html)")
    parser.add_argument("--screenshots", type=Path, default=Path("_build/screenshots"),
                        help="where to save one full-page PNG per page")
    parser.add_argument("--chromium", default=CHROMIUM, help=f"browser binary ({CHROMIUM})")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds allowed for each wait on a page (default 30)")
    args = parser.parse_args(argv)

    root = args.html.resolve()
    if not (root / "index.html").is_file():
        print(f"browser-test: no index.html in {root}; build the book first (make book)",
              file=sys.stderr)
        return 2
    if not Path(args.chromium).is_file():
        print(f"browser-test: no browser at {args.chromium} (apt-get install chromium)",
              file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright  # after the cheap checks

    shots = args.screenshots.resolve()
    if shots.exists():
        shutil.rmtree(shots)
    shots.mkdir(parents=True)
    timeout_ms = int(args.timeout * 1000)

    pages = discover_pages(root)
    server, base = start_server(root)
    origin = base.rstrip("/")
    foreign: list[tuple[str, str]] = []
    current = {"page": "(startup)"}
    results: list[PageResult] = []
    all_links: dict[str, set[str]] = {}  # link target (with fragment) -> pages linking it
    page_ids: dict[str, set[str]] = {}
    link_problems: list[tuple[str, str]] = []  # (source page, problem)
    n_internal = 0
    profile = tempfile.mkdtemp(prefix="lossless-chromium-")
    print(f"browser-test: {len(pages)} pages under {root}, served at {base}")
    try:
        with sync_playwright() as pw:
            context = launch(pw, profile, args.chromium, timeout_ms)
            offline(context, origin, lambda request: foreign.append(
                (current["page"], f"{request.method} {request.url}")))
            for rel in pages:
                current["page"] = rel
                redirects = bool(META_REFRESH.search((root / rel).read_text(errors="replace")))
                result, links, ids = check_page(context, base, rel, shots, timeout_ms, foreign,
                                                redirects)
                page_ids[rel] = ids
                for link in links:
                    all_links.setdefault(link, set()).add(rel)
                for page_name, request in foreign:
                    if page_name == rel:
                        result.problems.append(f"blocked request to a foreign host: {request}")
                results.append(result)
                flag = "ok  " if result.ok else "FAIL"
                stats = ", ".join(f"{k} {v}" for k, v in result.stats.items())
                print(f"  {flag} {rel}  ({stats}; {result.seconds:.1f} s)", flush=True)
                for problem in result.problems:
                    print(f"       - {problem}", flush=True)
            context.close()

        # Internal links and anchors, now that every page's ids are known.
        status_cache: dict[str, int] = {}
        for link, sources in sorted(all_links.items()):
            if not link.startswith(base):
                continue
            n_internal += 1
            target, fragment = urldefrag(link)
            rel = url_to_rel(target, base)
            if rel in page_ids:
                if fragment and unquote(fragment) not in page_ids[rel]:
                    link_problems += [(s, f"link to a missing anchor: {rel}#{fragment}")
                                      for s in sorted(sources)]
                continue
            if target not in status_cache:
                status_cache[target] = http_status(target)
            if status_cache[target] >= 400:
                link_problems += [(s, f"broken link: {rel} (HTTP {status_cache[target]})")
                                  for s in sorted(sources)]
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(profile, ignore_errors=True)

    by_path = {r.path: r for r in results}
    for source, problem in link_problems:
        print(f"  FAIL {source}: {problem}")
        by_path[source].problems.append(problem)
    failed = [r for r in results if not r.ok]
    print(f"browser-test: {len(results)} pages checked, {n_internal} internal links "
          f"({len(link_problems)} broken), {len(foreign)} foreign request(s) blocked, "
          f"screenshots in {shots}")
    if foreign:
        hosts = sorted({urlsplit(req.split(' ', 1)[1]).netloc for _, req in foreign})
        print(f"browser-test: foreign hosts requested: {', '.join(hosts)}")
    fit = {width: [r.fit[width] for r in results if width in r.fit]
           for width in ("desktop", "phone")}
    for width, reports in fit.items():
        if reports:
            n_eq = sum(f["equations"] for f in reports)
            n_over = sum(len(f["overflowing"]) for f in reports)
            n_scroll = sum(e["scrollable"] for f in reports for e in f["overflowing"])
            print(f"browser-test: at {reports[0]['viewport']} px, {n_over} of {n_eq} display "
                  f"equations wider than the column ({n_scroll} of them scroll "
                  f"horizontally), {sum(f['code'] for f in reports)} code blocks wider "
                  f"than their box ({sum(f['codeCells'] for f in reports)} in code cells, "
                  f"{sum(f['codeInputs'] for f in reports)} of them code-cell inputs)")
    for r in failed:
        print(f"browser-test: FAILED {r.path}: {len(r.problems)} problem(s)")
    print(f"browser-test: {len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
