"""A big sync's term index and vector matrix are made from its own records spool in a
child process during its commit (storage/index/spooled.py), and are then exactly what a
build from the committed records makes; whenever that shortcut does not apply or fails,
the warmer builds from the records as before. Through the app: sync worker, settle, HTTP."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from dataloft.app import create_app
from dataloft.config import Settings
from dataloft.storage.index import build, spooled
from dataloft.storage.index.sqlite import SqliteIndex
from dataloft.storage.index.structures import Matrix, Terms
from tests.conftest import KEY
from tests.support.api import app_context, create_dataset, create_file, sync, wait_for_sync


@contextmanager
def _app(settings: Settings) -> Iterator[tuple[TestClient, SqliteIndex]]:
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {KEY}"}) as client:
        index = client.app.state.ctx.index  # type: ignore[attr-defined]
        if not isinstance(index, SqliteIndex):
            pytest.skip("the embedded index keeps no structures of its own")
        index.early.min_records = 1  # every sync: these files are small
        yield client, index


def _csv(rows: int, seed: int, long_every: int = 7) -> bytes:
    """Rows of short fields, some with a long note, so that they split into parts."""
    rng = np.random.default_rng(seed)
    words = ["river", "stone", "ember", "harbor", "cloud", "apple", "field", "tower", "42",
             "Zürich", "x9", "the", "and"]
    lines = ["id,name,city,note"]
    for i in range(rows):
        note = " ".join(rng.choice(words, 90 if i % long_every == 0 else 4))
        lines.append(f"{i},{rng.choice(words)} {i},{rng.choice(words)},{note}")
    return ("\n".join(lines) + "\n").encode()


def _same_as_a_build(client: TestClient, index: SqliteIndex, ds: str) -> None:
    """The cached structures are current and equal, array for array, to a full build."""
    index.wait()
    ctx = app_context(client)
    with ctx.db.read() as session:
        version, dimension = build.version(session, ds) or (0, 0)
        terms, matrix = (index._cache[(kind, ds)] for kind in ("terms", "vectors"))
        assert terms[0] == version and matrix[0] == version
        fresh = build.build_terms(session, ds)
        catalog = build.delta.catalog(session, ds)
        fresh_matrix = build.build_matrix(session, ds, dimension, catalog)
    _same_terms(terms[1], fresh)
    _same_matrix(matrix[1], fresh_matrix)


def _same_terms(got: Terms, want: Terms) -> None:
    for a, b in ((got.fps, want.fps), (got.index.pks, want.index.pks),
                 (got.index.row_of, want.index.row_of)):
        assert np.array_equal(a, b)
    g, w = got.index.rows, want.index.rows
    assert g.vocab.blob == w.vocab.blob
    for name in ("pks", "starts", "docs", "tf", "length", "idf", "norm"):
        assert np.array_equal(getattr(g, name), getattr(w, name)), name


def _same_matrix(got: Matrix, want: Matrix) -> None:
    for name in ("pks", "vectors", "fps"):
        assert np.array_equal(getattr(got, name), getattr(want, name)), name
    assert np.array_equal(got.seen.pks, want.seen.pks)
    assert np.array_equal(got.seen.fps, want.seen.fps)


def _hits(client: TestClient, ds: str, query: str, mode: str) -> list[tuple[str, float]]:
    r = client.post(f"/api/v1/dataset/{ds}/search", json={"search": query, "mode": mode,
                                                            "take": 10})
    assert r.status_code == 200, r.text
    return [(h["id"], h["score"]) for h in r.json()["records"]]


def _synced(client: TestClient, ds: str, rows: int, seed: int, name: str = "rows.csv") -> str:
    """A CSV of `rows` rows uploaded and synced into `ds` (the sync completed); its file id."""
    file_id = create_file(client, _csv(rows, seed), name=name, content_type="text/csv")
    assert sync(client, ds, file_id)["type"] == "sync.completed"
    return file_id


def test_a_sync_adopts_what_its_child_made_and_it_equals_a_build(settings: Settings) -> None:
    with _app(settings) as (client, index):
        ds = create_dataset(client, recordMaxTokens=48)
        file_id = _synced(client, ds, 300, 1)
        assert index.early.adopted == 1
        _same_as_a_build(client, index, ds)
        assert _hits(client, ds, "harbor ember", "lexical")
        assert _hits(client, ds, "harbor ember", "semantic")
        # A new version of the same file replaces every record: adopted again.
        started = int(time.time() * 1000) - 1
        r = client.post(f"/api/v1/file/{file_id}/upload", content=_csv(250, 2),
                        headers={"Content-Type": "text/csv"})
        assert r.status_code == 200, r.text
        r = client.post(f"/api/v1/dataset/{ds}/file/{file_id}/sync", json={})
        assert wait_for_sync(client, ds, file_id, after=started)["type"] == "sync.completed"
        index.wait()
        assert index.early.adopted == 2
        _same_as_a_build(client, index, ds)


def test_a_dataset_with_other_records_builds_from_them(settings: Settings) -> None:
    with _app(settings) as (client, index):
        ds = create_dataset(client, recordMaxTokens=48)
        _synced(client, ds, 120, 3, "a.csv")
        _synced(client, ds, 150, 4, "b.csv")
        assert index.early.adopted == 1  # the first only: the second joined other records
        _same_as_a_build(client, index, ds)


def test_a_failed_child_costs_the_sync_nothing(settings: Settings) -> None:
    with _app(settings) as (client, index):
        index.early.memory_bytes = 1 << 20  # killed at once for memory
        ds = create_dataset(client, recordMaxTokens=48)
        _synced(client, ds, 200, 5)
        assert index.early.adopted == 0
        _same_as_a_build(client, index, ds)
        assert _hits(client, ds, "stone tower", "lexical")


def _early_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "dataloft-early"]


def test_a_refused_commit_leaves_no_child_waiting(settings: Settings) -> None:
    # The org may hold fewer records than the file makes: the commit is refused whole.
    with _app(settings.model_copy(update={"org_max_records": 50})) as (client, index):
        ds = create_dataset(client, recordMaxTokens=48)
        file_id = create_file(client, _csv(200, 6), name="rows.csv", content_type="text/csv")
        done = sync(client, ds, file_id)
        assert done["type"] == "sync.failed" and done["data"]["reason"] == "storage_limit", done
        assert index.early.adopted == 0
        # Its child ends with its build, not at its timeout (600 s) waiting for a go-ahead.
        deadline = time.monotonic() + 60
        while _early_threads():
            assert time.monotonic() < deadline, "the child still waits"
            time.sleep(0.05)
        assert not index.early._jobs


def test_the_go_ahead_to_a_child_that_already_ended_is_no_error(tmp_path: Path) -> None:
    # The child died (killed for memory): the read end of its go-ahead pipe is closed. The
    # warmer's adoption must go on to build from the records, not fail on the write.
    read, write = os.pipe()
    os.close(read)
    job = spooled._Job(Future(), tmp_path, 1, 4, write)
    job.release(write=True)
    assert job.go == -1
    with pytest.raises(OSError):
        os.fstat(write)  # closed
