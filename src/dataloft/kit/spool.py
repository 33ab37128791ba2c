"""A disk spool of pickled batches: what a sync produces, held on disk instead of in memory.

A file's extracted items and built records can be far larger than the process should hold
(a 1M-row CSV is ~1 GB of Python objects). The producer appends batches; the consumer reads
them back one at a time, so only a batch is ever resident. The file is anonymous (unlinked
at creation) and vanishes with its descriptor, even on kill -9.

The confined extraction child writes into the same file through an inherited descriptor
(`Spool.fileno`), so the rows never cross a pipe nor the parent's heap; the parent may read
the batches while the child still writes (`Spool.writing`), so extraction overlaps the rest.
"""

from __future__ import annotations

import os
import pickle
import struct
import tempfile
import threading
from collections.abc import Iterator
from typing import IO, Any

# Each batch is a frame: its pickle's length (8 bytes, little-endian), then the pickle. A
# reader takes a frame only once all of it is in the file, so it may read while another
# process still appends (Linux moves a file's size past a page only once it is copied).
_LENGTH = struct.Struct("<Q")
# How long a reader following a live writer sleeps when it caught up.
FOLLOW_POLL_S = 0.005


class SpoolFull(Exception):
    """The spool reached its size limit."""


class Spool:
    """`header`: the writer's first frame is not a batch but one object about them (the
    extraction child's format name), read by `header()` and skipped by `batches()`."""

    def __init__(self, prefix: str = "dataloft-spool-", *, header: bool = False) -> None:
        # closed by close()/__exit__
        self._fh: IO[bytes] = tempfile.TemporaryFile(prefix=prefix)  # noqa: SIM115
        self.has_header = header
        # Cleared while another process appends: readers then wait for more at the end.
        self._complete = threading.Event()
        self._complete.set()

    def fileno(self) -> int:
        return self._fh.fileno()

    def writing(self) -> None:
        """Another process appends from now on, until `finished`: readers follow it."""
        self._complete.clear()

    def finished(self) -> None:
        self._complete.set()

    def append(self, batch: list[Any]) -> None:
        _write_frame(self._fh, batch)

    def flush(self) -> None:
        """Hand what was appended to the file (a reader through the descriptor sees it)."""
        self._fh.flush()

    def header(self) -> Any:
        """The header frame (waiting for the writer); None if it ended without one."""
        for _at, value in self._frames():
            return value
        return None

    def batches(self) -> Iterator[list[Any]]:
        """Every batch, from the start (what a child wrote through the descriptor too),
        following a writer until it `finished`.

        Each call reads at an offset of its own (pread), so two threads may read the spool
        at once (a sync writes its tables while it builds its records from the same items)."""
        frames = self._frames()
        if self.has_header:
            next(frames, None)
        for _at, batch in frames:
            yield batch

    def items(self) -> Iterator[Any]:
        for batch in self.batches():
            yield from batch

    def _frames(self) -> Iterator[tuple[int, Any]]:
        self._fh.flush()
        fd, at = self._fh.fileno(), 0
        while True:
            complete = self._complete.is_set()  # before the read: all was written then
            frame = _read_frame(fd, at)
            if frame is None:
                if complete:
                    return
                self._complete.wait(FOLLOW_POLL_S)
                continue
            at, value = frame
            yield at, value

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_batches(fd: int) -> Iterator[list[Any]]:
    """Every batch of a finished spool without a header, read through a descriptor (a
    child given the spool's, as `Spool.fileno` hands it)."""
    at = 0
    while (frame := _read_frame(fd, at)) is not None:
        at, batch = frame
        yield batch


def _write_frame(fh: IO[bytes], value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    fh.write(_LENGTH.pack(len(data)))
    fh.write(data)


def _read_frame(fd: int, at: int) -> tuple[int, Any] | None:
    """(offset after the frame, its value), or None if the frame at `at` is not all there."""
    head = os.pread(fd, _LENGTH.size, at)
    if len(head) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(head)
    if os.fstat(fd).st_size < at + _LENGTH.size + size:  # not all written yet
        return None
    data = os.pread(fd, size, at + _LENGTH.size)
    if len(data) < size:
        return None
    return at + _LENGTH.size + size, pickle.loads(data)


class SpoolWriter:
    """Appends batches to a spool's descriptor (in the child), refusing past `max_bytes`.
    `header`, when given, is written first (see `Spool`)."""

    _NO_HEADER = object()

    def __init__(self, fd: int, max_bytes: int, batch_items: int,
                 batch_bytes: int = 8 << 20, header: Any = _NO_HEADER) -> None:
        self._fh = os.fdopen(fd, "ab")
        self._max = max_bytes
        self._batch: list[Any] = []
        self._items, self._bytes = batch_items, batch_bytes
        self._weight = 0
        self.count = 0
        if header is not self._NO_HEADER:
            _write_frame(self._fh, header)
            self._fh.flush()

    def add(self, item: Any, weight: int = 0) -> None:
        """`weight`: about how many bytes the item holds, so a batch of big items is short."""
        self._batch.append(item)
        self.count += 1
        self._weight += weight
        if len(self._batch) >= self._items or self._weight >= self._bytes:
            self.flush()

    def flush(self) -> None:
        if self._batch:
            _write_frame(self._fh, self._batch)
            self._fh.flush()  # a reader may be following
            self._batch, self._weight = [], 0
            if self._fh.tell() > self._max:
                raise SpoolFull(f"over {self._max // (1 << 20)} MB extracted")

    def close(self) -> None:
        self.flush()
        self._fh.close()
