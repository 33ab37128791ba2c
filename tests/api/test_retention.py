"""Issue #11, finding 15 (Build 8): done jobs and events older than DATALOFT_RETENTION_DAYS
are pruned by a periodic job on the job queue; the event log keeps its window intact, and a
failed sync that still stands (the newest job of its file) is kept for the file's status.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from dataloft.app import create_app
from dataloft.jobs.retention import RETENTION_JOB
from dataloft.kit.ids import new_id, now_ms
from dataloft.models import Event, Job, Webhook, WebhookDelivery
from tests.conftest import KEY, BackendSettings
from tests.support.api import create_dataset, create_file, sync

DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, backend_settings: BackendSettings
           ) -> Iterator[TestClient]:
    settings = backend_settings(tmp_path_factory.mktemp("retention"), retention_days=1,
                                retention_interval_seconds=3600)
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {KEY}"}) as c:
        yield c


def ctx_of(client: TestClient) -> Any:
    return client.app.state.ctx  # type: ignore[attr-defined]


def retention_jobs(client: TestClient) -> list[Job]:
    with ctx_of(client).db.read() as s:
        return list(s.scalars(select(Job).where(Job.kind == RETENTION_JOB).order_by(Job.id)))


def wait_done(client: TestClient, job_id: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with ctx_of(client).db.read() as s:
            if s.get(Job, job_id).state == "done":  # type: ignore[union-attr]
                return
        time.sleep(0.05)
    raise AssertionError("the retention job did not run")


def failed_sync(client: TestClient, dataset_id: str, file_id: str, at: int) -> str:
    job_id = new_id("job")
    with ctx_of(client).db.write() as s:
        s.add(Job(id=job_id, kind="dataset.sync", state="failed", org_id=None,
                  serial_key=f"dataset:{dataset_id}", error_code="corrupted_file",
                  payload={"datasetId": dataset_id, "fileId": file_id},
                  created_at=at, updated_at=at, run_after=at))
    return job_id


def test_old_jobs_and_events_are_pruned_by_the_periodic_job(client: TestClient) -> None:
    # Scheduled at start-up, one interval ahead.
    jobs = retention_jobs(client)
    assert len(jobs) == 1 and jobs[0].state == "queued"
    assert jobs[0].run_after > now_ms() + 3_000_000
    ds = create_dataset(client)
    old_file, fresh_file, broken = (create_file(client, b"alpha beta gamma " * 5, name=n)
                                    for n in ("old.txt", "fresh.txt", "broken.txt"))
    assert sync(client, ds, old_file)["type"] == "sync.completed"
    long_ago = now_ms() - 2 * DAY_MS
    with ctx_of(client).db.write() as s:
        old_jobs = set(s.scalars(select(Job.id).where(Job.state == "done",
                                                      Job.kind != RETENTION_JOB)))
        old_events = set(s.scalars(select(Event.id)))
        s.execute(update(Job).where(Job.id.in_(old_jobs))
                  .values(created_at=long_ago, updated_at=long_ago))
        s.execute(update(Event).values(created_at=long_ago))
    assert old_jobs and old_events
    # A failure that a later sync superseded goes; one that still stands stays.
    superseded = failed_sync(client, ds, old_file, long_ago - 1000)
    standing = failed_sync(client, ds, broken, long_ago)
    assert sync(client, ds, fresh_file)["type"] == "sync.completed"
    with ctx_of(client).db.read() as s:
        fresh_events = set(s.scalars(select(Event.id))) - old_events
    assert fresh_events

    # Webhook deliveries: delivered ones of the past go; failed and pending ones stay.
    with ctx_of(client).db.read() as s:
        org_id = s.scalar(select(Event.org_id).limit(1))
    hook = new_id("wh")
    deliveries = {}
    with ctx_of(client).db.write() as s:
        s.add(Webhook(id=hook, org_id=org_id, url="https://example.com/hook", secret="x"))
        s.flush()
        for status in ("delivered", "failed", "pending"):
            deliveries[status] = new_id("whd")
            s.add(WebhookDelivery(id=deliveries[status], webhook_id=hook, org_id=org_id,
                                  event_id="evt_x", event_type="sync.completed",
                                  status=status, created_at=long_ago, updated_at=long_ago))
        deliveries["recent"] = new_id("whd")
        s.add(WebhookDelivery(id=deliveries["recent"], webhook_id=hook, org_id=org_id,
                              event_id="evt_y", event_type="sync.completed",
                              status="delivered"))

    # Its turn comes now (moved, not waited for).
    due = retention_jobs(client)[-1].id
    with ctx_of(client).db.write() as s:
        s.execute(update(Job).where(Job.id == due).values(run_after=0))
    ctx_of(client).notify()
    wait_done(client, due)

    with ctx_of(client).db.read() as s:
        jobs_left = set(s.scalars(select(Job.id)))
        events_left = set(s.scalars(select(Event.id)))
    assert not jobs_left & old_jobs
    assert superseded not in jobs_left and standing in jobs_left
    assert not events_left & old_events
    assert fresh_events <= events_left
    with ctx_of(client).db.read() as s:
        kept = set(s.scalars(select(WebhookDelivery.id)))
    assert kept == {deliveries["failed"], deliveries["pending"], deliveries["recent"]}
    # The log still pages through the whole window.
    listed = client.get("/api/v1/event/list", params={"take": 100}).json()["items"]
    assert {e["id"] for e in listed} == events_left
    # The next run is queued, one interval away.
    nxt = retention_jobs(client)[-1]
    assert nxt.id != due and nxt.state == "queued" and nxt.run_after > now_ms() + 3_000_000
