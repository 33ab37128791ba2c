"""Webhooks end to end: a real server's workers POST signed events to a scripted local
receiver; signatures are checked with the `standardwebhooks` library and with the `openai`
SDK's `webhooks.unwrap`, both unmodified."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import standardwebhooks
from fastapi.testclient import TestClient
from openai import OpenAI

from dataloft.app import create_app
from tests.api.test_openapi import Checker
from tests.conftest import KEY, BackendSettings
from tests.support.api import assert_envelope, create_dataset, create_file
from tests.support.receiver import Receiver, running


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from running([500, 503])  # fails twice, then answers 200


@pytest.fixture
def client(tmp_path: Path, backend_settings: BackendSettings,
           receiver: Receiver) -> Iterator[TestClient]:
    settings = backend_settings(tmp_path, url_fetch_allow=receiver.allow,
                                webhook_retry_base_seconds=0.05)
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {KEY}"}) as c:
        yield c


def _deliveries(client: TestClient, hook_id: str) -> list[dict[str, object]]:
    r = client.get(f"/api/v1/webhook/{hook_id}/delivery/list")
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def test_delivery_retried_until_it_succeeds_and_verifies(client: TestClient,
                                                         receiver: Receiver) -> None:
    r = client.post("/api/v1/webhook/create", json={"url": receiver.url,
                                                    "events": ["file.attached"]})
    assert r.status_code == 200, r.text
    hook_id, secret = r.json()["id"], r.json()["secret"]
    assert secret.startswith("whsec_")
    assert "secret" not in client.get(f"/api/v1/webhook/{hook_id}/fetch").json()

    ds, file_id = create_dataset(client), create_file(client, b"hello webhooks")
    client.post(f"/api/v1/dataset/{ds}/file/{file_id}/attach", json={"type": "source"})
    got = receiver.wait(lambda rs: any(x.status == 200 for x in rs))

    assert [x.status for x in got] == [500, 503, 200]
    ids = {x.headers["webhook-id"] for x in got}
    assert len(ids) == 1  # one message id on every attempt, for deduplication
    ok = got[-1]
    body = standardwebhooks.Webhook(secret).verify(ok.body, ok.headers)
    assert body["type"] == "file.attached" and body["data"]["fileId"] == file_id
    event = OpenAI(api_key="unused").webhooks.unwrap(ok.body, ok.headers, secret=secret)
    assert event.type == "file.attached"  # type: ignore[comparison-overlap]
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(ok.body + b" ", ok.headers)

    (delivery,) = _deliveries(client, hook_id)
    assert delivery["status"] == "delivered" and delivery["attempts"] == 3
    assert delivery["id"] == ids.pop() and delivery["responseCode"] == 200
    assert [a["statusCode"] for a in delivery["log"]] == [500, 503, 200]  # type: ignore[index,union-attr]
    # Exactly one successful delivery: nothing more arrives for this event.
    assert sum(1 for x in receiver.received if x.status == 200) == 1


def test_event_filter_rotate_and_crud(client: TestClient, receiver: Receiver) -> None:
    receiver.script.clear()
    hook = client.post("/api/v1/webhook/create", json={"url": receiver.url,
                                                       "events": ["file.detached"],
                                                       "description": "d"}).json()
    listed = client.get("/api/v1/webhook/list").json()["items"]
    assert [h["id"] for h in listed] == [hook["id"]] and listed[0]["description"] == "d"
    rotated = client.post(f"/api/v1/webhook/{hook['id']}/rotate").json()
    assert rotated["secret"] != hook["secret"]
    ds, file_id = create_dataset(client), create_file(client, b"x")
    client.post(f"/api/v1/dataset/{ds}/file/{file_id}/attach", json={"type": "source"})
    client.post(f"/api/v1/dataset/{ds}/file/{file_id}/detach", json={})
    (got,) = receiver.wait(lambda rs: len(rs) >= 1)
    body = standardwebhooks.Webhook(rotated["secret"]).verify(got.body, got.headers)
    assert body["type"] == "file.detached"  # file.attached was not asked for
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(hook["secret"]).verify(got.body, got.headers)

    r = client.post(f"/api/v1/webhook/{hook['id']}/update", json={"events": ["nope"]})
    assert_envelope(r, 400, "BAD_REQUEST")
    r = client.post(f"/api/v1/webhook/{hook['id']}/update", json={"url": "http://10.1.2.3/"})
    assert_envelope(r, 400, "BAD_REQUEST")
    assert client.get(f"/api/v1/webhook/{hook['id']}/fetch").json()["url"] == receiver.url
    r = client.post(f"/api/v1/webhook/{hook['id']}/update", json={"events": None})
    assert r.status_code == 200 and client.get(
        f"/api/v1/webhook/{hook['id']}/fetch").json()["events"] is None
    assert client.post(f"/api/v1/webhook/{hook['id']}/delete").status_code == 200
    assert_envelope(client.get(f"/api/v1/webhook/{hook['id']}/fetch"), 404, "NOT_FOUND")


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "http://169.254.169.254/x",
                                 "ftp://example.com/", "http://10.0.0.1/"])
def test_target_urls_obey_the_url_upload_rules(client: TestClient, url: str) -> None:
    assert_envelope(client.post("/api/v1/webhook/create", json={"url": url}), 400)


def test_restricted_credentials_cannot_manage_webhooks(client: TestClient,
                                                       receiver: Receiver) -> None:
    r = client.post("/api/v1/webhook/create", json={"url": receiver.url},
                    headers={"X-RunAs-User-Id": "alice"})
    assert_envelope(r, 403)
    ds = create_dataset(client)
    limited = client.post("/api/v1/key/create", json={"permissions": ["admin"],
                                                      "datasets": [ds]}).json()["key"]
    r = client.get("/api/v1/webhook/list", headers={"Authorization": f"Bearer {limited}"})
    assert_envelope(r, 403)


def test_a_delivery_failing_past_the_retry_window_fails(tmp_path: Path,
                                                        backend_settings: BackendSettings,
                                                        receiver: Receiver) -> None:
    receiver.script[:] = [500] * 5
    settings = backend_settings(tmp_path / "w", url_fetch_allow=receiver.allow,
                                webhook_retry_base_seconds=0.05,
                                webhook_retry_window_seconds=0)
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {KEY}"}) as client:
        hook = client.post("/api/v1/webhook/create", json={"url": receiver.url}).json()
        create_dataset(client)
        ds, file_id = create_dataset(client), create_file(client, b"doomed")
        client.post(f"/api/v1/dataset/{ds}/file/{file_id}/attach", json={"type": "source"})
        receiver.wait(lambda rs: len(rs) >= 1)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            (row,) = _deliveries(client, hook["id"])
            if row["status"] != "pending":
                break
            time.sleep(0.05)
    assert row["status"] == "failed" and row["attempts"] == 1
    assert row["lastError"] == "the endpoint answered HTTP 500" and row["nextRetryAt"] is None


def test_answers_match_the_documented_schemas(client: TestClient, receiver: Receiver) -> None:
    check = Checker(client.get("/openapi.json").json())
    created = client.post("/api/v1/webhook/create", json={"url": receiver.url})
    check(created)
    hook_id = created.json()["id"]
    ds, file_id = create_dataset(client), create_file(client, b"typed")
    client.post(f"/api/v1/dataset/{ds}/file/{file_id}/attach", json={"type": "source"})
    receiver.wait(lambda rs: any(x.status == 200 for x in rs))
    for r in (client.get("/api/v1/webhook/list"), client.get(f"/api/v1/webhook/{hook_id}/fetch"),
              client.get(f"/api/v1/webhook/{hook_id}/delivery/list"),
              client.post(f"/api/v1/webhook/{hook_id}/update", json={"description": "x"}),
              client.post(f"/api/v1/webhook/{hook_id}/rotate"),
              client.get(f"/api/v1/file/{file_id}/fetch"),
              client.get(f"/api/v1/dataset/{ds}/file/list"),
              client.post(f"/api/v1/dataset/{ds}/file/{file_id}/sync", json={}),
              client.post(f"/api/v1/file/{file_id}/sync", json={}),
              client.get("/api/v1/event/log/export"),
              client.post("/api/v1/webhook/create", json={"url": "http://10.0.0.1/"}),
              client.post(f"/api/v1/webhook/{hook_id}/delete")):
        check(r)
    assert len(check.seen) == 13
