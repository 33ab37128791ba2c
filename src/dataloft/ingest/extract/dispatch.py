"""Choosing the extractor for a file, and running it with every failure typed.

The format is decided by content first and name second; the client's content type is
only a hint:

1. a registered binary signature (`magic`: PDF, DOCX/XLSX/PPTX, RTF, images) decides;
2. other binary bytes fail: password-protected Office files `encrypted`, ZIP/legacy
   Office/other media `unsupported_format`, junk under a text name `corrupted_file`;
3. a certain text signature (`<!doctype html`, `<?xml`) decides, whatever the name;
4. the file name (full name such as `Dockerfile`, then extension) of a text format;
5. the content type of a text format;
6. a likely text signature (JSON, JSONL, HTML fragments) when name and type said nothing;
7. plain text.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from dataloft.ingest.extract.base import REGISTRY, ExtractionError, Registration, Row, Section
from dataloft.ingest.extract.decode import looks_binary, text_head
from dataloft.ingest.extract.sniff import refuse_binary

FALLBACK = "text"


def _by_name(name: str) -> Registration | None:
    path = PurePosixPath(name.lower())
    for key in (path.name, path.suffix):
        if key:
            for reg in REGISTRY:
                if key in reg.extensions:
                    return reg
    return None


def _by_type(content_type: str) -> Registration | None:
    ctype = content_type.split(";")[0].strip().lower()
    return next((r for r in REGISTRY if ctype and ctype in r.content_types), None)


def _sniffed(head: str, strength: str) -> Registration | None:
    return next((r for r in REGISTRY if r.sniff and r.sniff(head) == strength), None)


def choose(name: str | None, content_type: str | None, data: bytes) -> Registration:
    """The registration that will read `data` (see the module docstring for the order)."""
    for reg in REGISTRY:
        if reg.magic and reg.magic(data):
            return reg
    named = _by_name(name or "")
    typed = _by_type(content_type or "")
    if looks_binary(data):
        claimed = named or typed
        refuse_binary(data, claimed.name if claimed else None)
    head = text_head(data)
    # Formats with a signature are never chosen by name alone: a ".pdf" of text is text.
    if named and named.magic:
        named = None
    if typed and typed.magic:
        typed = None
    return (_sniffed(head, "certain") or named or typed or _sniffed(head, "likely")
            or next(r for r in REGISTRY if r.name == FALLBACK))


def _what(reg: Registration | None) -> str:
    return f"{reg.name} file" if reg else "file"


def extract(name: str | None, content_type: str | None, data: bytes
            ) -> tuple[str, list[Section | Row]]:
    """(format name, sections or rows) of a file; raises only `ExtractionError`."""
    if len(data) <= 65536 and not data.strip():  # larger files: decided after extraction
        raise ExtractionError("empty_content", "the file is empty")
    reg: Registration | None = None
    try:
        reg = choose(name, content_type, data)
        items = list(reg.extract(data, name or ""))
    except (ExtractionError, MemoryError):
        raise  # MemoryError: the extraction sandbox reports it as resource_limit
    except RecursionError as exc:
        raise ExtractionError("corrupted_file", f"the {_what(reg)} is nested too deeply "
                              "to read") from exc
    except Exception as exc:  # a library's own exception: the file is what is broken
        raise ExtractionError("corrupted_file", f"the {_what(reg)} could not be read "
                              f"({type(exc).__name__}: {exc})") from exc
    if not any(isinstance(i, Row) or (i.text and not i.text.isspace()) for i in items):
        raise ExtractionError("empty_content", f"the {_what(reg)} contains no text")
    return reg.name, items


def content_type_for(format_name: str, declared: str | None = None) -> str | None:
    """The MIME type to report for a file read as `format_name`: the declared one when it
    names that format (keeps `text/x-python`, `text/tab-separated-values`), else the
    format's canonical type (a PDF uploaded as text/plain is application/pdf)."""
    reg = next((r for r in REGISTRY if r.name == format_name), None)
    if reg is None:
        return declared
    ctype = (declared or "").split(";")[0].strip().lower()
    return ctype if ctype in reg.content_types else reg.content_type
