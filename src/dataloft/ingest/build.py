"""From extracted items to records: chunk documents, render rows, attach provenance."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from dataloft.ingest.chunk import chunk
from dataloft.ingest.extract import Row, Section
from dataloft.models import File
from dataloft.records.repository import NewRecord

CHARS_PER_TOKEN = 4  # rough English average; recordMaxTokens is given in tokens


def render_row(fields: dict[str, Any]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in fields.items() if v not in (None, ""))


def build_records(file: File, items: list[Section | Row], max_tokens: int) -> Iterator[NewRecord]:
    source = f"file:///{file.id}"
    base = {"fileName": file.name, "fileType": file.content_type, "fileCreatedAt": file.created_at}
    position = 0
    for item in items:
        if isinstance(item, Row):
            texts: list[tuple[str, dict[str, Any]]] = [(render_row(item.fields),
                                                        {**base, **item.meta, **item.fields})]
        else:
            max_chars = max_tokens * CHARS_PER_TOKEN
            texts = [(c, {**base, **item.meta})
                     for c in chunk(item.text, max_chars, max_chars // 8)]
        for text, meta in texts:
            if not text.strip():
                continue
            yield NewRecord(text=text, meta=meta, source=source, position=position,
                            content_hash=hashlib.sha256(text.encode()).hexdigest())
            position += 1
