"""Approximate vector search for the embedded index: an HNSW graph (usearch) per dataset.

Below `ann_min_records` vectors a dataset is scanned exactly (the vector matrix). At or
above it, a graph over the matrix is queued on a builder thread when the matrix is built
(once per index_version, single-flight); the exact scan serves until the graph is ready.
A search walks the graph for a few candidates that are then scored
exactly against the float32 matrix: returned scores are exact cosines, only the choice of
candidates is approximate. The graph stores int8 codes (usearch quantises the vectors to
[-127, 127]), a quarter of float32, since it only ranks candidates for the rescoring. Its
metric is the inner product: the vectors are unit-length (embedders' contract), so it ranks
as the cosine does and as the exact rescoring's dot product does, and its int8 kernel
skips the two norms the cosine's computes at every distance (~0.7x the walk's CPU, §40).

Restricted searches (access policy, filter) keep the contract's guarantees the way the
PostgreSQL adapter does (storage/index/postgres_vectors.py): the caller counts the allowed
rows up to `exact_share` of the dataset and, at or below that, scores exactly those rows
(brute-force equality). Above it, the graph is walked for more candidates than `k` and
the allowed ones kept, widening by the observed pass rate until `k` are found; if the walk
would cover a quarter of the graph, it gives up and the caller scans exactly.

Parameters, measured on real vectors (WordLlama, SciFact + synthesised abstracts, 300
test queries, recall@10 against an exact scan; docs/benchmarks.md §31): queries sit far
from the documents (cosine 0.2-0.5, the documents share a strong common direction), so a
walk must be wider than the contract suite's clustered vectors need. Connectivity 32 and
expansion_add 200 with every walk at least 256 wide give 0.997 at 23k vectors and 0.988
at 228k (expansion_add 128 walking 320 wide, on the cosine: 0.995 and 0.987) for ~0.93x
the distances per walk (§40; the build costs ~1.2x, ~1.6x on the cosine). The recall of
the top 10 depends on the walk's width, not on how many of its candidates are rescored, so
an unfiltered search rescores only its k. The width belongs to the graph (saved with it):
a graph saved with expansion_add 128 keeps its 320-wide walk until it is rebuilt.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
from usearch.index import Index as _Hnsw

from dataloft.storage.index import mapped
from dataloft.storage.index.terms import top

CONNECTIVITY = 32
EXPANSION_ADD = 200
EXPANSION_SEARCH = 256
# The walk's width for a saved graph that does not say its own (built with expansion_add
# 128 before the width was saved with it).
LEGACY_WIDTH = 320
OVERFETCH = 2
MIN_FETCH = 64
# A filtered walk that would fetch more than this share of the graph goes exact instead:
# past it the scan is cheaper than the walk and it cannot miss.
MAX_WALK_SHARE = 0.25
# Rows added between checks whether a newer version made the build pointless.
BUILD_CHUNK = 8_192

Allowed = Callable[[Sequence[int]], set[int]]

log = logging.getLogger(__name__)


class Superseded(Exception):
    """A newer version of the dataset is waiting: this build is of no use any more."""


class Graph:
    """An HNSW graph over the rows of one vector matrix; keys are row numbers."""

    def __init__(self, vectors: np.ndarray | None, stale: Callable[[], bool] | None = None,
                 *, saved: str | None = None, width: int = EXPANSION_SEARCH) -> None:
        """A graph over `vectors`, or (vectors None) the one saved at `saved`, viewed in
        place (memory-mapped, read-only): a restart pays no build. `width`: how wide
        every walk is, which the recall needs as the build's expansion_add decided."""
        self.saved = saved  # the file this graph is saved in, if any
        self.width = width
        self.searches = 0  # walks so far: lets tests see which path a search took
        # usearch keys its per-search scratch space by a thread slot (0 here), so two
        # concurrent searches would share one: one walk at a time (~0.5 ms each).
        self._lock = threading.Lock()
        if vectors is None:
            assert saved is not None
            viewed = _Hnsw.restore(saved, view=True)
            if viewed is None:
                raise ValueError(f"{saved}: not a usearch index")
            # restore() keeps the graph, not the expansion settings: set them again.
            viewed.expansion_add = EXPANSION_ADD  # type: ignore[misc]  # a setter the stub lacks
            viewed.expansion_search = width  # type: ignore[misc]
            self._index = viewed
            self.size = len(viewed)
            return
        self._index = _Hnsw(ndim=int(vectors.shape[1]), metric="ip", dtype="i8",
                            connectivity=CONNECTIVITY, expansion_add=EXPANSION_ADD,
                            expansion_search=width)
        # One thread: insertion order shapes an HNSW graph, and a parallel build interleaves
        # inserts differently on every run. Single-threaded, the graph and so every search
        # result is reproducible (usearch's level draws use a fixed seed).
        # In chunks: a sync commits several versions in a row, and each one's build would
        # otherwise run to the end (minutes at 200k on busy cores) before the last starts.
        for start in range(0, len(vectors), BUILD_CHUNK):
            if stale is not None and stale():
                raise Superseded
            end = min(start + BUILD_CHUNK, len(vectors))
            self._index.add(np.arange(start, end, dtype=np.uint64), vectors[start:end],
                            threads=1)
            mapped.release(vectors)  # a mapped matrix is read, never made resident
        self.size = len(vectors)

    @property
    def nbytes(self) -> int:
        return int(self._index.memory_usage)

    @property
    def dimension(self) -> int:
        return int(self._index.ndim)

    def save(self, path: str) -> None:
        with self._lock:
            self._index.save(path)

    def rows(self, query: np.ndarray, count: int) -> np.ndarray:
        """Row numbers of about the `count` nearest rows (fewer if the walk runs dry)."""
        with self._lock:
            self.searches += 1
            found = self._index.search(query, min(count, self.size), threads=1)
        return np.asarray(found.keys, dtype=np.int64)


def nearest(graph: Graph, vectors: np.ndarray, pks: np.ndarray, query: np.ndarray, k: int,
            allowed: Allowed | None = None, remap: np.ndarray | None = None,
            extra: np.ndarray | None = None) -> list[tuple[int, float]] | None:
    """The `k` best (pk, exact score) among the graph's candidates that `allowed` keeps, or
    None when the walk cannot find them cheaply (the caller then searches exactly).
    `remap` (graph key -> row of `vectors`, -1 for a row gone since) and `extra` (rows the
    graph lacks, always scored) let an older graph serve a matrix updated by a delta."""
    n = len(pks)
    want = min(k, n)
    memo = _Memo(allowed) if allowed is not None else None
    # The walk is at least the graph's width wide whatever it returns, and its candidates
    # are rescored exactly: an unfiltered search needs only its k (recall@10 on real
    # vectors is the same from the walk's best 32 as from all of it, docs/benchmarks.md
    # §31). A filtered one fetches more, since some of them will not pass.
    fetch = max(MIN_FETCH, OVERFETCH * k if memo is not None else k)
    if remap is not None:  # dead keys take places in the walk's answer: fetch more
        fetch = math.ceil(fetch * len(remap) / max(1, int((remap >= 0).sum())))
    while True:
        walked = graph.rows(query, fetch)
        rows = walked
        if remap is not None:
            mapped = remap[walked]
            rows = np.concatenate([mapped[mapped >= 0], extra if extra is not None
                                   else np.zeros(0, dtype=np.int64)])
        hits = top(vectors[rows] @ query, pks[rows], k, memo)
        if len(hits) >= want:
            return hits
        if memo is None or len(walked) < min(fetch, graph.size) \
                or fetch >= MAX_WALK_SHARE * n:
            return None
        # Widen by the pass rate seen so far (at least 2x, at most 16x a round).
        rate = max(memo.passed, 1) / max(memo.checked, 1)
        fetch = min(16 * fetch, max(2 * fetch, math.ceil(OVERFETCH * k / rate)))


class _Memo:
    """`allowed`, asking the database about each pk once across widening rounds."""

    def __init__(self, allowed: Allowed) -> None:
        self._allowed = allowed
        self._known: dict[int, bool] = {}

    @property
    def checked(self) -> int:
        return len(self._known)

    @property
    def passed(self) -> int:
        return sum(self._known.values())

    def __call__(self, pks: Sequence[int]) -> set[int]:
        fresh = [pk for pk in pks if pk not in self._known]
        if fresh:
            ok = self._allowed(fresh)
            self._known.update((pk, pk in ok) for pk in fresh)
        return {pk for pk in pks if self._known[pk]}


class Builder:
    """Builds graphs one at a time on a daemon thread, so no search waits for one (the
    exact scan serves until it is ready). Per key only the latest job waits: a dataset
    that changes again before its graph is built skips the stale build."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._pending: dict[str, Callable[[Callable[[], bool]], None]] = {}
        self._busy = False
        self._thread: threading.Thread | None = None

    def submit(self, key: str, job: Callable[[Callable[[], bool]], None]) -> None:
        """Run `job(stale)` on the builder thread; `stale()` turns true once a newer job
        for `key` is waiting."""
        with self._cv:
            self._pending[key] = job
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="ann-builder",
                                                daemon=True)
                self._thread.start()
            self._cv.notify_all()

    def wait(self) -> None:
        """Until every submitted build has finished (tests, benchmarks)."""
        with self._cv:
            self._cv.wait_for(lambda: not self._pending and not self._busy)

    def _run(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: bool(self._pending))
                key = next(iter(self._pending))
                job = self._pending.pop(key)
                self._busy = True
            try:
                job(partial(self._pending.__contains__, key))
            except Superseded:
                log.info("ANN graph for %s superseded by a newer version", key)
            except Exception:  # a failed build leaves the exact scan in place
                log.exception("building the ANN graph for %s failed", key)
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()


def build_logged(key: str, vectors: np.ndarray,
                 stale: Callable[[], bool] | None = None) -> Graph:
    started = time.perf_counter()
    graph = Graph(vectors, stale)
    log.info("ANN graph for %s: %d vectors in %.1f s, %.0f bytes/vector (+%d float32 "
             "matrix)", key, graph.size, time.perf_counter() - started,
             graph.nbytes / max(graph.size, 1), 4 * int(vectors.shape[1]))
    return graph
