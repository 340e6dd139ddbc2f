"""Sphinx extension for the PDF edition's single page (``make pdf``).

Loaded only by ``.ci/make_pdf.py`` (``build_singlehtml``: it adds ``_ext`` to
``sys.path`` and this module to the ``extensions`` of its ``singlehtml`` build; the
HTML build, ``make book``, does not load it, and on any builder but ``singlehtml`` it
does nothing). It fixes two things the ``singlehtml`` builder gets wrong, on the
assembled page (``doctree-resolved`` of the root document):

- ``sphinx-exercise`` registers its nodes' visitors for ``singlehtml`` by name, so
  Sphinx no longer falls back to the ``html`` visitors for the other extensions' nodes
  (sphinx-proof's ``definition_node`` fails with "unknown node type"): the ``html``
  ones are copied in (:func:`_merge_html_visitors`);
- every chapter numbers its automatic ids from ``id1`` and names its sections
  ``notes``, ``exercises``, ...; on one page they collide and a citation or a
  cross-reference lands in the wrong chapter. Ids used by more than one chapter are
  prefixed with the chapter's name (section, figure and equation numbers follow) and
  every reference to them follows; cross-chapter links become plain ``#anchor`` links
  (:func:`_unique_ids`).
"""

from __future__ import annotations

import re
from typing import Any

from docutils import nodes
from sphinx import addnodes
from sphinx.util import logging

logger = logging.getLogger(__name__)


def _elements_by_document(doctree: Any, master: str) -> list[tuple[Any, str]]:
    """Every element of the assembled page with the document it comes from.

    ``inline_all_toctrees`` wraps each document in a ``start_of_file`` node by assigning
    its ``children`` list, so the document's nodes keep their old ``parent``: the
    document is found walking down from the root, not up from a node.
    """
    found: list[tuple[Any, str]] = []
    stack = [(doctree, master)]
    while stack:
        node, doc = stack.pop()
        if isinstance(node, addnodes.start_of_file):
            doc = node["docname"]
        found.append((node, doc))
        stack.extend((child, doc) for child in reversed(node.children)
                     if isinstance(child, nodes.Element))
    return found


def _slug(docname: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", docname).strip("-")


def _merge_html_visitors(app: Any) -> None:
    """Let ``singlehtml`` use every ``html`` visitor (see the module docstring)."""
    handlers = app.registry.translation_handlers
    if "singlehtml" in handlers:
        handlers["singlehtml"] = {**handlers.get("html", {}), **handlers["singlehtml"]}


def _unique_ids(app: Any, doctree: Any, docname: str) -> None:
    """On the assembled single page: no id shared by two documents (module docstring)."""
    if app.builder.name != "singlehtml" or docname != app.config.root_doc:
        return
    _merge_html_visitors(app)
    elements = _elements_by_document(doctree, app.config.root_doc)
    owners: dict[str, set[str]] = {}
    for node, doc in elements:
        for i in node.get("ids", []):
            owners.setdefault(i, set()).add(doc)
    clash = {i for i, docs in owners.items() if len(docs) > 1}
    renamed: dict[tuple[str, str], str] = {}
    for node, doc in elements:
        ids = node.get("ids", [])
        for k, i in enumerate(ids):
            if i in clash:
                renamed[(doc, i)] = ids[k] = f"{_slug(doc)}--{i}"
    env = app.builder.env
    for (doc, old), new in renamed.items():  # section, figure and equation numbers follow
        secnums = env.toc_secnumbers.get(doc, {})
        if "#" + old in secnums:
            secnums["#" + new] = secnums["#" + old]
        for numbers in env.toc_fignumbers.get(doc, {}).values():
            if old in numbers:
                numbers[new] = numbers[old]
    for node, doc in elements:
        if node.get("refid"):
            node["refid"] = renamed.get((doc, node["refid"]), node["refid"])
        if node.get("backrefs"):
            node["backrefs"] = [renamed.get((doc, b), b) for b in node["backrefs"]]
        if isinstance(node, nodes.reference) and node.get("refuri", "").startswith("#"):
            uri = node["refuri"]
            match = re.fullmatch(r"#document-([^#]+)#(.+)", uri)
            if match:  # a link into another document: to the (renamed) anchor itself
                target_doc, anchor = match.groups()
                node["refuri"] = "#" + renamed.get((target_doc, anchor), anchor)
            elif not uri.startswith("#document-"):
                node["refuri"] = "#" + renamed.get((doc, uri[1:]), uri[1:])
    logger.info("make_pdf: %d id(s) shared by several documents renamed on the single page",
                len(renamed))


def setup(app: Any) -> dict[str, Any]:
    """Sphinx extension entry point (only the PDF build, ``make_pdf.build_singlehtml``,
    loads it)."""
    app.connect("doctree-resolved", _unique_ids, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
