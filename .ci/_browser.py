"""Shared browser helpers of the CI scripts (``browser_test.py``, ``lab_test.py``,
``make_pdf.py``); not a script itself.

- :func:`start_server`: a quiet ``http.server`` on 127.0.0.1 at a free port (the built
  book, or the single page of the PDF edition);
- :func:`launch`: Debian's ``/usr/bin/chromium`` (:data:`CHROMIUM`), headless, through
  Playwright on a persistent profile, with :data:`CHROMIUM_ARGS` (no sandbox, no GPU, no
  background traffic, a dead proxy for whatever escapes the routing): Playwright talks
  to it over a pipe (``executable_path``), so no browser is downloaded;
- :func:`offline`: every request to a host other than the local server is aborted and
  reported (optionally, some local paths are answered with stubs);
- :func:`console_error`: a console message as one line, when it is an error;
- :func:`read_js`: the JavaScript the scripts run in the page lives in ``.js`` files
  (``.ci/js/`` for this module and the two tests, ``.ci/pdf/`` for the PDF edition),
  read here at run time; the snippets shared by several scripts (:data:`JS_WAIT_MATHJAX`,
  :data:`JS_EAGER_IMAGES`, :data:`JS_BROKEN_IMAGES`, ...) are defined below.

Playwright itself is imported by the scripts (after their cheap checks), not here.
"""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

CI = Path(__file__).resolve().parent


def read_js(rel: str) -> str:
    """The JavaScript function (or expression) in ``.ci/<rel>``, for Playwright's
    ``evaluate`` and ``wait_for_function``: the file's leading ``//`` comment lines
    (what it does, who runs it) are left out, so the text sent to the page is the
    function alone, as when it was a Python string."""
    lines = (CI / rel).read_text(encoding="utf-8").splitlines()
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("//")):
        lines.pop(0)
    return "\n".join(lines).strip()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    # Belt and braces: whatever escapes the request routing below (browser-internal
    # traffic) goes to a closed local port instead of the network. Loopback is bypassed.
    "--proxy-server=http://127.0.0.1:9",
]
VIEWPORT = {"width": 1280, "height": 900}

# JavaScript shared by several scripts (each returns plain JSON).
JS_WAIT_MATHJAX = read_js("js/wait-mathjax.js")
JS_EAGER_IMAGES = read_js("js/eager-images.js")
JS_IMAGES_SETTLED = """() => Array.from(document.images).every(i => i.complete)"""
JS_BROKEN_IMAGES = read_js("js/broken-images.js")
JS_EXPLORERS_RENDERED = """() => Array.from(document.querySelectorAll('.lossless-explorer'))
  .every(e => e.getAttribute('data-rendered') === 'true')"""
JS_TWO_FRAMES = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"


def launch(pw, profile: str, chromium: str, timeout_ms: float, viewport: dict = VIEWPORT):
    """Debian's Chromium, headless, with the flags above, on a persistent ``profile``."""
    return pw.chromium.launch_persistent_context(
        profile, executable_path=chromium, headless=True, args=CHROMIUM_ARGS,
        viewport=viewport, service_workers="block", timeout=timeout_ms)


def offline(context, origin: str, on_foreign, stubs: dict | None = None) -> None:
    """Routes every request of ``context``: the local server's (``origin``) go through,
    or are answered from ``stubs`` (URL path -> (body, content type)); any other host's
    are aborted and passed to ``on_foreign(request)``."""
    stubs = stubs or {}

    def router(route) -> None:
        url = route.request.url
        path = url.split("?")[0]
        if path.startswith(origin) and path[len(origin):] in stubs:
            body, content_type = stubs[path[len(origin):]]
            route.fulfill(status=200, body=body, content_type=content_type)
        elif url.startswith(origin + "/") or url == origin:
            route.continue_()
        else:
            on_foreign(route.request)
            route.abort("blockedbyclient")

    context.route("**/*", router)


def console_error(msg) -> str | None:
    """A browser console message as one line with its source, if it is an error."""
    if msg.type != "error":
        return None
    loc = msg.location or {}
    where = f" ({loc.get('url', '')}:{loc.get('lineNumber', '')})" if loc.get("url") else ""
    return f"{msg.text[:300]}{where}"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static files from the build directory, no request log on stderr."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def start_server(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve ``root`` on 127.0.0.1 at a free port; returns the server and its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"
