"""Turning bytes into sections of text (documents) or rows (tables).

Extractors register in one registry; the built-ins register exactly as a plugin would.
This first set covers plain text, Markdown, CSV/TSV, JSON and JSONL.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any


class ExtractionError(Exception):
    """A typed extraction failure; `code` ends up in the sync.failed event."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Section:
    """A run of document text, with where it came from."""

    text: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Row:
    """One table row: typed fields plus the sheet/table it belongs to."""

    fields: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)


Extracted = Iterator[Section | Row]
Extractor = Callable[[bytes, str], Extracted]


@dataclass(frozen=True)
class Registration:
    name: str
    extensions: tuple[str, ...]
    content_types: tuple[str, ...]
    extract: Extractor


REGISTRY: list[Registration] = []


def register(name: str, extensions: tuple[str, ...], content_types: tuple[str, ...]
             ) -> Callable[[Extractor], Extractor]:
    def wrap(fn: Extractor) -> Extractor:
        REGISTRY.append(Registration(name, extensions, content_types, fn))
        return fn
    return wrap


def decode_text(data: bytes) -> str:
    if looks_binary(data):
        raise ExtractionError("corrupted_file", "the file holds binary data, not text")
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def looks_binary(data: bytes) -> bool:
    head = data[:8192]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False
    return b"\x00" in head


def choose(name: str | None, content_type: str | None, data: bytes) -> Registration:
    ext = PurePosixPath(name or "").suffix.lower()
    ctype = (content_type or "").split(";")[0].strip().lower()
    for reg in REGISTRY:
        if ext and ext in reg.extensions:
            return reg
    for reg in REGISTRY:
        if ctype and ctype in reg.content_types:
            return reg
    if not looks_binary(data):
        return next(r for r in REGISTRY if r.name == "text")
    what = f"{name or 'this file'} ({ctype or 'unknown type'})"
    raise ExtractionError("unsupported_format", f"cannot extract text from {what}")


def extract(name: str | None, content_type: str | None, data: bytes
            ) -> tuple[str, list[Section | Row]]:
    reg = choose(name, content_type, data)
    return reg.name, list(reg.extract(data, name or ""))


@register("text", (".txt", ".text", ".log"), ("text/plain",))
def _text(data: bytes, _name: str) -> Extracted:
    yield Section(decode_text(data))


@register("markdown", (".md", ".markdown"), ("text/markdown",))
def _markdown(data: bytes, _name: str) -> Extracted:
    yield Section(decode_text(data))


def _sniff_dialect(sample: str, name: str) -> type[csv.Dialect] | csv.Dialect:
    if name.lower().endswith(".tsv"):
        return csv.excel_tab
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        return csv.excel


@register("csv", (".csv", ".tsv"), ("text/csv", "text/tab-separated-values"))
def _csv(data: bytes, name: str) -> Extracted:
    text = decode_text(data)
    reader = csv.reader(io.StringIO(text, newline=""), _sniff_dialect(text[:65536], name))
    header: list[str] | None = None
    for row in reader:
        if header is None:
            header = [h.strip() or f"column_{i + 1}" for i, h in enumerate(row)]
            continue
        if not any(cell.strip() for cell in row):
            continue
        fields = {header[i] if i < len(header) else f"column_{i + 1}": cell
                  for i, cell in enumerate(row)}
        yield Row(fields)


def _object_rows(items: list[Any]) -> Extracted:
    for item in items:
        yield Row(item) if isinstance(item, dict) else Section(json.dumps(item, ensure_ascii=False))


@register("json", (".json",), ("application/json",))
def _json(data: bytes, _name: str) -> Extracted:
    try:
        value = json.loads(decode_text(data))
    except (ValueError, RecursionError) as exc:
        raise ExtractionError("corrupted_file", f"invalid JSON: {exc}") from exc
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        yield from _object_rows(value)
    else:
        yield Section(json.dumps(value, ensure_ascii=False, indent=2))


@register("jsonl", (".jsonl", ".ndjson"), ("application/jsonl", "application/x-ndjson"))
def _jsonl(data: bytes, _name: str) -> Extracted:
    for n, line in enumerate(decode_text(data).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise ExtractionError("corrupted_file", f"invalid JSON on line {n}: {exc}") from exc
        yield from _object_rows([value])
