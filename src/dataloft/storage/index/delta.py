"""Bringing a cached term index or vector matrix up to date by a delta (issue 16, item 3).

A sync commit changes a few of a dataset's records and moves its index_version; instead of
re-reading and re-analysing every record, the new structure is the old one minus the records
that are gone or changed plus the ones that are new or changed. What changed is found by a
diff of the dataset's catalog, (pk, fingerprint) per record read in the caller's snapshot
(one indexed read, no text or vectors), against the catalog the old structure was built
from. A fingerprint is the record's id with its updated_at:
- the id, because SQLite may give a deleted maximum pk to the next insert (records.pk is a
  plain INTEGER PRIMARY KEY): the same pk then holds a different record;
- updated_at, because re-indexing a record in place (new text or new vector, same pk and id)
  moves it strictly forward (records.repository.reindex), so each committed change of a
  record's text or vector gives it a new fingerprint.
A structure derived inside a transaction that has written to the index is never kept as a
base: it may hold rows that are rolled back, and a later commit can reproduce their
fingerprints. The result equals a full rebuild (terms: score for score; matrix: row for
row), which the index contract's state machine checks.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from dataloft.kit.vectors import from_blobs
from dataloft.models import Record, RecordVector
from dataloft.storage.index.rows import row_key

_BATCH = 500
_FETCH = 4_096  # catalog rows per read


@dataclass(frozen=True)
class Catalog:
    pks: np.ndarray  # int64, ascending
    fps: np.ndarray  # int64, one fingerprint per pk


_MIX = 0x9E3779B97F4A7C15  # odd: multiplying by it permutes 64-bit values


def fingerprint(record_id: str, updated_at: int) -> int:
    """A signed 64-bit value, the same in every process: persisted structures (persist.py)
    are compared with a later process's catalog. (hash() of a str is salted per process;
    of an int it is Python's specified numeric hash, the same everywhere.)"""
    mixed = ((hash(int.from_bytes(record_id.encode(), "little")) * _MIX) ^ int(updated_at)) \
        & 0xFFFF_FFFF_FFFF_FFFF
    return mixed - (1 << 64) if mixed >= 1 << 63 else mixed


def catalog(session: Session, dataset_id: str) -> Catalog:
    # The driver's rows: at 100k records SQLAlchemy's row processing was a third of the read.
    # A batch at a time into flat arrays: fetchall held every row as a tuple with its id's
    # str, ~290 MiB at the peak for 1M records (docs/benchmarks.md section 26).
    cursor = session.connection().exec_driver_sql(
        "SELECT pk, id, updated_at FROM records WHERE dataset_id = ? ORDER BY pk",
        (dataset_id,))
    pks, fps = array("q"), array("q")
    while rows := cursor.fetchmany(_FETCH):
        pks.extend(r[0] for r in rows)
        fps.extend(fingerprint(r[1], r[2]) for r in rows)
    return Catalog(np.array(pks, dtype=np.int64), np.array(fps, dtype=np.int64))


def unchanged(pks: np.ndarray, fps: np.ndarray, now: Catalog) -> tuple[np.ndarray, np.ndarray]:
    """(keep, known): keep[i] when (pks[i], fps[i]) is still in `now`; known[j] when
    now's j-th record is one of them. `pks` need not be sorted."""
    known = np.zeros(len(now.pks), dtype=bool)
    if not len(now.pks) or not len(pks):
        return np.zeros(len(pks), dtype=bool), known
    at = np.minimum(np.searchsorted(now.pks, pks), len(now.pks) - 1)
    keep = (now.pks[at] == pks) & (now.fps[at] == fps)
    known[at[keep]] = True
    return keep, known


def texts(session: Session, pks: Sequence[int]) -> Iterator[tuple[int, str, str]]:
    """(pk, text, row key) of the records `pks` (ascending), in that order."""
    for i in range(0, len(pks), _BATCH):
        chunk = [int(pk) for pk in pks[i : i + _BATCH]]
        for pk, text, key in session.execute(select(Record.pk, Record.text, row_key())
                                             .where(Record.pk.in_(chunk))
                                             .order_by(Record.pk)):
            yield int(pk), str(text), str(key)


def vectors(session: Session, pks: Sequence[int], dimension: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """(pks, float32 rows) of those of `pks` (ascending) that have a vector of `dimension`."""
    got: list[int] = []
    blobs: list[bytes] = []
    for i in range(0, len(pks), _BATCH):
        chunk = [int(pk) for pk in pks[i : i + _BATCH]]
        for pk, blob in session.execute(select(RecordVector.pk, RecordVector.vector)
                                        .where(RecordVector.pk.in_(chunk))
                                        .order_by(RecordVector.pk)):
            if len(blob) == 4 * dimension:
                got.append(int(pk))
                blobs.append(bytes(blob))
    rows = np.array(from_blobs(blobs, dimension), dtype=np.float32, order="C") if blobs \
        else np.zeros((0, dimension), dtype=np.float32)
    return np.array(got, dtype=np.int64), rows


def fps_of(pks: np.ndarray, now: Catalog) -> np.ndarray:
    """The fingerprints `now` holds for `pks` (all of them in it)."""
    fps: np.ndarray = now.fps[np.searchsorted(now.pks, pks)]
    return fps
