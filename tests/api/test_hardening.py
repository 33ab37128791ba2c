"""Issue #11, findings 6-9 and 12 (uploads, malformed values): each test reproduces what the
red-team run found, on both backends.

- 6: a null visibility on update and a 64-bit `start` are 400s, never 500s.
- 7: a JSON body is the command form only as {"file": ...} alone; any other JSON uploaded raw
  is the file's content.
- 8: the Inconvo routes take up to 10,000,000 bytes per file (413 above).
- 9: a signed direct-upload URL never comes from the request's Host header.
- 12: zero bytes are refused the same way (400, reason empty_file) in every upload form.
- 14: an Inconvo upload makes its blob calls (S3 commit, read-back) off the event loop.
- A write that waits past DATALOFT_WRITE_WAIT_SECONDS for SQLite's one writer (a 1M-row
  sync's commit held it over 300 s: docs/benchmarks.md 10b) is a 503, not a 500.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from dataloft.app import create_app
from tests.conftest import KEY, BackendSettings, make_settings
from tests.support.api import assert_envelope
from tests.support.gated_proxy import GatedProxy
from tests.support.s3 import MotoS3

AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, backend_settings: BackendSettings
           ) -> Iterator[TestClient]:
    # No public URL: signed upload URLs must come from the configured host and port.
    settings = backend_settings(tmp_path_factory.mktemp("hardening"), public_url="",
                                host="10.9.8.7", port=4321)
    with TestClient(create_app(settings), headers=AUTH) as c:
        yield c


def new_file(client: TestClient, **fields: Any) -> str:
    r = client.post("/api/v1/file/create", json={"name": "f", **fields})
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def download(client: TestClient, file_id: str) -> bytes:
    r = client.get(f"/api/v1/file/{file_id}/download")
    assert r.status_code in (200, 204), r.text
    return r.content


# --------------------------------------------------------------------------- finding 6


def test_null_visibility_on_update_is_400(client: TestClient) -> None:
    fid = new_file(client, visibility="protected")
    r = client.post(f"/api/v1/file/{fid}/update", json={"visibility": None})
    assert_envelope(r, 400, "BAD_REQUEST")
    assert client.get(f"/api/v1/file/{fid}/fetch").json()["visibility"] == "protected"
    ds = client.post("/api/v1/dataset/create", json={"name": "d", "visibility": "public"})
    ds_id = ds.json()["id"]
    r = client.post(f"/api/v1/dataset/{ds_id}/update", json={"visibility": None})
    assert_envelope(r, 400, "BAD_REQUEST")
    assert client.get(f"/api/v1/dataset/{ds_id}/fetch").json()["visibility"] == "public"
    # On create, null is the default.
    r = client.post("/api/v1/dataset/create", json={"name": "d", "visibility": None})
    assert r.status_code == 200, r.text
    fetched = client.get(f"/api/v1/dataset/{r.json()['id']}/fetch").json()
    assert fetched["visibility"] == "private"


@pytest.mark.parametrize("start", ["9223372036854775808", "9223372036854775807",
                                   "99999999999999999999999", "-1", "x"])
def test_huge_start_on_knowledge_list_is_400(client: TestClient, start: str) -> None:
    agent = client.get("/api/v1/assistant/list").json()["items"][0]["id"]
    r = client.get(f"/api/assistants/{agent}/datasets", params={"start": start})
    assert_envelope(r, 400, "BAD_REQUEST")
    r = client.get(f"/api/assistants/{agent}/datasets", params={"start": "2147483647"})
    assert r.status_code == 200, r.text


# --------------------------------------------------------------------------- finding 7


@pytest.mark.parametrize("body", [
    b'[1, 2, {"file": "https://example.com/x"}]',
    b'{"file": "https://example.com/x", "name": "not a command"}',
    b'{"file": {"type": "text/csv", "size": 3}, "other": 1}',
    b'{"rows": [{"a": 1}]}',
    b'"just a string"',
    b'{"file": "data:text/plain;base64,aGk=", "also": true}',
])
def test_other_json_bodies_are_the_files_content(client: TestClient, body: bytes) -> None:
    fid = new_file(client)
    r = client.post(f"/api/v1/file/{fid}/upload", content=body,
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json() == {"id": fid}
    assert download(client, fid) == body
    fetched = client.get(f"/api/v1/file/{fid}/fetch").json()
    assert fetched["size"] == len(body) and fetched["type"] == "application/json"


def test_the_command_form_is_an_object_with_file_alone(client: TestClient) -> None:
    fid = new_file(client)
    url = "data:text/csv;base64," + base64.b64encode(b"a,b\n1,2\n").decode()
    r = client.post(f"/api/v1/file/{fid}/upload", content=json.dumps({"file": url}),
                    headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 200, r.text
    assert download(client, fid) == b"a,b\n1,2\n"


# --------------------------------------------------------------------------- finding 8

LIMIT = 10_000_000


def _inconvo(client: TestClient, size: int, name: str) -> Any:
    row = b"k,v\n"
    body = row + b"x," + b"y" * (size - len(row) - 3) + b"\n"
    assert len(body) == size
    return client.post("/api/v1/datasets/user/big-uploader",
                       files={"file": (name, body, "text/csv")})


def test_inconvo_accepts_ten_megabytes(client: TestClient) -> None:
    r = _inconvo(client, LIMIT, "exactly.csv")
    assert r.status_code == 200, r.text
    r = _inconvo(client, LIMIT + 1, "over.csv")
    assert_envelope(r, 413, "CONTENT_TOO_LARGE")
    names = client.get("/api/v1/datasets/user/big-uploader").json()["files"]
    assert names == ["exactly.csv"]


# --------------------------------------------------------------------------- finding 9


def test_direct_upload_url_ignores_the_host_header(client: TestClient, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("S3 presigns its own bucket URL")
    fid = new_file(client)
    r = client.post(f"/api/v1/file/{fid}/upload", headers={"Host": "evil.example:666"},
                    json={"file": {"type": "text/csv", "size": 3, "name": "a.csv"}})
    assert r.status_code == 200, r.text
    url = r.json()["uploadRequest"]["url"]
    assert url.startswith(f"http://10.9.8.7:4321/api/v1/file/{fid}/upload/"), url
    # The URL is the credential and still works (the test client ignores the host).
    put = TestClient(client.app).put(url, content=b"a,b", headers={"Content-Type": "text/csv"})
    assert put.status_code == 200, put.text
    assert download(client, fid) == b"a,b"


def test_public_url_wins_when_set(tmp_path: Path) -> None:
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, public_url="https://files.example.org/base/")
    with TestClient(create_app(settings), headers=AUTH) as c:
        fid = new_file(c)
        r = c.post(f"/api/v1/file/{fid}/upload", headers={"Host": "evil.example"},
                   json={"file": {"type": "text/csv", "size": 3}})
        assert r.json()["uploadRequest"]["url"].startswith(
            f"https://files.example.org/base/api/v1/file/{fid}/upload/")


# --------------------------------------------------------------------------- finding 12 (empty)

BOUNDARY = "----empty"


def _multipart(content: bytes, filename: str = "e.csv") -> tuple[bytes, dict[str, str]]:
    body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{filename}\"\r\nContent-Type: text/csv\r\n\r\n").encode() \
        + content + f"\r\n--{BOUNDARY}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def assert_empty_file(r: Any) -> None:
    assert_envelope(r, 400, "BAD_REQUEST")
    assert r.json().get("reason") == "empty_file", r.json()


@pytest.mark.parametrize("form", ["raw", "multipart", "data-url", "data-url-plain",
                                  "direct", "inconvo-user", "inconvo-context"])
def test_zero_bytes_are_refused_the_same_way_everywhere(client: TestClient, form: str) -> None:
    fid = new_file(client)
    path = f"/api/v1/file/{fid}/upload"
    if form == "raw":
        r = client.post(path, content=b"", headers={"Content-Type": "text/csv"})
    elif form == "multipart":
        body, headers = _multipart(b"")
        r = client.post(path, content=body, headers=headers)
    elif form == "data-url":
        r = client.post(path, json={"file": "data:text/csv;base64,"})
    elif form == "data-url-plain":
        r = client.post(path, json={"file": "data:text/csv,"})
    elif form == "direct":
        r = client.post(path, json={"file": {"type": "text/csv", "size": 0, "name": "e.csv"}})
    else:
        body, headers = _multipart(b"")
        where = "user/empty-u" if form == "inconvo-user" else "context/team/empty"
        r = client.post(f"/api/v1/datasets/{where}", content=body, headers=headers)
        assert_empty_file(r)
        assert client.get(f"/api/v1/datasets/{where}").json().get("files", []) == []
        return
    assert_empty_file(r)
    assert client.get(f"/api/v1/file/{fid}/fetch").json()["size"] in (None, 0)


def test_zero_bytes_from_a_url_are_refused(client: TestClient) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    class Empty(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self.send_response(200)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Empty)
    Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        settings_allow = client.app.state.ctx.settings  # type: ignore[attr-defined]
        object.__setattr__(settings_allow, "url_fetch_allow", f"127.0.0.1:{port}")
        fid = new_file(client)
        r = client.post(f"/api/v1/file/{fid}/upload",
                        json={"file": f"http://127.0.0.1:{port}/e.csv"})
        assert_empty_file(r)
    finally:
        server.shutdown()


def test_zero_bytes_on_the_openai_files_route(client: TestClient) -> None:
    r = client.post("/v1/files", data={"purpose": "assistants"},
                    files={"file": ("e.txt", b"", "text/plain")})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "empty_file", r.json()


# --------------------------------------------------------------------------- finding 14


def test_inconvo_upload_blob_calls_leave_the_event_loop_free(
        tmp_path: Path, moto_s3_server: MotoS3) -> None:
    """Each S3 call of an Inconvo upload is held at a gate in front of the bucket; while it
    waits, /healthz must answer. A call made on the event loop would keep /healthz waiting
    for the gate (an ordering, not a timing: the gate opens only after /healthz answers)."""
    bucket = moto_s3_server.new_bucket()
    with GatedProxy(moto_s3_server.endpoint) as proxy:
        blob_url = f"s3://{bucket}?endpoint={proxy.url}&region={moto_s3_server.region}"
        with TestClient(create_app(make_settings(tmp_path, blob_url=blob_url)),
                        headers=AUTH) as c:
            result: list[Any] = []
            upload = threading.Thread(target=lambda: result.append(c.post(
                "/api/v1/datasets/user/loop-user",
                files={"file": ("a.csv", b"k,v\ncobalt,1\n", "text/csv")})), daemon=True)
            proxy.hold = True
            upload.start()
            calls = []
            while upload.is_alive():
                if (held := proxy.next_held(timeout=0.5)) is None:
                    continue
                calls.append(f"{held.method} {held.path.split('?')[0]}")
                health: list[int] = []
                probe = threading.Thread(
                    target=lambda out=health: out.append(c.get("/healthz").status_code),
                    daemon=True)
                probe.start()
                probe.join(60)  # only a failing run waits this long
                assert health == [200], f"/healthz waited while {calls[-1]} was held"
                proxy.release(held)
            proxy.release_all()
            upload.join(60)
            assert result and result[0].status_code == 200, result and result[0].text
            assert any(call.startswith("PUT") for call in calls), calls  # the commit
            assert any(call.startswith("GET") for call in calls), calls  # the read-back


# --------------------------------------------------------------------------- writer busy


def test_a_write_waiting_past_its_limit_for_the_writer_is_503(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, write_wait_seconds=0.5)
    with TestClient(create_app(settings), headers=AUTH) as c:
        db = c.app.state.ctx.db  # type: ignore[attr-defined]
        with db.write() as held:  # the writer, taken as a long commit takes it
            held.execute(text("SELECT 1"))
            r = c.post("/api/v1/file/create", json={"name": "late.txt"})
            assert_envelope(r, 503, "SERVICE_BUSY")
            assert r.headers["retry-after"] == "5"
            assert c.get("/api/v1/file/list").status_code == 200  # reads go on
        r = c.post("/api/v1/file/create", json={"name": "late.txt"})
        assert r.status_code == 200, r.text
