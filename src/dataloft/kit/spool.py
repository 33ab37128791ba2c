"""A disk spool of pickled batches: what a sync produces, held on disk instead of in memory.

A file's extracted items and built records can be far larger than the process should hold
(a 1M-row CSV is ~1 GB of Python objects). The producer appends batches; the consumer reads
them back one at a time, so only a batch is ever resident. The file is anonymous (unlinked
at creation) and vanishes with its descriptor, even on kill -9.

The confined extraction child writes into the same file through an inherited descriptor
(`Spool.fileno`), so the rows never cross a pipe nor the parent's heap.
"""

from __future__ import annotations

import io
import os
import pickle
import tempfile
from collections.abc import Iterator
from typing import IO, Any


class _Cursor(io.RawIOBase):
    """Reads a descriptor from the start at an offset of its own (pread), leaving the
    descriptor's shared offset alone."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd, self._at = fd, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = os.pread(self._fd, len(buffer), self._at)
        buffer[: len(data)] = data
        self._at += len(data)
        return len(data)


class SpoolFull(Exception):
    """The spool reached its size limit."""


class Spool:
    def __init__(self, prefix: str = "dataloft-spool-") -> None:
        # closed by close()/__exit__
        self._fh: IO[bytes] = tempfile.TemporaryFile(prefix=prefix)  # noqa: SIM115

    def fileno(self) -> int:
        return self._fh.fileno()

    def append(self, batch: list[Any]) -> None:
        pickle.dump(batch, self._fh, protocol=pickle.HIGHEST_PROTOCOL)

    def batches(self) -> Iterator[list[Any]]:
        """Every batch, from the start (what a child wrote through the descriptor too).

        Each call reads through a cursor of its own, so two threads may read the spool at
        once (a sync writes its tables while it builds its records from the same items)."""
        self._fh.flush()
        with io.BufferedReader(_Cursor(self._fh.fileno()), 1 << 20) as fh:
            while True:
                try:
                    batch: list[Any] = pickle.load(fh)
                except EOFError:
                    return
                yield batch

    def items(self) -> Iterator[Any]:
        for batch in self.batches():
            yield from batch

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SpoolWriter:
    """Appends batches to a spool's descriptor (in the child), refusing past `max_bytes`."""

    def __init__(self, fd: int, max_bytes: int, batch_items: int,
                 batch_bytes: int = 8 << 20) -> None:
        self._fh = os.fdopen(fd, "ab")
        self._max = max_bytes
        self._batch: list[Any] = []
        self._items, self._bytes = batch_items, batch_bytes
        self._weight = 0
        self.count = 0

    def add(self, item: Any, weight: int = 0) -> None:
        """`weight`: about how many bytes the item holds, so a batch of big items is short."""
        self._batch.append(item)
        self.count += 1
        self._weight += weight
        if len(self._batch) >= self._items or self._weight >= self._bytes:
            self.flush()

    def flush(self) -> None:
        if self._batch:
            pickle.dump(self._batch, self._fh, protocol=pickle.HIGHEST_PROTOCOL)
            self._batch, self._weight = [], 0
            if self._fh.tell() > self._max:
                raise SpoolFull(f"over {self._max // (1 << 20)} MB extracted")

    def close(self) -> None:
        self.flush()
        self._fh.close()
