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

When the version moved, the cached structure is brought up to date by a delta (only new or
changed records are read and analysed; storage/index/delta.py) instead of rebuilt, and a
commit that wrote to the index warms its datasets' structures on a background thread, so
the first search after a sync finds them ready. A matrix keeps its predecessor's graph
while the rows the graph lacks or holds dead stay under `ANN_STALE_SHARE` of the matrix:
those it lacks are scored exactly with the graph's candidates; past the share, a fresh
graph is built in the background (exact scan until then).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, bindparam, delete, event, select
from sqlalchemy.orm import Session

from dataloft.kit.vectors import from_blobs
from dataloft.models import Dataset, Record, RecordVector
from dataloft.storage.index import ann, delta
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
# A delta touching more than this share of a dataset's records rebuilds instead: reading
# everything in pk order is then cheaper than fetching most of it by pk.
REBUILD_SHARE = 0.5
# A predecessor's graph serves a matrix while the rows it lacks plus the rows it holds dead
# are at most this share of the matrix; past it a new graph is built in the background.
ANN_STALE_SHARE = 0.1
# session.info key: datasets whose index rows this session wrote and has not committed.
_PENDING = "dataloft.index.pending"
_LISTENING = "dataloft.index.listening"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Ann:
    graph: ann.Graph
    # Graph key -> matrix row (-1: that row is gone), or None when the graph is the
    # matrix's own; `extra`: matrix rows the graph lacks, scored exactly on every search.
    remap: np.ndarray | None = None
    extra: np.ndarray | None = None

    @property
    def stale(self) -> int:
        if self.remap is None or self.extra is None:
            return 0
        return int((self.remap < 0).sum()) + len(self.extra)


@dataclass
class _Matrix:
    pks: np.ndarray  # ascending
    vectors: np.ndarray
    fps: np.ndarray  # the record fingerprint of each row
    seen: delta.Catalog  # every record of the dataset the matrix was made from
    # Set by the graph builder when the dataset is large enough; until then exact.
    approx: _Ann | None = None

    @property
    def graph(self) -> ann.Graph | None:
        return None if self.approx is None else self.approx.graph


@dataclass(frozen=True)
class _Terms:
    index: RowTerms
    fps: np.ndarray  # the record fingerprint of each document


class SqliteIndex:
    def __init__(self, *, ann_min_records: int = ANN_MIN_RECORDS,
                 exact_share: float = EXACT_SHARE, ann_background: bool = True,
                 reader: Callable[[], AbstractContextManager[Session]] | None = None) -> None:
        self.ann_min_records = ann_min_records
        self.exact_share = exact_share
        # False: the graph is built inside the first search (tests, reproducible paths).
        self.ann_background = ann_background
        self.graphs = ann.Builder()
        # Opens a read unit of work: given, every commit that wrote to the index brings
        # its datasets' structures up to date on the warmer thread.
        self.reader = reader
        self.warmer = ann.Builder()
        self._cache: OrderedDict[tuple[str, str], tuple[int, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[tuple[str, str], threading.Lock] = {}

    # --- writes (inside the caller's transaction) -------------------------------------

    def added(self, session: Session, rows: Sequence[IndexRow]) -> None:
        self._pending(session).update(r.dataset_id for r in rows)
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
            self._pending(session).update(session.scalars(
                select(Record.dataset_id).where(Record.pk.in_(chunk)).distinct()))
            session.execute(delete(RecordVector).where(RecordVector.pk.in_(chunk)))

    def _pending(self, session: Session) -> set[str]:
        if _LISTENING not in session.info:  # once per session, however many transactions
            session.info[_LISTENING] = True
            event.listen(session, "after_commit", self._committed)
            event.listen(session, "after_rollback", _forget)
        pending: set[str] = session.info.setdefault(_PENDING, set())
        return pending

    def _committed(self, session: Session) -> None:
        datasets = session.info.pop(_PENDING, None) or set()
        for dataset_id in sorted(datasets):
            self.warm(dataset_id)

    def warm_recent(self) -> None:
        """At start-up: build the structures of the most recently written datasets in the
        background (as many as the cache keeps), so the first searches after a restart
        rarely pay for them. (They are not persisted: see docs/decisions.md.)"""
        if self.reader is None:
            return
        with self.reader() as session:
            recent = list(session.scalars(select(Dataset.id).order_by(
                Dataset.updated_at.desc()).limit(_CACHE_ENTRIES // 2)))
        for dataset_id in recent:
            self.warm(dataset_id)

    def warm(self, dataset_id: str) -> None:
        """Bring the dataset's cached structures up to date on the warmer thread (a later
        call for the same dataset replaces one still waiting)."""
        reader = self.reader
        if reader is None:
            return

        def job(_stale: Callable[[], bool]) -> None:
            with reader() as session:
                self._cached("terms", session, dataset_id)
                self._cached("vectors", session, dataset_id)

        self.warmer.submit(dataset_id, job)

    # --- reads ----------------------------------------------------------------------------

    def lexical(self, session: Session, dataset_ids: Sequence[str], query: str, k: int,
                restrict: ColumnElement[bool] | None = None) -> list[tuple[int, float]]:
        if not query_terms(query):
            return []
        allowed = _allowed(session, restrict)
        hits: list[tuple[int, float]] = []
        for dataset_id in dataset_ids:
            terms = self._cached("terms", session, dataset_id)
            scores = terms.index.scores(query) if terms is not None else None
            if scores is not None:
                hits += top(scores, terms.index.pks, k, allowed, positive=True)
        hits.sort(key=lambda h: (-h[1], h[0]))
        return hits[:k]

    def semantic(self, session: Session, dataset_ids: Sequence[str], vector: np.ndarray, k: int,
                 restrict: ColumnElement[bool] | None = None) -> list[tuple[int, float]]:
        allowed = _allowed(session, restrict)
        query = np.asarray(vector, dtype=np.float32)
        hits: list[tuple[int, float]] = []
        for dataset_id in dataset_ids:
            matrix = self._cached("vectors", session, dataset_id)
            if matrix is not None and len(matrix.pks):
                hits += self._nearest(session, dataset_id, matrix, query, k, restrict, allowed)
        hits.sort(key=lambda h: (-h[1], h[0]))
        return hits[:k]

    def _nearest(self, session: Session, dataset_id: str, matrix: _Matrix, query: np.ndarray,
                 k: int, restrict: ColumnElement[bool] | None,
                 allowed: ann.Allowed | None) -> list[tuple[int, float]]:
        state = matrix.approx
        if state is not None:
            if restrict is not None:
                few = _allowed_rows(session, dataset_id, restrict, matrix,
                                    max(k, int(self.exact_share * len(matrix.pks))))
                if few is not None:
                    return top(matrix.vectors[few] @ query, matrix.pks[few], k)
            hits = ann.nearest(state.graph, matrix.vectors, matrix.pks, query, k, allowed,
                               state.remap, state.extra)
            if hits is not None:
                return hits
        return top(matrix.vectors @ query, matrix.pks, k, allowed)

    def vectors(self, session: Session, pks: Sequence[int]) -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        for i in range(0, len(pks), _BATCH):
            rows = session.execute(select(RecordVector.pk, RecordVector.vector).where(
                RecordVector.pk.in_(list(pks[i : i + _BATCH]))))
            out.update({int(pk): bytes(v) for pk, v in rows})
        return out

    def _cached(self, kind: str, session: Session, dataset_id: str) -> Any:
        """A structure derived from the dataset's records, brought up to date when its
        index_version (read in the caller's snapshot) moves, so it always matches what the
        caller sees."""
        row = _version(session, dataset_id)
        if row is None:
            return None
        version, key = int(row.index_version), (kind, dataset_id)
        hit = self._hit(key, version)
        if hit is not None:
            return hit[0]
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        # One update per structure at a time: the searches that arrive meanwhile wait for
        # it instead of each making their own copy.
        with building:
            hit = self._hit(key, version)
            if hit is not None:
                return hit[0]
            with self._lock:
                cached = self._cache.get(key)
            base = None if cached is None else cached[1]
            dimension = int(row.embedding_dimension or 0)
            built = self._terms(session, dataset_id, base) if kind == "terms" \
                else self._matrix(session, dataset_id, dimension, base)
            if dataset_id in session.info.get(_PENDING, ()):
                return built  # holds uncommitted rows: never a base for others
            with self._lock:
                self._cache[key] = (version, built)
                self._cache.move_to_end(key)
                while len(self._cache) > _CACHE_ENTRIES:
                    self._cache.popitem(last=False)
        return built

    def _terms(self, session: Session, dataset_id: str, base: _Terms | None) -> _Terms:
        # A delta only where every record is its own BM25 document; a dataset with table
        # rows split into parts (storage/index/rows.py) is rebuilt, as before.
        if base is None or not _flat(base.index):
            return _build_terms(session, dataset_id)
        now = delta.catalog(session, dataset_id)
        keep, known = delta.unchanged(base.index.pks, base.fps, now)
        fresh = now.pks[~known]
        if len(fresh) > REBUILD_SHARE * len(now.pks) and len(fresh) > _BATCH:
            return _build_terms(session, dataset_id)
        if not len(fresh) and keep.all():
            return base
        rows = list(delta.texts(session, fresh.tolist()))
        if any(not key.startswith("#") for _, _, key in rows):
            return _build_terms(session, dataset_id)
        pks = np.concatenate([base.index.pks[keep], fresh])
        # Row documents are numbered like the records here (flat): the update's own pks
        # for them are those row numbers.
        by_row = base.index.rows.update(keep, ((len(pks) - len(rows) + i, text)
                                                for i, (_, text, _) in enumerate(rows)))
        index = RowTerms(pks, by_row, np.arange(len(pks), dtype=np.int64))
        return _Terms(index, np.concatenate([base.fps[keep], now.fps[~known]]))

    def _matrix(self, session: Session, dataset_id: str, dimension: int,
                base: _Matrix | None) -> _Matrix | None:
        if not dimension:
            return None
        if base is not None and base.vectors.shape[1] == dimension:
            matrix = _update_matrix(session, dataset_id, dimension, base)
        else:
            matrix = None
        if matrix is None:
            matrix = _build_matrix(session, dataset_id, dimension)
        if len(matrix.pks) >= max(1, self.ann_min_records) and (
                matrix.approx is None or matrix.approx.stale > ANN_STALE_SHARE * len(matrix.pks)):
            self._graph(dataset_id, matrix)
        return matrix

    def _graph(self, dataset_id: str, matrix: _Matrix) -> None:
        def build(stale: Callable[[], bool] | None = None) -> None:
            matrix.approx = _Ann(ann.build_logged(dataset_id, matrix.vectors, stale))

        if self.ann_background:
            self.graphs.submit(dataset_id, build)
        else:
            build()

    def wait(self) -> None:
        """Until the warmer and the graph builder are idle (tests, benchmarks)."""
        self.warmer.wait()
        self.graphs.wait()

    def _hit(self, key: tuple[str, str], version: int) -> tuple[Any] | None:
        with self._lock:
            cached = self._cache.get(key)
            if cached is None or cached[0] != version:
                return None
            self._cache.move_to_end(key)
            return (cached[1],)


# Read on every search (once per side): built once and run on the session's connection,
# as the ORM execute path costs several times the indexed read (docs/decisions.md).
_VERSION = select(Dataset.index_version, Dataset.embedding_dimension).where(
    Dataset.id == bindparam("dataset_id"))


def _version(session: Session, dataset_id: str) -> Any:
    """The dataset's (index_version, embedding_dimension) in the caller's snapshot."""
    return session.connection().execute(_VERSION, {"dataset_id": dataset_id}).first()


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


def _forget(session: Session) -> None:
    session.info.pop(_PENDING, None)


def _build_terms(session: Session, dataset_id: str) -> _Terms:
    fps: list[int] = []

    def records() -> Any:
        for pk, record_id, updated_at, text, row in session.execute(
                select(Record.pk, Record.id, Record.updated_at, Record.text, row_key())
                .where(Record.dataset_id == dataset_id).order_by(Record.pk)):
            fps.append(delta.fingerprint(record_id, updated_at))
            yield pk, text, row

    index = RowTerms.build(records())
    return _Terms(index, np.array(fps, dtype=np.int64))


def _flat(index: RowTerms) -> bool:
    """Every record is a row of its own (no table row split into parts)."""
    return len(index.rows.pks) == len(index.pks) and bool(
        np.array_equal(index.row_of, np.arange(len(index.pks))))


def _build_matrix(session: Session, dataset_id: str, dimension: int) -> _Matrix:
    seen = delta.catalog(session, dataset_id)
    rows = session.execute(select(RecordVector.pk, RecordVector.vector)
                           .where(RecordVector.dataset_id == dataset_id)
                           .order_by(RecordVector.pk)).all()
    blobs = [bytes(v) for _, v in rows if len(v) == 4 * dimension]
    pks = np.array([pk for pk, v in rows if len(v) == 4 * dimension], dtype=np.int64)
    # An owned, aligned copy: scanning the joined-bytes buffer in place measured slower.
    return _Matrix(pks, np.array(from_blobs(blobs, dimension), order="C"),
                   delta.fps_of(pks, seen), seen)


def _update_matrix(session: Session, dataset_id: str, dimension: int,
                   base: _Matrix) -> _Matrix | None:
    """`base` brought up to `session`'s records, or None when a rebuild is cheaper."""
    now = delta.catalog(session, dataset_id)
    keep, _ = delta.unchanged(base.pks, base.fps, now)
    _, known = delta.unchanged(base.seen.pks, base.seen.fps, now)
    fresh = now.pks[~known]
    if len(fresh) > REBUILD_SHARE * len(now.pks) and len(fresh) > _BATCH:
        return None
    if not len(fresh) and keep.all():
        return base  # its `seen` may list records gone since: harmless, they match nothing
    new_pks, new_rows = delta.vectors(session, fresh.tolist(), dimension)
    pks = np.concatenate([base.pks[keep], new_pks])
    vectors = np.concatenate([base.vectors[keep], new_rows])
    kept = int(keep.sum())
    order = np.argsort(pks, kind="stable")
    if not np.array_equal(order, np.arange(len(pks))):
        pks, vectors = pks[order], vectors[order]
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    matrix = _Matrix(pks, vectors, delta.fps_of(pks, now), now)
    state = base.approx  # read once: the graph builder may replace it meanwhile
    if state is not None:
        # Old matrix row -> new row (-1: gone), then graph key -> new row through it.
        moved = np.full(len(base.pks), -1, dtype=np.int64)
        moved[keep] = position[:kept]
        remap = moved if state.remap is None else np.where(
            state.remap >= 0, moved[np.maximum(state.remap, 0)], -1)
        covered = np.zeros(len(pks), dtype=bool)
        covered[remap[remap >= 0]] = True
        matrix.approx = _Ann(state.graph, remap, np.flatnonzero(~covered))
    return matrix
