"""The embedded index's incremental structures (issue 16, item 3), beyond the contract.

The contract's state machine (tests/contract/test_index.py) proves that structures carried
from version to version by deltas answer what fresh ones answer. Here, what only the SQLite
adapter has: a commit warms the structures in the background (the first search after a
sync finds them current), and a graph built before a delta keeps serving, with the delta's
rows scored exactly, at the recall the ANN contract asks for.
"""

from __future__ import annotations

import numpy as np
import pytest

from dataloft.models import Dataset
from dataloft.records import repository as records
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
    index = SqliteIndex(ann_min_records=1_000, ann_background=False)
    ds = sqlite.new_dataset(DIM)
    rng = np.random.default_rng(3)
    with sqlite.db.write() as s:
        model = add(s, index, sqlite, ds, [Row(ds, f"r {i}", v)
                                           for i, v in enumerate(clustered(rng, 2_000, DIM))])
    queries = clustered(rng, 30, DIM)
    with sqlite.db.read() as s:
        index.semantic(s, [ds], queries[0], 10)
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
