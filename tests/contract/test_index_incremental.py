"""The embedded index's incremental structures (issue 16, item 3), beyond the contract.

The contract's state machine (tests/contract/test_index.py) proves that structures carried
from version to version by deltas answer what fresh ones answer. Here, what only the SQLite
adapter has: a commit warms the structures in the background (the first search after a
sync finds them current), and a graph built before a delta keeps serving, with the delta's
rows scored exactly, at the recall the ANN contract asks for.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from dataloft.datasets import repository as rows_repository
from dataloft.errors import Busy
from dataloft.kit.spool import Spool
from dataloft.kit.vectors import to_blob
from dataloft.models import Dataset, Record
from dataloft.records import repository as records
from dataloft.records.repository import NewRecord
from dataloft.storage.index import build
from dataloft.storage.index.sqlite import SqliteIndex
from tests.contract import test_index as contract
from tests.contract.test_index import Backend, Row, add, assert_same_topk, brute_force, clustered

DIM = 32
backend = contract.backend


@pytest.fixture
def sqlite(backend: Backend) -> Backend:
    if backend.name != "sqlite":
        pytest.skip("the embedded index's caches")
    return backend


def _version(b: Backend, ds: str) -> int:
    with b.db.read() as s:
        dataset = s.get(Dataset, ds)
        assert dataset is not None
        return dataset.index_version


def test_a_commit_warms_the_structures(sqlite: Backend) -> None:
    index = SqliteIndex(reader=sqlite.db.read)
    ds = sqlite.new_dataset(DIM)
    rng = np.random.default_rng(1)
    model: dict[int, Row] = {}
    for round_ in range(3):
        with sqlite.db.write() as s:
            model |= add(s, index, sqlite, ds, [Row(ds, f"round{round_} word {i}", v)
                                                for i, v in enumerate(clustered(rng, 50, DIM))])
            if round_:
                gone = sorted(model)[:5]
                records.delete_where(s, index, org_id=sqlite.org_id, pks=gone)
                for pk in gone:
                    del model[pk]
        index.wait()
        version = _version(sqlite, ds)
        # Both structures are current before any search asks for them.
        assert index._cache[("terms", ds)][0] == version
        assert index._cache[("vectors", ds)][0] == version
        terms, matrix = index._cache[("terms", ds)][1], index._cache[("vectors", ds)][1]
        q = clustered(rng, 1, DIM)[0]
        with sqlite.db.read() as s:
            assert {pk for pk, _ in index.lexical(s, [ds], "word", 1000)} == set(model)
            assert_same_topk(index.semantic(s, [ds], q, 20), brute_force(model, [ds], q, 20),
                             model, q)
        # ... and the searches used them as they were.
        assert index._cache[("terms", ds)][1] is terms
        assert index._cache[("vectors", ds)][1] is matrix


def test_a_rolled_back_write_warms_nothing(sqlite: Backend) -> None:
    index = SqliteIndex(reader=sqlite.db.read)
    ds = sqlite.new_dataset(DIM)

    class Abort(Exception):
        pass

    with pytest.raises(Abort), sqlite.db.write() as s:
        add(s, index, sqlite, ds, [Row(ds, "never", clustered(np.random.default_rng(2), 1,
                                                               DIM)[0])])
        raise Abort
    index.wait()
    assert ("terms", ds) not in index._cache


def test_an_older_graph_serves_after_a_delta(sqlite: Backend) -> None:
    """A graph built before a small delta keeps serving: the rows it lacks are scored
    exactly with its candidates, the rows gone since are dropped, and recall@10 stays at
    the ANN contract's 0.99; a larger delta gets a fresh graph."""
    index, ds, model, queries = _graphed(sqlite, seed=3)
    first = index._cache[("vectors", ds)][1].graph
    assert first is not None
    # A small delta: 40 new rows placed right on the queries, 40 gone.
    with sqlite.db.write() as s:
        new = add(s, index, sqlite, ds, [Row(ds, f"n {i}", v) for i, v in
                                         enumerate(np.repeat(queries[:20], 2, axis=0))])
        gone = sorted(model)[::50]
        records.delete_where(s, index, org_id=sqlite.org_id, pks=gone)
    model |= new
    for pk in gone:
        del model[pk]
    with sqlite.db.read() as s:
        recalls = []
        for q in queries:
            got = index.semantic(s, [ds], q, 10)
            want = brute_force(model, [ds], q, 10)
            assert not {pk for pk, _ in got} - set(model), "a row gone since came back"
            recalls.append(len({pk for pk, _ in got} & {pk for pk, _ in want}) / 10)
        assert float(np.mean(recalls)) >= 0.99
        matrix = index._cache[("vectors", ds)][1]
        assert matrix.graph is first and first.searches > 1
        for q in queries[:20]:  # the new rows are found although the graph lacks them
            assert {pk for pk, _ in index.semantic(s, [ds], q, 2)} <= set(new)
    # A delta past the share: a new graph.
    with sqlite.db.write() as s:
        records.delete_where(s, index, org_id=sqlite.org_id, pks=sorted(model)[:400])
    with sqlite.db.read() as s:
        index.semantic(s, [ds], queries[0], 10)
    assert index._cache[("vectors", ds)][1].graph is not first


def test_a_restart_warms_the_recent_datasets(sqlite: Backend) -> None:
    """Without a store nothing is saved: a new process builds the structures of the most
    recently written datasets in the background at start-up, before any search asks."""
    ds = sqlite.new_dataset(DIM)
    rng = np.random.default_rng(4)
    with sqlite.db.write() as s:
        model = add(s, SqliteIndex(), sqlite, ds, [Row(ds, f"restart {i}", v)
                                                   for i, v in enumerate(clustered(rng, 30, DIM))])
    index = SqliteIndex(reader=sqlite.db.read)  # the new process
    index.warm_recent()
    index.wait()
    version = _version(sqlite, ds)
    assert index._cache[("terms", ds)][0] == version
    assert index._cache[("vectors", ds)][0] == version
    with sqlite.db.read() as s:
        assert {pk for pk, _ in index.lexical(s, [ds], "restart", 100)} == set(model)


def test_split_rows_joining_a_dataset_score_as_a_fresh_build(sqlite: Backend) -> None:
    """A table row split into parts is one BM25 document (storage/index/rows.py): when such
    parts join a dataset whose structures are cached, the lexical answer is a fresh
    build's, pk for pk and score for score."""
    index = SqliteIndex()
    ds = sqlite.new_dataset(DIM)
    rng = np.random.default_rng(6)
    with sqlite.db.write() as s:
        add(s, index, sqlite, ds, [Row(ds, f"apple river {i}", v)
                                   for i, v in enumerate(clustered(rng, 6, DIM))])
    queries = ["apple", "river stone", "cloud"]

    def same() -> None:
        with sqlite.db.read() as s:
            fresh = SqliteIndex()
            for q in queries:
                got, want = index.lexical(s, [ds], q, 100), fresh.lexical(s, [ds], q, 100)
                assert [pk for pk, _ in got] == [pk for pk, _ in want], q
                np.testing.assert_allclose([x for _, x in got], [x for _, x in want],
                                           rtol=1e-6)

    same()
    with sqlite.db.write() as s:
        add(s, index, sqlite, ds, [Row(ds, text, v, meta={"part": n, "row": 7})
                                   for n, (text, v) in enumerate(zip(
                                       ["stone apple", "cloud"], clustered(rng, 2, DIM),
                                       strict=True))])
    same()
    with sqlite.db.write() as s:
        add(s, index, sqlite, ds, [Row(ds, "river cloud", clustered(rng, 1, DIM)[0])])
    same()


# --- table rows split into parts, file after file (docs/benchmarks.md section 25) ----------

_WORDS = ["apple", "river", "stone", "cloud", "tree"]
_QUERIES = ["apple", "river stone", "cloud apple tree", "stone"]
_text = st.lists(st.sampled_from(_WORDS), min_size=1, max_size=3).map(" ".join)
_ops = st.one_of(
    st.tuples(st.just("file"), st.lists(st.lists(_text, min_size=1, max_size=3),
                                        min_size=1, max_size=4)),
    st.tuples(st.just("plain"), _text),
    st.tuples(st.just("delete"), st.integers(0, 10**6)),
    st.tuples(st.just("drop_file"), st.integers(0, 10**6)),
    st.tuples(st.just("edit"), st.integers(0, 10**6), _text))


def _parts(ds: str, sheet: str, rows: list[list[str]], first: int = 0) -> list[Row]:
    return [Row(ds, text, None, meta={"part": n, "row": first + r, "sheet": sheet})
            for r, parts in enumerate(rows) for n, text in enumerate(parts)]


def _same_as_fresh(index: SqliteIndex, b: Backend, ds: str) -> None:
    with b.db.read() as s:
        fresh = SqliteIndex()
        for q in _QUERIES:
            got, want = index.lexical(s, [ds], q, 1000), fresh.lexical(s, [ds], q, 1000)
            assert [pk for pk, _ in got] == [pk for pk, _ in want], q
            np.testing.assert_allclose([x for _, x in got], [x for _, x in want], rtol=1e-6)


def _apply(s: Session, index: SqliteIndex, b: Backend, ds: str, op: tuple[Any, ...],
           files: dict[str, list[int]]) -> None:
    live = sorted(pk for pks in files.values() for pk in pks)
    if op[0] == "file":
        sheet = f"f{len(files)}"
        files[sheet] = sorted(add(s, index, b, ds, _parts(ds, sheet, op[1])))
    elif op[0] == "plain":
        files[f"p{len(files)}"] = sorted(add(s, index, b, ds, [Row(ds, op[1], None)]))
    elif op[0] == "drop_file" and files:
        sheet = sorted(files)[op[1] % len(files)]
        records.delete_where(s, index, org_id=b.org_id, pks=files.pop(sheet))
    elif op[0] in ("delete", "edit") and live:
        pk = live[op[1] % len(live)]
        if op[0] == "delete":
            records.delete_where(s, index, org_id=b.org_id, pks=[pk])
            for pks in files.values():
                if pk in pks:
                    pks.remove(pk)
        else:
            record = s.get(Record, pk)
            assert record is not None
            rows_repository.write_record_text(s, record, op[2])
            records.reindex(s, index, record, None)


@settings(max_examples=40, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=st.lists(_ops, min_size=1, max_size=8))
def test_split_rows_by_delta_score_as_a_fresh_build(sqlite: Backend,
                                                    ops: list[tuple[Any, ...]]) -> None:
    """Files of rows split into parts come and go, records are deleted and edited in
    place: the term index carried from commit to commit by deltas (rowdelta.py) answers
    pk for pk and score for score as a fresh build."""
    index = SqliteIndex()
    ds = sqlite.new_dataset(DIM)
    files: dict[str, list[int]] = {}
    for op in ops:
        with sqlite.db.write() as s:
            _apply(s, index, sqlite, ds, op, files)
        _same_as_fresh(index, sqlite, ds)


def test_searches_answer_while_files_of_rows_keep_committing(sqlite: Backend) -> None:
    """A dataset of table rows split into parts keeps receiving files while its warmer is
    busy (held here): each search brings the structures up to its version itself, as the
    commits are small, and is answered. Before, a term index of split rows had no delta:
    every commit needed a build of all records, too big for a search, and every search
    waited for a warmer that commits kept overtaking (503 index_building for 10+ minutes
    at 775k records, docs/benchmarks.md section 22b)."""
    index = SqliteIndex(reader=sqlite.db.read, wait_s=0.01, inline_records=50)
    ds = sqlite.new_dataset(DIM)
    rng = np.random.default_rng(7)
    with sqlite.db.write() as s:
        add(s, index, sqlite, ds, _parts(ds, "base", [[f"apple river {i}", "stone"]
                                                      for i in range(150)]))
    index.wait()
    hold = threading.Event()
    index.warmer.submit("held", lambda _stale: hold.wait())
    busy = 0
    try:
        for f in range(6):
            with sqlite.db.write() as s:
                rows = _parts(ds, f"file{f}", [[f"cloud {f} {i}", "tree apple"]
                                               for i in range(10)])
                for r in rows:
                    r.vector = clustered(rng, 1, DIM)[0]
                add(s, index, sqlite, ds, rows)
            with sqlite.db.read() as s:
                for search in (lambda: index.lexical(s, [ds], "apple cloud", 10),
                               lambda: index.semantic(s, [ds], clustered(rng, 1, DIM)[0], 10)):
                    try:
                        assert search()
                    except Busy:
                        busy += 1
            if not busy:
                _same_as_fresh(index, sqlite, ds)
    finally:
        hold.set()
        index.wait()
    assert busy == 0


def test_a_graph_made_for_an_older_matrix_serves_a_newer_one(sqlite: Backend) -> None:
    """A graph build is never abandoned for a newer version (a loading dataset's commits
    superseded every build): when it ends, the graph is carried to the newest matrix
    (build.carry), its keys remapped by pk and fingerprint, rows gone since dropped and
    rows it lacks scored exactly, at the ANN contract's recall."""
    index, ds, model, queries = _graphed(sqlite, seed=9)
    older = index._cache[("vectors", ds)][1]
    assert older.graph is not None
    # A delta past the stale share: new rows on the queries, some rows gone, one moved.
    with sqlite.db.write() as s:
        new = add(s, index, sqlite, ds, [Row(ds, f"n {i}", v) for i, v in
                                         enumerate(np.repeat(queries, 10, axis=0))])
        gone = sorted(model)[::40]
        records.delete_where(s, index, org_id=sqlite.org_id, pks=gone)
        moved = sorted(model)[1]
        record = s.get(Record, moved)
        assert record is not None
        records.reindex(s, index, record, to_blob(-model[moved].vector))
    model |= new
    model[moved].vector = -model[moved].vector
    for pk in gone:
        del model[pk]
    newer_index = SqliteIndex(ann_min_records=10**9)  # a matrix without a graph of its own
    with sqlite.db.read() as s:
        newer_index.semantic(s, [ds], queries[0], 10)
        newer = newer_index._cache[("vectors", ds)][1]
        assert newer.approx is None
        newer.approx = build.carry(older, newer)
        assert newer.approx is not None and newer.approx.stale > 0
        before = older.graph.searches
        recalls = []
        for q in [*queries, -model[moved].vector]:
            got = newer_index.semantic(s, [ds], q, 10)
            want = brute_force(model, [ds], q, 10)
            assert not {pk for pk, _ in got} - set(model), "a row gone since came back"
            for pk, score in got:
                assert score == pytest.approx(float(model[pk].vector @ q), abs=1e-4)
            recalls.append(len({pk for pk, _ in got} & {pk for pk, _ in want}) / 10)
        assert float(np.mean(recalls)) >= 0.99
        assert older.graph.searches > before
        # The record whose vector changed is found where it is now, not where it was.
        assert [pk for pk, _ in newer_index.semantic(s, [ds], model[moved].vector, 1)] \
            == [moved]


def _graphed(sqlite: Backend, seed: int) -> tuple[SqliteIndex, str, dict[int, Row], np.ndarray]:
    """A dataset of 2,000 clustered vectors whose graph is built (a first search made it),
    its model, and 30 queries from the same clusters."""
    index = SqliteIndex(ann_min_records=1_000, ann_background=False)
    ds = sqlite.new_dataset(DIM)
    rng = np.random.default_rng(seed)
    with sqlite.db.write() as s:
        model = add(s, index, sqlite, ds, [Row(ds, f"r {i}", v)
                                           for i, v in enumerate(clustered(rng, 2_000, DIM))])
    queries = clustered(rng, 30, DIM)
    with sqlite.db.read() as s:
        index.semantic(s, [ds], queries[0], 10)
    return index, ds, model, queries


# Row fields as a table's rows carry them, and odd JSON values a meta may hold.
_cells = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(
    ["", "Sheet1", "1", "a\x1fb"]), st.floats(0, 2, allow_nan=False), st.just([1, "x"]))
_spooled_rows = st.lists(st.tuples(st.booleans(), _cells, _cells, st.lists(_text, min_size=1,
                                                                           max_size=3)),
                         min_size=1, max_size=12)


def _spooled(ds: str, rng: np.random.Generator, rows: list[tuple[Any, ...]]) -> list[NewRecord]:
    out = []
    for split, sheet, row, texts in rows:
        for n, text in enumerate(texts if split else texts[:1]):
            meta = {"part": n, "sheet": sheet, "row": row} if split else {"row": row}
            vector = clustered(rng, 1, DIM)[0] if n % 2 == 0 else None
            out.append(NewRecord(text=text, meta=meta,
                                 vector=None if vector is None else to_blob(vector)))
    records.prepare(out)
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rows=_spooled_rows, ops=st.lists(_ops, max_size=4))
def test_structures_made_from_a_spool_are_a_fresh_build(sqlite: Backend,
                                                        rows: list[tuple[Any, ...]],
                                                        ops: list[tuple[Any, ...]]) -> None:
    """A sync's records spooled and inserted as a sync commits them (storage/index/
    spooled.py: the structures are made in a child from the spool, not from the records):
    array for array the structures a build from the committed records makes, and the base
    of later deltas that answer as a fresh build."""
    index = SqliteIndex(reader=sqlite.db.read)
    index.early.min_records = 1
    ds = sqlite.new_dataset(DIM)
    new = _spooled(ds, np.random.default_rng(len(rows)), rows)
    with Spool() as spool:
        spool.append(new[: len(new) // 2])
        spool.append(new[len(new) // 2 :])
        index.ahead(ds, spool, len(new), DIM)
        with sqlite.db.write() as s:
            got = records.insert_batches(s, index, sqlite.org_id, ds, spool.batches(), len(new))
            index.landed(s, ds, got[0][0], len(got))
        index.wait()
    assert index.early.adopted == 1
    with sqlite.db.read() as s:
        version = _version(sqlite, ds)
        terms, matrix = (index._cache[(kind, ds)] for kind in ("terms", "vectors"))
        assert terms[0] == matrix[0] == version
        fresh = build.build_terms(s, ds)
        fresh_matrix = build.build_matrix(s, ds, DIM, build.delta.catalog(s, ds))
    for a, b in ((terms[1].fps, fresh.fps), (terms[1].index.pks, fresh.index.pks),
                 (terms[1].index.row_of, fresh.index.row_of),
                 (matrix[1].pks, fresh_matrix.pks), (matrix[1].fps, fresh_matrix.fps),
                 (matrix[1].vectors, fresh_matrix.vectors),
                 (matrix[1].seen.fps, fresh_matrix.seen.fps)):
        assert np.array_equal(a, b)
    g, w = terms[1].index.rows, fresh.index.rows
    assert g.vocab.blob == w.vocab.blob
    for name in ("pks", "starts", "docs", "tf", "length", "idf", "norm"):
        assert np.array_equal(getattr(g, name), getattr(w, name)), name
    files = {"spooled": [pk for pk, _ in got]}
    for op in ops:
        with sqlite.db.write() as s:
            _apply(s, index, sqlite, ds, op, files)
        _same_as_fresh(index, sqlite, ds)
