"""Word (.docx) and PowerPoint (.pptx): structure kept as Markdown.

DOCX: heading styles (and styles based on them) become `#` headings, list paragraphs
`-`/`1.` items, tables Markdown tables, all in body order. PPTX: one Section per slide
(meta `slide`), its title a `#` heading, body placeholders bullet lists, tables Markdown
tables, speaker notes last.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import docx
import pptx
from docx.table import Table as DocxTable
from docx.text.paragraph import Paragraph
from pptx.enum.shapes import PP_PLACEHOLDER
from pptx.shapes.group import GroupShape

from dataloft.ingest.extract import markdown
from dataloft.ingest.extract.base import Extracted, ExtractionError, Section, register
from dataloft.ingest.extract.sniff import ooxml_kind, open_zip

OOXML = "application/vnd.openxmlformats-officedocument"
_HEADING_STYLE = re.compile(r"heading\s*([1-9])", re.I)


def _damaged(what: str, exc: Exception) -> ExtractionError:
    return ExtractionError("corrupted_file", f"the {what} file is damaged or not a valid "
                           f"{what} file ({type(exc).__name__}: {exc})")


def _heading_level(paragraph: Paragraph) -> int | None:
    style: Any = paragraph.style
    for _ in range(5):  # styles may be based on "Heading N"; follow a few links only
        if style is None:
            return None
        name = style.name or ""
        if name.lower() == "title":
            return 1
        if found := _HEADING_STYLE.fullmatch(name.strip()):
            return int(found.group(1))
        style = style.base_style
    return None


def _list_marker(paragraph: Paragraph, counters: dict[int, int]) -> str | None:
    ppr = paragraph._p.pPr
    num = ppr.numPr if ppr is not None else None
    style = (paragraph.style.name or "").lower() if paragraph.style is not None else ""
    if num is None and not style.startswith("list"):
        return None
    ilvl = getattr(num, "ilvl", None)
    if ilvl is not None and ilvl.val is not None:
        level = int(ilvl.val)
    else:  # numbering from the style alone: "List Bullet 2" is the second level
        level = int(style[-1]) - 1 if style[-1:].isdigit() else 0
    for deeper in [k for k in counters if k > level]:
        del counters[deeper]
    if "number" in style:
        counters[level] = counters.get(level, 0) + 1
        return "  " * level + f"{counters[level]}. "
    return "  " * level + "- "


def _docx_blocks(document: Any) -> Iterator[tuple[str, bool]]:
    """(text, tight) per block; tight blocks (list items) join the previous with one \\n."""
    counters: dict[int, int] = {}
    for block in document.iter_inner_content():
        if isinstance(block, DocxTable):
            counters.clear()
            yield markdown.table([cell.text for cell in row.cells] for row in block.rows), False
            continue
        text = block.text.strip()
        if not text:
            continue
        level = _heading_level(block)
        if level is not None:
            counters.clear()
            yield markdown.heading(level, text), False
        elif (marker := _list_marker(block, counters)) is not None:
            yield marker + markdown.inline(text), True
        else:
            counters.clear()
            yield text, False


@register("docx", (".docx", ".docm", ".dotx"), (f"{OOXML}.wordprocessingml.document",),
          magic=lambda data: ooxml_kind(data) == "docx")
def extract_docx(data: bytes, _name: str) -> Extracted:
    open_zip(data, "docx").close()
    try:
        document = docx.Document(io.BytesIO(data))
        parts: list[str] = []
        previous_tight = False
        for text, tight in _docx_blocks(document):
            if parts:
                parts.append("\n" if tight and previous_tight else "\n\n")
            parts.append(text)
            previous_tight = tight
    except (ExtractionError, MemoryError):
        raise
    except Exception as exc:  # python-docx/lxml raise many kinds; all mean a damaged file
        raise _damaged("docx", exc) from exc
    yield Section("".join(parts))


def _shape_blocks(shape: Any, title_id: int | None) -> Iterator[str]:
    if isinstance(shape, GroupShape):
        for inner in _reading_order(shape.shapes):
            yield from _shape_blocks(inner, title_id)
        return
    if getattr(shape, "has_table", False):
        yield markdown.table([cell.text for cell in row.cells] for row in shape.table.rows)
        return
    if not getattr(shape, "has_text_frame", False) or shape.shape_id == title_id:
        return
    bullets = shape.is_placeholder and shape.placeholder_format.type in (
        PP_PLACEHOLDER.BODY, PP_PLACEHOLDER.OBJECT)
    lines = []
    for paragraph in shape.text_frame.paragraphs:
        text = markdown.inline(paragraph.text)
        if text:
            marked = bullets or paragraph.level > 0
            lines.append(("  " * paragraph.level + "- " if marked else "") + text)
    if lines:
        yield "\n".join(lines)


def _reading_order(shapes: Any) -> list[Any]:
    return sorted(shapes, key=lambda s: ((s.top or 0) // 10000, s.left or 0))


def _slide_text(slide: Any) -> str:
    title_shape = slide.shapes.title
    title = markdown.inline(title_shape.text_frame.text) if title_shape is not None else ""
    blocks = [markdown.heading(1, title)] if title else []
    title_id = title_shape.shape_id if title_shape is not None else None
    for shape in _reading_order(slide.shapes):
        blocks += [b for b in _shape_blocks(shape, title_id) if b.strip()]
    if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
        notes = slide.notes_slide.notes_text_frame.text.strip()
        if notes:
            blocks.append("Notes: " + notes)
    return "\n\n".join(blocks)


@register("pptx", (".pptx", ".pptm", ".potx"), (f"{OOXML}.presentationml.presentation",),
          magic=lambda data: ooxml_kind(data) == "pptx")
def extract_pptx(data: bytes, _name: str) -> Extracted:
    open_zip(data, "pptx").close()
    try:
        slides = [(n, _slide_text(slide))
                  for n, slide in enumerate(pptx.Presentation(io.BytesIO(data)).slides, 1)]
    except (ExtractionError, MemoryError):
        raise
    except Exception as exc:  # python-pptx/lxml raise many kinds; all mean a damaged file
        raise _damaged("pptx", exc) from exc
    for number, text in slides:
        if text.strip():
            yield Section(text, {"slide": number})
