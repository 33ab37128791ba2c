"""Bytes to text: BOMs, UTF-8, UTF-16 (with or without BOM), Windows-1252/Latin-1."""

from __future__ import annotations

import codecs

from dataloft.ingest.extract.base import ExtractionError

_SAMPLE = 8192
# Control characters that never occur in text files; \t \n \r \f \v and ESC (ANSI logs) do.
_CONTROL = bytes(c for c in range(32) if c not in (9, 10, 11, 12, 13, 27))
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
         (codecs.BOM_UTF16_BE, "utf-16-be"))


def _bom(data: bytes) -> tuple[str, int] | None:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding, len(bom)
    return None


def _utf16_without_bom(head: bytes) -> str | None:
    """Mostly-ASCII UTF-16 has a NUL in every other byte; which half tells the order."""
    if len(head) < 4:
        return None
    even, odd = head[0::2], head[1::2]
    if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    return None


def encoding_of(data: bytes) -> tuple[str, int] | None:
    """(codec, bytes to skip) for text, or None when the bytes are not text at all."""
    head = data[:_SAMPLE]
    found = _bom(head) or ((utf16, 0) if (utf16 := _utf16_without_bom(head)) else None)
    if found:
        return found
    if b"\x00" in head:
        return None
    if sum(head.count(c) for c in _CONTROL) > 0.05 * max(len(head), 1):
        return None
    try:
        # Not final unless it is the whole file: a character cut by the sample is no error.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=len(data) <= _SAMPLE)
    except UnicodeDecodeError:
        return "cp1252", 0
    return "utf-8", 0


def looks_binary(data: bytes) -> bool:
    return encoding_of(data) is None


def decode_text(data: bytes, *, newlines: bool = True) -> str:
    """The file as one string; `newlines` turns CRLF and CR into LF."""
    found = encoding_of(data)
    if found is None:
        raise ExtractionError("corrupted_file", "the file holds binary data, not text")
    encoding, skip = found
    view = memoryview(data)[skip:]
    try:
        text = str(view, encoding)
    except UnicodeDecodeError as exc:
        text = _fallback(view, encoding, exc)
    if text.startswith("\ufeff"):  # a second BOM, from a tool that added its own
        text = text[1:]
    if newlines and "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _fallback(view: memoryview, encoding: str, exc: UnicodeDecodeError) -> str:
    if encoding == "utf-8" and not view[:exc.start].tobytes().isascii():
        # Valid UTF-8 characters before the bad byte: UTF-8 with a stray byte, not cp1252.
        return str(view, "utf-8", "replace")
    try:
        return str(view, "cp1252")
    except UnicodeDecodeError:
        return str(view, "latin-1")  # maps every byte: text always comes out


def text_head(data: bytes, size: int = 4096) -> str:
    """The decoded start of a text file ('' for binary), for format sniffing."""
    found = encoding_of(data)
    if found is None:
        return ""
    encoding, skip = found
    return data[skip:skip + size].decode(encoding, errors="ignore")
