"""Extraction in a confined child (`kit/confine.py`): a hostile file can fail its own sync,
nothing more. Every failure ends as an `ExtractionError` with a typed code:

- the extractor's own `ExtractionError`                       -> same code and message
- over the wall clock, or the CPU backstop                    -> `processing_timeout`
- `MemoryError`, an allocator failure, death by a signal, RSS -> `resource_limit`
- any other exception                                         -> `corrupted_file`

Memory budget of a deployment: `workers` x `memory_bytes` on top of the server itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from dataloft.ingest.extract import ExtractionError, Row, Section, extract, extract_stream
from dataloft.ingest.extract.columns import TableShape, add_shape
from dataloft.kit import confine
from dataloft.kit.confine import Confined, Inherited
from dataloft.kit.spool import Spool, SpoolFull, SpoolWriter

DEFAULT_MEMORY_BYTES = 1 << 30
DEFAULT_TIMEOUT_S = 120.0
# What one file may expand to on disk (rows pickled): far above any honest file of the
# upload cap, far below a bomb's inflated size.
SPOOL_MAX_BYTES = 4 << 30
SPOOL_BATCH_ITEMS = 1000
# (format name, items, the shape of each table by `Row.meta["table"]`)
Spooled = tuple[str, int, dict[str, TableShape]]
# Imported once by the forkserver, so every child starts with the extractors loaded.
PRELOAD = ("dataloft.ingest.extract", __name__)


def start() -> None:
    confine.start(PRELOAD)


def run_extract(name: str | None, content_type: str | None, path: str, *,
                memory_bytes: int = DEFAULT_MEMORY_BYTES, timeout_s: float = DEFAULT_TIMEOUT_S
                ) -> tuple[str, list[Section | Row]]:
    """`extract(name, content_type, <bytes of path>)` in a confined child process.

    The parent opens `path` and hands the child the descriptor, never the bytes: nothing
    big crosses the pipe, the child needs no access to the blob directory, and a blob that
    a newer upload deletes meanwhile stays readable, as with `BlobStore.open`."""
    with open(path, "rb") as fh:
        result: tuple[str, list[Section | Row]] = run_confined(
            extract_fd, (name, content_type, Inherited(fh.fileno())),
            memory_bytes=memory_bytes, timeout_s=timeout_s)
    return result


def run_extract_spooled(name: str | None, content_type: str | None, path: str, spool: Spool,
                        *, memory_bytes: int = DEFAULT_MEMORY_BYTES,
                        timeout_s: float = DEFAULT_TIMEOUT_S,
                        spool_max_bytes: int = SPOOL_MAX_BYTES,
                        limit_s: float | None = None) -> Spooled:
    """`run_extract`, but the child appends the items to `spool` in batches (through an
    inherited descriptor) and answers only (format name, item count, the tables' shapes):
    however many rows a file has, neither the pipe nor this process ever holds more than a
    batch of them. A `Spool(header=True)` gets the format name as its header, before the
    first batch, so a reader following the spool (`Spool.writing`) knows it at once.

    `limit_s`: the child may run past `timeout_s` while it keeps writing batches (each
    batch restarts the clock), up to `limit_s` in all. A sync follows the spool, and its
    build of the rows shares the CPU with this child (niced): a long file extracts
    slower than alone, yet never stalls."""
    fd = spool.fileno()
    with open(path, "rb") as fh:
        try:
            result: Spooled = confine.run(
                extract_fd_to_spool,
                (name, content_type, Inherited(fh.fileno()), Inherited(fd), spool_max_bytes,
                 spool.has_header),
                preload=PRELOAD, memory_bytes=memory_bytes, timeout_s=timeout_s,
                progress=None if limit_s is None else lambda: os.fstat(fd).st_size,
                limit_s=limit_s)
        except Confined as exc:
            raise as_extraction_error(exc) from None
    return result


def run_confined(fn: Callable[..., Any], args: tuple[Any, ...], *, memory_bytes: int,
                 timeout_s: float) -> Any:
    """`fn(*args)` in a child of the extraction forkserver; failures as `ExtractionError`."""
    try:
        return confine.run(fn, args, preload=PRELOAD, memory_bytes=memory_bytes,
                           timeout_s=timeout_s)
    except Confined as exc:
        raise as_extraction_error(exc) from None


def as_extraction_error(exc: Confined) -> ExtractionError:
    if exc.code == "timeout":
        return ExtractionError("processing_timeout", f"extraction {exc.message}")
    if exc.code == "memory":
        return ExtractionError("resource_limit", f"extraction {exc.message}")
    if exc.code == "crashed":
        message = exc.message
        if message.startswith("stopped unexpectedly"):
            message = f"the extractor {message}"
        return ExtractionError("corrupted_file", message)
    return ExtractionError(exc.code, exc.message)


def extract_fd(name: str | None, content_type: str | None, fd: int
               ) -> tuple[str, list[Section | Row]]:
    with os.fdopen(fd, "rb") as fh:
        data = fh.read()
    return extract(name, content_type, data)


def extract_fd_to_spool(name: str | None, content_type: str | None, fd: int, out_fd: int,
                        max_bytes: int, header: bool = False) -> Spooled:
    with os.fdopen(fd, "rb") as fh:
        data = fh.read()
    fmt, items = extract_stream(name, content_type, data)
    out = (SpoolWriter(out_fd, max_bytes, SPOOL_BATCH_ITEMS, header=fmt) if header
           else SpoolWriter(out_fd, max_bytes, SPOOL_BATCH_ITEMS))
    shapes: dict[str, TableShape] = {}
    try:
        for item in items:
            if isinstance(item, Row):
                add_shape(shapes, item)
            out.add(item, _weight(item))
        out.close()
    except SpoolFull as exc:
        raise ExtractionError("resource_limit", f"the file expands to {exc}") from None
    return fmt, out.count, shapes


def _weight(item: Section | Row) -> int:
    if isinstance(item, Section):
        return len(item.text)
    return sum(len(v) if isinstance(v, str) else 16 for v in item.fields.values())
