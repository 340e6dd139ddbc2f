"""What the package shows a user: plain-text and HTML tables for the ``__repr__`` /
``_repr_html_`` of result objects, and optional progress bars."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence

__all__ = ["text_table", "html_table", "fmt_sig", "fmt_residual", "progress"]

#: Residuals and differences below this print as ``"< 1e-12"``: at rounding level their
#: digits depend on the summation order (BLAS threads, CPU), not on the mathematics.
RESIDUAL_FLOOR = 1e-12


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


def fmt_sig(value: float, digits: int = 4) -> str:
    """``value`` to ``digits`` significant digits, machine-independently.

    The value is first rounded to 12 significant digits, so that a number that is exact
    in the mathematics but carries rounding noise (``0.25**3 = 1/64 = 0.015625``, on the
    boundary between ``0.01562`` and ``0.01563``) prints the same on every machine."""
    v = float(value)
    if math.isfinite(v) and v != 0.0:
        v = float(f"{v:.12g}")
    return f"{v:.{digits}g}"


def fmt_residual(value: float, floor: float = RESIDUAL_FLOOR) -> str:
    """A residual or difference for display: ``"< 1e-12"`` when ``|value| < floor`` (its
    digits would be rounding noise), else two significant digits (``"1.8e-02"``).
    Only the printed text changes: assertions should test the value itself."""
    v = float(value)
    if not math.isfinite(v):
        return str(v)
    if abs(v) < floor:
        return f"< {floor:.0e}".replace("e-0", "e-")
    return f"{v:.1e}"


def progress(iterable: Iterable, enabled: bool, desc: str) -> Iterable:
    """``iterable`` wrapped in a transient ``tqdm`` bar when ``enabled``, else unchanged."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, leave=False)
