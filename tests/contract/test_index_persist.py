"""The embedded index's saved structures (storage/index/persist.py) and its wait bound.

The contract's state machine restarts the reader with saved, older and damaged copies and
checks every answer against a fresh build; here, what it cannot see: that a restart reads
no record when its copy is current, that a damaged copy is deleted, that copies go with
their dataset and stay one per dataset, that the HNSW graph is saved and viewed in place,
that fingerprints are the same in every process, and that a search never waits for a
build past the bound.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import delete, event

from dataloft.errors import Busy
from dataloft.models import Dataset
from dataloft.records import repository as records
from dataloft.storage.index import ann, delta, persist
from dataloft.storage.index.sqlite import SqliteIndex
from tests.contract import test_index as contract
from tests.contract.test_index import Backend, Row, add, assert_same_topk, brute_force, clustered

DIM = 16
backend = contract.backend
WORDS = ["apple", "river", "stone", "cloud", "ember", "lattice", "harbor", "meadow"]


@pytest.fixture
def sqlite(backend: Backend) -> Backend:
    if backend.name != "sqlite":
        pytest.skip("the embedded index's saved structures")
    return backend


def _rows(ds: str, rng: np.random.Generator, n: int, tag: str = "") -> list[Row]:
    return [Row(ds, " ".join(rng.choice(WORDS, size=3)) + f" {tag}{i}", v)
            for i, v in enumerate(clustered(rng, n, DIM))]


def _index(b: Backend, store: Path, **kw: object) -> SqliteIndex:
    return SqliteIndex(reader=b.db.read, store=store, **kw)  # type: ignore[arg-type]


QUERIES = [*WORDS[:4], "apple river", "meadow harbor stone"]
VECTORS = clustered(np.random.default_rng(7), 3, DIM)


def _answers(b: Backend, index: SqliteIndex, ds: str
             ) -> tuple[list[list[tuple[int, float]]], list[list[tuple[int, float]]]]:
    with b.db.read() as s:
        return ([index.lexical(s, [ds], q, 1000) for q in QUERIES],
                [index.semantic(s, [ds], q, 10) for q in VECTORS])


def _same_as_fresh(b: Backend, index: SqliteIndex, ds: str, model: dict[int, Row],
                   answers: tuple[list[list[tuple[int, float]]],
                                  list[list[tuple[int, float]]]] | None = None) -> None:
    lexical, semantic = answers or _answers(b, index, ds)
    fresh, _ = _answers(b, SqliteIndex(), ds)
    for query, got, want in zip(QUERIES, lexical, fresh, strict=True):
        assert [pk for pk, _ in got] == [pk for pk, _ in want], query
        np.testing.assert_allclose([x for _, x in got], [x for _, x in want], rtol=1e-6)
    for q, got in zip(VECTORS, semantic, strict=True):
        assert_same_topk(got, brute_force(model, [ds], q, 10), model, q)


@contextmanager
def _statements(b: Backend) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement)

    engine = b.db.read_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _version(b: Backend, ds: str) -> int:
    with b.db.read() as s:
        dataset = s.get(Dataset, ds)
        assert dataset is not None
        return dataset.index_version


def _copies(store: Path, ds: str) -> list[Path]:
    return sorted(p for p in (store / ds).glob("*") if (p / "meta.json").exists())


def _saved(b: Backend, store: Path, seed: int, rows: int
           ) -> tuple[str, dict[int, Row], np.random.Generator]:
    """A new dataset of `rows` records whose structures are saved under `store`: its id,
    the model of its records, and the generator for more."""
    ds = b.new_dataset(DIM)
    first = _index(b, store)
    rng = np.random.default_rng(seed)
    with b.db.write() as s:
        model = add(s, first, b, ds, _rows(ds, rng, rows))
    first.wait()
    return ds, model, rng


def test_a_restart_starts_from_the_saved_copy(sqlite: Backend, tmp_path: Path) -> None:
    ds = sqlite.new_dataset(DIM)
    first = _index(sqlite, tmp_path)
    rng = np.random.default_rng(1)
    model: dict[int, Row] = {}
    for round_ in range(3):  # a copy per version; the older ones are deleted
        with sqlite.db.write() as s:
            model |= add(s, first, sqlite, ds, _rows(ds, rng, 40, f"r{round_}"))
        first.wait()
        assert len(_copies(tmp_path, ds)) == 1
    restarted = _index(sqlite, tmp_path)
    with _statements(sqlite) as seen:
        answers = _answers(sqlite, restarted, ds)
    _same_as_fresh(sqlite, restarted, ds, model, answers)
    # Current copy: no record text or vector was read to answer.
    assert not [q for q in seen if "record_vectors.vector" in q or "records.text" in q], seen


def test_an_older_copy_is_only_a_base_for_a_delta(sqlite: Backend, tmp_path: Path) -> None:
    ds, model, rng = _saved(sqlite, tmp_path, 2, 60)
    saved = _copies(tmp_path, ds)
    # Later writes that the copy does not have (a process that died before saving).
    other = SqliteIndex()
    with sqlite.db.write() as s:
        model |= add(s, other, sqlite, ds, _rows(ds, rng, 10, "late"))
        gone = sorted(model)[:5]
        records.delete_where(s, other, org_id=sqlite.org_id, pks=gone)
    for pk in gone:
        del model[pk]
    restarted = _index(sqlite, tmp_path)
    with _statements(sqlite) as seen:
        answers = _answers(sqlite, restarted, ds)
    _same_as_fresh(sqlite, restarted, ds, model, answers)
    texts = [q for q in seen if "records.text" in q]
    assert texts and all(" IN (" in q for q in texts), "rebuilt instead of a delta"
    restarted.wait()  # what the search brought up to date is saved, in the background
    [now] = _copies(tmp_path, ds)
    assert now != saved[0] and now.name.startswith(f"{_version(sqlite, ds)}-")


@pytest.mark.parametrize("damage", ["flip", "truncate", "meta", "missing", "extra"])
@pytest.mark.parametrize("name", ["m_vectors.npy", "r_docs.npy", "vocab.txt"])
def test_a_damaged_copy_is_never_served(sqlite: Backend, tmp_path: Path, damage: str,
                                        name: str) -> None:
    ds, model, _ = _saved(sqlite, tmp_path, 3, 50)
    [copy] = _copies(tmp_path, ds)
    target = copy / name
    if damage == "missing":
        target.unlink()
    elif damage == "extra":
        (copy / "stray.npy").write_bytes(b"x")
    else:
        contract._damage(copy / "meta.json" if damage == "meta" else target, damage)
    _refused_then_rebuilt(sqlite, tmp_path, ds, model, copy)


def test_a_copy_with_a_repeated_term_is_never_served(sqlite: Backend, tmp_path: Path) -> None:
    # A writer's error that the checksums cannot see: the files agree with meta.json, but
    # a term is in vocab.txt twice (its second id would never be looked up).
    ds, model, _ = _saved(sqlite, tmp_path, 3, 50)
    [copy] = _copies(tmp_path, ds)
    terms = (copy / "vocab.txt").read_bytes().split(b"\n")
    (copy / "vocab.txt").write_bytes(b"\n".join([*terms[:-1], terms[0]]))
    meta = json.loads((copy / "meta.json").read_text())
    meta["files"]["vocab.txt"] = [(copy / "vocab.txt").stat().st_size,
                                  persist.checksum(copy / "vocab.txt")]
    (copy / "meta.json").write_text(json.dumps(meta))
    _refused_then_rebuilt(sqlite, tmp_path, ds, model, copy)


def _refused_then_rebuilt(sqlite: Backend, tmp_path: Path, ds: str, model: dict[int, Row],
                          copy: Path) -> None:
    # The store refuses the copy and deletes it (checked on a duplicate of the damage)...
    twin = tmp_path.with_name(tmp_path.name + "-twin")
    shutil.copytree(copy, twin / ds / copy.name)
    assert persist.Store(twin).load(ds) is None
    assert not (twin / ds / copy.name).exists()
    # ... and an index starting from it answers as a fresh build.
    restarted = _index(sqlite, tmp_path)
    _same_as_fresh(sqlite, restarted, ds, model)
    restarted.wait()  # the damaged copy was deleted, and the rebuilt structures saved
    saved = persist.Store(tmp_path).load(ds)
    assert saved is not None and saved.version == _version(sqlite, ds)
    [again] = _copies(tmp_path, ds)
    assert again.name == copy.name
    _same_as_fresh(sqlite, _index(sqlite, tmp_path), ds, model)


def test_copies_go_with_their_dataset(sqlite: Backend, tmp_path: Path) -> None:
    ds = sqlite.new_dataset(DIM)
    index = _index(sqlite, tmp_path)
    with sqlite.db.write() as s:
        add(s, index, sqlite, ds, _rows(ds, np.random.default_rng(4), 20))
    index.wait()
    assert _copies(tmp_path, ds)
    with sqlite.db.write() as s:  # as datasets.service.delete does
        records.delete_where(s, index, org_id=sqlite.org_id, dataset_id=ds)
        s.execute(delete(Dataset).where(Dataset.id == ds))
    index.wait()
    assert not (tmp_path / ds).exists()
    # A copy left by a process that stopped before it could delete it: gone at start-up.
    (tmp_path / "ds_gone" / "1-n").mkdir(parents=True)
    (tmp_path / "ds_gone" / "1-n" / "meta.json").write_text("{}")
    _index(sqlite, tmp_path).warm_recent()
    assert not (tmp_path / "ds_gone").exists()


def test_the_graph_is_saved_and_viewed_after_a_restart(sqlite: Backend, tmp_path: Path) -> None:
    ds = sqlite.new_dataset(DIM)
    index = _index(sqlite, tmp_path, ann_min_records=1_000)
    rng = np.random.default_rng(5)
    with sqlite.db.write() as s:
        model = add(s, index, sqlite, ds, [Row(ds, f"g {i}", v) for i, v in
                                           enumerate(clustered(rng, 2_000, DIM))])
    index.wait()
    [copy] = _copies(tmp_path, ds)
    assert copy.name.endswith("-g") and (copy / "graph.usearch").exists()
    restarted = _index(sqlite, tmp_path, ann_min_records=1_000)
    queries = clustered(rng, 30, DIM)
    with sqlite.db.read() as s:
        recalls = []
        for q in queries:
            got = {pk for pk, _ in restarted.semantic(s, [ds], q, 10)}
            recalls.append(len(got & {pk for pk, _ in brute_force(model, [ds], q, 10)}) / 10)
    graph = restarted._cache[("vectors", ds)][1].graph
    assert graph is not None and graph.searches >= len(queries)
    assert graph.saved == str(copy / "graph.usearch")
    assert graph.width == ann.EXPANSION_SEARCH
    assert float(np.mean(recalls)) >= 0.99
    restarted.wait()
    assert not restarted.graphs._pending, "the saved graph was built again"


def test_a_graph_saved_without_its_width_is_walked_as_wide_as_it_was(
        sqlite: Backend, tmp_path: Path) -> None:
    # Graphs saved before the width was saved with them were built with expansion_add 128,
    # whose recall needs a 320-wide walk: a restart must not walk them narrower.
    ds = sqlite.new_dataset(DIM)
    index = _index(sqlite, tmp_path, ann_min_records=1_000)
    with sqlite.db.write() as s:
        add(s, index, sqlite, ds, _rows(ds, np.random.default_rng(6), 1_500))
    index.wait()
    [copy] = _copies(tmp_path, ds)
    meta = json.loads((copy / "meta.json").read_text())
    assert meta["graph_width"] == ann.EXPANSION_SEARCH < ann.LEGACY_WIDTH
    del meta["graph_width"]
    (copy / "meta.json").write_text(json.dumps(meta))
    restarted = _index(sqlite, tmp_path, ann_min_records=1_000)
    with sqlite.db.read() as s:
        restarted.semantic(s, [ds], VECTORS[0], 10)
    graph = restarted._cache[("vectors", ds)][1].graph
    assert graph is not None and graph.searches == 1
    assert graph.width == graph._index.expansion_search == ann.LEGACY_WIDTH


def test_fingerprints_are_the_same_in_every_process() -> None:
    """Saved structures are diffed against a later process's catalog: a fingerprint salted
    per process (str hashes are) would make every saved copy look entirely changed."""
    code = ("from dataloft.storage.index.delta import fingerprint; "
            "print(fingerprint('rec_01jabcdefghjkmnpqrstvwxyz0', 1765000000123))")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={**os.environ, "PYTHONHASHSEED": seed}
                           ).stdout.strip() for seed in ("1", "2")}
    assert outs == {str(delta.fingerprint("rec_01jabcdefghjkmnpqrstvwxyz0", 1765000000123))}
    assert delta.fingerprint("rec_a", 5) != delta.fingerprint("rec_b", 5)
    assert delta.fingerprint("rec_a", 5) != delta.fingerprint("rec_a", 6)


def test_a_search_never_waits_for_a_build_past_the_bound(sqlite: Backend) -> None:
    """A dataset over the inline size with nothing to start from is built on the warmer;
    a search waits up to the bound, then answers Busy (503, Retry-After), never a partial
    answer. A small delta is still made inline, however busy the warmer is."""
    ds = sqlite.new_dataset(DIM)
    index = SqliteIndex(reader=sqlite.db.read, wait_s=0.2, inline_records=50)
    rng = np.random.default_rng(6)
    release = threading.Event()

    def blocker(_stale: object) -> None:
        release.wait(30)

    index.warmer.submit("blocker", blocker)  # the warmer is busy elsewhere
    with sqlite.db.write() as s:
        model = add(s, SqliteIndex(), sqlite, ds, _rows(ds, rng, 200))
    with sqlite.db.read() as s, pytest.raises(Busy) as raised:
        index.lexical(s, [ds], "apple", 10)
    assert raised.value.status == 503 and raised.value.headers.get("Retry-After")
    release.set()
    index.wait()
    _same_as_fresh(sqlite, index, ds, model)
    release.clear()
    index.warmer.submit("blocker", blocker)
    with sqlite.db.write() as s:  # 10 records: a delta under the inline size
        model |= add(s, SqliteIndex(), sqlite, ds, _rows(ds, rng, 10, "d"))
    _same_as_fresh(sqlite, index, ds, model)
    release.set()
    index.wait()
