"""The /v1 surface in process, on each backend: every error path answers in OpenAI's body
with a status the SDK maps; status derivation, cancellation, expiry and chunking rules."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from dataloft.models import Dataset, File, Job
from tests.support.api import create_dataset, create_file
from tests.support.api import sync as native_sync

MD = b"# Notes\n\nThe harbour crane lifts red containers at dawn.\n"


def assert_openai_error(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return dict(body["error"])


def upload(client: TestClient, name: str = "notes.md", data: bytes = MD,
           **fields: str) -> dict[str, Any]:
    r = client.post("/v1/files", files={"file": (name, data)},
                    data={"purpose": "assistants", **fields})
    assert r.status_code == 200, r.text
    return dict(r.json())


def wait(client: TestClient, path: str, done: Any, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(path).json()
        if done(body):
            return dict(body)
        time.sleep(0.05)
    raise AssertionError(f"{path} did not settle: {body}")


def test_unknown_ids_are_404_in_openai_body_on_every_route(app_client: TestClient) -> None:
    fid = upload(app_client)["id"]
    vs = app_client.post("/v1/vector_stores", json={"name": "x"}).json()["id"]
    routes: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/v1/files/file_nope", {}), ("DELETE", "/v1/files/file_nope", {}),
        ("GET", "/v1/files/file_nope/content", {}),
        ("GET", "/v1/vector_stores/vs_nope", {}),
        ("POST", "/v1/vector_stores/vs_nope", {"json": {"name": "y"}}),
        ("DELETE", "/v1/vector_stores/vs_nope", {}),
        ("POST", "/v1/vector_stores/vs_nope/search", {"json": {"query": "x"}}),
        ("POST", "/v1/vector_stores/vs_nope/files", {"json": {"file_id": fid}}),
        ("POST", f"/v1/vector_stores/{vs}/files", {"json": {"file_id": "file_nope"}}),
        ("GET", "/v1/vector_stores/vs_nope/files", {}),
        ("GET", f"/v1/vector_stores/{vs}/files/{fid}", {}),  # not in this store
        ("POST", f"/v1/vector_stores/{vs}/files/{fid}", {"json": {"attributes": {}}}),
        ("DELETE", f"/v1/vector_stores/{vs}/files/{fid}", {}),
        ("GET", f"/v1/vector_stores/{vs}/files/{fid}/content", {}),
        ("POST", "/v1/vector_stores/vs_nope/file_batches", {"json": {"file_ids": [fid]}}),
        ("GET", f"/v1/vector_stores/{vs}/file_batches/vsfb_nope", {}),
        ("POST", f"/v1/vector_stores/{vs}/file_batches/vsfb_nope/cancel", {}),
        ("GET", f"/v1/vector_stores/{vs}/file_batches/vsfb_nope/files", {}),
    ]
    for method, path, kwargs in routes:
        error = assert_openai_error(app_client.request(method, path, **kwargs), 404)
        assert error["type"] == "invalid_request_error" and error["code"] == "not_found"


@pytest.mark.parametrize("body", [
    {"query": 5}, {"query": "x", "max_num_results": 0}, {"query": "x", "max_num_results": 51},
    {"query": "x", "filters": {"type": "eq", "key": "a"}},
    {"query": "x", "filters": {"type": "in", "key": "a", "value": "b"}},
    {"query": "x", "filters": {"type": "and", "filters": []}},
    {"query": "x", "filters": {"type": "eq", "key": "$and", "value": 1}},
    {"query": "x", "filters": {"type": "eq", "key": "a", "value": {"b": 1}}},
    {"query": "x", "ranking_options": {"score_threshold": 2}},
    {"query": "  "},
])
def test_bad_search_requests_are_400(app_client: TestClient, body: dict[str, Any]) -> None:
    vs = app_client.post("/v1/vector_stores", json={}).json()["id"]
    error = assert_openai_error(app_client.post(f"/v1/vector_stores/{vs}/search", json=body),
                                400)
    assert error["type"] == "invalid_request_error"


def test_bad_bodies_and_credentials(app_client: TestClient, anon_client: TestClient) -> None:
    vs = app_client.post("/v1/vector_stores", json={}).json()["id"]
    fid = upload(app_client)["id"]
    bad: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/v1/vector_stores", {"content": b'{"name": ',
                                       "headers": {"Content-Type": "application/json"}}),
        ("POST", "/v1/vector_stores", {"json": {"metadata": {f"k{i}": "v" for i in range(17)}}}),
        ("POST", "/v1/vector_stores", {"json": {"chunking_strategy": {
            "type": "static", "static": {"max_chunk_size_tokens": 200,
                                         "chunk_overlap_tokens": 150}}}}),
        ("POST", "/v1/vector_stores", {"json": {"expires_after": {"anchor": "created_at",
                                                                  "days": 1}}}),
        ("POST", f"/v1/vector_stores/{vs}/files", {"json": {"file_id": fid,
                                                            "attributes": {"a": [1]}}}),
        ("POST", f"/v1/vector_stores/{vs}/files", {
            "content": b'{"file_id": "%s", "attributes": {"a": NaN}}' % fid.encode(),
            "headers": {"Content-Type": "application/json"}}),
        ("POST", f"/v1/vector_stores/{vs}/file_batches", {"json": {}}),
        ("POST", f"/v1/vector_stores/{vs}/file_batches", {"json": {"file_ids": ["a"] * 2001}}),
        ("POST", "/v1/files", {"files": {"file": ("a.txt", b"a")}, "data": {"purpose": "x"}}),
        ("POST", "/v1/files", {"files": {"file": ("a.txt", b"a")},
                               "data": {"purpose": "assistants",
                                        "expires_after[anchor]": "created_at",
                                        "expires_after[seconds]": "5"}}),
        ("POST", "/v1/files", {"data": {"purpose": "assistants"}}),
        ("GET", "/v1/files?limit=0", {}), ("GET", "/v1/vector_stores?limit=101", {}),
        ("GET", f"/v1/vector_stores/{vs}/files?filter=done", {}),
    ]
    for method, path, kwargs in bad:
        assert_openai_error(app_client.request(method, path, **kwargs), 400)
    error = assert_openai_error(anon_client.get("/v1/vector_stores"), 401)
    assert error["type"] == "authentication_error"
    token = app_client.post("/api/v1/token/create",
                            json={"userIdentifier": "reader"}).json()["token"]
    reader = {"Authorization": f"Bearer {token}"}
    error = assert_openai_error(anon_client.post("/v1/vector_stores", json={}, headers=reader),
                                403)
    assert error["type"] == "permission_error"


def test_status_is_derived_from_the_sync(app_client: TestClient) -> None:
    """A file attached natively but never synced reads `cancelled` (never `in_progress`, which
    would hang a poller); once synced natively, `completed`."""
    ds = create_dataset(app_client)
    fid = create_file(app_client, MD, "native.md", "text/markdown")
    app_client.post(f"/api/v1/dataset/{ds}/file/{fid}/attach", json={})
    got = app_client.get(f"/v1/vector_stores/{ds}/files/{fid}").json()
    assert got["status"] == "cancelled" and got["last_error"] is None
    native_sync(app_client, ds, fid)
    got = app_client.get(f"/v1/vector_stores/{ds}/files/{fid}").json()
    assert got["status"] == "completed" and got["usage_bytes"] > 0
    store = app_client.get(f"/v1/vector_stores/{ds}").json()
    assert store["file_counts"] == {"in_progress": 0, "completed": 1, "failed": 0,
                                    "cancelled": 0, "total": 1}


def test_cancelling_a_batch_never_leaves_it_in_progress(app_client: TestClient) -> None:
    vs = app_client.post("/v1/vector_stores", json={}).json()["id"]
    ids = [upload(app_client, f"n{i}.md", MD + str(i).encode())["id"] for i in range(6)]
    batch = app_client.post(f"/v1/vector_stores/{vs}/file_batches",
                            json={"file_ids": ids}).json()
    assert batch["file_counts"]["total"] == 6
    cancelled = app_client.post(f"/v1/vector_stores/{vs}/file_batches/{batch['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    final = wait(app_client, f"/v1/vector_stores/{vs}/file_batches/{batch['id']}",
                 lambda b: b["file_counts"]["in_progress"] == 0)
    counts = final["file_counts"]
    assert counts["completed"] + counts["cancelled"] == 6, counts
    assert final["status"] == "cancelled"
    listed = app_client.get(f"/v1/vector_stores/{vs}/file_batches/{batch['id']}/files",
                            params={"filter": "cancelled", "limit": 100}).json()["data"]
    assert len(listed) == counts["cancelled"]


def test_chunking_and_expiry(app_client: TestClient) -> None:
    vs = app_client.post("/v1/vector_stores", json={
        "expires_after": {"anchor": "last_active_at", "days": 1}}).json()["id"]
    long_text = ("# Long\n\n" + " ".join(f"word{i}" for i in range(900))).encode()
    fid = upload(app_client, "long.md", long_text)["id"]
    r = app_client.post(f"/v1/vector_stores/{vs}/files", json={
        "file_id": fid, "chunking_strategy": {"type": "static", "static": {
            "max_chunk_size_tokens": 100, "chunk_overlap_tokens": 0}}})
    assert r.status_code == 200 and r.headers["openai-poll-after-ms"], r.text
    done = wait(app_client, f"/v1/vector_stores/{vs}/files/{fid}",
                lambda f: f["status"] != "in_progress")
    assert done["status"] == "completed"
    assert done["chunking_strategy"] == {"type": "static", "static": {
        "max_chunk_size_tokens": 100, "chunk_overlap_tokens": 0}}
    chunks = app_client.get(f"/v1/vector_stores/{vs}/files/{fid}/content").json()["data"]
    assert len(chunks) > 5  # 100-token chunks, not the dataset's default size

    # Two days without activity: the store reads `expired` and refuses searches and files.
    ctx = app_client.app.state.ctx  # type: ignore[attr-defined]
    with ctx.db.write() as session:
        session.execute(update(Dataset).where(Dataset.id == vs).values(
            last_active_at=int(time.time() * 1000) - 2 * 86_400_000))
        session.execute(update(File).where(File.id == fid).values(expires_at=1))
    store = app_client.get(f"/v1/vector_stores/{vs}").json()
    assert store["status"] == "expired" and store["expires_at"] < time.time()
    assert_openai_error(app_client.post(f"/v1/vector_stores/{vs}/search",
                                        json={"query": "word1"}), 400)
    # The expired file is gone from this surface.
    assert_openai_error(app_client.get(f"/v1/files/{fid}"), 404)
    assert fid not in [f["id"] for f in app_client.get("/v1/files").json()["data"]]
    assert app_client.delete(f"/v1/vector_stores/{vs}").json()["deleted"] is True


def test_native_surfaces_keep_their_envelope(app_client: TestClient) -> None:
    r = app_client.get("/api/v1/dataset/ds_nope/fetch")
    assert r.status_code == 404 and set(r.json()) == {"message", "code"}


def test_a_dataset_limited_key_sees_only_its_stores(app_client: TestClient,
                                                    anon_client: TestClient) -> None:
    mine = app_client.post("/v1/vector_stores", json={"name": "mine"}).json()["id"]
    other = app_client.post("/v1/vector_stores", json={"name": "other"}).json()["id"]
    fid = upload(app_client)["id"]
    r = app_client.post(f"/v1/vector_stores/{other}/files", json={"file_id": fid})
    assert r.status_code == 200, r.text
    raw = app_client.post("/api/v1/key/create", json={
        "name": "limited", "permissions": ["datasets:write"], "datasets": [mine]}).json()["key"]
    limited = {"Authorization": f"Bearer {raw}"}
    listed = anon_client.get("/v1/vector_stores", headers=limited).json()["data"]
    assert [s["id"] for s in listed] == [mine]
    assert_openai_error(anon_client.get(f"/v1/vector_stores/{other}", headers=limited), 404)
    assert_openai_error(anon_client.post(f"/v1/vector_stores/{other}/search", headers=limited,
                                         json={"query": "harbour"}), 404)
    # The file is attached only to a store the key cannot see: it cannot see the file either.
    assert_openai_error(anon_client.get(f"/v1/files/{fid}", headers=limited), 404)


def test_a_file_is_deleted_when_it_expires(app_client: TestClient) -> None:
    made = upload(app_client, "brief.md", MD, **{"expires_after[anchor]": "created_at",
                                                 "expires_after[seconds]": "3600"})
    assert made["expires_at"] - made["created_at"] == 3600
    vs = app_client.post("/v1/vector_stores", json={"file_ids": [made["id"]]}).json()["id"]
    wait(app_client, f"/v1/vector_stores/{vs}", lambda s: s["file_counts"]["completed"] == 1)
    hits = app_client.post(f"/v1/vector_stores/{vs}/search", json={"query": "harbour crane"})
    assert [h["file_id"] for h in hits.json()["data"]] == [made["id"]]

    # An hour later (moved, not waited for): the job queued with the file deletes it.
    ctx = app_client.app.state.ctx  # type: ignore[attr-defined]
    with ctx.db.write() as session:
        session.execute(update(File).where(File.id == made["id"]).values(
            expires_at=int(time.time() * 1000) - 1))
        session.execute(update(Job).where(Job.kind == "file.expire").values(run_after=0))
    ctx.notify()
    wait(app_client, f"/api/v1/file/{made['id']}/fetch", lambda b: b.get("code") == "NOT_FOUND")
    hits = app_client.post(f"/v1/vector_stores/{vs}/search", json={"query": "harbour crane"})
    assert hits.json()["data"] == []
    assert app_client.get(f"/v1/vector_stores/{vs}").json()["file_counts"]["total"] == 0


def test_a_split_row_is_one_result_holding_its_parts(app_client: TestClient) -> None:
    """A row over the chunk budget is several records; /v1 search answers it as one
    result (its parts in `content`), as it answers a document's chunks as one per file."""
    body = " ".join(f"Zebra herd {i} grazed near the river." for i in range(12))
    rows = [{"id": "r1", "body": body}, {"id": "r2", "body": "One zebra herd."}]
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    vs = app_client.post("/v1/vector_stores", json={}).json()["id"]
    fid = upload(app_client, "rows.jsonl", data)["id"]
    r = app_client.post(f"/v1/vector_stores/{vs}/files", json={
        "file_id": fid, "chunking_strategy": {"type": "static", "static": {
            "max_chunk_size_tokens": 100, "chunk_overlap_tokens": 0}}})
    assert r.status_code == 200, r.text
    done = wait(app_client, f"/v1/vector_stores/{vs}/files/{fid}",
                lambda f: f["status"] != "in_progress")
    assert done["status"] == "completed", done
    found = app_client.post(f"/v1/vector_stores/{vs}/search",
                            json={"query": "zebra herd river", "max_num_results": 10}).json()
    ids = [res["attributes"].get("id") for res in found["data"]]
    assert sorted(ids) == ["r1", "r2"], found
    split = next(res for res in found["data"] if res["attributes"].get("id") == "r1")
    assert len(split["content"]) > 1
    assert all(c["text"].startswith("id: r1\n") for c in split["content"])
