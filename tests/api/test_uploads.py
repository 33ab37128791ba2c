"""Seed 002's five upload forms, each exactly as the seed writes it, and the download that
gives the same bytes back.

In process (ASGI TestClient over real SQLite + local blobs) and, once for every form, over a
real socket against the server running as a subprocess.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from dataloft.app import create_app
from dataloft.config import Settings
from dataloft.models import UploadTicket
from tests.conftest import KEY, make_settings
from tests.support.api import assert_envelope
from tests.support.live import LiveServer

AUTH = {"Authorization": f"Bearer {KEY}"}

# The seed's data URL and the bytes it carries.
SEED_DATA_URL = "data:text/csv;base64,SGVhZGVyMSxIZWFkZXIyCkRhdGExLERhdGEyCg=="
SEED_CSV = b"Header1,Header2\nData1,Data2\n"
assert base64.b64decode(SEED_DATA_URL.split(",", 1)[1]) == SEED_CSV

BOUNDARY = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
# The seed's create body, trailing comma included: that is not JSON.
SEED_CREATE_BODY = b'{ "name": "My File", "description": "A description of my file", }'
VALID_CREATE_BODY = b'{ "name": "My File", "description": "A description of my file" }'

ONE_MIB = 1024 * 1024


# --------------------------------------------------------------------------- helpers


def multipart_body(content: bytes, *, boundary: str = BOUNDARY, name: str = "file",
                   filename: str = "file.csv", content_type: str = "text/csv") -> bytes:
    """The seed's multipart body, byte for byte (CRLF framing as browsers send it)."""
    return (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n"
        "\r\n"
    ).encode() + content + f"\r\n--{boundary}--\r\n".encode()


def multipart_headers(boundary: str = BOUNDARY) -> dict[str, str]:
    return {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def new_file(client: Any, name: str = "My File") -> str:
    r = client.post("/api/v1/file/create", json={"name": name})
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def fetch(client: Any, file_id: str) -> dict[str, Any]:
    r = client.get(f"/api/v1/file/{file_id}/fetch")
    assert r.status_code == 200, r.text
    return dict(r.json())


def assert_download(client: Any, file_id: str, expected: bytes,
                    content_type: str | None = None) -> None:
    r = client.get(f"/api/v1/file/{file_id}/download")
    assert r.status_code == 200, r.text
    assert r.content == expected
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-disposition"].startswith("attachment")
    assert int(r.headers["content-length"]) == len(expected)
    if content_type:
        assert r.headers["content-type"].split(";")[0].strip() == content_type
    meta = fetch(client, file_id)
    assert meta["size"] == len(expected)
    assert meta["sha256"] == hashlib.sha256(expected).hexdigest()


def blob_objects(client: TestClient) -> set[str]:
    """The keys the app's blob store holds (through the port: a directory or a bucket)."""
    return set(client.app.state.ctx.blobs.keys())  # type: ignore[attr-defined]


@contextmanager
def app_with(tmp_path: Path, **overrides: object) -> Iterator[tuple[TestClient, Settings]]:
    settings = make_settings(tmp_path, **overrides)
    with TestClient(create_app(settings), headers=AUTH) as client:
        yield client, settings


class _Files(BaseHTTPRequestHandler):
    routes: dict[str, tuple[bytes, str]] = {}

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        path = urlsplit(self.path).path
        if path not in self.routes:
            self.send_error(404)
            return
        body, ctype = self.routes[path]
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def file_server(routes: dict[str, tuple[bytes, str]]) -> Iterator[int]:
    handler = type("Files", (_Files,), {"routes": routes})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------- create


def test_create_with_seed_body_valid_json(app_client: TestClient) -> None:
    headers = {"Content-Type": "application/json"}
    for path in ("/api/v1/dataset/file/create", "/api/v1/file/create"):
        r = app_client.post(path, content=VALID_CREATE_BODY, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"id"}
        meta = fetch(app_client, body["id"])
        assert meta["name"] == "My File"
        assert meta["description"] == "A description of my file"
        assert meta["size"] in (None, 0)


def test_create_with_seed_trailing_comma_is_a_clean_400(app_client: TestClient) -> None:
    """The seed's literal body has a trailing comma; it is not JSON, so 400 (never 500) and
    no file is created."""
    before = app_client.get("/api/v1/file/list", params={"take": 100}).json()["items"]
    for path in ("/api/v1/dataset/file/create", "/api/v1/file/create"):
        r = app_client.post(path, content=SEED_CREATE_BODY,
                            headers={"Content-Type": "application/json"})
        assert_envelope(r, 400, "BAD_REQUEST")
    after = app_client.get("/api/v1/file/list", params={"take": 100}).json()["items"]
    assert after == before


def test_new_file_without_content_downloads_nothing(app_client: TestClient) -> None:
    file_id = new_file(app_client)
    r = app_client.get(f"/api/v1/file/{file_id}/download")
    assert r.status_code == 204
    assert r.content == b""


# --------------------------------------------------------------------------- the five forms


def test_json_http_url(tmp_path: Path) -> None:
    with file_server({"/path/file.csv": (SEED_CSV, "text/csv")}) as port, \
            app_with(tmp_path, url_fetch_allow=f"127.0.0.1:{port}") as (client, _):
        file_id = new_file(client)
        r = client.post(f"/api/v1/file/{file_id}/upload",
                        json={"file": f"http://127.0.0.1:{port}/path/file.csv"})
        assert r.status_code == 200, r.text
        assert r.json() == {"id": file_id}
        assert_download(client, file_id, SEED_CSV, "text/csv")
        assert fetch(client, file_id)["type"] == "text/csv"


def test_json_http_url_names_an_unnamed_file(tmp_path: Path) -> None:
    with file_server({"/path/file.csv": (SEED_CSV, "text/csv")}) as port, \
            app_with(tmp_path, url_fetch_allow=f"127.0.0.1:{port}") as (client, _):
        file_id = client.post("/api/v1/file/create", json={}).json()["id"]
        r = client.post(f"/api/v1/file/{file_id}/upload",
                        json={"file": f"http://127.0.0.1:{port}/path/file.csv"})
        assert r.status_code == 200, r.text
        assert fetch(client, file_id)["name"] == "file.csv"
        r = client.get(f"/api/v1/file/{file_id}/download")
        assert 'filename="file.csv"' in r.headers["content-disposition"]


def test_json_data_url_exactly_as_the_seed(app_client: TestClient) -> None:
    file_id = new_file(app_client)
    body = b'{ "file": "' + SEED_DATA_URL.encode() + b'" }'
    r = app_client.post(f"/api/v1/file/{file_id}/upload", content=body,
                        headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json() == {"id": file_id}
    assert_download(app_client, file_id, SEED_CSV, "text/csv")


def test_json_plain_data_url_percent_encoded(app_client: TestClient) -> None:
    """RFC 2397 data URLs without ;base64 carry percent-encoded bytes."""
    file_id = new_file(app_client)
    r = app_client.post(f"/api/v1/file/{file_id}/upload",
                        json={"file": "data:text/csv,Header1%2CHeader2%0AData1%2CData2%0A"})
    assert r.status_code == 200, r.text
    assert_download(app_client, file_id, SEED_CSV, "text/csv")


def test_multipart_exactly_as_the_seed(app_client: TestClient) -> None:
    file_id = new_file(app_client)
    r = app_client.post(f"/api/v1/file/{file_id}/upload", content=multipart_body(SEED_CSV),
                        headers=multipart_headers())
    assert r.status_code == 200, r.text
    assert r.json() == {"id": file_id}
    assert_download(app_client, file_id, SEED_CSV, "text/csv")


def test_multipart_names_an_unnamed_file(app_client: TestClient) -> None:
    file_id = app_client.post("/api/v1/file/create", json={}).json()["id"]
    r = app_client.post(f"/api/v1/file/{file_id}/upload", content=multipart_body(SEED_CSV),
                        headers=multipart_headers())
    assert r.status_code == 200, r.text
    assert fetch(app_client, file_id)["name"] == "file.csv"


def test_multipart_with_extra_fields_around_the_file(app_client: TestClient) -> None:
    file_id = new_file(app_client)
    b = BOUNDARY
    body = (f'--{b}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n'.encode()
            + multipart_body(SEED_CSV)[: -len(f"--{b}--\r\n")]
            + f'--{b}\r\nContent-Disposition: form-data; name="x"\r\n\r\ny\r\n--{b}--\r\n'
            .encode())
    r = app_client.post(f"/api/v1/file/{file_id}/upload", content=body,
                        headers=multipart_headers())
    assert r.status_code == 200, r.text
    assert_download(app_client, file_id, SEED_CSV, "text/csv")


def test_raw_stream_exactly_as_the_seed(app_client: TestClient) -> None:
    file_id = new_file(app_client)
    r = app_client.post(f"/api/v1/file/{file_id}/upload", content=SEED_CSV,
                        headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.json() == {"id": file_id}
    assert_download(app_client, file_id, SEED_CSV, "text/csv")


def test_reupload_replaces_content(app_client: TestClient) -> None:
    file_id = new_file(app_client)
    for content in (b"first version\n", b"second, longer version\n"):
        r = app_client.post(f"/api/v1/file/{file_id}/upload", content=content,
                            headers={"Content-Type": "text/plain"})
        assert r.status_code == 200, r.text
        assert_download(app_client, file_id, content, "text/plain")
    assert fetch(app_client, file_id)["version"] >= 2


@pytest.mark.parametrize("form", ["multipart", "raw"])
def test_large_file_beyond_in_memory_threshold_roundtrips(app_client: TestClient,
                                                          form: str) -> None:
    content = os.urandom(3 * ONE_MIB) + b"\r\n--" + BOUNDARY.encode() + b"tail"
    file_id = new_file(app_client)
    if form == "multipart":
        r = app_client.post(f"/api/v1/file/{file_id}/upload",
                            content=multipart_body(content, content_type="application/x-bin"),
                            headers=multipart_headers())
    else:
        r = app_client.post(f"/api/v1/file/{file_id}/upload", content=content,
                            headers={"Content-Type": "application/x-bin"})
    assert r.status_code == 200, r.text
    assert_download(app_client, file_id, content, "application/x-bin")


# --------------------------------------------------------------------------- direct-to-source


def _ticket(client: Any, file_id: str, size: int, name: str = "large_file.csv",
            ctype: str = "text/csv") -> dict[str, Any]:
    r = client.post(f"/api/v1/file/{file_id}/upload",
                    json={"file": {"type": ctype, "size": size, "name": name}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == file_id
    req = body["uploadRequest"]
    assert req["method"] == "PUT"
    assert req["url"].startswith(("http://", "https://"))
    assert req["headers"]["Content-Length"] == str(size)
    assert req["headers"]["Content-Type"] == ctype
    assert req["headers"]["Content-Disposition"].startswith("attachment")
    assert name in req["headers"]["Content-Disposition"]
    return dict(req)


def _put(client: Any, req: dict[str, Any], content: bytes, *,
         url: str | None = None, send_headers: bool = True) -> httpx.Response:
    headers = dict(req["headers"]) if send_headers else {"Content-Type": "text/csv"}
    if len(content) != int(req["headers"]["Content-Length"]):
        headers.pop("Content-Length", None)  # let the client state the true length
    url = url or req["url"]
    if not url.startswith("http://testserver/"):  # the bucket itself (S3)
        return httpx.request(req["method"], url, content=content, headers=headers, timeout=30)
    # The URL is the credential: no Authorization header.
    plain = TestClient(client.app) if isinstance(client, TestClient) else client
    return plain.request(req["method"], url, content=content, headers=headers)


def pending_tickets(client: TestClient, file_id: str) -> int:
    with client.app.state.ctx.db.read() as session:  # type: ignore[attr-defined]
        return len(session.scalars(select(UploadTicket).where(
            UploadTicket.file_id == file_id)).all())


def _on_bucket(backend: str) -> bool:
    return backend == "postgres"


def local_only(backend: str) -> None:
    if _on_bucket(backend):
        pytest.skip("the signed URL on our own server is the local adapter's flow; the "
                    "bucket's own checks are S3's (moto does not verify signatures)")


def ticket_id(req: dict[str, Any]) -> str:
    return urlsplit(req["url"]).path.rstrip("/").rsplit("/", 1)[-1]


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    q = dict(parse_qsl(parts.query))
    q.update(changes)
    return urlunsplit(parts._replace(query=urlencode(q)))


def test_direct_upload_roundtrip(app_client: TestClient, backend: str) -> None:
    content = os.urandom(2 * ONE_MIB + 17)
    file_id = new_file(app_client)
    req = _ticket(app_client, file_id, len(content))
    if _on_bucket(backend):
        # A presigned PUT to the bucket itself, never through an API replica.
        s3 = app_client.app.state.ctx.blobs  # type: ignore[attr-defined]
        assert req["url"].startswith(f"{s3.client.meta.endpoint_url}/{s3.bucket}/")
        assert "X-Amz-Signature=" in req["url"]
    r = _put(app_client, req, content)
    assert r.status_code == 200, r.text
    if not _on_bucket(backend):
        assert r.json() == {"id": file_id}
    assert_download(app_client, file_id, content, "text/csv")


def test_direct_upload_url_is_single_use(app_client: TestClient) -> None:
    content = b"a,b\n1,2\n"
    file_id = new_file(app_client)
    req = _ticket(app_client, file_id, len(content))
    assert _put(app_client, req, content).status_code == 200
    before = fetch(app_client, file_id)
    r = _put(app_client, req, b"x,y\n3,4\n")
    assert 400 <= r.status_code < 500
    if r.url.host == "testserver":
        assert_envelope(r, r.status_code)
    assert fetch(app_client, file_id) == before
    assert_download(app_client, file_id, content)


def test_direct_upload_counts_only_once_confirmed(app_client: TestClient, backend: str) -> None:
    """Until the server has seen the object, the file is not uploaded; any use of the file
    (fetch, download, attach, sync) or the explicit confirm then counts it, once."""
    content = b"id,name\n1,alpha\n"
    file_id = new_file(app_client)
    confirm = f"/api/v1/file/{file_id}/upload/confirm"
    assert_envelope(app_client.post(confirm), 409, "CONFLICT")
    req = _ticket(app_client, file_id, len(content))
    assert fetch(app_client, file_id)["size"] is None  # nothing has arrived
    assert_envelope(app_client.post(confirm), 409, "CONFLICT")
    assert _put(app_client, req, content).status_code == 200
    if _on_bucket(backend):
        # The bytes are in the bucket, but the file row has not moved yet.
        assert pending_tickets(app_client, file_id) == 1
        assert len(blob_objects(app_client)) == 1
    assert app_client.post(confirm).json() == {"id": file_id}
    meta = fetch(app_client, file_id)
    assert (meta["size"], meta["version"], meta["type"]) == (len(content), 1, "text/csv")
    assert meta["sha256"] == hashlib.sha256(content).hexdigest()
    assert app_client.post(confirm).json() == {"id": file_id}  # idempotent
    assert fetch(app_client, file_id)["version"] == 1


@pytest.mark.parametrize("use", ["fetch", "download", "attach", "sync"])
def test_direct_upload_is_confirmed_by_the_next_use_of_the_file(
        app_client: TestClient, use: str) -> None:
    """The SDKs send nothing after their PUT: whatever they do next must see the upload."""
    content = b"The lighthouse keeper counted 1,024 gulls.\n"
    file_id = new_file(app_client)
    dataset = app_client.post("/api/v1/dataset/create", json={"name": "d"}).json()["id"]
    if use == "sync":
        app_client.post(f"/api/v1/dataset/{dataset}/file/{file_id}/attach", json={})
    req = _ticket(app_client, file_id, len(content), ctype="text/plain")
    assert _put(app_client, req, content).status_code == 200
    if use == "fetch":
        assert fetch(app_client, file_id)["size"] == len(content)
    elif use == "download":
        assert app_client.get(f"/api/v1/file/{file_id}/download").content == content
    elif use == "attach":
        r = app_client.post(f"/api/v1/dataset/{dataset}/file/{file_id}/attach", json={})
        assert r.status_code == 200, r.text
    else:
        r = app_client.post(f"/api/v1/dataset/{dataset}/file/{file_id}/sync", json={})
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            events = app_client.get(f"/api/v1/dataset/{dataset}/event/list").json()["items"]
            done = {e["type"] for e in events} & {"sync.completed", "sync.failed"}
            if done:
                break
            time.sleep(0.05)
        assert done == {"sync.completed"}, events
        records = app_client.get(f"/api/v1/dataset/{dataset}/record/list").json()["items"]
        assert any("1,024 gulls" in r["text"] for r in records)
    assert pending_tickets(app_client, file_id) == 0  # consumed
    assert fetch(app_client, file_id)["sha256"] == hashlib.sha256(content).hexdigest()


def test_direct_upload_to_the_bucket_not_matching_the_ticket_is_not_counted(
        app_client: TestClient, backend: str) -> None:
    """S3 refuses a PUT whose signed size or type differ; moto does not check signatures,
    so this is the server's own second check: such an object never becomes the file."""
    if not _on_bucket(backend):
        pytest.skip("S3 only: the local PUT checks size while streaming (tests below)")
    file_id = new_file(app_client)
    app_client.post(f"/api/v1/file/{file_id}/upload", content=b"original",
                    headers={"Content-Type": "text/plain"})
    before = fetch(app_client, file_id)
    objects = blob_objects(app_client)
    wrong_size = _ticket(app_client, file_id, 5)
    assert _put(app_client, wrong_size, b"123456").status_code == 200  # moto takes it
    wrong_type = _ticket(app_client, file_id, 5)
    headers = {**wrong_type["headers"], "Content-Type": "application/pdf"}
    assert httpx.put(wrong_type["url"], content=b"%PDF-", headers=headers).status_code == 200
    assert fetch(app_client, file_id) == before
    assert_download(app_client, file_id, b"original")
    assert pending_tickets(app_client, file_id) == 0
    deadline = time.monotonic() + 30  # the refused objects are deleted by a job
    while blob_objects(app_client) != objects and time.monotonic() < deadline:
        time.sleep(0.05)
    assert blob_objects(app_client) == objects


def test_direct_upload_as_the_chatbotkit_sdk_sends_it(app_client: TestClient) -> None:
    """@chatbotkit/sdk sets `content-type: application/octet-stream` and then our headers,
    so the PUT carries both types joined by a comma. It must count (and on S3 it must not
    break a signature: the type is not a signed header)."""
    content = b"q,a\n1,2\n"
    file_id = new_file(app_client)
    req = _ticket(app_client, file_id, len(content))
    headers = {**req["headers"], "Content-Type": "application/octet-stream, text/csv"}
    if req["url"].startswith("http://testserver/"):
        r = TestClient(app_client.app).put(req["url"], content=content, headers=headers)
    else:
        assert "content-type" not in urlsplit(req["url"]).query.lower()
        r = httpx.put(req["url"], content=content, headers=headers)
    assert r.status_code == 200, r.text
    meta = fetch(app_client, file_id)
    assert (meta["size"], meta["type"]) == (len(content), "text/csv")


def test_racing_confirmations_count_an_upload_once(app_client: TestClient) -> None:
    """Eight requests use the file at once right after the PUT: each sees the upload, and
    it is applied once (one version, one object, nothing deleted that the file points at)."""
    content = os.urandom(70_000)
    file_id = new_file(app_client)
    req = _ticket(app_client, file_id, len(content))
    assert _put(app_client, req, content).status_code == 200
    with ThreadPoolExecutor(8) as pool:
        metas = list(pool.map(lambda _: fetch(app_client, file_id), range(8)))
    assert {(m["size"], m["version"]) for m in metas} == {(len(content), 1)}
    time.sleep(0.5)  # a wrongly queued blob.delete would have run by now
    assert len(blob_objects(app_client)) == 1
    assert_download(app_client, file_id, content)


def test_deleting_a_file_deletes_its_unconfirmed_upload(app_client: TestClient) -> None:
    file_id = new_file(app_client)
    req = _ticket(app_client, file_id, 3)
    assert _put(app_client, req, b"abc").status_code == 200
    before_delete = blob_objects(app_client)
    assert app_client.post(f"/api/v1/file/{file_id}/delete").status_code == 200
    deadline = time.monotonic() + 30
    while blob_objects(app_client) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(before_delete) == 1 and blob_objects(app_client) == set()


def test_direct_upload_expired_url_refused(tmp_path: Path) -> None:
    with app_with(tmp_path, direct_upload_ttl=0) as (client, settings):
        file_id = new_file(client)
        client.post(f"/api/v1/file/{file_id}/upload", content=b"original",
                    headers={"Content-Type": "text/plain"})
        before = fetch(client, file_id)
        objects = blob_objects(client)
        req = _ticket(client, file_id, 5)
        time.sleep(0.01)
        r = _put(client, req, b"hello")
        assert 400 <= r.status_code < 500
        assert_envelope(r, r.status_code)
        assert fetch(client, file_id) == before
        assert_download(client, file_id, b"original")
        assert blob_objects(client) == objects
        # Issuing a new ticket sweeps the expired ones.
        ctx = client.app.state.ctx  # type: ignore[attr-defined]
        with ctx.db.read() as session:
            assert session.get(UploadTicket, ticket_id(req)) is not None
        time.sleep(0.01)
        _ticket(client, file_id, 5)
        with ctx.db.read() as session:
            assert session.get(UploadTicket, ticket_id(req)) is None


def test_direct_upload_tampered_url_refused(app_client: TestClient, settings: Settings,
                                        backend: str) -> None:
    local_only(backend)
    file_id = new_file(app_client)
    app_client.post(f"/api/v1/file/{file_id}/upload", content=b"original",
                    headers={"Content-Type": "text/plain"})
    before = fetch(app_client, file_id)
    objects = blob_objects(app_client)
    req = _ticket(app_client, file_id, 5)
    sig = dict(parse_qsl(urlsplit(req["url"]).query))["signature"]
    expires = dict(parse_qsl(urlsplit(req["url"]).query))["expires"]
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    other_file = new_file(app_client)
    tampered = [
        _with_query(req["url"], signature=flipped),
        _with_query(req["url"], signature=""),
        _with_query(req["url"], expires=str(int(expires) + 3_600_000)),
        _with_query(req["url"], expires="abc"),
        req["url"].split("?")[0],
        req["url"].replace(f"/file/{file_id}/", f"/file/{other_file}/"),
    ]
    for url in tampered:
        r = _put(app_client, req, b"hello", url=url)
        assert_envelope(r, 403, "NOT_AUTHORIZED")
    assert fetch(app_client, file_id) == before
    assert_download(app_client, file_id, b"original")
    assert fetch(app_client, other_file)["size"] in (None, 0)
    assert blob_objects(app_client) == objects
    # The untampered URL still works afterwards.
    assert _put(app_client, req, b"hello").status_code == 200
    assert_download(app_client, file_id, b"hello")


@pytest.mark.parametrize("sent", [0, 4, 6, 5000])
def test_direct_upload_wrong_size_refused(app_client: TestClient, settings: Settings,
                                          sent: int, backend: str) -> None:
    local_only(backend)
    file_id = new_file(app_client)
    app_client.post(f"/api/v1/file/{file_id}/upload", content=b"original",
                    headers={"Content-Type": "text/plain"})
    before = fetch(app_client, file_id)
    objects = blob_objects(app_client)
    req = _ticket(app_client, file_id, 5)
    r = _put(app_client, req, b"z" * sent)
    assert r.status_code in (400, 413), r.text
    assert_envelope(r, r.status_code)
    assert fetch(app_client, file_id) == before
    assert_download(app_client, file_id, b"original")
    assert blob_objects(app_client) == objects


def test_direct_upload_lying_content_length_refused(app_client: TestClient,
                                                    settings: Settings, backend: str) -> None:
    """The ticket's headers say 5 bytes; 5000 are sent anyway."""
    local_only(backend)
    file_id = new_file(app_client)
    req = _ticket(app_client, file_id, 5)
    plain = TestClient(app_client.app)
    r = plain.put(req["url"], content=b"z" * 5000, headers=req["headers"])
    assert_envelope(r, 413, "CONTENT_TOO_LARGE")
    assert fetch(app_client, file_id)["size"] in (None, 0)
    assert blob_objects(app_client) == set()


def test_direct_ticket_size_zero_or_bad_descriptor(app_client: TestClient) -> None:
    file_id = new_file(app_client)
    for bad in ({"type": "text/csv"}, {"type": "text/csv", "size": -1},
                {"type": "", "size": 3}, {"type": "text/csv", "size": "big"},
                {"size": 3}):
        r = app_client.post(f"/api/v1/file/{file_id}/upload", json={"file": bad})
        assert_envelope(r, 400, "BAD_REQUEST")


# --------------------------------------------------------------------------- over a real socket


def _raw_http(port: int, request: bytes) -> tuple[int, bytes]:
    """Send one request byte for byte; return (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_all_seed_forms_over_plain_http(tmp_path: Path) -> None:
    """Every form of seed 002 against the real server in a subprocess, over a socket."""
    with file_server({"/path/file.csv": (SEED_CSV, "text/csv")}) as fport:
        server = LiveServer(data_dir=tmp_path / "live",
                            env_extra={"DATALOFT_URL_FETCH_ALLOW": f"127.0.0.1:{fport}"})
        server.start()
        try:
            with server.client() as c:
                # Create: the valid form on both paths, the trailing-comma form is a 400.
                ids = []
                for path in ("/api/v1/dataset/file/create", "/api/v1/file/create"):
                    r = c.post(path, content=VALID_CREATE_BODY,
                               headers={"Content-Type": "application/json"})
                    assert r.status_code == 200, r.text
                    ids.append(r.json()["id"])
                    assert_envelope(c.post(path, content=SEED_CREATE_BODY,
                                           headers={"Content-Type": "application/json"}),
                                    400, "BAD_REQUEST")
                ids += [new_file(c) for _ in range(4)]
                f_url, f_data, f_multi, f_raw, f_direct, _ = ids

                r = c.post(f"/api/v1/file/{f_url}/upload",
                           json={"file": f"http://127.0.0.1:{fport}/path/file.csv"})
                assert r.status_code == 200, r.text
                r = c.post(f"/api/v1/file/{f_data}/upload", json={"file": SEED_DATA_URL})
                assert r.status_code == 200, r.text

                # Multipart and raw stream: written byte for byte onto the socket.
                body = multipart_body(SEED_CSV)
                status, resp = _raw_http(server.port, (
                    f"POST /api/v1/file/{f_multi}/upload HTTP/1.1\r\n"
                    f"Host: 127.0.0.1:{server.port}\r\n"
                    f"Authorization: Bearer {server.key}\r\n"
                    f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                ).encode() + body)
                assert status == 200, resp
                status, resp = _raw_http(server.port, (
                    f"POST /api/v1/file/{f_raw}/upload HTTP/1.1\r\n"
                    f"Host: 127.0.0.1:{server.port}\r\n"
                    f"Authorization: Bearer {server.key}\r\n"
                    f"Content-Type: text/csv\r\n"
                    f"Content-Length: {len(SEED_CSV)}\r\nConnection: close\r\n\r\n"
                ).encode() + SEED_CSV)
                assert status == 200, resp

                # Direct-to-source: the URL the server hands out is used as is.
                req = _ticket(c, f_direct, len(SEED_CSV))
                assert req["url"].startswith(server.url)
                with httpx.Client(timeout=30) as anon:
                    r = anon.put(req["url"], content=SEED_CSV, headers=req["headers"])
                    assert r.status_code == 200, r.text
                    r = anon.put(req["url"], content=SEED_CSV, headers=req["headers"])
                    assert_envelope(r, r.status_code)
                    assert 400 <= r.status_code < 500

                for file_id in (f_url, f_data, f_multi, f_raw, f_direct):
                    assert_download(c, file_id, SEED_CSV, "text/csv")
        finally:
            server.stop()
