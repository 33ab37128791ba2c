"""Syncs of several files into one dataset prepare ahead and commit in queue order
(issue 16, Build item 5; sync/ahead.py).

The app runs no workers of its own: each test takes the queue's steps with real worker
pools over the same database, one job per `run_once`, so which sync prepared ahead and
which committed when is known without timing. A dataset synced one after another (a
handler with `prepare_parallel=1`, the old path) is the reference the other one must
equal: records, versions, events, answers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from dataloft.app import create_app
from dataloft.context import Context
from dataloft.files.tasks import BlobDeleteHandler
from dataloft.jobs.queue import BLOB_DELETE
from dataloft.jobs.worker import WorkerConfig, WorkerPool
from dataloft.models import File, Job, Record, SqlTable
from dataloft.sync.service import SYNC_JOB
from dataloft.sync.tasks import SyncHandler
from tests.conftest import KEY, BackendSettings
from tests.support.api import app_context, create_dataset, create_file

WORDS = ["tide", "harbour", "lantern", "cedar", "quartz", "meadow", "falcon", "ember",
         "willow", "granite", "orchid", "comet", "river", "signal", "velvet", "anchor"]


@pytest.fixture
def client(tmp_path: Path, backend_settings: BackendSettings) -> Iterator[TestClient]:
    settings = backend_settings(tmp_path, workers=0, sync_cooldown_seconds=0)
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {KEY}"}) as c:
        yield c


def _pool(ctx: Context, parallel: int) -> tuple[WorkerPool, SyncHandler]:
    handler = SyncHandler(ctx.db, ctx.blobs, ctx.index, ctx.embedder,
                          prepare_parallel=parallel)
    handlers = {SYNC_JOB: handler, BLOB_DELETE: BlobDeleteHandler(ctx.db, ctx.blobs)}
    return WorkerPool(ctx.db, handlers, WorkerConfig(threads=1)), handler


def _document(n: int) -> bytes:
    lines = [" ".join(WORDS[(n * 7 + i * j) % len(WORDS)] for j in range(12)) + "."
             for i in range(40)]
    return "\n\n".join(lines).encode()


def _csv(n: int) -> bytes:
    rows = [f"{i},{WORDS[(i + n) % len(WORDS)]},{i * n}" for i in range(30)]
    return ("id,name,amount\n" + "\n".join(rows) + "\n").encode()


def _files(client: TestClient, count: int) -> list[str]:
    """Documents and CSVs (which also write table snapshots), alternately."""
    return [create_file(client, _document(n), name=f"doc{n}.txt") if n % 2 == 0
            else create_file(client, _csv(n), name=f"rows{n}.csv", content_type="text/csv")
            for n in range(count)]


def _queue(client: TestClient, ds: str, file_ids: list[str]) -> None:
    for file_id in file_ids:
        r = client.post(f"/api/v1/dataset/{ds}/file/{file_id}/attach", json={"type": "source"})
        assert r.status_code == 200, r.text
    for file_id in file_ids:
        r = client.post(f"/api/v1/dataset/{ds}/file/{file_id}/sync", json={})
        assert r.status_code == 200, r.text


def _both(client: TestClient, file_ids: list[str], parallel: int
          ) -> tuple[str, str, SyncHandler]:
    """(serial dataset, dataset prepared ahead, its handler): `file_ids` synced into each,
    one after another, then with `parallel` preparations at once."""
    ctx = app_context(client)
    serial_ds, ahead_ds = create_dataset(client), create_dataset(client)
    serial, _ = _pool(ctx, 1)
    _queue(client, serial_ds, file_ids)
    _drain(serial)
    ahead, handler = _pool(ctx, parallel)
    _queue(client, ahead_ds, file_ids)
    _drain(ahead)
    return serial_ds, ahead_ds, handler


def _drain(pool: WorkerPool) -> int:
    runs = 0
    while pool.run_once():
        runs += 1
    return runs


def _records(ctx: Context, ds: str) -> list[tuple[Any, ...]]:
    with ctx.db.read() as session:
        rows = session.execute(select(Record.file_id, Record.position, Record.text,
                                      Record.meta, Record.content_hash, Record.source)
                               .where(Record.dataset_id == ds)
                               .order_by(Record.file_id, Record.position))
        return [tuple(row) for row in rows]


def _events(client: TestClient, ds: str) -> list[tuple[Any, ...]]:
    """The dataset's sync events, oldest first, without ids and times."""
    items = client.get(f"/api/v1/dataset/{ds}/event/list", params={"take": 100}).json()["items"]
    items.sort(key=lambda e: e["id"])
    keep = ("recordCount", "replacedRecords", "fileVersion", "reusedEmbeddings", "reason",
            "attempt")
    return [(e["type"], e["fileId"], tuple((k, e.get(k)) for k in keep if k in e))
            for e in items]


def _answers(client: TestClient, ds: str, query: str, mode: str) -> list[tuple[Any, ...]]:
    r = client.post(f"/api/v1/dataset/{ds}/search",
                    json={"search": query, "mode": mode, "take": 20})
    assert r.status_code == 200, r.text
    return [(i["text"], round(float(i["score"]), 6)) for i in r.json()["records"]]


def _attachments(client: TestClient, ds: str) -> dict[str, tuple[Any, ...]]:
    items = client.get(f"/api/v1/dataset/{ds}/file/list").json()["items"]
    return {i["id"]: (i["attachment"]["status"], i["attachment"]["syncedVersion"],
                      i["attachment"]["recordCount"], i["attachment"]["lastError"])
            for i in items}


def _unnamed_blobs(ctx: Context) -> set[str]:
    """Blobs no file or table names (the pools ran every queued deletion)."""
    with ctx.db.read() as session:
        named = set(session.scalars(select(File.blob_key)))
        named |= set(session.scalars(select(SqlTable.blob_key)))
    return set(ctx.blobs.keys()) - named


def test_files_prepared_ahead_commit_what_one_after_another_commits(client: TestClient
                                                                    ) -> None:
    ctx = app_context(client)
    file_ids = _files(client, 5)
    serial_ds, ahead_ds, handler = _both(client, file_ids, 3)
    # The first sync prepared its own file; each later one found its product made ahead.
    assert handler.ahead.handed == 4
    assert not handler.ahead.pending()

    records = _records(ctx, serial_ds)
    assert records and _records(ctx, ahead_ds) == records
    assert _events(client, ahead_ds) == _events(client, serial_ds)
    assert _attachments(client, ahead_ds) == _attachments(client, serial_ds)
    for mode in ("semantic", "lexical", "hybrid"):
        assert _answers(client, ahead_ds, "lantern quartz", mode) == \
            _answers(client, serial_ds, "lantern quartz", mode)
    with ctx.db.read() as session:
        assert len(session.scalars(select(SqlTable.id).where(
            SqlTable.dataset_id == ahead_ds)).all()) == 2
    assert not _unnamed_blobs(ctx)


def test_commits_follow_the_queue_order(client: TestClient) -> None:
    ctx = app_context(client)
    file_ids = _files(client, 4)
    ds = create_dataset(client)
    pool, handler = _pool(ctx, 4)
    _queue(client, ds, list(reversed(file_ids)))
    _drain(pool)
    events = _events(client, ds)
    queued = [f for kind, f, _ in events if kind == "sync.queued"]
    completed = [f for kind, f, _ in events if kind == "sync.completed"]
    assert queued == list(reversed(file_ids)) and completed == queued
    assert handler.ahead.handed == 3


def test_a_failing_file_does_not_stop_the_others(client: TestClient) -> None:
    ctx = app_context(client)
    good = _files(client, 3)
    broken = create_file(client, b"%PDF-1.7 this is not a pdf at all", name="broken.pdf",
                         content_type="application/pdf")
    serial_ds, ahead_ds, handler = _both(client, [good[0], broken, good[1], good[2]], 4)
    status = _attachments(client, ahead_ds)
    assert status[broken][0] == "failed"
    assert all(status[f][0] == "completed" for f in good)
    assert status == _attachments(client, serial_ds)
    assert _events(client, ahead_ds) == _events(client, serial_ds)
    assert handler.ahead.handed == 2  # the broken file's sync met its failure itself
    assert not _unnamed_blobs(ctx)


def test_a_file_deleted_before_its_turn_leaves_nothing(client: TestClient) -> None:
    ctx = app_context(client)
    first, doomed, last = _files(client, 3)
    ds = create_dataset(client)
    pool, handler = _pool(ctx, 3)
    _queue(client, ds, [first, doomed, last])
    assert pool.run_once()  # the first sync; the other two prepared ahead meanwhile
    handler.ahead.settle()
    r = client.post(f"/api/v1/file/{doomed}/delete", json={})
    assert r.status_code == 200, r.text
    _drain(pool)
    with ctx.db.read() as session:
        assert not session.scalars(select(Record.id).where(Record.file_id == doomed)).all()
        assert not session.scalars(select(SqlTable.id).where(
            SqlTable.file_id == doomed)).all()
    assert set(_attachments(client, ds)) == {first, last}
    assert _attachments(client, ds)[last][0] == "completed"
    assert not handler.ahead.pending()
    assert not _unnamed_blobs(ctx)  # the doomed file's snapshots were made, then dropped


def _job_of(ctx: Context, file_id: str) -> str:
    with ctx.db.read() as session:
        jobs = session.execute(select(Job.id, Job.payload).where(Job.kind == SYNC_JOB)).all()
    return next(job_id for job_id, payload in jobs if payload.get("fileId") == file_id)


def test_a_file_deleted_while_it_prepares_leaves_nothing(client: TestClient) -> None:
    ctx = app_context(client)
    big = ("id,name,amount\n" + "\n".join(
        f"{i},{WORDS[i % len(WORDS)]} {WORDS[(i * 5) % len(WORDS)]},{i}" for i in range(6000))
        + "\n").encode()
    first = create_file(client, _document(0) * 20, name="first.txt")
    doomed = create_file(client, big, name="doomed.csv", content_type="text/csv")
    ds = create_dataset(client)
    pool, handler = _pool(ctx, 2)
    _queue(client, ds, [first, doomed])
    job = _job_of(ctx, doomed)
    running = threading.Thread(target=pool.run_once)
    running.start()
    try:
        # Delete it once its preparation has started and not ended (the first sync runs).
        deadline = time.monotonic() + 60
        while job not in handler.ahead.pending():
            assert running.is_alive() and time.monotonic() < deadline, "never prepared ahead"
            time.sleep(0.005)
        r = client.post(f"/api/v1/file/{doomed}/delete", json={})
        assert r.status_code == 200, r.text
    finally:
        running.join(120)
    _drain(pool)
    handler.ahead.settle()
    assert handler.ahead.handed == 0 and not handler.ahead.pending()
    with ctx.db.read() as session:
        assert not session.scalars(select(Record.id).where(Record.file_id == doomed)).all()
        assert not session.scalars(select(SqlTable.id).where(
            SqlTable.file_id == doomed)).all()
    assert _attachments(client, ds)[first][0] == "completed"
    assert set(_attachments(client, ds)) == {first}
    assert not _unnamed_blobs(ctx)  # whatever the preparation had written was freed


def test_a_file_changed_before_its_turn_syncs_its_new_version(client: TestClient) -> None:
    ctx = app_context(client)
    first, changed = _files(client, 2)
    ds = create_dataset(client)
    pool, handler = _pool(ctx, 2)
    _queue(client, ds, [first, changed])
    assert pool.run_once()
    handler.ahead.settle()
    r = client.post(f"/api/v1/file/{changed}/upload", content=b"id,name\n1,zeppelin\n",
                    headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    _drain(pool)
    assert handler.ahead.handed == 0  # the product of version 1 was dropped
    with ctx.db.read() as session:
        texts = session.scalars(select(Record.text).where(Record.file_id == changed)).all()
    assert texts == ["id: 1\nname: zeppelin"]
    assert not _unnamed_blobs(ctx)


# --- any script of syncs, detaches and setting changes: the serial outcome -----------------

Step = tuple[str, int]
SYNC = st.tuples(st.just("sync"), st.integers(0, 3))
STEPS = st.one_of(
    SYNC, SYNC,
    st.tuples(st.just("run"), st.just(0)),
    st.tuples(st.just("detach"), st.integers(0, 3)),
    st.tuples(st.just("tokens"), st.sampled_from([40, 120])),
)


def _replay(client: TestClient, pool: WorkerPool, ds: str, files: list[str],
            steps: list[Step]) -> None:
    attached: set[str] = set()
    for kind, arg in steps:
        if kind == "run":
            pool.run_once()
        elif kind == "sync":
            file_id = files[arg]
            if file_id not in attached:
                r = client.post(f"/api/v1/dataset/{ds}/file/{file_id}/attach",
                                json={"type": "source"})
                assert r.status_code == 200, r.text
                attached.add(file_id)
            r = client.post(f"/api/v1/dataset/{ds}/file/{file_id}/sync", json={})
            assert r.status_code == 200, r.text
        elif kind == "detach" and files[arg] in attached:
            r = client.post(f"/api/v1/dataset/{ds}/file/{files[arg]}/detach",
                            json={"deleteRecords": True})
            assert r.status_code == 200, r.text
            attached.discard(files[arg])
        elif kind == "tokens":
            r = client.post(f"/api/v1/dataset/{ds}/update", json={"recordMaxTokens": arg})
            assert r.status_code == 200, r.text
    _drain(pool)


@pytest.fixture
def script_files(client: TestClient) -> list[str]:
    broken = create_file(client, b"%PDF-1.7 not a pdf", name="broken.pdf",
                         content_type="application/pdf")
    return [*_files(client, 3), broken]


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(first=st.lists(SYNC, min_size=2, max_size=4),
       steps=st.lists(STEPS, min_size=2, max_size=12))
def test_any_script_ends_as_one_after_another(client: TestClient, script_files: list[str],
                                              first: list[Step], steps: list[Step]) -> None:
    """Syncs queued first (some files twice, a broken one), then any mix of turns taken,
    syncs asked, files detached and chunking changed: the serial records and events."""
    ctx = app_context(client)
    steps = first + steps
    serial_ds, ahead_ds = create_dataset(client), create_dataset(client)
    serial, _ = _pool(ctx, 1)
    ahead, handler = _pool(ctx, 3)
    _replay(client, serial, serial_ds, script_files, steps)
    _replay(client, ahead, ahead_ds, script_files, steps)
    handler.ahead.settle()
    assert _records(ctx, ahead_ds) == _records(ctx, serial_ds)
    assert _events(client, ahead_ds) == _events(client, serial_ds)
    assert _attachments(client, ahead_ds) == _attachments(client, serial_ds)
    assert not handler.ahead.pending()
    assert not _unnamed_blobs(ctx)
