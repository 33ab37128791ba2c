"""SQLite index adapter: FTS5 BM25 (porter stemming) plus exact vector search in NumPy.

Loadable SQLite extensions are unavailable on many Python builds, so vectors live as
float32 blobs in `record_vectors` and are scanned as one matrix per dataset. The matrix is
cached per process and keyed on `datasets.index_version`, read in the caller's snapshot, so
a cached matrix is only ever used with the records it was built from. Exact search is the
recall ceiling; at 100k x 256 a scan is a ~25 MFLOP matrix-vector product.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import ColumnElement, Float, Integer, column, delete, insert, select, text
from sqlalchemy.orm import Session

from dataloft.ingest.embed.base import from_blobs
from dataloft.models import Dataset, Record, RecordVector
from dataloft.storage.index.base import IndexRow, tokens

_BATCH = 500
_CACHE_DATASETS = 16


@dataclass(frozen=True)
class _Matrix:
    version: int
    pks: np.ndarray
    vectors: np.ndarray


class SqliteIndex:
    def __init__(self) -> None:
        self._cache: OrderedDict[str, _Matrix] = OrderedDict()
        self._lock = threading.Lock()

    # --- writes (inside the caller's transaction) -------------------------------------

    def added(self, session: Session, rows: Sequence[IndexRow]) -> None:
        for i in range(0, len(rows), _BATCH):
            batch = rows[i : i + _BATCH]
            session.execute(text("INSERT INTO records_fts(rowid, text) VALUES (:pk, :text)"),
                            [{"pk": r.pk, "text": r.text} for r in batch])
            vectors = [{"pk": r.pk, "dataset_id": r.dataset_id, "vector": r.vector}
                       for r in batch if r.vector is not None]
            if vectors:
                session.execute(insert(RecordVector), vectors)

    def removed(self, session: Session, pks: Sequence[int]) -> None:
        for i in range(0, len(pks), _BATCH):
            chunk = [int(pk) for pk in pks[i : i + _BATCH]]
            marks = ",".join(str(pk) for pk in chunk)
            session.execute(text(f"DELETE FROM records_fts WHERE rowid IN ({marks})"))
            session.execute(delete(RecordVector).where(RecordVector.pk.in_(chunk)))

    # --- reads ----------------------------------------------------------------------------

    def lexical(self, session: Session, dataset_ids: Sequence[str], query: str, k: int,
                restrict: ColumnElement[bool] | None = None) -> list[tuple[int, float]]:
        terms = tokens(query)
        if not terms or not dataset_ids:
            return []
        # Quoted terms OR-ed: user text never reaches FTS5 query syntax.
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in dict.fromkeys(terms))
        fts = (text("SELECT rowid AS pk, bm25(records_fts) AS rank FROM records_fts "
                    "WHERE records_fts MATCH :match")
               .columns(column("pk", Integer), column("rank", Float)).subquery("fts"))
        stmt = (select(fts.c.pk, fts.c.rank).join(Record, Record.pk == fts.c.pk)
                .where(Record.dataset_id.in_(list(dataset_ids))).order_by(fts.c.rank).limit(k))
        if restrict is not None:
            stmt = stmt.where(restrict)
        return [(int(pk), -float(rank)) for pk, rank in session.execute(stmt, {"match": match})]

    def semantic(self, session: Session, dataset_ids: Sequence[str], vector: np.ndarray, k: int,
                 restrict: ColumnElement[bool] | None = None) -> list[tuple[int, float]]:
        hits: list[tuple[int, float]] = []
        allowed = None
        if restrict is not None:
            allowed = np.fromiter(session.scalars(select(Record.pk).where(
                Record.dataset_id.in_(list(dataset_ids)), restrict)), dtype=np.int64)
        for dataset_id in dataset_ids:
            matrix = self._matrix(session, dataset_id)
            if matrix is None or not len(matrix.pks):
                continue
            scores = matrix.vectors @ np.asarray(vector, dtype=np.float32)
            pks = matrix.pks
            if allowed is not None:
                keep = np.isin(pks, allowed, assume_unique=True)
                scores, pks = scores[keep], pks[keep]
            top = np.argpartition(-scores, min(k, len(scores) - 1))[:k] if len(scores) > k \
                else np.arange(len(scores))
            hits += [(int(pks[i]), float(scores[i])) for i in top]
        hits.sort(key=lambda h: -h[1])
        return hits[:k]

    def vectors(self, session: Session, pks: Sequence[int]) -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        for i in range(0, len(pks), _BATCH):
            rows = session.execute(select(RecordVector.pk, RecordVector.vector).where(
                RecordVector.pk.in_(list(pks[i : i + _BATCH]))))
            out.update({int(pk): bytes(v) for pk, v in rows})
        return out

    def _matrix(self, session: Session, dataset_id: str) -> _Matrix | None:
        row = session.execute(select(Dataset.index_version, Dataset.embedding_dimension)
                              .where(Dataset.id == dataset_id)).first()
        if row is None or not row.embedding_dimension:
            return None
        version, dimension = int(row.index_version), int(row.embedding_dimension)
        with self._lock:
            cached = self._cache.get(dataset_id)
            if cached is not None and cached.version == version:
                self._cache.move_to_end(dataset_id)
                return cached
        rows = session.execute(select(RecordVector.pk, RecordVector.vector)
                               .where(RecordVector.dataset_id == dataset_id)
                               .order_by(RecordVector.pk)).all()
        blobs = [bytes(v) for _, v in rows if len(v) == 4 * dimension]
        pks = np.array([pk for pk, v in rows if len(v) == 4 * dimension], dtype=np.int64)
        built = _Matrix(version, pks, from_blobs(blobs, dimension))
        with self._lock:
            self._cache[dataset_id] = built
            self._cache.move_to_end(dataset_id)
            while len(self._cache) > _CACHE_DATASETS:
                self._cache.popitem(last=False)
        return built
