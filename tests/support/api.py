"""Small helpers over the public API, shared by the test suites."""

from __future__ import annotations

import time
from typing import Any

import httpx

from dataloft.context import Context

TERMINAL = ("sync.completed", "sync.failed")


def app_context(client: Any) -> Context:
    """The running app's context (database, blobs, index) behind a TestClient."""
    ctx: Context = client.app.state.ctx
    return ctx


def create_file(client: Any, content: bytes, name: str = "doc.txt",
                content_type: str = "text/plain", **fields: Any) -> str:
    file_id = client.post("/api/v1/file/create", json={"name": name, **fields}).json()["id"]
    r = client.post(f"/api/v1/file/{file_id}/upload", content=content,
                    headers={"Content-Type": content_type})
    assert r.status_code == 200, r.text
    return str(file_id)


def create_dataset(client: Any, **fields: Any) -> str:
    return str(client.post("/api/v1/dataset/create", json={"name": "ds", **fields}).json()["id"])


def wait_for_sync(client: Any, dataset_id: str, file_id: str, timeout: float = 60.0,
                  after: int = 0) -> dict[str, Any]:
    """Block until the newest sync of file_id ends; return that event."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = client.get(f"/api/v1/dataset/{dataset_id}/event/list",
                           params={"take": 100}).json()["items"]
        for event in items:
            if event["type"] in TERMINAL and event["fileId"] == file_id \
                    and event["createdAt"] >= after:
                return dict(event)
        time.sleep(0.05)
    raise AssertionError(f"sync of {file_id} did not finish in {timeout}s")


def sync(client: Any, dataset_id: str, file_id: str, timeout: float = 60.0) -> dict[str, Any]:
    started = int(time.time() * 1000) - 1
    r = client.post(f"/api/v1/dataset/{dataset_id}/file/{file_id}/attach", json={"type": "source"})
    assert r.status_code == 200, r.text
    r = client.post(f"/api/v1/dataset/{dataset_id}/file/{file_id}/sync", json={})
    assert r.status_code == 200, r.text
    return wait_for_sync(client, dataset_id, file_id, timeout, after=started)


def assert_envelope(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) >= {"message", "code"} and isinstance(body["message"], str), body
    if code:
        assert body["code"] == code, body
