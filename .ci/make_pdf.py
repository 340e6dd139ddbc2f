#!/usr/bin/env python3
"""Build the PDF edition of the book and check it: ``make pdf``.

1. **One page.** Jupyter Book's ``singlehtml`` builder (the same sources, ``_config.yml``
   and ``_toc.yml`` as ``make book``, warnings as errors, nitpicky) writes the whole
   book as one page under ``_build/pdf/singlehtml``, with its own doctrees
   (``_build/pdf/.doctrees``) but the execution cache of ``make book``
   (``_build/.jupyter_cache``): a chapter executed by one is not executed again by the
   other. That build also loads the Sphinx extension ``_ext/lossless_singlehtml.py``
   (:func:`build_singlehtml` adds it; ``make book`` does not), for two things the
   ``singlehtml`` builder gets wrong (see its docstring): the ``html`` node visitors
   that ``singlehtml`` loses once ``sphinx-exercise`` registers its own are copied in,
   and the ids that several chapters share on the one page (``id1``, ``notes``, ...)
   are prefixed with the chapter's name, every reference to them following.

2. **Print.** The page is served on 127.0.0.1 (as ``.ci/browser_test.py`` does: the
   same Debian Chromium, arguments and foreign-request blocking, nothing downloaded;
   these helpers are shared in ``.ci/_browser.py``) and opened with Playwright; the
   JavaScript run in the page is in ``.ci/pdf/*.js`` (and ``.ci/js/`` for the snippets
   shared with the browser test). Once MathJax has typeset every formula, every image
   has loaded and every explorer (``.lossless-explorer``) and saved widget view has
   rendered, the print stylesheet ``.ci/pdf/print.css`` is added (the HTML edition
   never loads it): no sidebars, navbar or buttons, a title page with the contents,
   every chapter on a new page, figures, equations and explorers kept whole, code
   wrapped, folded code left out, solutions unfolded; a line after each explorer (and
   saved widget view) says that the HTML edition moves it. With the window as wide as
   the printed text, every displayed formula or table wider than its line is shrunk
   (CSS ``zoom``) rather than cut, and anything still wider than the text is an error.
   ``page.pdf`` writes an A4 PDF with the book's title in the header and page numbers
   in the footer; the page numbers of the chapters are then written into the title
   page's contents and the page is printed again. Chromium's bookmarks are rebuilt
   with clean titles and a book's hierarchy (:func:`rebuild_outline`).

3. **Check** (:func:`check_pdf`, with pypdf; also on its own with ``--check-only``):
   every document of ``_toc.yml`` starts a page with its title (the title read from
   its source) and has a top-level bookmark; no raw TeX or MyST role text in the text
   outside code (``$$``, ``\\begin{``, ``\\frac``, ``{eq}``, ``{numref}``, ``??``...);
   no U+FFFD in the text, every font embedded and no glyph drawn as ``.notdef``
   (tofu: glyph 0 of a CID font); at least as many images drawn as the page showed;
   every internal link annotation leads to a destination of the PDF, none to the local
   server, and at least as many as the page had visible internal links; the number of
   every equation, figure, table, definition, theorem and exercise is in the text, and
   a link to one leads to the page that shows its number; every explorer's note is in
   the text. It prints the page count, the file size and the time taken.

Usage (``make pdf`` runs the first form)::

    python .ci/make_pdf.py [--out _build/pdf/lossless.pdf] [--no-execute] [--skip-build]
    python .ci/make_pdf.py --check-only [--out PDF] [--report PRINT_REPORT.json]

``--no-execute`` renders the outputs saved in the notebooks (no kernel; a quick look).
What the page showed (images, links, numbered targets, notes) is written next to
the PDF as ``<name>.print.json`` for the check. Exit status 0 when the PDF was written
and passed the check, 1 otherwise, 2 on a usage error.

Where the parts live: this script builds the page, prints it and checks the PDF; the
Sphinx extension of the single page is ``_ext/lossless_singlehtml.py``; the browser
helpers (local server, Chromium through Playwright, offline request blocking, MathJax
wait) are in ``.ci/_browser.py``, shared with ``browser_test.py`` and ``lab_test.py``;
the JavaScript run in the page and the print stylesheet are under ``.ci/pdf/``
(``*.js``, ``print.css``).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
import unicodedata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CI = Path(__file__).resolve().parent
OUT_DIR = ROOT / "_build" / "pdf"
PRINT_CSS = CI / "pdf" / "print.css"
EXT = ROOT / "_ext"  # the book's local Sphinx extensions (_config.yml)
SINGLEHTML_EXTENSION = "lossless_singlehtml"  # _ext/lossless_singlehtml.py, this build only

if str(CI) not in sys.path:
    sys.path.insert(0, str(CI))
from _browser import (  # noqa: E402 (the browser helpers shared with browser_test.py)
    JS_BROKEN_IMAGES, JS_EAGER_IMAGES, JS_EXPLORERS_RENDERED, JS_IMAGES_SETTLED,
    JS_TWO_FRAMES, JS_WAIT_MATHJAX, launch, offline, read_js, start_server)

MARGIN_MM = {"top": 17, "bottom": 17, "left": 16, "right": 16}
# The width of the printed text in CSS pixels (96 per inch): the window gets it before
# the wide formulas and tables are measured, so that the layout is the printed one.
TEXT_WIDTH_PX = int((210 - MARGIN_MM["left"] - MARGIN_MM["right"]) / 25.4 * 96)

NOTE_EXPLORER = ("In the HTML edition this explorer is interactive: its controls move "
                 "the chart. Shown here in its default state.")
NOTE_WIDGET = ("In the HTML edition (and live in JupyterLab) this widget's controls "
               "move. Shown here in its saved state.")
EDITION = ("PDF edition, printed from the book's HTML edition (make book), where the "
           "explorers are interactive; here they are shown in their default state.")

# Text that must not survive into the PDF outside code: unrendered TeX or MyST roles,
# and "??" (what an unresolved reference prints as).
RAW_MARKERS = ("$$", "\\begin{", "\\end{", "\\frac", "\\mathbb", "\\sqrt", "{eq}",
               "{numref}", "{ref}", "{cite", "{math}", "{prf:", "{doc}", "??")
# and inline TeX left between dollars: a backslash, ^, _ or a brace inside $...$
RAW_INLINE_TEX = re.compile(r"\$[^$]{0,120}?[\\^_{}][^$]{0,120}?\$")

# JavaScript run in the page (from .ci/pdf/, each file says what it does; the snippets
# shared with browser_test.py come from _browser): before printing, the frame left out,
# the title page, the notes after the explorers and saved widget views, solutions
# unfolded (JS_PREPARE_PRINT); with the window as wide as the printed text, the wide
# formulas and tables shrunk (JS_FIT); what the printed page shows, for the check
# (JS_REPORT); the headings for the rebuilt outline (JS_HEADINGS); the contents' page
# numbers (JS_TOC_PAGES).
JS_PREPARE_PRINT = read_js("pdf/prepare-print.js")
JS_FIT = read_js("pdf/fit.js")
JS_REPORT = read_js("pdf/report.js")
JS_HEADINGS = read_js("pdf/headings.js")
JS_TOC_PAGES = read_js("pdf/toc-pages.js")
JS_READY_REPORT = read_js("pdf/ready-report.js")
JS_WIDGETS_RENDERED = read_js("pdf/widgets-rendered.js")
JS_FONTS_READY = "async () => { await document.fonts.ready; return document.fonts.status; }"

HEADER = """<div style="font-size:7.5pt; color:#777; width:100%; padding:0 16mm;
  font-family:'DejaVu Sans',sans-serif; text-align:right;"><span class="title"></span></div>"""
FOOTER = """<div style="font-size:8pt; color:#555; width:100%; text-align:center;
  font-family:'DejaVu Sans',sans-serif;"><span class="pageNumber"></span> / <span
  class="totalPages"></span></div>"""


# ---------------------------------------------------------------------------------
# The single page (the Sphinx extension it loads is _ext/lossless_singlehtml.py)


def build_singlehtml(outdir: Path, execute: bool) -> int:
    """The whole book as one page, with ``make book``'s configuration and cache, and the
    extension ``_ext/lossless_singlehtml.py`` (module docstring, 1.)."""
    from jupyter_book.config import get_final_config
    from jupyter_book.sphinx import build_sphinx

    config, toc = ROOT / "_config.yml", (ROOT / "_toc.yml").as_posix()
    base = {"external_toc_path": toc, "latex_individualpages": False}
    final, _ = get_final_config(user_yaml=config, cli_config=dict(base), sourcedir=ROOT,
                                use_external_toc=True)
    if str(EXT) not in sys.path:  # get_final_config adds it too (local_extensions)
        sys.path.insert(0, str(EXT))
    overrides: dict[str, Any] = {
        **base,
        "nitpicky": True,  # as make book's -n
        "extensions": [*final["extensions"], SINGLEHTML_EXTENSION],
        # make book's execution cache (myst-nb's default is next to the output folder)
        "nb_execution_cache_path": str(ROOT / "_build" / ".jupyter_cache"),
    }
    if not execute:
        overrides["nb_execution_mode"] = "off"  # the outputs saved in the notebooks
    result = build_sphinx(ROOT, outdir, use_external_toc=True, noconfig=True,
                          path_config=str(config), confoverrides=overrides,
                          doctreedir=outdir.parent / ".doctrees", builder="singlehtml",
                          warningiserror=True, keep_going=True)
    return result if isinstance(result, int) else 1


# ---------------------------------------------------------------------------------
# The browser side


def _dest_pages(pdf: Path | Any) -> dict[str, int]:
    """The page (1-based) of each named destination (Chromium writes one per link
    target) of a PDF file or a pypdf reader."""
    from pypdf import PdfReader

    reader = pdf if isinstance(pdf, PdfReader) else PdfReader(pdf)
    pages = {}
    for name, dest in reader.named_destinations.items():
        try:
            pages[name.lstrip("/")] = reader.get_destination_page_number(dest) + 1
        except Exception:  # noqa: BLE001 - a destination without a page: left out
            continue
    return pages


def print_pdf(html_dir: Path, page_rel: str, out: Path, chromium: str, timeout_ms: int,
              author: str) -> tuple[list[str], dict[str, Any], dict[str, Any]]:
    """Open the single page in headless Chromium and print it.

    Returns (problems, stats, report): ``report`` is what the printed page shows, for
    :func:`check_pdf`.
    """
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    stats: dict[str, Any] = {}
    report: dict[str, Any] = {}
    server, base = start_server(html_dir)
    origin = base.rstrip("/")
    profile = tempfile.mkdtemp(prefix="lossless-pdf-chromium-")
    pdf_options = dict(format="A4", print_background=True,
                       margin={k: f"{v}mm" for k, v in MARGIN_MM.items()},
                       display_header_footer=True, header_template=HEADER,
                       footer_template=FOOTER, outline=True, tagged=True)
    try:
        with sync_playwright() as pw:
            context = launch(pw, profile, chromium, timeout_ms,
                             viewport={"width": 1100, "height": 1400})
            # the theme's search box asks for searchindex.js; singlehtml writes no index
            offline(context, origin,
                    lambda request: problems.append(
                        f"blocked request to a foreign host: {request.url}"),
                    stubs={"/searchindex.js": ("", "text/javascript")})
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(timeout_ms)
            page.on("pageerror", lambda exc: problems.append(f"uncaught: {str(exc)[:300]}"))
            page.on("console", lambda msg: problems.append(f"console: {msg.text[:300]}")
                    if msg.type == "error" else None)
            page.on("response", lambda r: problems.append(f"HTTP {r.status} {r.url}")
                    if r.status >= 400 else None)
            started = time.monotonic()
            page.goto(base + page_rel, wait_until="load", timeout=timeout_ms)
            state = page.evaluate(JS_WAIT_MATHJAX, timeout_ms)
            if state != "done":
                problems.append(f"MathJax did not finish: {state}")
            page.evaluate(JS_EAGER_IMAGES)
            try:
                page.wait_for_function(JS_IMAGES_SETTLED, timeout=timeout_ms)
                page.wait_for_function(JS_EXPLORERS_RENDERED, timeout=timeout_ms)
            except Exception:  # noqa: BLE001 - reported below
                pass
            try:  # saved ipywidgets views, rendered by the embedded widget manager
                page.wait_for_function(JS_WIDGETS_RENDERED, timeout=timeout_ms)
            except Exception:  # noqa: BLE001
                problems.append("a saved widget view did not render")
            page.evaluate(JS_FONTS_READY)
            ready = page.evaluate(JS_READY_REPORT)
            stats["math"] = ready["math"]
            if ready["untypeset"]:
                problems.append(f"{ready['untypeset']} math element(s) not typeset")
            if ready["mathErrors"]:
                problems.append(f"MathJax errors: {ready['mathErrors'][:5]}")
            if ready["explorersRendered"] != ready["explorers"]:
                problems.append(f"{ready['explorers'] - ready['explorersRendered']} of "
                                f"{ready['explorers']} explorer(s) did not render")
            broken = page.evaluate(JS_BROKEN_IMAGES)
            if broken:
                problems.append(f"{len(broken)} image(s) did not load: {broken[:3]}")
            stats["load s"] = round(time.monotonic() - started, 1)

            # The print layout: print media, the stylesheet, the window as wide as the text.
            page.emulate_media(media="print")
            page.add_style_tag(content=PRINT_CSS.read_text(encoding="utf-8"))
            prepared = page.evaluate(JS_PREPARE_PRINT, {
                "explorer": NOTE_EXPLORER, "widget": NOTE_WIDGET, "author": author,
                "edition": EDITION})
            stats.update(prepared)
            page.set_viewport_size({"width": TEXT_WIDTH_PX, "height": 1400})
            page.evaluate(JS_FONTS_READY)
            page.evaluate(JS_TWO_FRAMES)
            fit = page.evaluate(JS_FIT)
            stats["shrunk formulas"] = fit["formulas"]
            stats["shrunk tables"] = fit["tables"]
            stats["smallest zoom"] = fit["smallest"]
            if abs(fit["width"] - TEXT_WIDTH_PX) > 2:
                problems.append(f"the text is {fit['width']} px wide in print layout, "
                                f"expected {TEXT_WIDTH_PX}")
            for wide in fit["wide"][:10]:
                problems.append(f"wider than the printed text: {wide}")
            if len(fit["wide"]) > 10:
                problems.append(f"... and {len(fit['wide']) - 10} more element(s) too wide")
            page.evaluate(JS_TWO_FRAMES)
            report.update(page.evaluate(JS_REPORT))
            expected_notes = report["explorers"] + report["widgetViews"]
            if len(report["notes"]) != expected_notes:
                problems.append(f"{len(report['notes'])} print note(s) for "
                                f"{report['explorers']} explorer(s) and "
                                f"{report['widgetViews']} saved widget view(s)")
            headings = page.evaluate(JS_HEADINGS)

            # Print; write the chapters' pages into the contents; print again.
            started = time.monotonic()
            page.pdf(path=str(out), **pdf_options)
            first = _dest_pages(out)
            report["tocEntries"] = page.evaluate(JS_TOC_PAGES, first)
            page.evaluate(JS_TWO_FRAMES)
            page.pdf(path=str(out), **pdf_options)
            second = _dest_pages(out)
            moved = [k for k in first if k.startswith("document-") and first[k] != second.get(k)]
            if moved:
                problems.append(f"the contents' page numbers moved on the second print: {moved}")
            report["tocPages"] = {k[len("document-"):]: v for k, v in second.items()
                                  if k.startswith("document-")}
            stats["print s"] = round(time.monotonic() - started, 1)
            context.close()
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(profile, ignore_errors=True)
    report["headings"] = headings
    return problems, stats, report


def rebuild_outline(pdf: Path, headings: list[dict]) -> list[str]:
    """Chromium's bookmarks with clean titles and a book's hierarchy (see
    ``.ci/pdf/headings.js``).

    Chromium's outline has one bookmark per heading in document order, but some titles
    come out twice over ("1. 1. TitleTitle") and every chapter sits under the title
    page's heading. The destinations (page and height) are kept; titles and levels are
    those of the page's headings; every bookmark starts closed (chapters on top). The
    new outline and catalog are appended to the file as an incremental update (a PDF
    feature: new objects, an xref section for them and a trailer pointing back to the
    old one): copying the ~50,000 objects of the tagged PDF with pypdf takes a minute.
    Returns problems (none when it was rebuilt).
    """
    import io

    from pypdf import PdfReader
    from pypdf.generic import (ArrayObject, DictionaryObject, FloatObject, IndirectObject,
                               NameObject, NullObject, NumberObject, TextStringObject)

    data = pdf.read_bytes()
    reader = PdfReader(io.BytesIO(data))
    flat: list[Any] = []

    def walk(items: list) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item)
            else:
                flat.append(item)

    walk(reader.outline)
    if len(flat) != len(headings):
        return [f"the PDF has {len(flat)} bookmarks for {len(headings)} headings: outline "
                f"not rebuilt"]
    tail = re.search(rb"startxref\s+(\d+)\s+%%EOF\s*$", data[-1024:])
    if not tail or not data[int(tail.group(1)):].startswith(b"xref"):
        return ["the PDF has no classic xref table at its end: outline not rebuilt"]

    # the tree: (title, page index, left, top, children)
    root: list = []
    stack: list[list] = [root]
    for item, heading in zip(flat, headings):
        if heading["level"] is None:
            continue
        level = min(heading["level"], len(stack) - 1)  # no gaps in the hierarchy
        del stack[level + 1:]
        node = [heading["text"], reader.get_destination_page_number(item), item.left,
                item.top, []]
        stack[level].append(node)
        stack.append(node[4])

    size = int(reader.trailer["/Size"])
    objects: dict[int, Any] = {}

    def ref(num: int) -> IndirectObject:
        return IndirectObject(num, 0, None)  # type: ignore[arg-type]

    def add(nodes: list, parent: int) -> tuple[int, int]:
        nums = list(range(size + len(objects), size + len(objects) + len(nodes)))
        for num in nums:
            objects[num] = None  # reserve
        for k, (node, num) in enumerate(zip(nodes, nums)):
            title, page_index, left, top, children = node
            d = DictionaryObject({
                NameObject("/Title"): TextStringObject(title),
                NameObject("/Parent"): ref(parent),
                NameObject("/Dest"): ArrayObject([
                    reader.pages[page_index].indirect_reference, NameObject("/XYZ"),
                    FloatObject(left or 0), FloatObject(top or 0), NullObject()]),
            })
            if k:
                d[NameObject("/Prev")] = ref(nums[k - 1])
            if k + 1 < len(nodes):
                d[NameObject("/Next")] = ref(nums[k + 1])
            if children:
                first, last = add(children, num)
                d[NameObject("/First")], d[NameObject("/Last")] = ref(first), ref(last)
                d[NameObject("/Count")] = NumberObject(-len(children))  # closed
            objects[num] = d
        return nums[0], nums[-1]

    outlines = size
    objects[outlines] = None
    first, last = add(root, outlines)
    objects[outlines] = DictionaryObject({
        NameObject("/Type"): NameObject("/Outlines"), NameObject("/First"): ref(first),
        NameObject("/Last"): ref(last), NameObject("/Count"): NumberObject(len(root))})
    catalog_ref = reader.root_object.indirect_reference
    catalog = DictionaryObject(reader.root_object)
    catalog[NameObject("/Outlines")] = ref(outlines)
    catalog[NameObject("/PageMode")] = NameObject("/UseOutlines")  # bookmarks shown
    objects[catalog_ref.idnum] = catalog

    out = io.BytesIO()
    out.write(b"\n")
    offsets: dict[int, int] = {}
    for num in sorted(objects):
        offsets[num] = len(data) + out.tell()
        gen = catalog_ref.generation if num == catalog_ref.idnum else 0
        out.write(f"{num} {gen} obj\n".encode())
        objects[num].write_to_stream(out)
        out.write(b"\nendobj\n")
    xref = len(data) + out.tell()
    out.write(b"xref\n0 1\n0000000000 65535 f \n")  # object 0, as every xref section
    nums = sorted(offsets)
    runs: list[list[int]] = []
    for num in nums:
        if runs and num == runs[-1][-1] + 1:
            runs[-1].append(num)
        else:
            runs.append([num])
    for run in runs:
        out.write(f"{run[0]} {len(run)}\n".encode())
        for num in run:
            gen = catalog_ref.generation if num == catalog_ref.idnum else 0
            out.write(f"{offsets[num]:010d} {gen:05d} n \n".encode())
    trailer = DictionaryObject({
        NameObject("/Size"): NumberObject(max(size, max(nums) + 1)),
        NameObject("/Root"): catalog_ref, NameObject("/Prev"): NumberObject(int(tail.group(1)))})
    for key in ("/Info", "/ID"):
        if key in reader.trailer:
            trailer[NameObject(key)] = reader.trailer.raw_get(key)
    out.write(b"trailer\n")
    trailer.write_to_stream(out)
    out.write(f"\nstartxref\n{xref}\n%%EOF\n".encode())
    with open(pdf, "ab") as fh:
        fh.write(out.getvalue())
    return []


# ---------------------------------------------------------------------------------
# The check


def _norm(text: str) -> str:
    """Text as compared: NFKC (ligatures apart), plain quotes and dashes, one space."""
    text = unicodedata.normalize("NFKC", text)
    text = text.translate(str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'",
                                         "’": "'", "–": "-", "—": "-", "\u00a0": " "}))
    return re.sub(r"\s+", " ", text).strip()


def _source_title(path: Path) -> str | None:
    """The first ``# `` heading of a MyST Markdown file or of a notebook's Markdown."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
        # cells the book removes (the JupyterLab front matter, tagged remove-cell) have no
        # heading on the page
        lines = [line for cell in cells if cell.get("cell_type") == "markdown"
                 and "remove-cell" not in cell.get("metadata", {}).get("tags", [])
                 for line in "".join(cell.get("source", "")).splitlines()]
    else:
        lines = path.read_text(encoding="utf-8").splitlines()
    for line in lines:
        if line.startswith("# "):
            title = line[2:].strip()
            title = title.split("$", 1)[0]  # math is drawn, not text: compare what precedes
            title = re.sub(r"[`*_]", "", title)
            title = re.sub(r"\{[a-z:]+\}", "", title)  # a role's name
            return title.strip()
    return None


def toc_documents(toc_file: Path = ROOT / "_toc.yml") -> list[tuple[str, str | None]]:
    """(file, title) of every document of ``_toc.yml``, in order."""
    import yaml

    toc = yaml.safe_load(toc_file.read_text(encoding="utf-8"))
    files: list[str] = [toc["root"]]

    def walk(entries: list) -> None:
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            for key in ("parts", "chapters", "sections"):
                walk(entry.get(key, []))

    for key in ("parts", "chapters", "sections"):
        walk(toc.get(key, []))
    documents = []
    for name in files:
        source = next((ROOT / (name + suffix) for suffix in ("", ".md", ".ipynb", ".rst")
                       if (ROOT / (name + suffix)).is_file()), None)
        documents.append((name, _source_title(source) if source else None))
    return documents


def _font_embedded(font: Any) -> bool:
    if font.get("/Subtype") == "/Type3":
        return True  # its glyphs are drawn by the PDF itself
    if font.get("/Subtype") == "/Type0":
        font = font["/DescendantFonts"][0].get_object()
    descriptor = font.get("/FontDescriptor")
    if descriptor is None:
        return False
    descriptor = descriptor.get_object()
    return any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3"))


def _scan_content(reader: Any, stream: Any, resources: Any, found: dict, depth: int = 0
                  ) -> None:
    """Images drawn, fonts used and .notdef glyphs shown, in a page or form XObject."""
    from pypdf.generic import ContentStream

    resources = resources.get_object() if resources is not None else {}
    fonts = resources.get("/Font") or {}
    xobjects = resources.get("/XObject") or {}
    font = None
    for operands, operator in ContentStream(stream, reader).operations:
        if operator == b"Tf" and operands:
            ref = fonts.get(operands[0])
            font = ref.get_object() if ref is not None else None
            if font is not None:
                name = str(font.get("/BaseFont", f"{font.get('/Subtype')} font"))
                found["fonts"].setdefault(name, _font_embedded(font))
        elif operator in (b"Tj", b"TJ", b"'", b'"') and font is not None \
                and font.get("/Subtype") == "/Type0":
            strings = operands[0] if operator == b"TJ" else operands[-1:]
            for s in strings:
                if isinstance(s, (int, float)) or not hasattr(s, "__len__"):
                    continue
                raw = s.get_original_bytes() if hasattr(s, "get_original_bytes") else bytes(s)
                if any(raw[i:i + 2] == b"\0\0" for i in range(0, len(raw) - 1, 2)):
                    name = str(font.get("/BaseFont"))
                    found["notdef"][name] = found["notdef"].get(name, 0) + 1
        elif operator == b"Do" and operands:
            ref = xobjects.get(operands[0])
            xobject = ref.get_object() if ref is not None else None
            if xobject is None:
                continue
            if xobject.get("/Subtype") == "/Image":
                found["images"] += 1
            elif xobject.get("/Subtype") == "/Form" and depth < 8:
                _scan_content(reader, xobject, xobject.get("/Resources", resources), found,
                              depth + 1)


def check_pdf(pdf: Path, documents: list[tuple[str, str | None]],
              report: dict[str, Any] | None) -> tuple[list[str], dict[str, Any]]:
    """The PDF's own check (module docstring, 3.); returns (problems, stats)."""
    from pypdf import PdfReader

    problems: list[str] = []
    reader = PdfReader(pdf)
    stats: dict[str, Any] = {"pages": len(reader.pages),
                             "MB": round(pdf.stat().st_size / 1e6, 1)}
    texts: list[str] = []
    prose: list[str] = []  # the text outside monospaced (code) fonts
    found: dict[str, Any] = {"images": 0, "fonts": {}, "notdef": {}}
    links = {"internal": 0, "external": 0}
    dest_pages = _dest_pages(reader)  # named destination -> page (1-based)
    dests = {name.lstrip("/") for name in reader.named_destinations}
    tops: list[str] = []  # the text of each page in reading order, from its top
    top_pt, bottom_pt = (MARGIN_MM[k] / 25.4 * 72 for k in ("top", "bottom"))
    for number, page in enumerate(reader.pages, start=1):
        chunks: list[str] = []
        placed: list[tuple[float, float, str]] = []
        height = float(page.mediabox.height)

        def visit(text: str, cm: Any, tm: Any, font: Any, size: Any) -> None:
            base = str(font.get("/BaseFont", "")) if font else ""
            chunks.append(" " if "Mono" in base else text)
            if text.strip():  # where it is drawn, in PDF points from the page's bottom
                x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
                y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
                if bottom_pt < y < height - top_pt:  # the text, not header or footer
                    placed.append((-round(y), x, text))

        texts.append(page.extract_text(visitor_text=visit) or "")
        prose.append("".join(chunks))
        tops.append(re.sub(r"\s", "", _norm("".join(t for _, _, t in sorted(placed)[:60]))))
        contents = page.get_contents()
        if contents is not None:
            _scan_content(reader, contents, page.get("/Resources"), found)
        for annot in page.get("/Annots") or []:
            annot = annot.get_object()
            if annot.get("/Subtype") != "/Link":
                continue
            action = annot.get("/A")
            action = action.get_object() if action is not None else None
            target = annot.get("/Dest")
            if target is None and action is not None and action.get("/S") == "/GoTo":
                target = action.get("/D")
            if target is not None:
                links["internal"] += 1
                if isinstance(target, str) and target.lstrip("/") not in dests:
                    problems.append(f"page {number}: a link to a destination the PDF lacks: "
                                    f"{target}")
            elif action is not None and action.get("/S") == "/URI":
                links["external"] += 1
                uri = str(action.get("/URI"))
                if re.match(r"(https?://(127\.0\.0\.1|localhost)|file:)", uri):
                    problems.append(f"page {number}: a link to the local build, dead in the "
                                    f"PDF: {uri[:100]}")
    stats.update(images=found["images"], **{f"{k} links": v for k, v in links.items()},
                 fonts=len(found["fonts"]))
    normed = [_norm(t) for t in texts]
    whole = " ".join(normed)

    # every document of _toc.yml starts a page with its title, and has a bookmark
    outline: list[str] = []
    for item in reader.outline:
        if not isinstance(item, list):
            outline.append(_norm(item.title))
    numbered = re.compile(r"^\d+(?:\.\d+)*\.?")  # a chapter's number, "5." or "5.1."
    for name, title in documents:
        if not title:
            problems.append(f"{name}: no '# ' title found in its source")
            continue
        want = _norm(title)
        # compared without spaces: Chromium cuts a line into runs at font changes
        bare = re.sub(r"\s", "", want)
        starts = [n for n, t in enumerate(tops, start=1)
                  if any(s.startswith(bare) for s in (t, numbered.sub("", t, count=1)))]
        if not starts:
            problems.append(f"{name}: no page starts with its title {title!r}"
                            + (" (it is in the text, not as a chapter start)"
                               if want in whole else " (not in the text at all)"))
        if not any(numbered.sub("", o, count=1).strip() == want or o == want
                   for o in outline):
            problems.append(f"{name}: no top-level bookmark {title!r}")
    stats["documents"] = len(documents)

    # no raw TeX or MyST role text outside code, no replacement characters, no tofu
    for number, text in enumerate(prose, start=1):
        hits = [(text.find(m), m) for m in RAW_MARKERS if m in text]
        inline = RAW_INLINE_TEX.search(text)
        if inline:
            hits.append((inline.start(), "$...$"))
        for at, marker in sorted(hits)[:1]:  # the first on the page
            problems.append(f"page {number}: raw {marker!r} in the text: "
                            f"{_norm(text[max(0, at - 40):at + 60])!r}")
    bad = [n for n, t in enumerate(texts, start=1) if "\ufffd" in t]
    if bad:
        problems.append(f"U+FFFD (an unmapped glyph) in the text of page(s) {bad[:10]}")
    for name, count in found["notdef"].items():
        problems.append(f"{count} run(s) of text drawn with .notdef (missing glyph, tofu) "
                        f"in font {name}")
    for name, embedded in found["fonts"].items():
        if not embedded:
            problems.append(f"font {name} is not embedded")

    # what the printed page showed (from the print step's report)
    if report:
        if found["images"] < report["images"]:
            problems.append(f"{found['images']} image(s) drawn for the {report['images']} "
                            f"the page showed")
        if links["internal"] < report["internalLinks"]:
            problems.append(f"{links['internal']} internal link(s) for the "
                            f"{report['internalLinks']} the page showed")
        # every equation, figure, table, definition... number is in the text, and a
        # link to it leads to the page that shows it
        bare = [re.sub(r"\s", "", t) for t in normed]
        missing, astray = [], []
        for target in report["targets"]:
            label = re.sub(r"\s", "", _norm(target["label"]))
            if not any(label in t for t in bare):
                missing.append(target["label"])
            elif target["id"] in dest_pages and label not in bare[dest_pages[target["id"]] - 1]:
                astray.append(f"{target['label']} (#{target['id']}, page "
                              f"{dest_pages[target['id']]})")
        if missing:
            problems.append(f"{len(missing)} number(s) of equations, figures... not in the "
                            f"text: {missing[:8]}")
        if astray:
            problems.append(f"{len(astray)} link target(s) on a page without their number: "
                            f"{astray[:5]}")
        stats["numbered targets"] = len(report["targets"])
        stats["of them linked"] = sum(t["id"] in dest_pages for t in report["targets"])
        for note in sorted(set(report["notes"])):
            count = whole.count(_norm(note))
            expected = report["notes"].count(note)
            if count < expected:
                problems.append(f"{count} of {expected} notes {note[:50]!r}... in the text")
        stats["explorers"] = report["explorers"]
    else:
        stats["report"] = "none (only what the PDF alone shows is checked)"
        if not found["images"]:
            problems.append("no image in the PDF")
        if not links["internal"]:
            problems.append("no internal link in the PDF")
    return problems, stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR / "lossless.pdf",
                        help="the PDF to write, or to check (default: _build/pdf/lossless.pdf)")
    parser.add_argument("--no-execute", action="store_true",
                        help="render the outputs saved in the notebooks instead of the "
                             "execution cache (no kernel; for a quick look)")
    parser.add_argument("--skip-build", action="store_true",
                        help="print the existing _build/pdf/singlehtml without rebuilding")
    parser.add_argument("--check-only", action="store_true",
                        help="only check the PDF given by --out")
    parser.add_argument("--report", type=Path, default=None,
                        help="what the printed page showed (default: <out>.print.json, "
                             "written by the print step)")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--timeout", type=float, default=180.0,
                        help="seconds allowed for each wait in the browser (default 180)")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    report_file = (args.report or out.with_name(out.stem + ".print.json")).resolve()
    documents = toc_documents()
    times: dict[str, float] = {}
    problems: list[str] = []

    if not args.check_only:
        if not Path(args.chromium).is_file():
            print(f"make_pdf: no browser at {args.chromium} (apt-get install chromium)",
                  file=sys.stderr)
            return 2
        import yaml

        config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
        html_dir = OUT_DIR / "singlehtml"
        started = time.monotonic()
        if not args.skip_build:
            status = build_singlehtml(html_dir, execute=not args.no_execute)
            if status != 0:
                print(f"make_pdf: FAIL the singlehtml build failed (status {status})",
                      file=sys.stderr)
                return 1
        times["build"] = time.monotonic() - started
        # The builder writes the page as book/intro.html (the root document's name) but
        # with every link relative to the build's root (_static/, _images/,
        # data-content_root "./"): it is served as the build's index.html (in place of
        # the redirect sphinx-external-toc writes there).
        written = html_dir / (documents[0][0] + ".html")
        if not written.is_file():
            print(f"make_pdf: no {written}; build without --skip-build", file=sys.stderr)
            return 2
        shutil.copyfile(written, html_dir / "index.html")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.unlink(missing_ok=True)
        report_file.unlink(missing_ok=True)
        started = time.monotonic()
        found, stats, report = print_pdf(html_dir, "index.html", out, args.chromium,
                                         int(args.timeout * 1000),
                                         str(config.get("author", "")))
        problems += found
        headings = report.pop("headings", [])
        if out.is_file():
            problems += rebuild_outline(out, headings)
            stats["bookmarks"] = sum(h["level"] is not None for h in headings)
            report_file.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n",
                                   encoding="utf-8")
        times["print"] = time.monotonic() - started
        print("make_pdf: printed; " + ", ".join(f"{k} {v}" for k, v in stats.items()))

    if not out.is_file():
        problems.append(f"no PDF at {out}")
    else:
        started = time.monotonic()
        report = None
        if report_file.is_file():
            report = json.loads(report_file.read_text(encoding="utf-8"))
        found, stats = check_pdf(out, documents, report)
        problems += found
        times["check"] = time.monotonic() - started
        print("make_pdf: checked; " + ", ".join(f"{k} {v}" for k, v in stats.items()))
    for problem in problems:
        print(f"make_pdf: FAIL {problem}", file=sys.stderr)
    timing = ", ".join(f"{k} {v:.0f} s" for k, v in times.items())
    if problems:
        print(f"make_pdf: {len(problems)} problem(s) ({timing})", file=sys.stderr)
        return 1
    size = out.stat().st_size / 1e6
    print(f"make_pdf: OK {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out} "
          f"({size:.1f} MB); {timing}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
