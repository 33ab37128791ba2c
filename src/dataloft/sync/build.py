"""From extracted items to records: chunk documents, render rows, attach provenance.

Every record's meta holds the file's `fileName`, `fileType` and `fileCreatedAt`, plus
what the extractor knew: `page` (PDF), `slide` (PPTX), `sheet`/`table`/`row` (tables),
`language` (code). A table row over the token budget becomes several records of that row
(`part` 1, 2 ...): each opens with the row's short fields (its identity) and carries a
piece of the rest; meta keeps the most fields that fit (shortest first). Document chunks add
`headings`, the heading path they sit under (a list, outermost first, empty when none).
Table rows add their typed fields, so a filter such as `{"amount": {"$gte": 1000}}` reads
the column directly. Records are numbered in file order (`position`), and `source` is `file:///{fileId}`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator
from typing import Any

from dataloft.ingest.chunk import (
    CHARS_PER_TOKEN,
    DEFAULT_MAX_TOKENS,
    MIN_MAX_TOKENS,
    chunk,
    default_overlap,
    estimate_tokens,
)
from dataloft.ingest.extract import Row, Section
from dataloft.models import File
from dataloft.records.repository import NewRecord

# A split row's head (its short fields) takes at most 1/HEAD_SHARE of each part's budget.
HEAD_SHARE = 4


def _value_text(value: Any) -> str:
    if type(value) is str or type(value) is int:  # most cells: no further test needed
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value)) if abs(value) < 1e16 else str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def render_row(fields: dict[str, Any]) -> str:
    """`column: value` lines, so column names are searchable alongside the values."""
    parts = []
    for k, v in fields.items():
        kind = type(v)
        if kind is str:  # most cells: text or integers, formatted as they are
            if v:
                parts.append(f"{k}: {v}")
        elif kind is int:
            parts.append(f"{k}: {v}")
        elif v is not None:
            parts.append(f"{k}: {_value_text(v)}")
    return "\n".join(parts)


def _row_records(row: Row, max_tokens: int, overlap: int
                 ) -> Iterator[tuple[str, dict[str, Any]]]:
    """One record per row; a row over the token budget (a huge cell, thousands of columns)
    becomes several records of the same row: each names the row (its meta's `row`, `table`,
    `part`) and keeps only the fields that fit its meta budget, so no record is over the
    budget in text, nor a copy of the whole row in meta. Each part's text opens with the
    row's short fields (its identity: an id, a title), the rest cut by the chunker."""
    text = render_row(row.fields)
    if not text.strip():
        return
    if estimate_tokens(text) <= max_tokens:
        yield text, {**row.meta, **row.fields}
        return
    budget = max_tokens * CHARS_PER_TOKEN
    meta = {**row.meta, **_fitting_fields(row.fields, budget)}
    head, body = _split_row(row.fields, budget)
    for part, piece in enumerate(chunk(body, _body_tokens(head, max_tokens), overlap),
                                 start=1):
        yield (f"{head}\n{piece.text}" if head else piece.text), {**meta, "part": part}


def _split_row(fields: dict[str, Any], budget: int) -> tuple[str, str]:
    """(head, body): the fields that fit in a quarter of the budget, in column order, and
    the others. The head is repeated atop every part, as a document chunk sits under its
    headings, so each part is found (and embedded) as part of its row; a quarter leaves
    the body most of each record, so a row becomes at most a third more parts."""
    head = _fitting_fields(fields, budget // HEAD_SHARE)
    body = {k: v for k, v in fields.items() if k not in head}
    if (not head or not render_row(body).strip()
            or budget // CHARS_PER_TOKEN - estimate_tokens(render_row(head) + "\n")
            < MIN_MAX_TOKENS):
        return "", render_row(fields)
    return render_row(head), render_row(body)


def _body_tokens(head: str, max_tokens: int) -> int:
    """What is left of the budget under the head (and its line break)."""
    return max_tokens - estimate_tokens(head + "\n") if head else max_tokens


def _fitting_fields(fields: dict[str, Any], budget: int) -> dict[str, Any]:
    """The most fields that fit in `budget` characters as rendered ("key: value\n"):
    shortest first, so a long cell leaves out no short field after it (an id), returned
    in column order."""
    sizes = {key: len(key) + len(_value_text(value)) + 3 for key, value in fields.items()}
    kept: set[str] = set()
    for key in sorted(sizes, key=sizes.__getitem__):
        if sizes[key] > budget:
            break
        kept.add(key)
        budget -= sizes[key]
    return {key: value for key, value in fields.items() if key in kept}


def _record(text: str, meta: dict[str, Any], source: str, position: int) -> NewRecord:
    return NewRecord(text=text, meta=meta, source=source, position=position,
                     content_hash=hashlib.sha256(text.encode()).hexdigest())


def file_meta(file: File, file_type: str | None = None) -> dict[str, Any]:
    """The meta every record of the file starts from (table snapshots share it too)."""
    return {"fileName": file.name, "fileType": file_type or file.content_type,
            "fileCreatedAt": file.created_at}


def build_records(file: File, items: Iterable[Section | Row],
                  max_tokens: int = DEFAULT_MAX_TOKENS, *, overlap_tokens: int | None = None,
                  file_type: str | None = None) -> Iterator[NewRecord]:
    """Records of one file, in order. `max_tokens` is the dataset's `recordMaxTokens`;
    `overlap_tokens` defaults to 12% of it; `file_type` (the detected format's MIME type)
    overrides the content type the client declared."""
    source = f"file:///{file.id}"
    base = file_meta(file, file_type)
    overlap = default_overlap(max_tokens) if overlap_tokens is None else overlap_tokens
    position = 0
    for item in items:
        if type(item) is Row:
            # Most rows: one record, its meta built in one merge (a sync's rows take this
            # path a million times; `_row_records` handles the empty and the oversized).
            text = render_row(item.fields)
            if text and len(text) <= max_tokens * CHARS_PER_TOKEN:
                yield _record(text, {**base, **item.meta, **item.fields}, source, position)
                position += 1
                continue
        if isinstance(item, Row):
            for text, meta in _row_records(item, max_tokens, overlap):
                yield _record(text, {**base, **meta}, source, position)
                position += 1
            continue
        for piece in chunk(item.text, max_tokens, overlap, verbatim=item.verbatim):
            meta = {**base, **item.meta, "headings": list(piece.headings)}
            yield _record(piece.text, meta, source, position)
            position += 1
