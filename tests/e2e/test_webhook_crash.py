"""Acceptance: kill -9 the server while a webhook delivery is pending; after a restart the
event is delivered, signed, once successfully, with the same webhook-id."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import standardwebhooks

from tests.support.api import create_dataset, create_file
from tests.support.live import LiveServer, free_port
from tests.support.receiver import Receiver

pytestmark = pytest.mark.slow


@pytest.mark.timeout(180)
def test_pending_delivery_survives_kill_9(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there yet: every attempt fails to connect
    env = {"DATALOFT_URL_FETCH_ALLOW": f"127.0.0.1:{port}",
           "DATALOFT_WEBHOOK_RETRY_BASE_SECONDS": "0.2",
           "DATALOFT_WEBHOOK_RETRY_MAX_SECONDS": "0.5",
           "DATALOFT_JOB_POLL_SECONDS": "0.05"}
    server = LiveServer(data_dir=tmp_path / "data", env_extra=env).start()
    receiver = Receiver()
    try:
        with server.client() as client:
            hook = client.post("/api/v1/webhook/create", json={
                "url": f"http://127.0.0.1:{port}/hook", "events": ["file.attached"]}).json()
            ds, file_id = create_dataset(client), create_file(client, b"pending")
            client.post(f"/api/v1/dataset/{ds}/file/{file_id}/attach", json={"type": "source"})
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                items = client.get(f"/api/v1/webhook/{hook['id']}/delivery/list").json()["items"]
                if items and items[0]["attempts"] >= 1:
                    break
                time.sleep(0.05)
            (pending,) = items
            assert pending["status"] == "pending" and pending["nextRetryAt"] is not None
        server.kill()

        receiver.start(port)
        server.start()
        got = receiver.wait(lambda rs: len(rs) >= 1)
        body = standardwebhooks.Webhook(hook["secret"]).verify(got[0].body, got[0].headers)
        assert body["data"]["fileId"] == file_id
        assert got[0].headers["webhook-id"] == pending["id"]
        with server.client() as client:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                (row,) = client.get(f"/api/v1/webhook/{hook['id']}/delivery/list").json()["items"]
                if row["status"] != "pending":
                    break
                time.sleep(0.05)
            assert row["status"] == "delivered" and row["attempts"] >= 2
        assert len(receiver.received) == 1
    finally:
        server.stop()
        receiver.stop()
