"""The chapters as a course: files in table-of-contents order, each chapter opening with
what it teaches and closing with takeaways and labelled exercises, code that fits the
HTML column, and chapters short enough to read in one sitting.

These read the notebooks' sources only (no execution), so they run in a second.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: a code line of a chapter fits the HTML code column at a 1,280-px window (measured in
#: the browser test; _static/lossless.css sizes the column for this many characters)
CODE_COLUMNS = 76
#: "about 4,500 words of prose" per chapter: markdown words with math and markup removed
#: (a cross-reference counts as one word), exercises and solutions included
MAX_WORDS = 4_600
#: chapters exempt from the general limit (none at present; the mechanism stays)
LONG_CHAPTERS: set[str] = set()
#: tighter limits for single chapters: the practice chapter is the lesson only, its full
#: benchmark is the study page (book/study_practice, outside the numbered chapters)
WORD_CAPS = {"09_practice": 3_100}
STARS = ("★★★", "★★", "★")


def toc_chapters() -> list[str]:
    """The numbered chapters of _toc.yml, in order (file stems)."""
    text = (ROOT / "_toc.yml").read_text()
    numbered = text.split("numbered: true", 1)[1].split("- caption:", 1)[0]
    return [Path(m).name for m in re.findall(r"- file:\s*(\S+)", numbered)]


CHAPTERS = toc_chapters()


def cells(stem: str) -> list[dict]:
    return json.loads((ROOT / "book" / f"{stem}.ipynb").read_text())["cells"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def prose_words(stem: str) -> int:
    words = 0
    for c in cells(stem):
        if c["cell_type"] != "markdown" or "remove-cell" in c.get("metadata", {}).get("tags", []):
            continue
        s = re.sub(r"\$\$.*?\$\$", " ", source(c), flags=re.S)
        s = re.sub(r"\$[^$\n]*\$", " ", s)
        s = re.sub(r"^\s*(:::|```|:[a-z-]+:|\([\w-]+\)=).*$", " ", s, flags=re.M)  # markup
        s = re.sub(r"\{[\w:-]+\}`[^`]*`", " x ", s)  # a role ({ref}`...`) reads as one word
        s = re.sub(r"<[^>\n]+>", " ", s)  # HTML tags
        words += len(re.findall(r"[A-Za-z0-9α-ωΑ-Ω][\w'’\-]*", s))
    return words


def test_chapters_are_numbered_in_toc_order():
    assert len(CHAPTERS) >= 7, CHAPTERS
    for k, stem in enumerate(CHAPTERS, start=1):
        assert stem.startswith(f"{k:02d}_"), (k, stem)
        assert (ROOT / "book" / f"{stem}.ipynb").is_file(), stem
    on_disk = sorted(p.stem for p in (ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
    assert on_disk == CHAPTERS, "a numbered chapter file is missing from _toc.yml"


@pytest.mark.parametrize("stem", CHAPTERS)
def test_chapter_opens_and_closes_as_a_lesson(stem):
    cs = cells(stem)
    assert "remove-cell" in cs[0].get("metadata", {}).get("tags", []), \
        f"{stem}: cell 0 is the KaTeX front matter for JupyterLab (tag remove-cell)"
    markdown = "\n".join(source(c) for c in cs if c["cell_type"] == "markdown")
    title = re.search(r"^\(ch-[a-z-]+\)=\s*\n# ", markdown, flags=re.M)
    assert title, f"{stem}: no labelled title (ch-...)="
    opening = markdown[title.end():title.end() + 6000]
    assert re.search(r"In this chapter", opening), f"{stem}: no 'In this chapter' opener"
    assert re.search(r"^## Key takeaways", markdown, flags=re.M), f"{stem}: no key takeaways"
    assert re.search(r"^## Exercises", markdown, flags=re.M), f"{stem}: no exercises"


@pytest.mark.parametrize("stem", CHAPTERS)
def test_every_exercise_has_a_difficulty(stem):
    markdown = "\n".join(source(c) for c in cells(stem) if c["cell_type"] == "markdown")
    titles = re.findall(r"^[:`]{3,}\{exercise\}\s*(.*)$", markdown, flags=re.M)
    assert titles, f"{stem}: no exercise"
    unlabelled = [t for t in titles if not t.strip().startswith(STARS)]
    assert not unlabelled, f"{stem}: exercises without ★ difficulty: {unlabelled}"


def test_no_exercise_title_repeats_across_chapters():
    seen: dict[str, str] = {}
    for stem in CHAPTERS:
        markdown = "\n".join(source(c) for c in cells(stem) if c["cell_type"] == "markdown")
        for t in re.findall(r"^[:`]{3,}\{exercise\}\s*(.*)$", markdown, flags=re.M):
            key = re.sub(r"[★\s]+", " ", t).strip().lower()
            assert key not in seen, f"exercise {t!r} in {stem} and in {seen[key]}"
            seen[key] = stem


@pytest.mark.parametrize("stem", CHAPTERS)
def test_code_fits_the_column(stem):
    long = [(k, len(line), line[:60]) for k, c in enumerate(cells(stem))
            if c["cell_type"] == "code"
            for line in source(c).splitlines() if len(line) > CODE_COLUMNS]
    assert not long, f"{stem}: code lines over {CODE_COLUMNS} characters: {long[:5]}"


@pytest.mark.parametrize("stem", [s for s in CHAPTERS if s not in LONG_CHAPTERS])
def test_chapter_length(stem):
    words = prose_words(stem)
    cap = WORD_CAPS.get(stem, MAX_WORDS)
    assert 500 < words <= cap, f"{stem}: {words} words of prose (at most {cap})"


def has_explorer(stem: str) -> bool:
    """A chapter shows a client-side explorer (lossless.explore) in an output."""
    return any("lossless-explorer" in json.dumps(c.get("outputs", []))
               for c in cells(stem) if c["cell_type"] == "code")


def test_explorers_say_what_to_try():
    with_explorer = [s for s in CHAPTERS if has_explorer(s)]
    assert len(with_explorer) >= 6, with_explorer
    for stem in with_explorer:
        markdown = "\n".join(source(c) for c in cells(stem) if c["cell_type"] == "markdown")
        missing = [k for k in ("**Try:**", "**Look for:**", "**Why:**") if k not in markdown]
        assert not missing, f"{stem}: explorer without its {missing} box"
        assert "Predict, then move it" in markdown, f"{stem}: no 'Predict, then move it' exercise"


@pytest.mark.parametrize("stem", CHAPTERS)
def test_no_line_inside_inline_math_starts_a_block(stem):
    """A line of an inline formula that starts with '+ ', '- ', '* ', '> ', '#' or '1. '
    is read by Markdown as a list item (or quote, heading): the formula is then left as
    raw TeX in the HTML and the PDF."""
    found = []
    for k, c in enumerate(cells(stem)):
        if c["cell_type"] != "markdown":
            continue
        text = re.sub(r"\$\$.*?\$\$", "", source(c), flags=re.S)
        paragraph = ""
        for line in text.split("\n"):
            if not line.strip():
                paragraph = ""
                continue
            inside = paragraph.replace(r"\$", "").count("$") % 2 == 1
            if inside and re.match(r"\s*([+\-*>#]|\d+\.)\s", line):
                found.append((k, line.strip()[:50]))
            paragraph += line + "\n"
    assert not found, f"{stem}: {found}"
