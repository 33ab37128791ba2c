"""Acceptance of cluster mode: two API replicas and three `dataloft worker` processes on one
PostgreSQL and one S3 bucket; 200 files uploaded and synced through both APIs at once while
one worker is killed with SIGKILL in the middle of a sync, and another stalls past its
lease mid-sync and then wakes up. Every file ends synced exactly once, with exact record
counts, no orphan blobs, and no record or vector without its file."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from dataloft.app import create_app
from dataloft.jobs import queue
from dataloft.sync.tasks import SyncHandler
from tests.conftest import KEY, make_settings
from tests.support.api import create_dataset, create_file
from tests.support.gated_proxy import GatedProxy
from tests.support.live import LiveServer
from tests.support.pg import empty_database
from tests.support.s3 import MotoS3, moto_s3

pytestmark = pytest.mark.slow

FILES = 200
DATASETS = 10  # a dataset's syncs run one at a time: 10 datasets keep all workers busy
DOOMED = 20  # extra files deleted right after their sync is requested, racing the workers
REUPLOADED = 20  # files given a second version before their sync: old blobs must go
LEASE_S = 3
WORDS = ["harbor", "lantern", "meadow", "signal", "orchard", "copper", "violet", "summit",
         "canyon", "whisper", "engine", "garden", "silver", "market", "thunder", "pilot"]


def text_of(n: int, version: int = 1) -> bytes:
    """A small document that is exactly one record: a few sentences, unique per file."""
    rnd = random.Random(n * 7 + version)
    words = " ".join(rnd.choice(WORDS) for _ in range(40))
    return f"Document {n} version {version}. {words}.".encode()


def fresh_database(pg_url: str) -> str:
    return empty_database(pg_url, "cluster")


@pytest.fixture
def processes() -> Iterator[list[LiveServer]]:
    started: list[LiveServer] = []
    try:
        yield started
    finally:
        for p in started:
            p.kill()


@pytest.fixture
def s3() -> Iterator[MotoS3]:
    with moto_s3() as server:
        yield server


@pytest.fixture
def gates(s3: MotoS3) -> Iterator[list[GatedProxy]]:
    with ExitStack() as stack:
        yield [stack.enter_context(GatedProxy(s3.endpoint)) for _ in range(3)]


def launch(processes: list[LiveServer], tmp: Path, env: dict[str, str], *, apis: int,
           workers: list[dict[str, str]]) -> tuple[list[LiveServer], list[LiveServer]]:
    """Start every process at once: they race for migrations and the first-start rows.
    `workers` holds each worker's own settings over `env`."""
    made = [LiveServer(data_dir=tmp / f"p{i}", command="serve",
                       env_extra={**env, "DATALOFT_WORKERS": "0"}) for i in range(apis)]
    made += [LiveServer(data_dir=tmp / f"p{apis + i}", command="worker",
                        env_extra={**env, **own}) for i, own in enumerate(workers)]
    processes.extend(made)
    for p in made:
        p.data_dir.mkdir(parents=True)
    with ThreadPoolExecutor(len(made)) as pool:
        list(pool.map(lambda p: p.start(timeout=120), made))
    return made[:apis], made[apis:]


def rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params))


def test_two_apis_three_workers_one_killed_every_file_synced_exactly_once(
        tmp_path: Path, pg_url: str, s3: MotoS3, processes: list[LiveServer],
        gates: list[GatedProxy]) -> None:
    url = fresh_database(pg_url)
    db = create_engine(url, poolclass=NullPool)
    env = {**s3.env, "DATALOFT_DATABASE_URL": url, "DATALOFT_BLOB_URL": s3.url,
           "DATALOFT_JOB_LEASE_SECONDS": str(LEASE_S), "DATALOFT_JOB_POLL_SECONDS": "0.1",
           "DATALOFT_SYNC_COOLDOWN_SECONDS": "0", "DATALOFT_WORKERS": "2",
           # Replicas with data directories of their own share the signing keys' master key.
           "DATALOFT_SECRET_KEY": "cluster-test-master-key"}
    # Each worker reaches S3 through a gate of its own, which the chaos step closes to stop
    # that worker's next sync at its blob read (freeze_mid_sync).
    apis, workers = launch(processes, tmp_path, env, apis=2, workers=[
        {"DATALOFT_BLOB_URL": f"s3://{s3.bucket}?endpoint={gate.url}&region={s3.region}"}
        for gate in gates])
    # Idle connections are dropped before uvicorn's 5 s keep-alive ends, so a request never
    # goes out on a connection the server is closing.
    clients = [api.client(limits=httpx.Limits(keepalive_expiry=2.0)) for api in apis]
    try:
        datasets = [clients[i % 2].post("/api/v1/dataset/create",
                                        json={"name": f"ds{i}"}).json()["id"]
                    for i in range(DATASETS)]
        kept: dict[str, tuple[str, int]] = {}  # file id -> (dataset id, version)
        doomed: list[str] = []
        lock = threading.Lock()

        def one(n: int) -> None:
            # Written through one replica, synced through the other: no API keeps state.
            up, down = clients[n % 2], clients[(n + 1) % 2]
            dataset = datasets[n % DATASETS]
            r = up.post("/api/v1/file/create", json={"name": f"f{n}.txt"})
            assert r.status_code == 200, r.text
            file_id = r.json()["id"]
            versions = 2 if n < REUPLOADED else 1
            for v in range(1, versions + 1):
                r = up.post(f"/api/v1/file/{file_id}/upload", content=text_of(n, v),
                            headers={"Content-Type": "text/plain"})
                assert r.status_code == 200, r.text
            r = down.post(f"/api/v1/dataset/{dataset}/file/{file_id}/attach",
                          json={"type": "source"})
            assert r.status_code == 200, r.text
            r = down.post(f"/api/v1/dataset/{dataset}/file/{file_id}/sync", json={})
            assert r.status_code == 200, r.text
            if n >= FILES:  # doomed: deleted while its sync is queued or running
                r = up.post(f"/api/v1/file/{file_id}/delete", json={})
                assert r.status_code == 200, r.text
            with lock:
                if n >= FILES:
                    doomed.append(file_id)
                else:
                    kept[file_id] = (dataset, versions)

        def completed() -> int:
            return int(rows(db, "SELECT count(*) FROM events WHERE type = 'sync.completed'")
                       [0][0])

        def in_transaction(pid: int) -> bool:
            # Our connections carry the process id in application_name (kit/db.py). A worker
            # with no connection open at all cannot be told apart from a misnamed one: it
            # counts as busy, so the caller tries again.
            (connections, busy), = rows(
                db, "SELECT count(*), count(*) FILTER (WHERE state <> 'idle') "
                    "FROM pg_stat_activity WHERE application_name LIKE :a",
                a=f"dataloft:{pid}:%")
            return bool(busy) or not connections

        def freeze_mid_sync(worker: LiveServer, gate: GatedProxy,
                            after_completed: int) -> list[str]:
            """SIGSTOP `worker` while it holds a started sync, once `after_completed` syncs
            are done; return those jobs. The worker's S3 calls pass through `gate`: held, the
            next sync it starts stops at its blob read, after sync.started was committed and
            outside any transaction, so the freeze does not depend on catching a fast sync
            by chance. It is frozen first and its jobs read after, so they are surely
            mid-run: not committed, and not inside their commit (rows it holds locked are
            skipped)."""
            assert worker.proc is not None
            pgid = worker.proc.pid
            deadline = time.monotonic() + 90
            while completed() < after_completed and time.monotonic() < deadline:
                time.sleep(0.05)
            while time.monotonic() < deadline:
                gate.hold = True
                if gate.next_held(timeout=5) is not None:
                    os.killpg(pgid, signal.SIGSTOP)
                    time.sleep(0.3)  # what it sent before it stopped reaches the server
                    # Frozen inside a transaction (a blob deletion's, a claim), it would hold
                    # row locks: the deletes and the other workers would queue behind them
                    # for as long as it stays frozen. Only a worker outside any transaction
                    # is a clean stall; try again otherwise.
                    running = [] if in_transaction(pgid) else rows(
                        db, "SELECT j.id FROM jobs j JOIN events e ON "
                            "e.data->>'jobId' = j.id AND e.type = 'sync.started' "
                            "AND (e.data->>'attempt')::int = j.attempts "
                            "WHERE j.state = 'running' AND j.lease_owner LIKE :o "
                            "FOR UPDATE OF j SKIP LOCKED", o=f"%:{pgid}:%")
                    if running:
                        gate.release_all()  # its reads are answered; it is not there to see
                        return [r[0] for r in running]
                    os.killpg(pgid, signal.SIGCONT)
                gate.release_all()
                time.sleep(0.2)
            gate.release_all()
            return []

        killed_job: list[str] = []
        frozen_job: list[str] = []

        def chaos() -> None:
            # One worker dies mid-sync: its job is retried by another after its lease.
            killed_job.extend(freeze_mid_sync(workers[0], gates[0], FILES // 5))
            workers[0].kill()
            # Another stalls mid-sync past its lease (a long GC pause, a frozen VM), so its
            # job runs again elsewhere; then it wakes up and must not commit a second time.
            frozen_job.extend(freeze_mid_sync(workers[1], gates[1], FILES // 3))
            # It stays frozen until another worker has taken its job over: under load, the
            # fair order may serve other datasets' queued syncs first for many seconds after
            # its lease ran out (it would then wake up still owning the job).
            deadline = time.monotonic() + 90
            while frozen_job and time.monotonic() < deadline:
                if rows(db, "SELECT attempts FROM jobs WHERE id = :j",
                        j=frozen_job[0])[0][0] >= 2:
                    break
                time.sleep(0.1)
            time.sleep(1)  # the new owner is well into it when the old one wakes up
            assert workers[1].proc is not None
            os.killpg(workers[1].proc.pid, signal.SIGCONT)

        killer = threading.Thread(target=chaos)
        killer.start()
        order = list(range(FILES + DOOMED))
        random.Random(5).shuffle(order)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, order))
        killer.join(120)
        assert killed_job, "no worker was killed while it ran a sync"
        assert frozen_job, "no worker was frozen while it ran a sync"

        # Everything settles: no job left to run, once the killed worker's lease ran out.
        deadline = time.monotonic() + 90
        # (The retention job is always queued for its next run: jobs/retention.py.)
        while rows(db, "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running') "
                       "AND kind <> 'retention.prune'")[0][0]:
            assert time.monotonic() < deadline, rows(
                db, "SELECT kind, state, attempts, error_code FROM jobs "
                    "WHERE state IN ('queued', 'running')")
            time.sleep(0.2)
    finally:
        for c in clients:
            c.close()

    # Five processes started together on an empty database: one of them made the first-start
    # rows, once.
    assert rows(db, "SELECT count(*) FROM orgs")[0][0] == 1
    assert rows(db, "SELECT count(*) FROM api_keys")[0][0] == 1
    assert workers[0].proc is not None and workers[0].proc.returncode == -9
    assert all(w.proc is not None and w.proc.poll() is None for w in workers[1:])
    jobs = rows(db, "SELECT kind, state, error_code, count(*) FROM jobs "
                    "GROUP BY kind, state, error_code")
    assert {(k, s) for k, s, _, _ in jobs} <= {("dataset.sync", "done"),
                                                ("dataset.sync", "failed"),
                                                ("blob.delete", "done"),
                                                ("retention.prune", "done"),
                                                ("retention.prune", "queued"),
                                                ("retention.prune", "running")}, jobs
    # The killed and the stalled worker's syncs ran again elsewhere and committed once.
    for job_id in (killed_job[0], frozen_job[0]):
        (state, attempts), = rows(db, "SELECT state, attempts FROM jobs WHERE id = :j",
                                  j=job_id)
        assert state == "done" and attempts >= 2
        kinds = [r[0] for r in rows(db, "SELECT type FROM events WHERE data->>'jobId' = :j",
                                    j=job_id)]
        assert kinds.count("sync.started") >= 2 and kinds.count("sync.completed") == 1, kinds
        retried = rows(db, "SELECT data->>'previousError' FROM events WHERE type = "
                           "'sync.retrying' AND data->>'jobId' = :j", j=job_id)
        assert ("lease_expired",) in retried

    # Every kept file synced exactly once, at its current version, into its dataset.
    done = rows(db, "SELECT file_id, dataset_id, (data->>'recordCount')::int, "
                    "(data->>'fileVersion')::int FROM events WHERE type = 'sync.completed' "
                    "AND NOT file_id = ANY(:doomed)", doomed=doomed)
    per_file = Counter(f for f, _, _, _ in done)
    assert set(per_file) == set(kept) and set(per_file.values()) == {1}, (
        [f for f, c in per_file.items() if c != 1], set(per_file) ^ set(kept))
    for file_id, dataset_id, count, version in done:
        assert (dataset_id, version) == kept[file_id]
        assert count == 1
    links = rows(db, "SELECT a.file_id, a.dataset_id, a.synced_version, f.version "
                     "FROM attachments a JOIN files f ON f.id = a.file_id")
    assert {(f, d, s) for f, d, s, _ in links} == {(f, d, v) for f, (d, v) in kept.items()}
    assert all(s == v for _, _, s, v in links)
    failed = rows(db, "SELECT file_id, data->>'reason' FROM events WHERE type = 'sync.failed'")
    assert {f for f, _ in failed} <= set(doomed), failed  # only syncs of deleted files
    assert max(Counter(r[0] for r in rows(
        db, "SELECT file_id FROM events WHERE type IN ('sync.completed', 'sync.failed') "
            "AND file_id = ANY(:doomed)", doomed=doomed)).values(), default=0) <= 1

    # Record counts are exact: one record per kept file, in its dataset, each indexed once.
    records = rows(db, "SELECT dataset_id, file_id, position, text FROM records")
    assert len(records) == FILES
    assert Counter(f for _, f, _, _ in records) == Counter(dict.fromkeys(kept, 1))
    assert all((d, p) == (kept[f][0], 0) for d, f, p, _ in records)
    by_dataset: dict[str, int] = defaultdict(int)
    for d, _, _, _ in records:
        by_dataset[d] += 1
    assert by_dataset == {d: FILES // DATASETS for d in datasets}
    # The second version's text, not the first's.
    assert all(t.startswith(f"Document {t.split()[1]} version {kept[f][1]}.")
               for _, f, _, t in records)

    # No record without its file, no vector without its record, every record searchable.
    assert rows(db, "SELECT count(*) FROM records r LEFT JOIN files f ON f.id = r.file_id "
                    "WHERE f.id IS NULL")[0][0] == 0
    assert rows(db, "SELECT count(*) FROM record_index i LEFT JOIN records r ON r.pk = i.pk "
                    "WHERE r.pk IS NULL")[0][0] == 0
    assert rows(db, "SELECT count(*) FROM record_index WHERE embedding IS NOT NULL")[0][0] \
        == FILES
    assert rows(db, "SELECT count(*) FROM files WHERE id = ANY(:ids)", ids=doomed)[0][0] == 0

    # No orphan blobs: the bucket holds exactly the current blobs of the live files.
    listed = s3.client().list_objects_v2(Bucket=s3.bucket, MaxKeys=1000)
    bucket = {o["Key"] for o in listed.get("Contents", [])}
    assert not listed.get("IsTruncated")
    blob_keys = {f"blobs/{r[0]}" for r in rows(db, "SELECT blob_key FROM files")}
    assert bucket == blob_keys and len(bucket) == FILES  # the store's default prefix: blobs/
    assert not s3.client().list_multipart_uploads(Bucket=s3.bucket).get("Uploads")

    # Syncs of one dataset never overlapped, across processes: each started after the
    # previous one completed (the killed attempt never completed, so it is left out).
    spans = rows(db, "SELECT s.dataset_id, s.created_at, c.created_at FROM events s JOIN "
                     "events c ON c.data->>'jobId' = s.data->>'jobId' AND c.type = "
                     "'sync.completed' WHERE s.type = 'sync.started' AND "
                     "(s.data->>'attempt')::int = (SELECT max((x.data->>'attempt')::int) "
                     "FROM events x WHERE x.type = 'sync.started' AND "
                     "x.data->>'jobId' = s.data->>'jobId')")
    assert len(spans) >= FILES
    for dataset_id in datasets:
        ordered = sorted((s, e) for d, s, e in spans if d == dataset_id)
        for (_, end), (start, _) in zip(ordered, ordered[1:], strict=False):
            assert start >= end, f"two syncs of {dataset_id} ran at once"

    # The survivors still answer, and a graceful stop of a worker is clean.
    with httpx.Client(base_url=apis[1].url, headers=apis[1].headers) as c:
        some = next(iter(kept))
        assert c.get(f"/api/v1/file/{some}/fetch").status_code == 200
    workers[1].stop()
    assert workers[1].proc is not None and workers[1].proc.returncode == 0
    assert "worker stopped" in workers[1].log()
    db.dispose()


def test_a_worker_needs_at_least_one_thread(tmp_path: Path) -> None:
    env = {**os.environ, "DATALOFT_DATA_DIR": str(tmp_path / "data"), "DATALOFT_WORKERS": "0"}
    done = subprocess.run([sys.executable, "-m", "dataloft.cli", "worker"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "DATALOFT_WORKERS is 0" in done.stdout


def test_a_file_deleted_while_its_sync_commits_leaves_no_records(
        tmp_path: Path, pg_url: str) -> None:
    """The sync's last transaction is held open, records written, while the file is
    deleted: whichever commits second must see the other (here the deletion must remove
    the records the sync has just committed)."""
    url = fresh_database(pg_url)
    settings = make_settings(tmp_path, database_url=url, workers=0)
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {KEY}"}) as c:
        ctx = c.app.state.ctx  # type: ignore[attr-defined]
        file_id = create_file(c, text_of(1))
        dataset_id = create_dataset(c)
        assert c.post(f"/api/v1/dataset/{dataset_id}/file/{file_id}/attach",
                      json={"type": "source"}).status_code == 200
        assert c.post(f"/api/v1/dataset/{dataset_id}/file/{file_id}/sync",
                      json={}).status_code == 200
        with ctx.db.write() as session:
            lease = queue.claim(session, "test", 60_000)
        assert lease is not None
        handler = SyncHandler(ctx.db, ctx.blobs, ctx.index, ctx.embedder)
        db = create_engine(url, poolclass=NullPool)

        def waiting() -> int:
            return int(rows(db, "SELECT count(*) FROM pg_stat_activity WHERE "
                               "wait_event_type = 'Lock' AND datname = current_database()")
                       [0][0])

        def wait_for(n: int) -> None:
            deadline = time.monotonic() + 60
            while waiting() < n:
                assert time.monotonic() < deadline, "nothing blocked"
                time.sleep(0.05)

        results: dict[str, Any] = {}
        with db.connect() as holder:
            # Holding the job's row makes the sync wait in `finish`, its records written.
            holder.execute(text("SELECT 1 FROM jobs WHERE id = :j FOR UPDATE"),
                           {"j": lease.job_id})
            sync = threading.Thread(target=lambda: handler.run(lease, lambda: True))
            sync.start()
            wait_for(1)
            deleter = threading.Thread(target=lambda: results.update(
                delete=c.post(f"/api/v1/file/{file_id}/delete", json={}).status_code))
            deleter.start()
            wait_for(2)
            holder.rollback()
        sync.join(60)
        deleter.join(60)
        assert results == {"delete": 200}
        assert rows(db, "SELECT count(*) FROM records WHERE file_id = :f", f=file_id) == [(0,)]
        assert rows(db, "SELECT count(*) FROM record_index") == [(0,)]
        assert rows(db, "SELECT state FROM jobs WHERE id = :j", j=lease.job_id) == [("done",)]
        db.dispose()
