"""What the package shows a user: plain-text and HTML tables for the ``__repr__`` /
``_repr_html_`` of result objects, and optional progress bars."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

__all__ = ["text_table", "html_table", "progress"]


def text_table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]], *,
               left: int = 0) -> str:
    """``title``, then the header and rows in aligned columns (two spaces apart); the first
    ``left`` columns are left-justified, the others right-justified."""
    widths = [max(len(h), *(len(r[j]) for r in rows)) for j, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if j < left else c.rjust(w)
                         for j, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([title, line(header)] + [line(r) for r in rows])


def html_table(caption_html: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A ``<p>`` caption (already HTML) and a table; header and cells are escaped."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                   for r in rows)
    return (f"<p>{caption_html}</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def progress(iterable: Iterable, enabled: bool, desc: str) -> Iterable:
    """``iterable`` wrapped in a transient ``tqdm`` bar when ``enabled``, else unchanged."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, leave=False)
