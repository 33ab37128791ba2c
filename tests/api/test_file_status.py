"""Sync state on the file and in the dataset's file list, as it moves: queued (the job waits),
in_progress (a worker holds it), completed or failed with the typed error. The app runs no
workers of its own here: the test takes each step with a real worker pool over the same
database, so every state is seen, without timing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataloft.app import create_app
from dataloft.context import Context
from dataloft.jobs import queue
from dataloft.jobs.worker import WorkerConfig, WorkerPool
from dataloft.sync.service import SYNC_JOB
from dataloft.sync.tasks import SyncHandler
from tests.conftest import KEY, BackendSettings
from tests.support.api import app_context, assert_envelope, create_dataset, create_file


@pytest.fixture
def client(tmp_path: Path, backend_settings: BackendSettings) -> Iterator[TestClient]:
    settings = backend_settings(tmp_path, workers=0, sync_cooldown_seconds=120)
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {KEY}"}) as c:
        yield c


def _pool(ctx: Context) -> WorkerPool:
    handler = SyncHandler(ctx.db, ctx.blobs, ctx.index, ctx.embedder)
    return WorkerPool(ctx.db, {SYNC_JOB: handler}, WorkerConfig(threads=1))


def _attachments(client: TestClient, file_id: str, **headers: str) -> list[dict[str, Any]]:
    r = client.get(f"/api/v1/file/{file_id}/fetch", headers=headers)
    assert r.status_code == 200, r.text
    return list(r.json()["attachments"])


def _listed(client: TestClient, ds: str, file_id: str) -> dict[str, Any]:
    items = client.get(f"/api/v1/dataset/{ds}/file/list").json()["items"]
    (item,) = [i for i in items if i["id"] == file_id]
    return dict(item["attachment"])


def test_queued_in_progress_completed(client: TestClient) -> None:
    ds, file_id = create_dataset(client), create_file(client, b"The tide rose at dawn.")
    client.post(f"/api/v1/dataset/{ds}/file/{file_id}/attach", json={"type": "source"})
    (never,) = _attachments(client, file_id)
    assert never["status"] is None and never["type"] == "source"

    r = client.post(f"/api/v1/dataset/{ds}/file/{file_id}/sync", json={})
    assert r.json() == {"id": file_id, "status": "queued"}
    (queued,) = _attachments(client, file_id)
    assert queued["status"] == "queued" and queued["lastError"] is None
    assert _listed(client, ds, file_id)["status"] == "queued"

    ctx = app_context(client)
    with ctx.db.write() as session:
        lease = queue.claim(session, "test-worker", 60_000)
    assert lease is not None
    (running,) = _attachments(client, file_id)
    assert running["status"] == "in_progress"
    with ctx.db.write() as session:
        queue.release(session, lease)  # the pool below takes it over as a retry

    assert _pool(ctx).run_once()
    (done,) = _attachments(client, file_id)
    assert done == {"datasetId": ds, "type": "source", "status": "completed", "lastError": None,
                    "syncedAt": done["syncedAt"], "syncedVersion": 1, "recordCount": 1}
    assert isinstance(done["syncedAt"], int)
    assert _listed(client, ds, file_id) == done


def test_failed_with_the_typed_error(client: TestClient) -> None:
    ds = create_dataset(client)
    file_id = create_file(client, b"\x00\x01\x02garbage", name="blob.bin",
                          content_type="application/octet-stream")
    client.post(f"/api/v1/dataset/{ds}/file/{file_id}/attach", json={"type": "source"})
    client.post(f"/api/v1/dataset/{ds}/file/{file_id}/sync", json={})
    assert _pool(app_context(client)).run_once()
    (failed,) = _attachments(client, file_id)
    assert failed["status"] == "failed" and failed["recordCount"] == 0
    assert failed["lastError"]["code"] == "unsupported_format"
    assert failed["lastError"]["message"]


def test_reattach_resets_the_cooldown(client: TestClient) -> None:
    ds, file_id = create_dataset(client), create_file(client, b"cooldown")
    client.post(f"/api/v1/dataset/{ds}/file/{file_id}/attach", json={"type": "source"})
    assert client.post(f"/api/v1/dataset/{ds}/file/{file_id}/sync", json={}).status_code == 200
    assert_envelope(client.post(f"/api/v1/dataset/{ds}/file/{file_id}/sync", json={}), 429)
    client.post(f"/api/v1/dataset/{ds}/file/{file_id}/attach", json={"type": "source"})
    r = client.post(f"/api/v1/dataset/{ds}/file/{file_id}/sync", json={})
    assert r.status_code == 200 and r.json()["status"] == "queued"


def test_attachments_only_of_datasets_the_caller_may_see(client: TestClient) -> None:
    alice = {"X-RunAs-User-Id": "alice"}
    org_ds = create_dataset(client)
    own_ds = client.post("/api/v1/dataset/create", json={"name": "a"}, headers=alice).json()["id"]
    file_id = client.post("/api/v1/file/create", json={"name": "a.txt"},
                          headers=alice).json()["id"]
    client.post(f"/api/v1/file/{file_id}/upload", content=b"mine", headers=alice)
    for ds in (org_ds, own_ds):
        r = client.post(f"/api/v1/dataset/{ds}/file/{file_id}/attach", json={"type": "source"})
        assert r.status_code == 200, r.text
    assert {a["datasetId"] for a in _attachments(client, file_id)} == {org_ds, own_ds}
    assert [a["datasetId"] for a in _attachments(client, file_id, **alice)] == [own_ds]
    limited = client.post("/api/v1/key/create", json={"datasets": [org_ds]}).json()["key"]
    seen = _attachments(client, file_id, Authorization=f"Bearer {limited}")
    assert [a["datasetId"] for a in seen] == [org_ds]
