"""Making a dataset's term index and vector matrix from its records, or bringing an older
one up to date by a delta (delta.py); sqlite.py caches what these return.

`limit`, when given, is the most records the caller may read and analyse: past it (a full
build, or a delta that large) `TooBig` is raised instead, and the caller hands the work to
the background (a search must not block for a build: docs/decisions.md).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from dataloft.errors import Busy
from dataloft.kit.db import Lookup
from dataloft.kit.vectors import from_blobs
from dataloft.models import Dataset, Record
from dataloft.storage.index import delta, mapped, rowdelta
from dataloft.storage.index.delta import Catalog
from dataloft.storage.index.rows import RowTerms, row_key
from dataloft.storage.index.structures import Approx, Matrix, Terms

_BATCH = 500
# Vectors per read of a full matrix build: its batch (blobs, their join, the array) is
# part of the settle's high-water mark at 1M rows (docs/benchmarks.md section 29).
_FETCH = 1_024
# A delta touching more than this share of a dataset's records rebuilds instead: reading
# everything in pk order is then cheaper than fetching most of it by pk.
REBUILD_SHARE = 0.5


class TooBig(Exception):
    """More work than the caller's limit allows."""


def _check(limit: int | None, needed: int) -> None:
    if limit is not None and needed > limit:
        raise TooBig


def terms(session: Session, dataset_id: str, base: Terms | None,
          now: Callable[[], Catalog], limit: int | None) -> Terms:
    if base is None:
        if limit is not None:  # a build reads every record: more than any limit allows
            raise TooBig
        return build_terms(session, dataset_id)
    catalog = now()
    keep, known = delta.unchanged(base.index.pks, base.fps, catalog)
    fresh = catalog.pks[~known]
    if len(fresh) > REBUILD_SHARE * len(catalog.pks) and len(fresh) > _BATCH:
        _check(limit, len(catalog.pks))
        return build_terms(session, dataset_id)
    if not len(fresh) and keep.all():
        return base
    _check(limit, len(fresh))
    flat_base = flat(base.index)
    rows = list(delta.texts(session, fresh.tolist())) if flat_base else []
    if not flat_base or any(not key.startswith("#") for _, _, key in rows):
        # Table rows split into parts (storage/index/rows.py): a delta by row.
        _check(limit, len(fresh) + int((~keep).sum()))
        updated = rowdelta.update(session, base.index, keep, known, catalog)
        if updated is None:
            _check(limit, len(catalog.pks))
            return build_terms(session, dataset_id)
        return Terms(updated, catalog.fps.copy())
    pks = np.concatenate([base.index.pks[keep], fresh])
    # Row documents are numbered like the records here (flat): the update's own pks
    # for them are those row numbers.
    by_row = base.index.rows.update(keep, ((len(pks) - len(rows) + i, text)
                                           for i, (_, text, _) in enumerate(rows)))
    index = RowTerms(pks, by_row, np.arange(len(pks), dtype=np.int64))
    return Terms(index, np.concatenate([base.fps[keep], catalog.fps[~known]]))


def build_terms(session: Session, dataset_id: str) -> Terms:
    fps = array("q")

    def records() -> Any:
        # On the connection, not the ORM session, which would buffer every row first.
        for pk, record_id, updated_at, text, row in session.connection().execute(
                select(Record.pk, Record.id, Record.updated_at, Record.text, row_key())
                .where(Record.dataset_id == dataset_id).order_by(Record.pk)):
            fps.append(delta.fingerprint(record_id, updated_at))
            yield pk, text, row

    index = RowTerms.build(records())
    return Terms(index, np.array(fps, dtype=np.int64))


def flat(index: RowTerms) -> bool:
    """Every record is a row of its own (no table row split into parts)."""
    return len(index.rows.pks) == len(index.pks) and bool(
        np.array_equal(index.row_of, np.arange(len(index.pks))))


def matrix(session: Session, dataset_id: str, dimension: int, base: Matrix | None,
           now: Callable[[], Catalog], limit: int | None, scratch: Path | None = None,
           map_min_bytes: int = mapped.MAP_MIN_BYTES) -> Matrix:
    if base is not None and base.vectors.shape[1] == dimension:
        updated = _update_matrix(session, dataset_id, dimension, base, now(), limit, scratch,
                                 map_min_bytes)
        if updated is not None:
            return updated
    catalog = now()
    _check(limit, len(catalog.pks))
    return build_matrix(session, dataset_id, dimension, catalog, scratch, map_min_bytes)


def build_matrix(session: Session, dataset_id: str, dimension: int, seen: Catalog,
                 scratch: Path | None = None, map_min_bytes: int = mapped.MAP_MIN_BYTES
                 ) -> Matrix:
    """Every vector of the dataset, read a batch at a time into one matrix sized from the
    catalog (a dataset's vectors belong to its records), mapped from a file under `scratch`
    when big (mapped.py): at 1M x 256 the rows as Python objects, their joined bytes and
    the array were three copies of 1 GiB at once."""
    pks = np.empty(len(seen.pks), dtype=np.int64)
    out = mapped.Writer(len(seen.pks), dimension, scratch, map_min_bytes)
    width = 4 * dimension
    cursor = session.connection().exec_driver_sql(
        "SELECT pk, vector FROM record_vectors WHERE dataset_id = ? ORDER BY pk",
        (dataset_id,))
    while rows := cursor.fetchmany(_FETCH):
        kept = [(pk, blob) for pk, blob in rows if len(blob) == width]
        start = out.rows
        if start + len(kept) > len(pks):  # written since the catalog was read: stay right
            pks = np.resize(pks, start + len(kept))
        pks[start : start + len(kept)] = [pk for pk, _ in kept]
        out.add(from_blobs([blob for _, blob in kept], dimension))
    vectors = out.finish()
    pks = pks if len(vectors) == len(pks) else pks[: len(vectors)].copy()
    return Matrix(pks, vectors, delta.fps_of(pks, seen), seen)


def _update_matrix(session: Session, dataset_id: str, dimension: int, base: Matrix,
                   now: Catalog, limit: int | None, scratch: Path | None,
                   map_min_bytes: int) -> Matrix | None:
    """`base` brought up to `session`'s records, or None when a rebuild is cheaper."""
    keep, _ = delta.unchanged(base.pks, base.fps, now)
    _, known = delta.unchanged(base.seen.pks, base.seen.fps, now)
    fresh = now.pks[~known]
    if len(fresh) > REBUILD_SHARE * len(now.pks) and len(fresh) > _BATCH:
        return None
    if not len(fresh) and keep.all():
        return base  # its `seen` may list records gone since: harmless, they match nothing
    _check(limit, len(fresh))
    new_pks, new_rows = delta.vectors(session, fresh.tolist(), dimension)
    pks = np.concatenate([base.pks[keep], new_pks])
    out = mapped.Writer(len(pks), dimension, scratch, map_min_bytes)
    for start, rows in mapped.chunks(base.vectors):
        out.add(rows[keep[start : start + len(rows)]])
    out.add(new_rows)
    vectors = out.finish()
    kept = int(keep.sum())
    order = np.argsort(pks, kind="stable")
    if not np.array_equal(order, np.arange(len(pks))):
        pks, vectors = pks[order], vectors[order]
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    matrix = Matrix(pks, vectors, delta.fps_of(pks, now), now)
    state = base.approx  # read once: the graph builder may replace it meanwhile
    if state is not None:
        # Old matrix row -> new row (-1: gone), then graph key -> new row through it.
        moved = np.full(len(base.pks), -1, dtype=np.int64)
        moved[keep] = position[:kept]
        remap = moved if state.remap is None else np.where(
            state.remap >= 0, moved[np.maximum(state.remap, 0)], -1)
        covered = np.zeros(len(pks), dtype=bool)
        covered[remap[remap >= 0]] = True
        matrix.approx = Approx(state.graph, remap, np.flatnonzero(~covered))
    return matrix


def carry(base: Matrix, matrix: Matrix) -> Approx | None:
    """`base`'s graph for `matrix` (any version of the same dataset, older or newer): its
    keys remapped to `matrix`'s rows by pk and fingerprint (-1: gone or changed), and the
    rows it lacks listed to be scored exactly, as a delta carries it."""
    state = base.approx
    if state is None or not len(matrix.pks) or not len(base.pks):
        return None
    at = np.minimum(np.searchsorted(matrix.pks, base.pks), len(matrix.pks) - 1)
    moved = np.where((matrix.pks[at] == base.pks) & (matrix.fps[at] == base.fps), at, -1)
    remap = moved if state.remap is None else np.where(
        state.remap >= 0, moved[np.maximum(state.remap, 0)], -1)
    covered = np.zeros(len(matrix.pks), dtype=bool)
    covered[remap[remap >= 0]] = True
    return Approx(state.graph, remap, np.flatnonzero(~covered))


def size(value: Terms | Matrix | None) -> int:
    """How many records a structure was made from (0: none)."""
    if value is None:
        return 0
    return len(value.seen.pks) if isinstance(value, Matrix) else len(value.index.pks)


def count(session: Session, dataset_id: str) -> int:
    """The dataset's records, in the caller's snapshot (one indexed count)."""
    return int(session.scalar(select(func.count()).select_from(Record)
                              .where(Record.dataset_id == dataset_id)) or 0)


def busy(dataset_id: str) -> Busy:
    return Busy(f"the search structures of dataset {dataset_id} are being built; retry "
                "in a few seconds", headers={"Retry-After": "2"}, reason="index_building")


# Read on every search (once per side): a Lookup, as SQLAlchemy costs more than the read.
VERSION = Lookup(select(Dataset.index_version, Dataset.embedding_dimension).where(
    Dataset.id == bindparam("dataset_id")))


def version(session: Session, dataset_id: str) -> tuple[int, int] | None:
    """The dataset's (index_version, embedding_dimension or 0) in the caller's snapshot."""
    row = VERSION.first(session, {"dataset_id": dataset_id})
    return (int(row[0]), int(row[1] or 0)) if row is not None else None
