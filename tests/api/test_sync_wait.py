"""`?wait=SECONDS` on the sync routes, and the sync status in a dataset's file list."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.test_openapi import Checker
from tests.support.api import assert_envelope, create_dataset, create_file


def _documented(client: TestClient) -> Checker:
    """Every answer from here on validated against the schema /openapi.json documents."""
    check = Checker(client.get("/openapi.json").json())
    client.event_hooks = {"request": [], "response": [check]}
    return check


def _attach(client: TestClient, ds: str, file_id: str) -> None:
    r = client.post(f"/api/v1/dataset/{ds}/file/{file_id}/attach", json={"type": "source"})
    assert r.status_code == 200, r.text


def test_wait_answers_when_the_sync_ended(app_client: TestClient) -> None:
    check = _documented(app_client)
    ds = create_dataset(app_client)
    ok = create_file(app_client, b"The lighthouse stairs are painted cobalt blue.")
    _attach(app_client, ds, ok)
    listed = app_client.get(f"/api/v1/dataset/{ds}/file/list").json()["items"]
    assert listed[0]["attachment"]["status"] is None  # attached, never asked to sync
    r = app_client.post(f"/api/v1/dataset/{ds}/file/{ok}/sync", params={"wait": 60})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["done"] is True and body["status"] == "completed", body
    assert body["attachment"]["syncedVersion"] is not None
    assert body["attachment"]["recordCount"] == 1 and body["attachment"]["lastError"] is None
    # Answered after the commit: the search sees the records at once.
    found = app_client.post(f"/api/v1/dataset/{ds}/search", json={"search": "stairs"}).json()
    assert found["records"]
    listed = app_client.get(f"/api/v1/dataset/{ds}/file/list").json()["items"]
    assert listed[0]["attachment"]["status"] == "completed"
    assert ("POST", "/api/v1/dataset/{dataset_id}/file/{file_id}/sync", 200) in check.seen


def test_wait_reports_a_failure_with_its_typed_reason(app_client: TestClient) -> None:
    check = _documented(app_client)
    ds = create_dataset(app_client)
    empty = app_client.post("/api/v1/file/create", json={"name": "nothing.txt"}).json()["id"]
    _attach(app_client, ds, empty)
    body = app_client.post(f"/api/v1/file/{empty}/sync", params={"wait": 60}).json()
    assert body["done"] is True and body["status"] == "failed" and body["datasetIds"] == [ds]
    [status] = body["attachments"]
    assert status["datasetId"] == ds and status["status"] == "failed"
    assert status["lastError"]["code"] == "empty_content" and status["lastError"]["message"]
    listed = app_client.get(f"/api/v1/dataset/{ds}/file/list").json()["items"]
    assert listed[0]["attachment"]["lastError"]["code"] == "empty_content"
    assert ("POST", "/api/v1/file/{file_id}/sync", 200) in check.seen


def test_without_wait_the_answer_is_immediate_and_unchanged(app_client: TestClient) -> None:
    ds = create_dataset(app_client)
    ok = create_file(app_client, b"some words")
    _attach(app_client, ds, ok)
    assert app_client.post(f"/api/v1/dataset/{ds}/file/{ok}/sync").json() == {
        "id": ok, "status": "queued"}


def test_a_bad_wait_is_refused(app_client: TestClient) -> None:
    ds = create_dataset(app_client)
    ok = create_file(app_client, b"some words")
    _attach(app_client, ds, ok)
    for bad in ("-1", "soon"):
        r = app_client.post(f"/api/v1/dataset/{ds}/file/{ok}/sync", params={"wait": bad})
        assert r.status_code in (400, 422) and r.json()["code"], r.text
        assert_envelope(r, r.status_code)
