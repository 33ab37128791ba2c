"""The index contract on the approximate paths: recall of ANN search against brute force.

Both adapters search a large enough candidate set through a graph (the SQLite adapter's
usearch HNSW above `ann_min_records`, PostgreSQL's pgvector HNSW above `exact_max`) and
small restricted sets exactly. Here the thresholds are set low so a 3,000-row dataset takes
the graph path, and the brute-force oracle of tests/contract/test_index.py judges it:
recall@10 >= 0.99 averaged over queries, plain and filtered; every hit allowed, scored
with its exact cosine, best first; and exact equality wherever the restriction leaves at
most the exact threshold's rows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from dataloft.models import Record
from dataloft.storage.index import ann
from dataloft.storage.index.base import Index
from dataloft.storage.index.sqlite import SqliteIndex
from tests.contract import test_index as contract
from tests.contract.test_index import Backend, Row, add, assert_same_topk, brute_force, clustered

DIM = 256  # PostgreSQL's migration-built HNSW index: no background build to wait for
ROWS = 3_000
EXACT_MAX = 300  # both adapters: restrictions allowing at most this many rows are exact

backend = contract.backend  # the contract's fixture: one migrated database per adapter


@dataclass
class Big:
    dataset_id: str
    model: dict[int, Row]
    index: Index
    walks: Callable[[Session], int]  # graph searches so far, to see which path ran


def _sqlite_index() -> tuple[Index, Callable[[Session], int]]:
    index = SqliteIndex(ann_min_records=1_000, exact_share=EXACT_MAX / ROWS,
                        ann_background=False)

    def walks(_: Session) -> int:
        graphs = [m.graph for _, m in index._cache.values()
                  if getattr(m, "graph", None) is not None]
        return sum(g.searches for g in graphs)

    return index, walks


def _postgres_index() -> tuple[Index, Callable[[Session], int]]:
    from dataloft.storage.index.postgres import PostgresIndex, hnsw_index_name

    scans = select(func.pg_stat_get_xact_numscans(func.to_regclass(hnsw_index_name(DIM))))

    def walks(s: Session) -> int:
        return int(s.scalar(scans) or 0)

    return PostgresIndex(build_indexes=False, exact_max=EXACT_MAX), walks


@pytest.fixture(scope="module")
def big(backend: Backend) -> Big:
    ds = backend.new_dataset(DIM)
    vectors = clustered(np.random.default_rng(21), ROWS, DIM)
    index, walks = (_sqlite_index if backend.name == "sqlite" else _postgres_index)()
    with backend.db.write() as s:
        model = add(s, index, backend, ds,
                    [Row(ds, f"row {i}", v, position=i) for i, v in enumerate(vectors)])
    return Big(ds, model, index, walks)


def _every(m: int) -> tuple[ColumnElement[bool], Callable[[Row], bool]]:
    return Record.position % m == 0, lambda r: r.position is not None and r.position % m == 0


def _recalls(big: Big, s: Session, queries: np.ndarray, k: int,
             restrict: ColumnElement[bool] | None, keep: Callable[[Row], bool]) -> list[float]:
    live = {pk: r for pk, r in big.model.items() if keep(r)}
    out = []
    for query in queries:
        got = big.index.semantic(s, [big.dataset_id], query, k, restrict)
        want = brute_force(live, [big.dataset_id], query, k)
        pks = [pk for pk, _ in got]
        assert len(got) == len(want) and len(set(pks)) == len(pks)
        assert set(pks) <= set(live), "a hit the restriction does not allow"
        for pk, score in got:
            assert score == pytest.approx(float(live[pk].vector @ query), abs=1e-4)
        assert [sc for _, sc in got] == sorted((sc for _, sc in got), reverse=True)
        cut = want[-1][1]
        out.append(sum(sc >= cut - 1e-4 for _, sc in got) / len(want))
    return out


@pytest.mark.parametrize("every", [1, 2, 4])
def test_graph_search_keeps_recall(backend: Backend, big: Big, every: int) -> None:
    """Unrestricted (every=1) and broad filters (1/2, 1/4 of the rows: above the exact
    threshold) walk the graph and keep recall@10 >= 0.99 against brute force."""
    restrict, keep = _every(every) if every > 1 else (None, lambda _r: True)
    queries = clustered(np.random.default_rng(100 + every), 40, DIM)
    with backend.db.read() as s:
        before = big.walks(s)
        recalls = _recalls(big, s, queries, 10, restrict, keep)
        assert big.walks(s) > before, "the graph was not used"
    assert float(np.mean(recalls)) >= 0.99, recalls


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(every=st.integers(1, 40), k=st.sampled_from([1, 10, 50]), seed=st.integers(0, 2**16))
def test_any_restriction_keeps_the_contract(backend: Backend, big: Big, every: int, k: int,
                                            seed: int) -> None:
    """Whatever share a filter allows: exact results at or below the exact threshold,
    recall@k >= 0.99 (mean of the queries) above it, never a hit outside it."""
    restrict, keep = _every(every) if every > 1 else (None, lambda _r: True)
    allowed = sum(keep(r) for r in big.model.values())
    queries = clustered(np.random.default_rng(seed), 8, DIM)
    with backend.db.read() as s:
        if restrict is not None and allowed <= EXACT_MAX:
            live = {pk: r for pk, r in big.model.items() if keep(r)}
            before = big.walks(s)
            for q in queries:
                assert_same_topk(big.index.semantic(s, [big.dataset_id], q, k, restrict),
                                 brute_force(live, [big.dataset_id], q, k), live, q)
            assert big.walks(s) == before, "a small restriction should be searched exactly"
        else:
            recalls = _recalls(big, s, queries, k, restrict, keep)
            assert float(np.mean(recalls)) >= 0.99, recalls


def test_background_build_serves_exact_until_the_graph_is_ready(backend: Backend) -> None:
    """The default: the first search scans exactly while a builder thread makes the graph;
    once it is built, searches walk it."""
    if backend.name != "sqlite":
        pytest.skip("the embedded index's graph builder")
    ds = backend.new_dataset(DIM)
    vectors = clustered(np.random.default_rng(5), 1_200, DIM)
    index = SqliteIndex(ann_min_records=1_000)
    with backend.db.write() as s:
        model = add(s, index, backend, ds, [Row(ds, f"r {i}", v) for i, v in enumerate(vectors)])
    query = clustered(np.random.default_rng(6), 1, DIM)[0]
    with backend.db.read() as s:
        got = index.semantic(s, [ds], query, 10)
        index.graphs.wait()
        (_, matrix), = index._cache.values()
        assert matrix.graph is not None and matrix.graph.searches == 0
        assert [pk for pk, _ in got] == [pk for pk, _ in brute_force(model, [ds], query, 10)]
        again = index.semantic(s, [ds], query, 10)
        assert matrix.graph.searches == 1
    assert {pk for pk, _ in again} == {pk for pk, _ in got}


def test_a_newer_version_supersedes_a_build_in_progress() -> None:
    """The builder runs one build at a time; a job for a key that gets a newer job while
    it runs sees `stale()` turn true (the graph build then stops at its next chunk), and
    only the newest waiting job runs."""
    builder = ann.Builder()
    started, release = threading.Event(), threading.Event()
    seen: list[tuple[str, bool]] = []

    def first(stale: Callable[[], bool]) -> None:
        started.set()
        release.wait()
        seen.append(("v1", stale()))

    builder.submit("ds", first)
    started.wait()
    builder.submit("ds", lambda stale: seen.append(("v2", stale())))
    builder.submit("ds", lambda stale: seen.append(("v3", stale())))
    release.set()
    builder.wait()
    assert seen == [("v1", True), ("v3", False)]

    vectors = clustered(np.random.default_rng(8), 3 * ann.BUILD_CHUNK // 2, 16)
    with pytest.raises(ann.Superseded):
        ann.Graph(vectors, stale=lambda: True)
    assert ann.Graph(vectors, stale=lambda: False).size == len(vectors)
