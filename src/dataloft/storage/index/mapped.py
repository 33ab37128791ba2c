"""Big vector matrices in a file mapped read-only, not in the process's memory (issue 16).

A 1M x 256 float32 matrix is 1 GiB: held as an array it alone is twice the server's memory
bound. Past `MAP_MIN_BYTES`, a full build writes the rows with plain `write`s into a file
under the index store and maps it (the file is unlinked at once: the mapping keeps it
alive, and a crash leaves nothing behind). Written pages sit in the kernel's page cache,
which it may drop and re-read; they count in the process's RSS only once read through the
mapping, so whoever reads a whole mapped matrix (an exact scan, a graph build, a save) does
it in chunks and gives the chunk's pages back (`release`) before the next. The scores are
the same as over an in-memory copy: same rows, same float32 products.
"""

from __future__ import annotations

import mmap
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

MAP_MIN_BYTES = 64 << 20
# Rows per chunk when a mapped matrix is read whole: 16 MiB at 256 dimensions.
CHUNK_ROWS = 16_384


def mapped(array: np.ndarray) -> bool:
    return isinstance(array, np.memmap) or isinstance(array.base, np.memmap)


def release(array: np.ndarray) -> None:
    """Drop this process's resident pages of a file-mapped array (the page cache keeps
    them); nothing for an array in memory."""
    holder = getattr(array, "_mmap", None)
    if holder is None and isinstance(array.base, np.memmap):
        holder = getattr(array.base, "_mmap", None)
    if isinstance(holder, mmap.mmap):
        holder.madvise(mmap.MADV_DONTNEED)


def chunks(array: np.ndarray) -> Iterable[tuple[int, np.ndarray]]:
    """(first row, rows) of `array` a chunk at a time; a mapped array's pages are released
    after each chunk, so reading it whole never makes it resident."""
    if not mapped(array):
        yield 0, array
        return
    for start in range(0, len(array), CHUNK_ROWS):
        yield start, array[start : start + CHUNK_ROWS]
        release(array)


def scores(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """`vectors @ query`, a chunk at a time for a mapped matrix."""
    if not mapped(vectors):
        out: np.ndarray = vectors @ query
        return out
    result = np.empty(len(vectors), dtype=np.result_type(vectors.dtype, query.dtype))
    for start, rows in chunks(vectors):
        result[start : start + len(rows)] = rows @ query
    return result


class Writer:
    """Rows appended in batches, into memory or, past MAP_MIN_BYTES with a directory
    given, into an unlinked file that `finish` maps read-only."""

    def __init__(self, rows: int, dimension: int, directory: Path | None,
                 map_min_bytes: int = MAP_MIN_BYTES) -> None:
        self.dimension = dimension
        self.rows = 0
        self._file = None
        self._array: np.ndarray | None = None
        if directory is not None and rows * dimension * 4 >= max(1, map_min_bytes):
            directory.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=".matrix-", dir=directory)
            os.unlink(name)
            self._file = os.fdopen(fd, "w+b")
        else:
            self._array = np.empty((rows, dimension), dtype=np.float32)

    def add(self, batch: np.ndarray) -> None:
        end = self.rows + len(batch)
        if self._file is not None:
            self._file.write(np.ascontiguousarray(batch, dtype="<f4").tobytes())
        else:
            assert self._array is not None
            if end > len(self._array):
                self._array = np.resize(self._array, (end, self.dimension))
            self._array[self.rows : end] = batch
        self.rows = end

    def finish(self) -> np.ndarray:
        if self._file is None:
            assert self._array is not None
            return self._array if self.rows == len(self._array) \
                else self._array[: self.rows].copy()
        self._file.flush()
        try:
            if not self.rows:
                return np.zeros((0, self.dimension), dtype=np.float32)
            return np.memmap(self._file, dtype="<f4", mode="r",
                             shape=(self.rows, self.dimension))
        finally:
            self._file.close()  # the mapping keeps the (unlinked) file
