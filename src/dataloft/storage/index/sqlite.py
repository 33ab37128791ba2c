"""SQLite index adapter: BM25 and exact vector search, both in memory over NumPy arrays.

Loadable SQLite extensions are unavailable on many Python builds, so vectors live as
float32 blobs in `record_vectors`, and the records table itself is the text store. Per
dataset, a term index (storage/index/terms.py, one document per table row: rows.py) and a
vector matrix are built on first use and cached per process, keyed on
`datasets.index_version` read in the caller's snapshot, so a cached structure is only ever
used with the records it was built from. Datasets of at least `ann_min_records` vectors
also get an HNSW graph and are searched approximately unless a restriction leaves few rows
(storage/index/ann.py); exact otherwise. When the version moved, the cached structure is
brought up to date by a delta (only new or changed records are read and analysed;
storage/index/delta.py, rowdelta.py for table rows split into parts) instead of rebuilt, and a
commit that wrote to the index warms its datasets' structures on a background thread, so
the first search after a sync finds them ready. A matrix keeps its predecessor's graph
while the rows the graph lacks or holds dead stay under `ANN_STALE_SHARE` of the matrix:
those it lacks are scored exactly with the graph's candidates; past the share, a fresh
graph is built in the background (exact scan until then).

With a store (the app gives `{data_dir}/index`), structures brought up to date are saved
there in the background (persist.py), and a process whose cache lacks a dataset starts
from its saved copy: served as is at the current version, a delta's base otherwise. With a
wait bound, a search never builds a big dataset's structure itself nor waits for one past
the bound: it answers Busy (503) and the warmer goes on (docs/decisions.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, delete, event, select
from sqlalchemy.orm import Session

from dataloft.models import Dataset, Record, RecordVector
from dataloft.storage.index import ann, build, delta, lexrank, mapped, persist, restricted, spooled
from dataloft.storage.index.base import IndexRow
from dataloft.storage.index.build import VERSION as _VERSION  # noqa: F401 (tests read it)
from dataloft.storage.index.build import TooBig
from dataloft.storage.index.build import busy as _busy
from dataloft.storage.index.build import version as _version
from dataloft.storage.index.delta import Catalog
from dataloft.storage.index.structures import Approx, Matrix
from dataloft.storage.index.terms import query_terms, top

_BATCH = 500
# (kind, dataset) entries: a term index and a vector matrix per recently searched dataset.
_CACHE_ENTRIES = 32
ANN_MIN_RECORDS = 20_000
# A restricted search over a dataset with a graph is exact when the restriction allows at
# most this share of its rows (as the PostgreSQL adapter's EXACT_MAX): counting them is one
# indexed read, and scoring them is cheaper than a walk that discards most of what it finds.
EXACT_SHARE = 0.1
# With a wait bound, a search builds or updates a structure itself only for datasets of at
# most this many records, or deltas of at most this many (well under a second): anything
# bigger is left to the warmer thread, and the search waits for it up to the bound.
INLINE_RECORDS = 5_000
# A predecessor's graph serves a matrix while the rows it lacks plus the rows it holds dead
# are at most this share of the matrix; past it a new graph is built in the background.
ANN_STALE_SHARE = 0.1
# session.info key: datasets whose index rows this session wrote and has not committed.
_PENDING = "dataloft.index.pending"
_LISTENING = "dataloft.index.listening"

log = logging.getLogger(__name__)


class SqliteIndex:
    def __init__(self, *, ann_min_records: int = ANN_MIN_RECORDS,
                 exact_share: float = EXACT_SHARE, ann_background: bool = True,
                 reader: Callable[[], AbstractContextManager[Session]] | None = None,
                 store: Path | None = None, wait_s: float | None = None,
                 inline_records: int = INLINE_RECORDS,
                 map_min_bytes: int = mapped.MAP_MIN_BYTES) -> None:
        self.ann_min_records = ann_min_records
        self.exact_share = exact_share
        # False: the graph is built inside the first search (tests, reproducible paths).
        self.ann_background = ann_background
        self.graphs = ann.Builder()
        # Opens a read unit of work: given, every commit that wrote to the index brings
        # its datasets' structures up to date on the warmer thread.
        self.reader = reader
        self.warmer = ann.Builder()
        # Given, the structures are saved there once current (persist.py), and a process
        # with an empty cache starts from the saved copy instead of from every record.
        self.store = None if store is None else persist.Store(store)
        self.saver = ann.Builder()
        # Given (with a reader), no search waits longer than this for a structure of a
        # dataset over `inline_records`: it answers 503 SERVICE_BUSY instead, while the
        # warmer goes on building.
        self.wait_s = wait_s
        self.inline_records = inline_records
        # With a store, matrices of at least this size are mapped from a file (mapped.py).
        self.map_min_bytes = map_min_bytes
        self._cache: OrderedDict[tuple[str, str], tuple[int, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # notified when _cache changes
        self._building: dict[tuple[str, str], threading.Lock] = {}
        self._catalogs: OrderedDict[tuple[str, int], Catalog] = OrderedDict()
        self._runs = 0  # warmer runs begun; _warmed: the last one to finish, per dataset
        self._warmed: dict[str, int] = {}
        # A big sync's structures, made from its spool in a child during its commit.
        self.early = spooled.Early(None if self.store is None else self.store.root / ".scratch")
        self.ahead, self.landed, self.abandon = self.early.start, self.early.landed, \
            self.early.abandon

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
        """At start-up: bring the structures of the most recently written datasets up to
        date in the background (as many as the cache keeps), from their saved copies where
        there are some, and delete the saved copies of datasets that no longer exist."""
        if self.reader is None:
            return
        with self.reader() as session:
            recent = list(session.scalars(select(Dataset.id).order_by(
                Dataset.updated_at.desc()).limit(_CACHE_ENTRIES // 2)))
            saved = self.store.datasets() if self.store is not None else []
            alive: set[str] = set()
            for i in range(0, len(saved), _BATCH):
                alive.update(session.scalars(select(Dataset.id).where(
                    Dataset.id.in_(saved[i : i + _BATCH]))))
        for dataset_id in set(saved) - alive:
            assert self.store is not None
            self.store.drop(dataset_id)
        for dataset_id in recent:
            self.warm(dataset_id)

    def warm(self, dataset_id: str) -> None:
        """Bring the dataset's cached structures up to date on the warmer thread (a later
        call for the same dataset replaces one still waiting), then save them."""
        reader = self.reader
        if reader is None:
            return

        def job(_stale: Callable[[], bool]) -> None:
            with self._lock:
                self._runs += 1
                run = self._runs
            with reader() as session:
                if session.get(Dataset, dataset_id) is None:
                    self._forget_dataset(dataset_id)
                    return
                self._adopt(session, dataset_id)
                self._cached("terms", session, dataset_id, bounded=False)
                self._cached("vectors", session, dataset_id, bounded=False)
            with self._changed:
                self._warmed[dataset_id] = run
                self._changed.notify_all()
            self._save(dataset_id)

        self.warmer.submit(dataset_id, job)

    def _adopt(self, session: Session, dataset_id: str) -> None:
        """Cache what a sync's child made from its spool, if it is of this version."""
        version, dimension = _version(session, dataset_id) or (0, 0)
        made = self.early.take(dataset_id, version, dimension, self.map_min_bytes)
        if made is not None:
            self._put(("terms", dataset_id), version, made[0])
            self._put(("vectors", dataset_id), version, made[1])
            if len(made[1].pks) >= max(1, self.ann_min_records) and self._stale(made[1]):
                self._graph(dataset_id, made[1])

    @property
    def settles(self) -> bool:
        return self.reader is not None

    def settle(self, dataset_id: str, timeout_s: float) -> None:
        """Until both structures of the dataset are current (its committed records), at
        most `timeout_s`: a sync calls this before it announces completion, so the first
        search after `sync.completed` finds them built (docs/decisions.md). The warmer
        makes them (the commit queued it): the structures are the process's, shared by
        the API, and one build serves both."""
        if self.reader is None:
            return
        end = time.monotonic() + timeout_s
        with self._lock:
            mark = self._runs
        self.warm(dataset_id)
        while True:
            with self.reader() as session:
                row = _version(session, dataset_id)
            if row is None:
                return
            current = partial(self._current, dataset_id, row[0], mark)
            left = end - time.monotonic()
            with self._changed:
                # Re-read now and then: a later write moves the version to wait for.
                if self._changed.wait_for(current, timeout=max(0.0, min(left, 1.0))):
                    return
            if left <= 1.0:
                return

    def _current(self, dataset_id: str, version: int, mark: int) -> bool:
        """Both at `version`, or made by a warmer run begun after `mark` (the caller's
        commit): else, while other syncs commit, a sync waited for each of theirs too."""
        return self._warmed.get(dataset_id, 0) > mark or all(
            self._cache.get((kind, dataset_id), (None,))[0] == version
            for kind in ("terms", "vectors"))

    def _forget_dataset(self, dataset_id: str) -> None:
        with self._lock:
            for kind in ("terms", "vectors"):
                self._cache.pop((kind, dataset_id), None)
        if self.store is not None:
            self.store.drop(dataset_id)

    def _save(self, dataset_id: str) -> None:
        """Save the dataset's structures on the saver thread if both are current at one
        version (a later call replaces one still waiting)."""
        store = self.store
        if store is None:
            return

        def job(_stale: Callable[[], bool]) -> None:
            with self._lock:
                terms = self._cache.get(("terms", dataset_id))
                vectors = self._cache.get(("vectors", dataset_id))
            if terms is None or vectors is None or terms[0] != vectors[0]:
                return
            try:
                store.save(dataset_id, terms[0], terms[1], vectors[1])
            except Exception:  # the structures still serve; only a restart pays
                log.exception("saving the index structures of %s failed", dataset_id)

        self.saver.submit(dataset_id, job)

    # --- reads ----------------------------------------------------------------------------

    def lexical(self, session: Session, dataset_ids: Sequence[str], query: str, k: int,
                restrict: ColumnElement[bool] | None = None) -> list[tuple[int, float]]:
        if not query_terms(query):
            return []
        allowed = restricted.allowed(session, restrict)
        hits: list[tuple[int, float]] = []
        for dataset_id in dataset_ids:
            terms = self._cached("terms", session, dataset_id)
            if terms is not None:
                hits += lexrank.top(terms.index, query, k, allowed)
        hits.sort(key=lambda h: (-h[1], h[0]))
        return hits[:k]

    def semantic(self, session: Session, dataset_ids: Sequence[str], vector: np.ndarray, k: int,
                 restrict: ColumnElement[bool] | None = None) -> list[tuple[int, float]]:
        allowed = restricted.allowed(session, restrict)
        query = np.asarray(vector, dtype=np.float32)
        hits: list[tuple[int, float]] = []
        for dataset_id in dataset_ids:
            matrix = self._cached("vectors", session, dataset_id)
            if matrix is not None and len(matrix.pks):
                hits += self._nearest(session, dataset_id, matrix, query, k, restrict, allowed)
        if len(dataset_ids) > 1:  # one dataset's hits come ranked
            hits.sort(key=lambda h: (-h[1], h[0]))
        return hits[:k]

    def _nearest(self, session: Session, dataset_id: str, matrix: Matrix, query: np.ndarray,
                 k: int, restrict: ColumnElement[bool] | None,
                 allowed: ann.Allowed | None) -> list[tuple[int, float]]:
        state = matrix.approx
        if state is not None:
            if restrict is not None:
                few = restricted.rows(session, dataset_id, restrict, matrix,
                                    max(k, int(self.exact_share * len(matrix.pks))))
                if few is not None:
                    return top(matrix.vectors[few] @ query, matrix.pks[few], k)
            hits = ann.nearest(state.graph, matrix.vectors, matrix.pks, query, k, allowed,
                               state.remap, state.extra)
            if hits is not None:
                return hits
        return top(mapped.scores(matrix.vectors, query), matrix.pks, k, allowed)

    def vectors(self, session: Session, pks: Sequence[int]) -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        for i in range(0, len(pks), _BATCH):
            rows = session.execute(select(RecordVector.pk, RecordVector.vector).where(
                RecordVector.pk.in_(list(pks[i : i + _BATCH]))))
            out.update({int(pk): bytes(v) for pk, v in rows})
        return out

    def _cached(self, kind: str, session: Session, dataset_id: str, bounded: bool = True
                ) -> Any:
        """A structure derived from the dataset's records, brought up to date when its
        index_version (read in the caller's snapshot) moves, so it always matches what the
        caller sees. `bounded` (a search, not the warmer): within the wait bound, if any."""
        row = _version(session, dataset_id)
        if row is None:
            return None
        (version, dimension), key = row, (kind, dataset_id)
        hit = self._hit(key, version)
        if hit is not None:
            return hit[0]
        pending = dataset_id in session.info.get(_PENDING, ())
        deadline, records, wait = None, None, self.wait_s
        if bounded and wait is not None and self.reader is not None and not pending:
            records = build.count(session, dataset_id)
            deadline = time.monotonic() + wait if records > self.inline_records else None
        try:
            return self._update(key, session, version, dimension,
                                pending, deadline, records)
        except TooBig:
            # A build, or a delta too big to make here: the warmer makes it, and this
            # search waits for it up to the bound.
            self.warm(dataset_id)
            assert deadline is not None
            return self._await(key, version, deadline)

    def _update(self, key: tuple[str, str], session: Session, version: int, dimension: int,
                pending: bool, deadline: float | None, records: int | None = None) -> Any:
        kind, dataset_id = key
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        # One update per structure at a time: the searches that arrive meanwhile wait for
        # it instead of each making their own copy (up to the deadline, if any).
        if not building.acquire(timeout=-1 if deadline is None
                                else max(0.0, deadline - time.monotonic())):
            raise _busy(dataset_id)
        try:
            hit = self._hit(key, version)
            if hit is not None:
                return hit[0]
            base = self._base(key)
            if base is not None and base[0] == version:
                return base[1]
            limit = None if deadline is None else self.inline_records
            made = build.size(None if base is None else base[1])
            if limit is not None and records is not None and records - made > limit:
                raise TooBig  # without reading the catalog first (seconds at 1M records)
            now = self._catalog(session, dataset_id, version, pending)
            built: Any
            if kind == "terms":
                built = build.terms(session, dataset_id, None if base is None else base[1],
                                    now, limit)
            else:
                built = self._matrix(session, dataset_id, dimension,
                                     None if base is None else base[1], now, limit)
            if not pending:  # a structure holding uncommitted rows is never a base
                self._put(key, version, built)
                self._save(dataset_id)
            return built
        finally:
            building.release()

    def _base(self, key: tuple[str, str]) -> tuple[int, Any] | None:
        """The structure cached for `key` at any version; else the saved copy of the
        dataset, if any (both its structures join the cache)."""
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None or self.store is None:
            return cached
        saved = self.store.load(key[1])
        if saved is None:
            return None
        for kind, value in (("terms", saved.terms), ("vectors", saved.matrix)):
            other = (kind, key[1])
            with self._lock:
                taken = other in self._cache
            if not taken and (value is not None or kind == "vectors"):
                self._put(other, saved.version, value)
        with self._lock:
            return self._cache.get(key)

    def _catalog(self, session: Session, dataset_id: str, version: int,
                 pending: bool) -> Callable[[], Catalog]:
        """The dataset's catalog, read once however many structures need it at a version
        (never shared out of a session with uncommitted writes)."""
        def now() -> Catalog:
            with self._lock:
                got = None if pending else self._catalogs.get((dataset_id, version))
            if got is None:
                got = delta.catalog(session, dataset_id)
                if not pending:
                    with self._lock:
                        self._catalogs[(dataset_id, version)] = got
                        while len(self._catalogs) > 2:
                            self._catalogs.popitem(last=False)
            return got

        return now

    def _await(self, key: tuple[str, str], version: int, deadline: float) -> Any:
        with self._changed:
            while True:
                cached = self._cache.get(key)
                if cached is not None and cached[0] == version:
                    return cached[1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _busy(key[1])
                self._changed.wait(left)

    def _put(self, key: tuple[str, str], version: int, value: Any) -> None:
        with self._changed:
            self._cache[key] = (version, value)
            self._cache.move_to_end(key)
            while len(self._cache) > _CACHE_ENTRIES:
                self._cache.popitem(last=False)
            self._changed.notify_all()

    def _matrix(self, session: Session, dataset_id: str, dimension: int,
                base: Matrix | None, now: Callable[[], Catalog],
                limit: int | None) -> Matrix | None:
        if not dimension:
            return None
        scratch = None if self.store is None else self.store.root / ".scratch"
        matrix = build.matrix(session, dataset_id, dimension, base, now, limit, scratch,
                              self.map_min_bytes)
        if len(matrix.pks) >= max(1, self.ann_min_records) and self._stale(matrix):
            self._graph(dataset_id, matrix)
        return matrix

    def _graph(self, dataset_id: str, matrix: Matrix) -> None:
        def make(_stale: Callable[[], bool] | None = None) -> None:
            # Over the newest matrix cached at the start, never abandoned: each commit of a
            # loading dataset superseded the build, which never ended (benchmarks section
            # 25). A finished graph is carried to the newest matrix (build.carry).
            target = self._latest(dataset_id) if self.ann_background else None
            target = target or matrix
            if target.approx is not None and not self._stale(target):
                return  # a graph carried meanwhile serves it
            target.approx = Approx(ann.build_logged(dataset_id, target.vectors))
            latest = self._latest(dataset_id)
            if latest is not None and latest is not target:
                carried = build.carry(target, latest)
                if carried is not None and (latest.approx is None
                                            or carried.stale < latest.approx.stale):
                    latest.approx = carried
            self._save(dataset_id)  # a copy with the graph replaces the one without

        if self.ann_background:
            self.graphs.submit(dataset_id, make)
        else:
            make()

    def _latest(self, dataset_id: str) -> Matrix | None:
        with self._lock:
            cached = self._cache.get(("vectors", dataset_id))
        return cached[1] if cached is not None and isinstance(cached[1], Matrix) else None

    def _stale(self, matrix: Matrix) -> bool:
        """Whether the matrix wants a graph of its own: none, or an older one whose missing
        and dead rows are past `ANN_STALE_SHARE` of it."""
        return matrix.approx is None or matrix.approx.stale > ANN_STALE_SHARE * len(matrix.pks)

    def wait(self) -> None:
        """Until the warmer, the graph builder and the saver are idle (tests, benchmarks)."""
        self.warmer.wait()
        self.graphs.wait()
        self.warmer.wait()
        self.saver.wait()

    def _hit(self, key: tuple[str, str], version: int) -> tuple[Any] | None:
        with self._lock:
            cached = self._cache.get(key)
            if cached is None or cached[0] != version:
                return None
            self._cache.move_to_end(key)
            return (cached[1],)


def _forget(session: Session) -> None:
    session.info.pop(_PENDING, None)


