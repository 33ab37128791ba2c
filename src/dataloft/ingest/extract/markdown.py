"""The Markdown every document extractor writes: headings, list items and tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def inline(text: str) -> str:
    """One line of text: runs of whitespace (newlines too) become one space."""
    return " ".join(text.split())


def heading(level: int, text: str) -> str:
    return f"{'#' * max(1, min(level, 6))} {inline(text)}"


def _cell(text: str) -> str:
    return inline(text).replace("|", "\\|")


def table(rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table; the first row is the header (Markdown tables need one)."""
    cells = [[_cell(c) for c in row] for row in rows]
    cells = [row for row in cells if any(row)]
    if not cells:
        return ""
    width = max(len(row) for row in cells)
    cells = [row + [""] * (width - len(row)) for row in cells]
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + " --- |" * width]
    lines += ["| " + " | ".join(row) + " |" for row in cells[1:]]
    return "\n".join(lines)
