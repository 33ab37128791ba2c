"""Streaming multipart/form-data: file parts go straight to a sink, never whole into memory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header

from dataloft.errors import BadRequest, DataloftError
from dataloft.files.streams import pump

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
    form = Form()
    state: dict[str, object] = {"part": None, "hname": b"", "hvalue": b"", "to_sink": False,
                                "fields_bytes": 0, "ended": False}

    def on_part_begin() -> None:
        state["part"] = Part()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["hname"] = bytes(state["hname"]) + data[start:end]  # type: ignore[arg-type]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["hvalue"] = bytes(state["hvalue"]) + data[start:end]  # type: ignore[arg-type]

    def on_header_end() -> None:
        part: Part = state["part"]  # type: ignore[assignment]
        name = bytes(state["hname"]).decode("latin-1").lower()  # type: ignore[arg-type]
        # latin-1: byte for byte, so parse_options_header (which re-encodes latin-1) hands
        # back the client's bytes; a UTF-8 filename is then decoded as UTF-8 below.
        part.headers[name] = bytes(state["hvalue"]).decode("latin-1")  # type: ignore[arg-type]
        state["hname"], state["hvalue"] = b"", b""

    def on_headers_finished() -> None:
        part: Part = state["part"]  # type: ignore[assignment]
        _, disp = parse_options_header(part.headers.get("content-disposition", ""))
        part.name = disp.get(b"name", b"").decode("utf-8", "replace")
        raw_filename = disp.get(b"filename")
        part.raw_filename = raw_filename.decode("utf-8", "replace") if raw_filename else None
        part.filename = _basename(part.raw_filename) if part.raw_filename else None
        part.content_type = part.headers.get("content-type")
        is_file = form.file is None and (part.name == file_field or bool(raw_filename))
        state["to_sink"] = is_file
        if is_file:
            form.file = part

    def on_part_data(data: bytes, start: int, end: int) -> None:
        part: Part = state["part"]  # type: ignore[assignment]
        if state["to_sink"]:
            sink(data[start:end])
            return
        part.value += data[start:end]
        total = int(state["fields_bytes"]) + (end - start)  # type: ignore[call-overload]
        state["fields_bytes"] = total
        if total > MAX_FIELDS_TOTAL_BYTES:
            raise BadRequest(f"the form fields are larger than {MAX_FIELDS_TOTAL_BYTES} bytes")
        if len(part.value) > MAX_FIELD_BYTES:
            raise BadRequest(f"form field {part.name!r} is larger than {MAX_FIELD_BYTES} bytes")

    def on_part_end() -> None:
        part: Part = state["part"]  # type: ignore[assignment]
        if not state["to_sink"] and part.name:
            form.fields[part.name] = part.value.decode("utf-8", "replace")

    def on_end() -> None:
        state["ended"] = True

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field,
        "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
        "on_part_end": on_part_end, "on_end": on_end,
    })
    try:
        await pump(body, parser.write)
        parser.finalize()
    except DataloftError:
        raise
    except Exception as exc:
        raise BadRequest(f"malformed multipart body: {exc}") from exc
    # python-multipart's finalize() does not check that the closing boundary arrived: without
    # this, a truncated body would be stored as if it were the whole file.
    if not state["ended"]:
        raise BadRequest("malformed multipart body: it ends before the closing boundary")
    return form


def _basename(name: str) -> str | None:
    """A client's filename without any directory part or control characters."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:255] if name and name not in (".", "..") else None
