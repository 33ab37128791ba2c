"""End-user and context datasets (the Inconvo datasets API), in process.

Uploads are synced into the agent's dataset for their scope by themselves and found through
end-user tokens; re-uploading a name gives it a new version; a scope is invisible (404) to
every end-user outside it; and every refused upload answers the {"message", "code"}
envelope and stores nothing: no blob object, no temp file, no file, no dataset, lists
unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from dataloft.app import create_app
from dataloft.config import Settings
from dataloft.models import File, SqlTable
from dataloft.storage.blobs.local import LocalBlobStore
from tests.conftest import KEY
from tests.support.api import assert_envelope

BOUNDARY = "----dataloftScopedBoundary7MA4YWxk"
MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
CSV = b"region,amount\nnorth,quokka2048\nsouth,1024\n"


# --------------------------------------------------------------------------- helpers


def form(content: bytes, filename: str | bytes = "sales.csv", *, notes: str | None = None,
         content_type: str = "text/csv") -> bytes:
    """A multipart body built by hand, so any filename bytes (NUL, '..') go out as given."""
    raw_name = filename if isinstance(filename, bytes) else filename.encode()
    body = (f"--{BOUNDARY}\r\n".encode()
            + b'Content-Disposition: form-data; name="file"; filename="' + raw_name + b'"\r\n'
            + f"Content-Type: {content_type}\r\n\r\n".encode() + content + b"\r\n")
    if notes is not None:
        body += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"notes\"\r\n\r\n"
                 f"{notes}\r\n").encode()
    return body + f"--{BOUNDARY}--\r\n".encode()


def upload(client: TestClient, path: str, content: bytes = CSV, filename: str | bytes =
           "sales.csv", *, notes: str | None = None, auth: str | None = None,
           headers: dict[str, str] | None = None) -> httpx.Response:
    extra = {**MULTIPART, **(headers or {})}
    if auth is not None:
        extra["Authorization"] = f"Bearer {auth}"
    return client.post(path, content=form(content, filename, notes=notes), headers=extra)


def ok_upload(client: TestClient, path: str, content: bytes = CSV,
              filename: str = "sales.csv", **kw: Any) -> dict[str, Any]:
    r = upload(client, path, content, filename, **kw)
    assert r.status_code == 200, r.text
    return dict(r.json())


def token(client: TestClient, user: str, context: dict[str, str] | None = None,
          permissions: list[str] | None = None, ttl: int | None = None) -> str:
    body: dict[str, Any] = {"userIdentifier": user, "userContext": context or {}}
    if permissions is not None:
        body["permissions"] = permissions
    if ttl is not None:
        body["ttl"] = ttl
    r = client.post("/api/v1/token/create", json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def scope_dataset(client: TestClient, tok: str, scope_path: str) -> str:
    """The agent's dataset for a scope, as the end-user finds it in its dataset list."""
    found = [d["id"] for d in client.get("/api/v1/dataset/list", headers=bearer(tok),
                                         params={"take": 100}).json()["items"]
             if d["name"].endswith(" · " + scope_path)]
    assert len(found) == 1, found
    return str(found[0])


def texts(client: TestClient, tok: str, dataset_id: str, query: str) -> list[str]:
    r = client.post(f"/api/v1/dataset/{dataset_id}/search", headers=bearer(tok),
                    json={"search": query, "take": 50})
    assert r.status_code == 200, r.text
    return [rec["text"] for rec in r.json()["records"]]


def wait_until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for: {what}")


def searchable(client: TestClient, tok: str, dataset_id: str, needle: str) -> None:
    wait_until(lambda: any(needle in t for t in texts(client, tok, dataset_id, needle)),
               f"{needle!r} searchable in {dataset_id}")


def file_names(client: TestClient, headers: dict[str, str] | None = None) -> list[str]:
    items = client.get("/api/v1/file/list", params={"take": 100}, headers=headers or {}).json()
    return sorted(f["name"] for f in items["items"])


def blob_keys(client: TestClient) -> set[str]:
    """The app's blobs, through its port (a directory or a bucket)."""
    return set(client.app.state.ctx.blobs.keys())  # type: ignore[attr-defined]


def referenced_blobs(client: TestClient) -> set[str]:
    """The blobs the metadata points at: files' content and tables' snapshots."""
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    with ctx.db.read() as s:
        return ({k for k in s.scalars(select(File.blob_key)) if k}
                | set(s.scalars(select(SqlTable.blob_key))))


def unfinished_writes(client: TestClient) -> set[str]:
    """Temp files of a directory, incomplete multipart uploads of a bucket."""
    blobs = client.app.state.ctx.blobs  # type: ignore[attr-defined]
    if isinstance(blobs, LocalBlobStore):
        return {str(p) for p in (blobs.root / "tmp").rglob("*") if p.is_file()}
    uploads = blobs.client.list_multipart_uploads(Bucket=blobs.bucket, Prefix=blobs.prefix)
    return {u["UploadId"] for u in uploads.get("Uploads", [])}


@dataclass
class Snapshot:
    """Everything a refused upload must leave as it was."""
    objects: set[str]
    temps: set[str]
    files: list[tuple[str, int, str]]
    datasets: list[str]
    lists: dict[str, Any]

    @classmethod
    def take(cls, client: TestClient, settings: Settings, scopes: list[str]) -> Snapshot:
        objects, temps = blob_keys(client), unfinished_writes(client)
        files = client.get("/api/v1/file/list", params={"take": 100}).json()["items"]
        sets = client.get("/api/v1/dataset/list", params={"take": 100}).json()["items"]
        lists = {s: client.get(s).json() for s in scopes}
        return cls(objects, temps, sorted((f["id"], f["version"], f["sha256"]) for f in files),
                   sorted(d["id"] for d in sets), lists)


USER = "/api/v1/datasets/user/user_123"
SCOPES = ["/api/v1/datasets/user/user_123", "/api/v1/datasets/user/user_456",
          "/api/v1/datasets/context/orgId/org_456"]


def quiesce(client: TestClient, timeout: float = 10.0) -> None:
    """Wait until the blob store has not changed for a moment (jobs done)."""
    def objects() -> set[str]:
        return blob_keys(client)

    deadline, seen = time.monotonic() + timeout, objects()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = objects()
        if now == seen:
            return
        seen = now


def settle() -> None:
    """Give queued jobs (syncs, blob deletions) time to run, so a late write would show."""
    time.sleep(0.1)


# --------------------------------------------------------------------------- sync + search


def test_uploads_are_synced_and_found_by_end_user_tokens(app_client: TestClient) -> None:
    body = ok_upload(app_client, "/api/v1/datasets/user/user_123", notes="Q4 2024 sales data")
    assert body["file"]["path"].endswith("/userIdentifier/user_123/sales.csv")
    user = token(app_client, "user_123")
    ds = scope_dataset(app_client, user, "userIdentifier/user_123")
    searchable(app_client, user, ds, "quokka2048")
    files = app_client.get("/api/v1/file/list", headers=bearer(user)).json()["items"]
    assert [(f["name"], f["description"], f["type"]) for f in files] == [
        ("sales.csv", "Q4 2024 sales data", "text/csv")]

    # a context upload (JSON), found by any user holding the pair
    ok_upload(app_client, "/api/v1/datasets/context/orgId/org_456",
              b'[{"plan": "Enterprise", "price": "wombat990"}]', "pricing.json")
    member = token(app_client, "user_777", {"orgId": "org_456", "teamId": "t1"})
    ctx_ds = scope_dataset(app_client, member, "userContext/orgId:org_456")
    searchable(app_client, member, ctx_ds, "wombat990")

    # an end-user token with files:write uploads into its own scope, and finds it
    writer = token(app_client, "user_123", permissions=["files:write"])
    ok_upload(app_client, "/api/v1/datasets/user/user_123", b"city,code\nOslo,fjord77\n",
              "cities.csv", auth=writer)
    searchable(app_client, user, ds, "fjord77")
    assert app_client.get("/api/v1/datasets/user/user_123", headers=bearer(user)).json() == {
        "files": ["cities.csv", "sales.csv"]}

    # deleting takes the file and its records away
    r = app_client.delete("/api/v1/datasets/user/user_123/sales.csv", headers=bearer(writer))
    assert r.json() == {"file": "sales.csv", "success": True}
    assert not any("quokka2048" in t for t in texts(app_client, user, ds, "quokka2048"))
    assert file_names(app_client, bearer(user)) == ["cities.csv"]


def test_same_filename_twice_gives_one_file_with_the_new_content(
        app_client: TestClient, settings: Settings) -> None:
    path = "/api/v1/datasets/user/user_123"
    first = ok_upload(app_client, path, b"item,code\nlamp,alpha111\n", "items.csv")
    user = token(app_client, "user_123")
    ds = scope_dataset(app_client, user, "userIdentifier/user_123")
    searchable(app_client, user, ds, "alpha111")

    new = b"item,code\nchair,beta222\ndesk,beta333\n"
    second = ok_upload(app_client, path, new, "items.csv", notes="v2")
    assert second["file"]["path"] == first["file"]["path"]
    assert second["file"]["size"] == len(new)
    assert app_client.get(path).json() == {"files": ["items.csv"]}
    files = app_client.get("/api/v1/file/list").json()["items"]
    assert [(f["name"], f["version"], f["size"], f["description"]) for f in files] == [
        ("items.csv", 2, len(new), "v2")]
    assert app_client.get(f"/api/v1/file/{files[0]['id']}/download").content == new

    def only_new() -> bool:
        found = texts(app_client, user, ds, "alpha111 beta222 beta333")
        return (any("beta222" in t for t in found) and any("beta333" in t for t in found)
                and not any("alpha111" in t for t in found))

    wait_until(only_new, "search finds v2 only")
    records = app_client.get(f"/api/v1/dataset/{ds}/record/list", params={"take": 100}).json()
    assert not any("alpha111" in r["text"] for r in records["items"]), records
    # the replaced content's blob (and its table snapshot) are deleted by a job: what is
    # left is the new content and the new snapshot
    wait_until(lambda: blob_keys(app_client) == referenced_blobs(app_client),
               "the old blobs deleted")
    assert len(referenced_blobs(app_client)) == 2


# --------------------------------------------------------------------------- scoping


def test_context_files_are_seen_only_by_users_holding_the_pair(app_client: TestClient) -> None:
    ok_upload(app_client, "/api/v1/datasets/context/orgId/org_456",
              b"plan,price\nEnterprise,wombat990\n", "pricing.csv")
    file_id = app_client.get("/api/v1/file/list").json()["items"][0]["id"]
    inside = token(app_client, "user_1", {"orgId": "org_456"})
    ds = scope_dataset(app_client, inside, "userContext/orgId:org_456")
    searchable(app_client, inside, ds, "wombat990")
    assert app_client.get("/api/v1/datasets/context/orgId/org_456",
                          headers=bearer(inside)).json() == {"files": ["pricing.csv"]}
    assert file_names(app_client, bearer(inside)) == ["pricing.csv"]
    assert app_client.get(f"/api/v1/file/{file_id}/fetch", headers=bearer(inside)).status_code \
        == 200

    # the same through a backend key acting for the user
    acting = {"X-RunAs-User-Id": "user_2", "X-User-Context": '{"orgId": "org_456"}'}
    assert file_names(app_client, acting) == ["pricing.csv"]

    for outside in (bearer(token(app_client, "user_1", {"orgId": "org_999"})),
                    bearer(token(app_client, "user_1")),
                    {"X-RunAs-User-Id": "user_2", "X-User-Context": '{"orgId": "org_999"}'},
                    {"X-RunAs-User-Id": "user_2"}):
        assert_envelope(app_client.get("/api/v1/datasets/context/orgId/org_456",
                                       headers=outside), 404, "NOT_FOUND")
        assert file_names(app_client, outside) == []
        listed = app_client.get("/api/v1/dataset/list", headers=outside).json()["items"]
        assert ds not in [d["id"] for d in listed]
        for probe in (app_client.get(f"/api/v1/file/{file_id}/fetch", headers=outside),
                      app_client.get(f"/api/v1/file/{file_id}/download", headers=outside),
                      app_client.get(f"/api/v1/dataset/{ds}/fetch", headers=outside),
                      app_client.get(f"/api/v1/dataset/{ds}/record/list", headers=outside),
                      app_client.post(f"/api/v1/dataset/{ds}/search", headers=outside,
                                      json={"search": "wombat990"})):
            assert_envelope(probe, 404, "NOT_FOUND")
    # a different value of the same key is a different scope
    assert app_client.get("/api/v1/datasets/context/orgId/org_999",
                          headers=bearer(token(app_client, "u", {"orgId": "org_999"}))
                          ).json() == {"files": []}


def test_a_user_token_cannot_reach_another_users_files(app_client: TestClient,
                                                       settings: Settings) -> None:
    ok_upload(app_client, "/api/v1/datasets/user/user_a", b"k,v\na,aardvark11\n", "mine.csv")
    ok_upload(app_client, "/api/v1/datasets/user/user_b", b"k,v\nb,bison22\n", "theirs.csv")
    ids = {f["name"]: f["id"] for f in app_client.get("/api/v1/file/list").json()["items"]}
    reader_b = token(app_client, "user_b")
    ds_b = scope_dataset(app_client, reader_b, "userIdentifier/user_b")
    searchable(app_client, reader_b, ds_b, "bison22")
    a = token(app_client, "user_a", permissions=["files:write"])
    ds_a = scope_dataset(app_client, a, "userIdentifier/user_a")
    searchable(app_client, a, ds_a, "aardvark11")
    as_a = bearer(a)

    assert_envelope(app_client.get("/api/v1/datasets/user/user_b", headers=as_a), 404,
                    "NOT_FOUND")
    for probe in (app_client.get(f"/api/v1/file/{ids['theirs.csv']}/fetch", headers=as_a),
                  app_client.get(f"/api/v1/file/{ids['theirs.csv']}/download", headers=as_a),
                  app_client.post(f"/api/v1/dataset/{ds_b}/search", headers=as_a,
                                  json={"search": "bison22"}),
                  app_client.get(f"/api/v1/dataset/{ds_b}/record/list", headers=as_a),
                  app_client.delete("/api/v1/datasets/user/user_b/theirs.csv", headers=as_a),
                  app_client.post(f"/api/v1/file/{ids['theirs.csv']}/delete", headers=as_a,
                                  json={})):
        assert_envelope(probe, 404, "NOT_FOUND")
    assert file_names(app_client, as_a) == ["mine.csv"]
    assert not any("bison22" in t for t in texts(app_client, a, ds_a, "bison22"))
    assert [d["id"] for d in app_client.get("/api/v1/dataset/list",
                                            headers=as_a).json()["items"]] == [ds_a]

    before = Snapshot.take(app_client, settings, ["/api/v1/datasets/user/user_b"])
    assert_envelope(upload(app_client, "/api/v1/datasets/user/user_b", auth=a), 404,
                    "NOT_FOUND")
    assert_envelope(upload(app_client, "/api/v1/datasets/user/user_b", auth=a,
                           headers={"X-RunAs-User-Id": "user_b"}), 403, "NOT_AUTHORIZED")
    settle()
    assert Snapshot.take(app_client, settings, ["/api/v1/datasets/user/user_b"]) == before
    assert app_client.get("/api/v1/datasets/user/user_b").json() == {"files": ["theirs.csv"]}


def test_each_agent_keeps_its_own_scope_datasets(app_client: TestClient) -> None:
    agents = app_client.get("/api/v1/assistant/list").json()["items"]
    default = next(a["id"] for a in agents if a["default"])
    other = app_client.post("/api/v1/assistant/create", json={"name": "Analyst"}).json()["id"]
    on_other = ok_upload(app_client, f"/api/v1/agents/{other}/datasets/user/user_123")
    assert f"/{other}/userIdentifier/user_123/sales.csv" in on_other["file"]["path"]
    on_default = ok_upload(app_client, "/api/v1/datasets/user/user_123",
                           b"a,b\n1,2\n", "other.csv")
    assert f"/{default}/userIdentifier/user_123/other.csv" in on_default["file"]["path"]
    assert app_client.get(f"/api/v1/agents/{other}/datasets/user/user_123").json() == {
        "files": ["sales.csv"]}
    assert app_client.get(f"/api/v1/agents/{default}/datasets/user/user_123").json() == {
        "files": ["other.csv"]}
    assert app_client.get("/api/v1/datasets/user/user_123").json() == {"files": ["other.csv"]}
    assert_envelope(app_client.get("/api/v1/agents/agt_nope/datasets/user/user_123"), 404,
                    "NOT_FOUND")


def test_context_scopes_cannot_collide(app_client: TestClient) -> None:
    """key 'team:admin' + value 'x' is not key 'team' + value 'admin:x': whoever holds one
    pair must not see the other's files (refusing ':' in keys is fine too)."""
    r = upload(app_client, "/api/v1/datasets/context/team:admin/x", CSV, "secret.csv")
    if r.status_code != 200:
        assert_envelope(r, 400, "BAD_REQUEST")
        return
    assert app_client.get("/api/v1/datasets/context/team/admin:x").json() == {"files": []}
    minted = app_client.post("/api/v1/token/create", json={
        "userIdentifier": "mallory", "userContext": {"team": "admin:x"}})
    assert minted.status_code == 200, minted.text
    mallory = bearer(minted.json()["token"])
    assert file_names(app_client, mallory) == []
    assert_envelope(app_client.get("/api/v1/datasets/context/team:admin/x", headers=mallory),
                    404, "NOT_FOUND")


FILENAMES = ["café.csv", "日本の売上.csv", "Q4 report (final) – v2.csv", "semi;colon & co.json"]


def test_filenames_round_trip(app_client: TestClient) -> None:
    """What browsers, curl, httpx and the SDKs send: the UTF-8 name, quoted, in the part.
    ('%' in a name is left to the live-server SDK test: TestClient decodes paths twice.)"""
    wrong: list[str] = []
    for filename in FILENAMES:
        content = b'[{"a": 1}]' if filename.endswith(".json") else CSV
        r = app_client.post(USER, files={"file": (filename, content, "text/csv")})
        if r.status_code != 200 or r.json()["file"]["name"] != filename:
            wrong.append(f"{filename!r} -> {r.status_code} {r.text}")
            continue
        assert r.json()["file"]["path"].endswith(f"/userIdentifier/user_123/{filename}")
        assert app_client.get(USER).json() == {"files": [filename]}
        assert file_names(app_client) == [filename]
        r = app_client.delete(f"{USER}/{quote(filename, safe='')}")
        assert r.status_code == 200 and r.json() == {"file": filename, "success": True}, r.text
        assert app_client.get(USER).json() == {"files": []}
    assert wrong == [], "\n".join(wrong)


# --------------------------------------------------------------------------- bad input


ZIP = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(256)) * 4
PDF = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n"
BIG = b"a,b\n" + b"1234567890,abcdefghi\n" * (11 * 1024 * 1024 // 21)


@dataclass
class Case:
    path: str
    content: bytes = CSV
    filename: str | bytes = "sales.csv"
    status: int = 400
    code: str = "BAD_REQUEST"
    auth: Callable[[TestClient], str] | None = None
    headers: dict[str, str] | None = None
    body: bytes | None = None  # sent instead of a multipart form


def _expired(client: TestClient) -> str:
    tok = token(client, "user_123", permissions=["files:write"], ttl=1)
    time.sleep(1.1)
    return tok


def _forged(client: TestClient) -> str:
    tok = token(client, "user_123", permissions=["files:write"])
    body, _, sig = tok.partition(".")
    return f"{body}.{'A' if sig[0] != 'A' else 'B'}{sig[1:]}"


CASES: dict[str, Case] = {
    "userIdentifier with a space": Case("/api/v1/datasets/user/user%20123"),
    "userIdentifier with non-ASCII": Case("/api/v1/datasets/user/%C3%BCser"),
    "userIdentifier with a quote": Case("/api/v1/datasets/user/user'1"),
    "userIdentifier of 257 chars": Case("/api/v1/datasets/user/" + "u" * 257),
    "userIdentifier of 300 chars": Case("/api/v1/datasets/user/" + "u" * 300),
    "contextKey with a space": Case("/api/v1/datasets/context/org%20Id/org_456"),
    "contextValue of 300 chars": Case("/api/v1/datasets/context/orgId/" + "v" * 300),
    "filename ../ traversal": Case(USER, filename="../../etc/passwd.csv"),
    "filename ..\\ traversal": Case(USER, filename="..\\..\\boot.csv"),
    "filename with a directory": Case(USER, filename="reports/q4.csv"),
    "filename ..": Case(USER, filename=".."),
    "filename with NUL": Case(USER, filename=b"sales\x00.csv"),
    "filename with a control char": Case(USER, filename=b"sales\x1b[31m.csv"),
    "empty filename": Case(USER, filename=""),
    "PDF": Case(USER, PDF, "report.pdf", 415, "UNSUPPORTED_MEDIA_TYPE"),
    "PDF named .csv": Case(USER, PDF, "report.csv", 415, "UNSUPPORTED_MEDIA_TYPE"),
    "ZIP named .csv": Case(USER, ZIP, "sales.csv", 415, "UNSUPPORTED_MEDIA_TYPE"),
    "binary named .json": Case(USER, b"\x00\x01\x02\xff\xfe" * 100, "data.json", 415,
                               "UNSUPPORTED_MEDIA_TYPE"),
    "empty file": Case(USER, b"", "empty.csv"),  # 400 empty_file, as every upload form
    "11 MB": Case(USER, BIG, "big.csv", 413, "CONTENT_TOO_LARGE"),
    "no file part": Case(USER, body=(f"--{BOUNDARY}\r\nContent-Disposition: form-data; "
                                     f"name=\"notes\"\r\n\r\nx\r\n--{BOUNDARY}--\r\n").encode()),
    "truncated multipart": Case(USER, body=form(CSV)[:-20]),
    "unknown agent": Case("/api/v1/agents/agt_nope/datasets/user/user_123", status=404,
                          code="NOT_FOUND"),
    "expired token": Case(USER, status=401, code="NOT_AUTHENTICATED", auth=_expired),
    "forged token": Case(USER, status=401, code="NOT_AUTHENTICATED", auth=_forged),
    "garbage token": Case(USER, status=401, code="NOT_AUTHENTICATED",
                          auth=lambda c: "dlt_x"),
    "token uploading for another user": Case(
        "/api/v1/datasets/user/user_456", status=404, code="NOT_FOUND",
        auth=lambda c: token(c, "user_123", permissions=["files:write"])),
    "token acting as another user": Case(
        "/api/v1/datasets/user/user_456", status=403, code="NOT_AUTHORIZED",
        auth=lambda c: token(c, "user_123", permissions=["files:write"]),
        headers={"X-RunAs-User-Id": "user_456"}),
    "token outside the context": Case(
        "/api/v1/datasets/context/orgId/org_456", status=404, code="NOT_FOUND",
        auth=lambda c: token(c, "user_123", {"orgId": "org_999"}, permissions=["files:write"])),
    "read-only token": Case(USER, status=403, code="NOT_AUTHORIZED",
                            auth=lambda c: token(c, "user_123")),
    "backend key acting for another user": Case(
        USER, status=404, code="NOT_FOUND", headers={"X-RunAs-User-Id": "user_456"}),
}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, backend_settings: Any
           ) -> Iterator[tuple[TestClient, Settings]]:
    """One app for all the refusals: each must leave it exactly as it found it."""
    settings = backend_settings(tmp_path_factory.mktemp("refusals"))
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {KEY}"}) as client:
        ok_upload(client, USER, b"k,v\nkept,original\n", "sales.csv")
        ok_upload(client, "/api/v1/datasets/context/orgId/org_456", b"k,v\nkept,ctx\n",
                  "pricing.csv")
        user = token(client, "user_123")
        searchable(client, user, scope_dataset(client, user, "userIdentifier/user_123"),
                   "original")
        # The context seed's sync too: its table snapshot (a blob) landing after the first
        # case's "before" made that case see "something stored" under load.
        member = token(client, "user_777", {"orgId": "org_456"})
        searchable(client, member, scope_dataset(client, member, "userContext/orgId:org_456"),
                   "ctx")
        quiesce(client)  # the store is at rest
        yield client, settings


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_refused_and_nothing_is_stored(
        name: str, shared: tuple[TestClient, Settings]) -> None:
    client, settings = shared
    case = CASES[name]
    credential = case.auth(client) if case.auth else None
    before = Snapshot.take(client, settings, SCOPES)
    assert before.lists[USER] == {"files": ["sales.csv"]}

    headers = {**MULTIPART, **(case.headers or {})}
    if credential is not None:
        headers["Authorization"] = f"Bearer {credential}"
    body = case.body if case.body is not None else form(case.content, case.filename)
    r = None
    try:
        r = client.post(case.path, content=body, headers=headers)
        assert_envelope(r, case.status, case.code)
        settle()
        assert Snapshot.take(client, settings, SCOPES) == before, f"{name}: something stored"
        assert client.get(f"/api/v1/file/{before.files[0][0]}/download").status_code == 200
    finally:  # a wrongly accepted upload must not leak into the next case
        if r is not None and r.status_code < 400:
            for scope, listed in before.lists.items():
                for extra in set(client.get(scope).json().get("files", [])) - set(
                        listed.get("files", [])):
                    client.delete(f"{scope}/{quote(extra, safe='')}")
            quiesce(client)


def test_refused_deletes_remove_nothing(app_client: TestClient) -> None:
    ok_upload(app_client, USER)
    for path, status in ((f"{USER}/..%2Fsales.csv", 404), (f"{USER}/sales.csv%00", 404),
                         (f"{USER}/SALES.CSV", 404), (f"{USER}/nope.csv", 404),
                         ("/api/v1/datasets/user/user_456/sales.csv", 404),
                         ("/api/v1/datasets/user/bad%20id/sales.csv", 400)):
        r = app_client.delete(path)
        assert_envelope(r, status)
    reader = token(app_client, "user_123")
    assert_envelope(app_client.delete(f"{USER}/sales.csv", headers=bearer(reader)), 403,
                    "NOT_AUTHORIZED")
    assert app_client.get(USER).json() == {"files": ["sales.csv"]}


def test_non_multipart_upload_is_refused(app_client: TestClient, settings: Settings) -> None:
    before = Snapshot.take(app_client, settings, SCOPES)
    for headers, content in (({"Content-Type": "text/csv"}, CSV),
                             ({"Content-Type": "application/json"}, b'{"file": "x"}'),
                             ({"Content-Type": "multipart/form-data"}, form(CSV))):
        assert_envelope(app_client.post(USER, content=content, headers=headers), 400,
                        "BAD_REQUEST")
    settle()
    assert Snapshot.take(app_client, settings, SCOPES) == before
