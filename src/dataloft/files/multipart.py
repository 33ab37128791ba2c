"""Streaming multipart/form-data: file parts go straight to a sink, never whole into memory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from python_multipart.multipart import MultipartParser, parse_options_header

from dataloft.errors import BadRequest, DataloftError
from dataloft.files.streams import pump

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS_TOTAL_BYTES = 256 * 1024  # all non-file parts together


@dataclass
class Part:
    name: str = ""
    filename: str | None = None
    raw_filename: str | None = None  # as the client sent it: for callers that refuse, not fix
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    value: bytearray = field(default_factory=bytearray)


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    file: Part | None = None


async def parse(content_type: str, body: AsyncIterator[bytes], file_field: str,
                sink: Callable[[bytes], None]) -> Form:
    """Parse a multipart body; the bytes of part `file_field` (or of the first part with a
    filename) are passed to `sink`; other parts are small text fields."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadRequest("multipart body without a boundary")
    reader = _Reader(file_field, sink)
    parser = MultipartParser(boundary, reader.callbacks())
    try:
        await pump(body, parser.write)
        parser.finalize()
    except DataloftError:
        raise
    except Exception as exc:
        raise BadRequest(f"malformed multipart body: {exc}") from exc
    # python-multipart's finalize() does not check that the closing boundary arrived: without
    # this, a truncated body would be stored as if it were the whole file.
    if not reader.ended:
        raise BadRequest("malformed multipart body: it ends before the closing boundary")
    return reader.form


class _Reader:
    """The parser's callbacks: headers build each part, the file part streams to the sink."""

    def __init__(self, file_field: str, sink: Callable[[bytes], None]) -> None:
        self.file_field, self.sink = file_field, sink
        self.form = Form()
        self.part = Part()
        self.hname, self.hvalue = b"", b""
        self.to_sink = False
        self.fields_bytes = 0
        self.ended = False

    def callbacks(self) -> MultipartCallbacks:
        return {"on_part_begin": self.on_part_begin, "on_header_field": self.on_header_field,
                "on_header_value": self.on_header_value, "on_header_end": self.on_header_end,
                "on_headers_finished": self.on_headers_finished,
                "on_part_data": self.on_part_data, "on_part_end": self.on_part_end,
                "on_end": self.on_end}

    def on_part_begin(self) -> None:
        self.part = Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.hname += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.hvalue += data[start:end]

    def on_header_end(self) -> None:
        # latin-1: byte for byte, so parse_options_header (which re-encodes latin-1) hands
        # back the client's bytes; a UTF-8 filename is then decoded as UTF-8 below.
        self.part.headers[self.hname.decode("latin-1").lower()] = self.hvalue.decode("latin-1")
        self.hname, self.hvalue = b"", b""

    def on_headers_finished(self) -> None:
        part = self.part
        _, disp = parse_options_header(part.headers.get("content-disposition", ""))
        part.name = disp.get(b"name", b"").decode("utf-8", "replace")
        raw_filename = disp.get(b"filename")
        part.raw_filename = raw_filename.decode("utf-8", "replace") if raw_filename else None
        part.filename = _basename(part.raw_filename) if part.raw_filename else None
        part.content_type = part.headers.get("content-type")
        is_file = self.form.file is None and (part.name == self.file_field
                                              or bool(raw_filename))
        self.to_sink = is_file
        if is_file:
            self.form.file = part

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.to_sink:
            self.sink(data[start:end])
            return
        part = self.part
        part.value += data[start:end]
        self.fields_bytes += end - start
        if self.fields_bytes > MAX_FIELDS_TOTAL_BYTES:
            raise BadRequest(f"the form fields are larger than {MAX_FIELDS_TOTAL_BYTES} bytes")
        if len(part.value) > MAX_FIELD_BYTES:
            raise BadRequest(f"form field {part.name!r} is larger than {MAX_FIELD_BYTES} bytes")

    def on_part_end(self) -> None:
        if not self.to_sink and self.part.name:
            self.form.fields[self.part.name] = self.part.value.decode("utf-8", "replace")

    def on_end(self) -> None:
        self.ended = True


def _basename(name: str) -> str | None:
    """A client's filename without any directory part or control characters."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:255] if name and name not in (".", "..") else None
