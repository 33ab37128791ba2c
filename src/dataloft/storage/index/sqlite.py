"""SQLite index adapter: BM25 and exact vector search, both in memory over NumPy arrays.

Loadable SQLite extensions are unavailable on many Python builds, so vectors live as
float32 blobs in `record_vectors`, and the records table itself is the text store. Per
dataset, a term index (storage/index/terms.py, one document per table row: rows.py) and a
vector matrix are built on first use and cached per process, keyed on
`datasets.index_version` read in the caller's snapshot, so a cached structure is only ever
used with the records it was built from. Exact search is the recall ceiling; at 100k x 256
a scan is a ~25 MFLOP matrix-vector product. Datasets of at
least `ann_min_records` vectors also get an HNSW graph, built with the matrix, and are
searched approximately unless a restriction leaves few rows (storage/index/ann.py).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.orm import Session

from dataloft.kit.vectors import from_blobs
from dataloft.models import Dataset, Record, RecordVector
from dataloft.storage.index import ann
from dataloft.storage.index.base import IndexRow
from dataloft.storage.index.rows import RowTerms, row_key
from dataloft.storage.index.terms import query_terms, top

_BATCH = 500
# (kind, dataset) entries: a term index and a vector matrix per recently searched dataset.
_CACHE_ENTRIES = 32
ANN_MIN_RECORDS = 20_000
# A restricted search over a dataset with a graph is exact when the restriction allows at
# most this share of its rows (as the PostgreSQL adapter's EXACT_MAX): counting them is one
# indexed read, and scoring them is cheaper than a walk that discards most of what it finds.
EXACT_SHARE = 0.1


@dataclass
class _Matrix:
    pks: np.ndarray
    vectors: np.ndarray
    # Set once, by the graph builder, when the dataset is large enough; until then exact.
    graph: ann.Graph | None = None



class SqliteIndex:
    def __init__(self, *, ann_min_records: int = ANN_MIN_RECORDS,
                 exact_share: float = EXACT_SHARE, ann_background: bool = True) -> None:
        self.ann_min_records = ann_min_records
        self.exact_share = exact_share
        # False: the graph is built inside the first search (tests, reproducible paths).
        self.ann_background = ann_background
        self.graphs = ann.Builder()
        self._cache: OrderedDict[tuple[str, str], tuple[int, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[tuple[str, str], threading.Lock] = {}

    # --- writes (inside the caller's transaction) -------------------------------------

    def added(self, session: Session, rows: Sequence[IndexRow]) -> None:
        for i in range(0, len(rows), _BATCH):
            batch = rows[i : i + _BATCH]
            vectors = [(r.pk, r.dataset_id, r.vector) for r in batch if r.vector is not None]
            if vectors:  # the driver's executemany: SQLAlchemy's bulk path costs more
                session.connection().exec_driver_sql(
                    "INSERT INTO record_vectors (pk, dataset_id, vector) VALUES (?, ?, ?)",
                    vectors)

    def removed(self, session: Session, pks: Sequence[int]) -> None:
        for i in range(0, len(pks), _BATCH):
            chunk = [int(pk) for pk in pks[i : i + _BATCH]]
            session.execute(delete(RecordVector).where(RecordVector.pk.in_(chunk)))

    # --- reads ----------------------------------------------------------------------------

    def lexical(self, session: Session, dataset_ids: Sequence[str], query: str, k: int,
                restrict: ColumnElement[bool] | None = None) -> list[tuple[int, float]]:
        if not query_terms(query):
            return []
        allowed = _allowed(session, restrict)
        hits: list[tuple[int, float]] = []
        for dataset_id in dataset_ids:
            index = self._cached("terms", session, dataset_id, _build_terms)
            scores = index.scores(query) if index is not None else None
            if scores is not None:
                hits += top(scores, index.pks, k, allowed, positive=True)
        hits.sort(key=lambda h: (-h[1], h[0]))
        return hits[:k]

    def semantic(self, session: Session, dataset_ids: Sequence[str], vector: np.ndarray, k: int,
                 restrict: ColumnElement[bool] | None = None) -> list[tuple[int, float]]:
        allowed = _allowed(session, restrict)
        query = np.asarray(vector, dtype=np.float32)
        hits: list[tuple[int, float]] = []
        for dataset_id in dataset_ids:
            matrix = self._cached("vectors", session, dataset_id, self._build_matrix)
            if matrix is not None and len(matrix.pks):
                hits += self._nearest(session, dataset_id, matrix, query, k, restrict, allowed)
        hits.sort(key=lambda h: (-h[1], h[0]))
        return hits[:k]

    def _nearest(self, session: Session, dataset_id: str, matrix: _Matrix, query: np.ndarray,
                 k: int, restrict: ColumnElement[bool] | None,
                 allowed: ann.Allowed | None) -> list[tuple[int, float]]:
        graph = matrix.graph
        if graph is not None:
            if restrict is not None:
                few = _allowed_rows(session, dataset_id, restrict, matrix,
                                    max(k, int(self.exact_share * len(matrix.pks))))
                if few is not None:
                    return top(matrix.vectors[few] @ query, matrix.pks[few], k)
            hits = ann.nearest(graph, matrix.vectors, matrix.pks, query, k, allowed)
            if hits is not None:
                return hits
        return top(matrix.vectors @ query, matrix.pks, k, allowed)

    def _build_matrix(self, session: Session, dataset_id: str, dimension: int) -> _Matrix | None:
        matrix = _build_matrix(session, dataset_id, dimension)
        if matrix is None or len(matrix.pks) < max(1, self.ann_min_records):
            return matrix

        def build(stale: Callable[[], bool] | None = None) -> None:
            matrix.graph = ann.build_logged(dataset_id, matrix.vectors, stale)

        if self.ann_background:
            self.graphs.submit(dataset_id, build)
        else:
            build()
        return matrix

    def vectors(self, session: Session, pks: Sequence[int]) -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        for i in range(0, len(pks), _BATCH):
            rows = session.execute(select(RecordVector.pk, RecordVector.vector).where(
                RecordVector.pk.in_(list(pks[i : i + _BATCH]))))
            out.update({int(pk): bytes(v) for pk, v in rows})
        return out

    def _cached(self, kind: str, session: Session, dataset_id: str,
                build: Callable[[Session, str, int], Any]) -> Any:
        """A structure derived from the dataset's records, rebuilt when its index_version
        (read in the caller's snapshot) moves, so it always matches what the caller sees."""
        row = session.execute(select(Dataset.index_version, Dataset.embedding_dimension)
                              .where(Dataset.id == dataset_id)).first()
        if row is None:
            return None
        version, key = int(row.index_version), (kind, dataset_id)
        hit = self._hit(key, version)
        if hit is not None:
            return hit[0]
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        # One build per structure at a time: the searches that arrive meanwhile wait for it
        # (seconds at 100k records) instead of each building their own copy.
        with building:
            hit = self._hit(key, version)
            if hit is not None:
                return hit[0]
            built = build(session, dataset_id, int(row.embedding_dimension or 0))
            with self._lock:
                self._cache[key] = (version, built)
                self._cache.move_to_end(key)
                while len(self._cache) > _CACHE_ENTRIES:
                    self._cache.popitem(last=False)
        return built

    def _hit(self, key: tuple[str, str], version: int) -> tuple[Any] | None:
        with self._lock:
            cached = self._cache.get(key)
            if cached is None or cached[0] != version:
                return None
            self._cache.move_to_end(key)
            return (cached[1],)


def _allowed(session: Session, restrict: ColumnElement[bool] | None
             ) -> Callable[[Sequence[int]], set[int]] | None:
    if restrict is None:
        return None

    def allowed(pks: Sequence[int]) -> set[int]:
        out: set[int] = set()
        for i in range(0, len(pks), _BATCH):
            out.update(session.scalars(select(Record.pk).where(
                Record.pk.in_(list(pks[i : i + _BATCH])), restrict)))
        return out

    return allowed


def _allowed_rows(session: Session, dataset_id: str, restrict: ColumnElement[bool],
                  matrix: _Matrix, limit: int) -> np.ndarray | None:
    """The matrix rows of the records `restrict` allows, if there are at most `limit`."""
    pks = np.fromiter(session.scalars(
        select(Record.pk).where(Record.dataset_id == dataset_id, restrict).limit(limit + 1)),
        dtype=np.int64)
    if len(pks) > limit:
        return None
    # Allowed records without a vector have no row: drop them.
    rows = np.searchsorted(matrix.pks, pks)
    inside = rows < len(matrix.pks)
    rows, pks = rows[inside], pks[inside]
    kept: np.ndarray = rows[matrix.pks[rows] == pks]
    return kept


def _build_terms(session: Session, dataset_id: str, _dimension: int) -> RowTerms:
    return RowTerms.build(session.execute(
        select(Record.pk, Record.text, row_key()).where(Record.dataset_id == dataset_id)
        .order_by(Record.pk)))


def _build_matrix(session: Session, dataset_id: str, dimension: int) -> _Matrix | None:
    if not dimension:
        return None
    rows = session.execute(select(RecordVector.pk, RecordVector.vector)
                           .where(RecordVector.dataset_id == dataset_id)
                           .order_by(RecordVector.pk)).all()
    blobs = [bytes(v) for _, v in rows if len(v) == 4 * dimension]
    pks = np.array([pk for pk, v in rows if len(v) == 4 * dimension], dtype=np.int64)
    # An owned, aligned copy: scanning the joined-bytes buffer in place measured slower.
    return _Matrix(pks, np.array(from_blobs(blobs, dimension), order="C"))
