"""Quotas and usage against a live server, on each backend: 20 concurrent uploads over
real HTTP never take an organisation past its storage quota; a sync past the record quota
fails `storage_limit` and keeps the old records; usage figures are exact throughout.
Limits are per-org overrides set by an instance-admin key the CLI made."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.conftest import BackendSettings
from tests.support.api import assert_envelope, create_dataset, sync
from tests.support.cli import cli_env, cli_json
from tests.support.live import LiveServer, backend_env


@pytest.fixture(scope="module")
def server(backend: str, backend_settings: BackendSettings, request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    tmp = tmp_path_factory.mktemp("quotas")
    settings = backend_settings(tmp)
    env = {"DATALOFT_SYNC_COOLDOWN_SECONDS": "0", "DATALOFT_JOB_POLL_SECONDS": "0.05"}
    env.update(backend_env(backend, settings, request))
    live = LiveServer(data_dir=settings.data_dir, env_extra=env).start()
    try:
        admin = cli_json(cli_env(settings), "keys", "create", "-p", "instance:admin")["key"]
        yield live, admin
    finally:
        live.stop()


@pytest.fixture
def org(server: tuple[LiveServer, str]) -> Iterator[tuple[httpx.Client, httpx.Client, str]]:
    """A fresh organisation: (its admin client, the instance admin's client, its id)."""
    live, admin = server
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {admin}"},
                      timeout=60) as instance:
        made = instance.post("/api/v1/org/create", json={"name": "quota-test"})
        assert made.status_code == 200, made.text
        with httpx.Client(base_url=live.url, timeout=60,
                          headers={"Authorization": f"Bearer {made.json()['key']}"}) as c:
            yield c, instance, made.json()["id"]


def limit(instance: httpx.Client, org_id: str, **values: Any) -> dict[str, Any]:
    r = instance.post(f"/api/v1/org/{org_id}/limits/update", json=values)
    assert r.status_code == 200, r.text
    return dict(r.json())


def usage(c: httpx.Client) -> dict[str, Any]:
    r = c.get("/api/v1/usage/fetch")
    assert r.status_code == 200, r.text
    return dict(r.json())


def counted(c: httpx.Client) -> dict[str, int]:
    """Usage as the API's own listings add it up."""
    files = c.get("/api/v1/file/list", params={"take": 100}).json()["items"]
    records = 0
    for ds in c.get("/api/v1/dataset/list", params={"take": 100}).json()["items"]:
        records += len(c.get(f"/api/v1/dataset/{ds['id']}/record/list",
                             params={"take": 100}).json()["items"])
    return {"storageBytes": sum(f["size"] or 0 for f in files), "records": records,
            "files": len(files)}


def new_file(c: httpx.Client, name: str = "f.txt") -> str:
    r = c.post("/api/v1/file/create", json={"name": name})
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def upload(c: httpx.Client, file_id: str, data: bytes, ctype: str = "text/plain"
           ) -> httpx.Response:
    return c.post(f"/api/v1/file/{file_id}/upload", content=data,
                  headers={"Content-Type": ctype})


def test_parallel_uploads_never_pass_the_storage_quota(
        org: tuple[httpx.Client, httpx.Client, str]) -> None:
    c, instance, org_id = org
    assert usage(c) == {"storageBytes": 0, "records": 0, "files": 0,
                        "limits": {"storageBytes": None, "records": None, "files": None}}
    assert limit(instance, org_id, storageBytes=10_000)["limits"]["storageBytes"] == 10_000
    ids = [new_file(c, f"p{i}.txt") for i in range(20)]
    bodies = [bytes([65 + i]) * 1000 for i in range(20)]
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda pair: upload(c, *pair), zip(ids, bodies, strict=True)))
    won = [r for r in answers if r.status_code == 200]
    lost = [r for r in answers if r.status_code != 200]
    assert len(won) == 10, [r.status_code for r in answers]
    for r in lost:
        assert_envelope(r, 413, "QUOTA_EXCEEDED")
        assert "storage quota" in r.json()["message"] and r.json()["quota"] == "storageBytes"
    now = usage(c)
    assert now["storageBytes"] == 10_000 and now["files"] == 20
    assert counted(c) == {k: now[k] for k in ("storageBytes", "records", "files")}
    # A replacement counts as its new size less its old one.
    grow = next(f for f, r in zip(ids, answers, strict=True) if r.status_code == 200)
    assert_envelope(upload(c, grow, b"x" * 1001), 413, "QUOTA_EXCEEDED")
    assert upload(c, grow, b"x" * 400).status_code == 200
    assert usage(c)["storageBytes"] == 9_400
    # Deleting gives its bytes and its file back; the quota then has room again.
    assert c.post(f"/api/v1/file/{grow}/delete", json={}).status_code == 200
    assert usage(c)["storageBytes"] == 9_000 and usage(c)["files"] == 19
    spare = next(f for f, r in zip(ids, answers, strict=True) if r.status_code != 200)
    assert upload(c, spare, b"y" * 1000).status_code == 200
    assert counted(c) == {k: usage(c)[k] for k in ("storageBytes", "records", "files")}


def test_file_quota_and_overrides(org: tuple[httpx.Client, httpx.Client, str]) -> None:
    c, instance, org_id = org
    limit(instance, org_id, files=2)
    new_file(c)
    new_file(c)
    refused = c.post("/api/v1/file/create", json={"name": "third.txt"})
    assert_envelope(refused, 413, "QUOTA_EXCEEDED")
    assert refused.json()["quota"] == "files" and "file quota" in refused.json()["message"]
    assert limit(instance, org_id, files=-1)["limits"]["files"] is None  # unlimited
    new_file(c)
    assert limit(instance, org_id, files=None)["limits"]["files"] is None  # the default
    bad = instance.post(f"/api/v1/org/{org_id}/limits/update", json={"files": "lots"})
    assert_envelope(bad, 400, "BAD_REQUEST")
    # Only an instance admin sets limits or makes organisations; an org admin cannot.
    assert_envelope(c.post(f"/api/v1/org/{org_id}/limits/update", json={"files": 100}),
                    403, "NOT_AUTHORIZED")
    assert_envelope(c.post("/api/v1/org/create", json={"name": "x"}), 403, "NOT_AUTHORIZED")
    assert_envelope(c.post("/api/v1/key/create", json={"permissions": ["instance:admin"]}),
                    403, "NOT_AUTHORIZED")
    assert usage(c)["files"] == 3 == counted(c)["files"]


def test_a_sync_past_the_record_quota_fails_and_keeps_the_old_records(
        org: tuple[httpx.Client, httpx.Client, str]) -> None:
    c, instance, org_id = org
    ds = create_dataset(c)
    fid = new_file(c, "rows.csv")
    assert upload(c, fid, b"city,note\nOslo,fjord harbour\n", "text/csv").status_code == 200
    assert sync(c, ds, fid)["type"] == "sync.completed"
    before = usage(c)
    assert before["records"] == counted(c)["records"] >= 1
    limit(instance, org_id, records=before["records"] + 2)
    many = b"city,note\n" + b"".join(b"Town%d,quiet street %d\n" % (i, i) for i in range(8))
    assert upload(c, fid, many, "text/csv").status_code == 200
    event = sync(c, ds, fid)
    assert event["type"] == "sync.failed" and event["data"]["reason"] == "storage_limit", event
    assert "record quota" in event["data"]["message"]
    texts = [r["text"] for r in c.get(f"/api/v1/dataset/{ds}/record/list").json()["items"]]
    assert any("fjord harbour" in t for t in texts) and not any("Town" in t for t in texts)
    assert usage(c)["records"] == before["records"]
    # A hand-made record past the quota is refused the same way.
    limit(instance, org_id, records=before["records"])
    r = c.post(f"/api/v1/dataset/{ds}/record/create", json={"text": "one too many"})
    assert_envelope(r, 413, "QUOTA_EXCEEDED")
    # With room, the sync goes through and the figures follow.
    limit(instance, org_id, records=None)
    assert sync(c, ds, fid)["type"] == "sync.completed"
    now = usage(c)
    assert now["records"] > before["records"]
    assert counted(c) == {k: now[k] for k in ("storageBytes", "records", "files")}
    assert c.post(f"/api/v1/dataset/{ds}/delete", json={}).status_code == 200
    assert usage(c)["records"] == 0 == counted(c)["records"]


def test_usage_needs_a_backend_key(server: tuple[LiveServer, str]) -> None:
    live, _ = server
    r = httpx.get(f"{live.url}/api/v1/usage/fetch")
    assert_envelope(r, 401, "NOT_AUTHENTICATED")
    r = httpx.get(f"{live.url}/api/v1/usage/fetch",
                  headers={**live.headers, "X-RunAs-User-Id": "u1"})
    assert_envelope(r, 403, "NOT_AUTHORIZED")


def test_a_direct_upload_past_the_quota_is_refused_when_asked_for(
        org: tuple[httpx.Client, httpx.Client, str]) -> None:
    c, instance, org_id = org
    limit(instance, org_id, storageBytes=100)
    fid = new_file(c, "direct.txt")
    ask = {"file": {"type": "text/plain", "size": 500, "name": "direct.txt"}}
    refused = c.post(f"/api/v1/file/{fid}/upload", json=ask)
    assert_envelope(refused, 413, "QUOTA_EXCEEDED")
    ask["file"]["size"] = 60
    made = c.post(f"/api/v1/file/{fid}/upload", json=ask)
    assert made.status_code == 200 and made.json()["uploadRequest"]["method"] == "PUT"
    request = made.json()["uploadRequest"]
    put = httpx.put(request["url"], content=b"z" * 60, headers=request["headers"])
    assert put.status_code == 200, put.text
    assert c.get(f"/api/v1/file/{fid}/fetch").json()["size"] == 60
    assert usage(c)["storageBytes"] == 60 == counted(c)["storageBytes"]


def test_a_direct_upload_that_no_longer_fits_is_dropped(
        org: tuple[httpx.Client, httpx.Client, str]) -> None:
    c, instance, org_id = org
    limit(instance, org_id, storageBytes=100)
    fid, other = new_file(c, "late.txt"), new_file(c, "early.txt")
    made = c.post(f"/api/v1/file/{fid}/upload", json={
        "file": {"type": "text/plain", "size": 60, "name": "late.txt"}})
    assert made.status_code == 200, made.text
    assert upload(c, other, b"e" * 50).status_code == 200  # the room is gone meanwhile
    request = made.json()["uploadRequest"]
    put = httpx.put(request["url"], content=b"z" * 60, headers=request["headers"])
    if request["url"].startswith(str(c.base_url)):  # a PUT to this server: refused at once
        assert_envelope(put, 413, "QUOTA_EXCEEDED")
    else:  # a PUT to the bucket: refused when the server confirms it, reads still work
        assert put.status_code == 200, put.text
        fetched = c.get(f"/api/v1/file/{fid}/fetch")
        assert fetched.status_code == 200 and fetched.json()["size"] is None, fetched.text
        events = c.get("/api/v1/event/list", params={"take": 100}).json()["items"]
        refused = [e for e in events if e["type"] == "file.upload_refused"]
        assert refused and refused[0]["fileId"] == fid
        assert refused[0]["data"]["reason"] == "QUOTA_EXCEEDED"
    assert usage(c)["storageBytes"] == 50 == counted(c)["storageBytes"]
