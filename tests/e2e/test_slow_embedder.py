"""A slow embedding endpoint holds up only the requests that need an embedding.

On SQLite there is one writer. An assistant search (a POST that only reads) and a record
create/update embed through the configured endpoint; if either held the writer while it
waited, every upload, sync commit and lease heartbeat of the deployment would wait too.
Here the endpoint holds its answer (a gate the test opens), and an unrelated upload must
complete while the search and the record create are still waiting on it: an ordering,
not a timing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import wait_for_sync
from tests.support.embeddings_server import EmbeddingsServer, Step
from tests.support.live import LiveServer

pytestmark = pytest.mark.slow


@pytest.fixture
def embeddings() -> Iterator[EmbeddingsServer]:
    with EmbeddingsServer(dimension=16) as srv:
        yield srv


@pytest.fixture
def server(tmp_path: Path, embeddings: EmbeddingsServer) -> Iterator[LiveServer]:
    live = LiveServer(data_dir=tmp_path / "data", env_extra={
        "DATALOFT_EMBEDDER": "openai", "DATALOFT_EMBEDDING_URL": embeddings.url,
        "DATALOFT_EMBEDDING_MODEL": "slow-model", "DATALOFT_EMBEDDING_DIMENSION": "16",
        "DATALOFT_EMBEDDING_TIMEOUT": "150", "DATALOFT_SYNC_COOLDOWN_SECONDS": "0",
        "DATALOFT_JOB_POLL_SECONDS": "0.05"})
    live.start()
    try:
        yield live
    finally:
        live.stop()


def _ok(r: httpx.Response) -> Any:
    assert r.status_code in (200, 201), (r.request.method, str(r.request.url), r.text)
    return r.json()


class Pending:
    """A request sent on its own thread, to be finished later."""

    def __init__(self, client: httpx.Client, path: str, body: dict[str, Any]):
        self.response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._run, args=(client, path, body),
                                        daemon=True)
        self._thread.start()

    def _run(self, client: httpx.Client, path: str, body: dict[str, Any]) -> None:
        self.response = client.post(path, json=body)

    def done(self) -> bool:
        return not self._thread.is_alive()

    def join(self) -> httpx.Response:
        self._thread.join(180)
        assert self.response is not None
        return self.response


def _await_request(embeddings: EmbeddingsServer, count: int) -> None:
    """Until the endpoint has received `count` requests (no clock: a bounded poll)."""
    for _ in range(6000):
        if len(embeddings.requests) >= count:
            return
        threading.Event().wait(0.02)
    raise AssertionError(f"the embedder never got request {count}")


def test_a_slow_embedder_does_not_hold_up_an_unrelated_upload(
        server: LiveServer, embeddings: EmbeddingsServer) -> None:
    with server.client() as client, server.client() as slow:
        ds = _ok(client.post("/api/v1/dataset/create", json={"name": "kb"}))["id"]
        rec = _ok(client.post(f"/api/v1/dataset/{ds}/record/create",
                              json={"text": "the cobalt lighthouse"}))["id"]
        agt = _ok(client.post("/api/v1/assistant/create", json={"name": "a"}))["id"]
        _ok(client.post(f"/api/assistants/{agt}/datasets", json={"datasetId": ds}))

        gate = threading.Event()
        try:
            for path, body in (
                    (f"/api/v1/assistant/{agt}/search", {"search": "lighthouse",
                                                         "mode": "semantic"}),
                    (f"/api/v1/dataset/{ds}/record/create", {"text": "a new record"}),
                    (f"/api/v1/dataset/{ds}/record/{rec}/update", {"text": "new text"})):
                seen = len(embeddings.requests)
                embeddings.script(Step(gate=gate))
                waiting = Pending(slow, path, body)
                _await_request(embeddings, seen + 1)  # it is inside the embedder now

                fid = _ok(client.post("/api/v1/file/create", json={"name": "u.txt"}))["id"]
                r = client.post(f"/api/v1/file/{fid}/upload", content=b"unrelated words",
                                headers={"Content-Type": "text/plain"})
                assert r.status_code == 200, r.text
                assert not waiting.done(), f"{path} answered before the gate opened"
                gate.set()
                assert waiting.join().status_code == 200, waiting.join().text
                gate.clear()
        finally:
            gate.set()

        # Syncs still work with the endpoint answering again.
        _ok(client.post(f"/api/v1/dataset/{ds}/file/{fid}/attach", json={"type": "source"}))
        _ok(client.post(f"/api/v1/dataset/{ds}/file/{fid}/sync", json={}))
        assert wait_for_sync(client, ds, fid, timeout=120)["type"] == "sync.completed"
