"""Sphinx extension: keep the built pages free of requests to other hosts.

Enabled from ``_config.yml`` (``sphinx: local_extensions: {offline_html: _ext}``). On
every HTML page it

- drops a repeated inline ``<script>``: Sphinx 7.4 registers a body-only script added by
  an extension after the builder started twice (``None`` and ``""`` file names), which
  for sphinx-thebe's ``const THEBE_JS_URL = ...`` is a SyntaxError in every page;
- warns (an error under ``-W``) about any ``script``/``link``/``img``/``iframe``/
  ``source``/``video``/``audio``/``embed`` in the page body that would load from a
  remote host.
"""

from __future__ import annotations

import re
from typing import Any

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

REMOTE_RESOURCE = re.compile(
    r"""<(script|link|img|iframe|source|video|audio|embed)\b[^>]*?\b(?:src|href)=["']"""
    r"""((?:https?:)?//[^"']+)["']""",
    re.IGNORECASE,
)


def _script_key(script: Any) -> tuple:
    filename = getattr(script, "filename", script) or ""
    attributes = getattr(script, "attributes", {}) or {}
    return (str(filename), tuple(sorted((k, str(v)) for k, v in attributes.items())))


def _page_context(app: Sphinx, pagename: str, templatename: str, context: dict,
                  doctree: Any) -> None:
    scripts = context.get("script_files")
    if scripts:
        seen: set[tuple] = set()
        unique = []
        for script in scripts:
            key = _script_key(script)
            if key not in seen:
                seen.add(key)
                unique.append(script)
        scripts[:] = unique  # in place: Sphinx and myst-nb hold the same list

    body = context.get("body")
    if not body:
        return
    for match in REMOTE_RESOURCE.finditer(body):
        tag, url = match.group(1).lower(), match.group(2)
        if tag == "link" and "stylesheet" not in match.group(0).lower():
            continue  # rel=canonical and the like are not loaded
        logger.warning("<%s> loads %s from another host; the book must read offline "
                       "(serve it from _static/)", tag, url,
                       type="offline_html", subtype="remote", location=pagename)


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("html-page-context", _page_context, priority=900)  # after myst-nb's
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
