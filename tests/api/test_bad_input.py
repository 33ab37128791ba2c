"""Bad input never gets a 500 and never stores anything.

Every error is the {"message", "code"} envelope; a refused upload leaves the blob store
(no new object, no leftover temp file) and the file's size/sha256 exactly as they were.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from dataloft.app import create_app
from dataloft.config import Settings
from dataloft.keys.service import create_key, default_org_id, revoke_key
from dataloft.storage.blobs.local import LocalBlobStore
from tests.conftest import KEY
from tests.support.api import assert_envelope
from tests.support.live import LiveServer

AUTH = {"Authorization": f"Bearer {KEY}"}
CAP = 1024
BOUNDARY = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
ORIGINAL = b"Header1,Header2\nData1,Data2\n"
OVER = os.urandom(CAP * 2)


# --------------------------------------------------------------------------- helpers


def multipart_body(content: bytes, *, name: str = "file", filename: str = "file.csv",
                   content_type: str = "text/csv") -> bytes:
    return (f"--{BOUNDARY}\r\n"
            f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n").encode() + content + \
        f"\r\n--{BOUNDARY}--\r\n".encode()


MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def data_url(content: bytes, ctype: str = "text/csv") -> str:
    return f"data:{ctype};base64,{base64.b64encode(content).decode()}"


def fetch(client: Any, file_id: str) -> dict[str, Any]:
    r = client.get(f"/api/v1/file/{file_id}/fetch")
    assert r.status_code == 200, r.text
    return dict(r.json())


@dataclass
class Store:
    """The app's blob store seen through its port (a directory or a bucket)."""
    blobs: Any

    def objects(self) -> set[str]:
        return set(self.blobs.keys())

    def temps(self) -> list[Any]:
        """Unfinished writes: temp files of a directory, incomplete multipart uploads of S3."""
        if isinstance(self.blobs, LocalBlobStore):
            return list((self.blobs.root / "tmp").iterdir())
        return list(self.blobs.client.list_multipart_uploads(
            Bucket=self.blobs.bucket, Prefix=self.blobs.prefix).get("Uploads", []))


@dataclass
class Seeded:
    """A file that already has content, and everything that must stay as it is."""
    client: Any
    store: Store
    file_id: str
    meta: dict[str, Any]
    objects: set[str]

    def assert_unchanged(self) -> None:
        assert fetch(self.client, self.file_id) == self.meta
        assert self.store.objects() - self.objects == set(), "a refused upload left a blob"
        assert self.store.temps() == [], "a refused upload left a temp file behind"
        r = self.client.get(f"/api/v1/file/{self.file_id}/download")
        assert r.status_code == 200 and r.content == ORIGINAL


def seed_file(client: Any, store: Store) -> Seeded:
    file_id = client.post("/api/v1/file/create", json={"name": "f.csv"}).json()["id"]
    r = client.post(f"/api/v1/file/{file_id}/upload", content=ORIGINAL,
                    headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    return Seeded(client, store, file_id, fetch(client, file_id), store.objects())


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server API
        parts = urlsplit(self.path)
        if parts.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", parse_qs(parts.query)["to"][0])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = {"/ok.csv": ORIGINAL, "/big.csv": OVER, "/big-nolength.csv": OVER}.get(parts.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        if parts.path != "/big-nolength.csv":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def origin() -> Iterator[int]:
    """An allow-listed local HTTP server: files, and redirects to anywhere (?to=URL)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def app_with(make: Callable[..., Settings], tmp_path: Path, **overrides: object
             ) -> Iterator[tuple[TestClient, Store]]:
    settings = make(tmp_path, **overrides)
    with TestClient(create_app(settings), headers=AUTH) as client:
        yield client, Store(client.app.state.ctx.blobs)  # type: ignore[attr-defined]


# One app per module (starting one costs ~0.5 s): every test seeds its own file and checks
# its own before/after, so tests stay independent.


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory, origin: int, backend_settings: Any
          ) -> Iterator[tuple[TestClient, Store]]:
    """The app with a 1 KiB upload cap, the local origin allow-listed, short fetch timeout."""
    with app_with(backend_settings, tmp_path_factory.mktemp("small"), max_upload_bytes=CAP,
                  url_fetch_allow=f"127.0.0.1:{origin}", url_fetch_timeout=3) as pair:
        yield pair


@pytest.fixture(scope="module")
def default_app(tmp_path_factory: pytest.TempPathFactory, backend_settings: Any
                ) -> Iterator[tuple[TestClient, Store]]:
    """The app with default settings (100 MB cap, empty allow-list)."""
    with app_with(backend_settings, tmp_path_factory.mktemp("default")) as pair:
        yield pair


@pytest.fixture
def app_client(default_app: tuple[TestClient, Store]) -> TestClient:
    return default_app[0]


@pytest.fixture
def seeded(default_app: tuple[TestClient, Store]) -> Seeded:
    return seed_file(*default_app)


# --------------------------------------------------------------------------- size cap: 413


@pytest.mark.parametrize("form", ["raw", "multipart", "data-url", "json-url",
                                  "json-url-no-length", "direct-ticket"])
def test_body_over_cap_is_413(small: tuple[TestClient, Store], origin: int, form: str) -> None:
    client, store = small
    seeded = seed_file(client, store)
    url = f"/api/v1/file/{seeded.file_id}/upload"
    if form == "raw":
        r = client.post(url, content=OVER, headers={"Content-Type": "text/csv"})
    elif form == "multipart":
        r = client.post(url, content=multipart_body(OVER), headers=MULTIPART)
    elif form == "data-url":
        r = client.post(url, json={"file": data_url(OVER)})
    elif form == "json-url":
        r = client.post(url, json={"file": f"http://127.0.0.1:{origin}/big.csv"})
    elif form == "json-url-no-length":
        r = client.post(url, json={"file": f"http://127.0.0.1:{origin}/big-nolength.csv"})
    else:
        r = client.post(url, json={"file": {"type": "text/csv", "size": CAP + 1,
                                             "name": "large_file.csv"}})
    assert_envelope(r, 413, "CONTENT_TOO_LARGE")
    seeded.assert_unchanged()


def test_exactly_at_cap_is_accepted(small: tuple[TestClient, Store]) -> None:
    client, store = small
    seeded = seed_file(client, store)
    content = OVER[:CAP]
    url = f"/api/v1/file/{seeded.file_id}/upload"
    assert client.post(url, content=content, headers={"Content-Type": "text/csv"}).status_code \
        == 200
    assert client.post(url, content=multipart_body(content), headers=MULTIPART).status_code \
        == 200
    assert client.post(url, json={"file": data_url(content)}).status_code == 200
    assert client.get(f"/api/v1/file/{seeded.file_id}/download").content == content


@pytest.mark.parametrize("form", ["raw", "multipart", "json"])
def test_lying_content_length_is_413(small: tuple[TestClient, Store], form: str) -> None:
    """Content-Length says 10 bytes; the ASGI body carries 5000 (in process, what is sent is
    what the app receives)."""
    client, store = small
    seeded = seed_file(client, store)
    body = {"raw": OVER * 3, "multipart": multipart_body(OVER * 3),
            "json": json.dumps({"file": data_url(OVER * 40)}).encode()}[form]
    assert len(body) >= 5000
    ctype = {"raw": "text/csv", "multipart": MULTIPART["Content-Type"],
             "json": "application/json"}[form]
    r = client.post(f"/api/v1/file/{seeded.file_id}/upload", content=body,
                    headers={"Content-Type": ctype, "Content-Length": "10"})
    assert r.request.headers["content-length"] == "10"
    assert_envelope(r, 413, "CONTENT_TOO_LARGE")
    seeded.assert_unchanged()


@pytest.mark.parametrize("form", ["raw", "multipart", "json"])
def test_missing_content_length_chunked_is_413(small: tuple[TestClient, Store],
                                               form: str) -> None:
    client, store = small
    seeded = seed_file(client, store)
    body = {"raw": OVER * 3, "multipart": multipart_body(OVER * 3),
            "json": json.dumps({"file": data_url(OVER * 40)}).encode()}[form]
    ctype = {"raw": "text/csv", "multipart": MULTIPART["Content-Type"],
             "json": "application/json"}[form]

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 512):
            yield body[i:i + 512]

    r = client.post(f"/api/v1/file/{seeded.file_id}/upload", content=chunks(),
                    headers={"Content-Type": ctype})
    assert "content-length" not in r.request.headers
    assert_envelope(r, 413, "CONTENT_TOO_LARGE")
    seeded.assert_unchanged()


def _chunked_request(port: int, key: str, path: str, ctype: str, body: bytes) -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: {ctype}\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
    chunks = b"".join(f"{len(body[i:i + 700]):x}\r\n".encode() + body[i:i + 700] + b"\r\n"
                      for i in range(0, len(body), 700))
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        # The server may answer 413 and close before the whole body is sent: the send then
        # fails (reset, broken pipe), and the answer waits in the receive queue below.
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            s.sendall(head + chunks + b"0\r\n\r\n")
        data = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := s.recv(65536):
                data += chunk
    return data


def test_chunked_over_cap_over_a_real_socket_is_413(tmp_path: Path) -> None:
    server = LiveServer(data_dir=tmp_path / "d", env_extra={"DATALOFT_MAX_UPLOAD_BYTES": "1024"})
    server.start()
    try:
        with server.client() as c:
            store = Store(LocalBlobStore(Settings(data_dir=tmp_path / "d").blob_dir))
            seeded = seed_file(c, store)
            for ctype, body in (("text/csv", OVER * 4),
                                (MULTIPART["Content-Type"], multipart_body(OVER * 4)),
                                ("application/json",
                                 json.dumps({"file": data_url(OVER * 4)}).encode())):
                raw = _chunked_request(server.port, server.key,
                                       f"/api/v1/file/{seeded.file_id}/upload", ctype, body)
                head, _, payload = raw.partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 413"), raw[:300]
                if b"transfer-encoding: chunked" in head.lower():
                    payload = _dechunk(payload)
                assert json.loads(payload)["code"] == "CONTENT_TOO_LARGE"
                seeded.assert_unchanged()
            # A JSON route with a body over its own cap, chunked: 413 as well.
            raw = _chunked_request(server.port, server.key, "/api/v1/file/create",
                                   "application/json", b" " * (9 * 1024 * 1024))
            assert raw.startswith(b"HTTP/1.1 413"), raw[:300]
        assert "Traceback" not in server.log()
    finally:
        server.stop()


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2:]
    return out


def test_json_routes_refuse_bodies_over_their_cap(app_client: TestClient) -> None:
    """The non-upload routes have their own 8 MiB cap: declared, chunked, and on paths whose
    ids merely contain "upload"."""
    big = b" " * (9 * 1024 * 1024)
    headers = {"Content-Type": "application/json"}
    assert_envelope(app_client.post("/api/v1/file/create", content=big, headers=headers),
                    413, "CONTENT_TOO_LARGE")
    assert_envelope(app_client.post("/api/v1/file/create", content=iter([big]),
                                    headers=headers), 413, "CONTENT_TOO_LARGE")
    for path in ("/api/v1/dataset/upload/record/create", "/api/v1/file/uploadx/update",
                 "/api/v1/dataset/x/upload/update"):
        assert_envelope(app_client.post(path, content=big, headers=headers), 413,
                        "CONTENT_TOO_LARGE")


# --------------------------------------------------------------------------- auth


def _key(client: TestClient, permissions: list[str], revoked: bool = False) -> str:
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    with ctx.db.write() as session:
        key, raw = create_key(session, default_org_id(session), permissions=permissions)
        if revoked:
            revoke_key(session, key.id)
    return raw


def test_missing_or_wrong_key_is_401(app_client: TestClient, seeded: Seeded) -> None:
    revoked = _key(app_client, ["admin"], revoked=True)
    fid = seeded.file_id
    for headers in ({}, {"Authorization": "Bearer dlk_wrong_key_0123456789abcdef"},
                    {"Authorization": f"Basic {KEY}"}, {"Authorization": "Bearer "},
                    {"Authorization": KEY}, {"Authorization": f"Bearer {revoked}"}):
        anon = TestClient(app_client.app, headers=headers)
        for method, path, kwargs in (
            ("GET", "/api/v1/file/list", {}),
            ("GET", f"/api/v1/file/{fid}/fetch", {}),
            ("GET", f"/api/v1/file/{fid}/download", {}),
            ("POST", "/api/v1/file/create", {"json": {"name": "x"}}),
            ("POST", "/api/v1/dataset/file/create", {"json": {"name": "x"}}),
            ("POST", f"/api/v1/file/{fid}/upload",
             {"content": b"new", "headers": {"Content-Type": "text/csv"}}),
            ("POST", f"/api/v1/file/{fid}/upload", {"json": {"file": data_url(b"new")}}),
            ("POST", f"/api/v1/file/{fid}/delete", {}),
            ("POST", "/api/v1/dataset/create", {"json": {}}),
        ):
            r = anon.request(method, path, **kwargs)
            assert_envelope(r, 401, "NOT_AUTHENTICATED")
    seeded.assert_unchanged()


def test_key_without_permission_is_403(app_client: TestClient, seeded: Seeded) -> None:
    limited = _key(app_client, ["datasets:write"])
    datasets_only = TestClient(app_client.app, headers={"Authorization": f"Bearer {limited}"})
    fid = seeded.file_id
    before = app_client.get("/api/v1/file/list", params={"take": 100}).json()
    for method, path, kwargs in (
        ("POST", "/api/v1/file/create", {"json": {"name": "x"}}),
        ("POST", "/api/v1/dataset/file/create", {"json": {"name": "x"}}),
        ("POST", f"/api/v1/file/{fid}/update", {"json": {"name": "renamed"}}),
        ("POST", f"/api/v1/file/{fid}/delete", {}),
        ("POST", f"/api/v1/file/{fid}/upload",
         {"content": b"new", "headers": {"Content-Type": "text/csv"}}),
        ("POST", f"/api/v1/file/{fid}/upload", {"content": multipart_body(b"new"),
                                                "headers": MULTIPART}),
        ("POST", f"/api/v1/file/{fid}/upload", {"json": {"file": data_url(b"new")}}),
        ("POST", f"/api/v1/file/{fid}/upload",
         {"json": {"file": {"type": "text/csv", "size": 3, "name": "a.csv"}}}),
    ):
        assert_envelope(datasets_only.request(method, path, **kwargs), 403, "NOT_AUTHORIZED")
    # Reading is allowed; nothing was changed or created.
    assert datasets_only.get(f"/api/v1/file/{fid}/fetch").status_code == 200
    assert app_client.get("/api/v1/file/list", params={"take": 100}).json() == before
    seeded.assert_unchanged()

    limited = _key(app_client, ["files:write"])
    files_only = TestClient(app_client.app, headers={"Authorization": f"Bearer {limited}"})
    assert_envelope(files_only.post("/api/v1/dataset/create", json={}), 403, "NOT_AUTHORIZED")
    assert files_only.post("/api/v1/file/create", json={}).status_code == 200


# --------------------------------------------------------------------------- unknown ids: 404


@pytest.fixture
def world(app_client: TestClient, seeded: Seeded) -> dict[str, str]:
    ds = app_client.post("/api/v1/dataset/create", json={"name": "ds"}).json()["id"]
    rec = app_client.post(f"/api/v1/dataset/{ds}/record/create", json={"text": "hello"})
    assert rec.status_code == 200, rec.text
    return {"file": seeded.file_id, "ds": ds, "rec": rec.json()["id"]}


def test_unknown_ids_are_404_on_every_route(app_client: TestClient, world: dict[str, str],
                                            seeded: Seeded) -> None:
    f, d, rec = world["file"], world["ds"], world["rec"]
    nf, nd, nr = "file_doesnotexist", "ds_doesnotexist", "rec_doesnotexist"
    routes: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", f"/api/v1/file/{nf}/fetch", {}),
        ("POST", f"/api/v1/file/{nf}/update", {"json": {"name": "x"}}),
        ("POST", f"/api/v1/file/{nf}/delete", {"json": {}}),
        ("POST", f"/api/v1/file/{nf}/upload",
         {"content": ORIGINAL, "headers": {"Content-Type": "text/csv"}}),
        ("POST", f"/api/v1/file/{nf}/upload", {"content": multipart_body(ORIGINAL),
                                               "headers": MULTIPART}),
        ("POST", f"/api/v1/file/{nf}/upload", {"json": {"file": data_url(ORIGINAL)}}),
        ("POST", f"/api/v1/file/{nf}/upload",
         {"json": {"file": {"type": "text/csv", "size": 3, "name": "a.csv"}}}),
        ("GET", f"/api/v1/file/{nf}/download", {}),
        ("POST", f"/api/v1/file/{nf}/sync", {"json": {}}),
        ("GET", f"/api/v1/dataset/{nd}/fetch", {}),
        ("POST", f"/api/v1/dataset/{nd}/update", {"json": {"name": "x"}}),
        ("POST", f"/api/v1/dataset/{nd}/delete", {"json": {}}),
        ("GET", f"/api/v1/dataset/{nd}/file/list", {}),
        ("POST", f"/api/v1/dataset/{nd}/file/{f}/attach", {"json": {}}),
        ("POST", f"/api/v1/dataset/{d}/file/{nf}/attach", {"json": {}}),
        ("POST", f"/api/v1/dataset/{nd}/file/{f}/detach", {"json": {}}),
        ("POST", f"/api/v1/dataset/{d}/file/{nf}/detach", {"json": {}}),
        ("POST", f"/api/v1/dataset/{d}/file/{f}/detach", {"json": {}}),  # not attached
        ("POST", f"/api/v1/dataset/{nd}/file/{f}/sync", {"json": {}}),
        ("POST", f"/api/v1/dataset/{d}/file/{nf}/sync", {"json": {}}),
        ("POST", f"/api/v1/dataset/{nd}/search", {"json": {"search": "hello"}}),
        ("GET", f"/api/v1/dataset/{nd}/event/list", {}),
        ("POST", f"/api/v1/dataset/{nd}/record/create", {"json": {"text": "x"}}),
        ("GET", f"/api/v1/dataset/{nd}/record/list", {}),
        ("GET", f"/api/v1/dataset/{nd}/record/{rec}/fetch", {}),
        ("GET", f"/api/v1/dataset/{d}/record/{nr}/fetch", {}),
        ("POST", f"/api/v1/dataset/{nd}/record/{rec}/update", {"json": {"text": "y"}}),
        ("POST", f"/api/v1/dataset/{d}/record/{nr}/update", {"json": {"text": "y"}}),
        ("POST", f"/api/v1/dataset/{nd}/record/{rec}/delete", {"json": {}}),
        ("POST", f"/api/v1/dataset/{d}/record/{nr}/delete", {"json": {}}),
    ]
    for method, path, kwargs in routes:
        r = app_client.request(method, path, **kwargs)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        assert_envelope(r, 404, "NOT_FOUND")
    # The known objects are untouched.
    assert app_client.get(f"/api/v1/dataset/{d}/record/{rec}/fetch").json()["text"] == "hello"
    seeded.assert_unchanged()


# --------------------------------------------------------------------------- malformed JSON


def _json_post_routes(w: dict[str, str]) -> list[str]:
    f, d, rec = w["file"], w["ds"], w["rec"]
    return ["/api/v1/file/create", "/api/v1/dataset/file/create", f"/api/v1/file/{f}/update",
            f"/api/v1/file/{f}/upload", "/api/v1/dataset/create", f"/api/v1/dataset/{d}/update",
            f"/api/v1/dataset/{d}/file/{f}/attach", f"/api/v1/dataset/{d}/file/{f}/detach",
            f"/api/v1/dataset/{d}/search", f"/api/v1/dataset/{d}/record/create",
            f"/api/v1/dataset/{d}/record/{rec}/update"]


MALFORMED = [b'{"name": ', b'{ "name": "My File", "description": "A description", }',
             b"{'name': 'x'}", b'{"name": "x"} trailing', b"\xff\xfe{}", b"",
             b"[" * 100_000, b'{"a":' * 100_000]


def test_malformed_json_is_400_on_every_json_post_route(app_client: TestClient,
                                                        world: dict[str, str],
                                                        seeded: Seeded) -> None:
    before_files = app_client.get("/api/v1/file/list", params={"take": 100}).json()
    before_ds = app_client.get("/api/v1/dataset/list", params={"take": 100}).json()
    for path in _json_post_routes(world):
        for body in MALFORMED:
            if body == b"" and not path.endswith(("/upload", "/search", "/record/create")):
                continue  # an empty body is "no body": those routes have all-optional fields
            r = app_client.post(path, content=body, headers={"Content-Type": "application/json"})
            assert r.status_code == 400, (path, body[:30], r.status_code, r.text[:200])
            assert_envelope(r, 400, "BAD_REQUEST")
    assert app_client.get("/api/v1/file/list", params={"take": 100}).json() == before_files
    assert app_client.get("/api/v1/dataset/list", params={"take": 100}).json() == before_ds
    seeded.assert_unchanged()


def test_non_object_json_bodies_are_400(app_client: TestClient, world: dict[str, str],
                                       seeded: Seeded) -> None:
    before_files = app_client.get("/api/v1/file/list", params={"take": 100}).json()
    for path in _json_post_routes(world):
        if path.endswith("/upload"):
            continue  # there, any JSON but {"file": ...} is the file's content (test_hardening)
        for body in ([], "x", 1, [{"name": "x"}], True):
            r = app_client.post(path, json=body)
            assert r.status_code == 400, (path, body, r.status_code, r.text[:200])
            assert_envelope(r, 400, "BAD_REQUEST")
    assert app_client.get("/api/v1/file/list", params={"take": 100}).json() == before_files
    seeded.assert_unchanged()


@pytest.mark.parametrize("body", [
    {"file": None}, {"file": ""}, {"file": 5}, {"file": []}, {"file": True},
    {"file": "ftp://example.com/a.csv"}, {"file": "file:///etc/passwd"},
    {"file": "/etc/passwd"}, {"file": "javascript:alert(1)"},
    {"file": {"type": "text/csv"}}, {"file": {"type": "text/csv", "size": -1}},
    {"file": {"type": "text/csv\r\nX-Injected: 1", "size": 3}},
    {"file": {"type": "текст/csv", "size": 3}}, {"file": {"type": "csv", "size": 3}},
])
def test_bad_upload_json_is_400(app_client: TestClient, seeded: Seeded,
                                body: dict[str, Any]) -> None:
    r = app_client.post(f"/api/v1/file/{seeded.file_id}/upload", json=body)
    assert_envelope(r, 400, "BAD_REQUEST")
    seeded.assert_unchanged()


# --------------------------------------------------------------------------- data URLs


@pytest.mark.parametrize("url", [
    "data:text/csv;base64SGVhZGVyMSxIZWFkZXIyCg==",  # no comma
    "data:text/csv;base64,SGVh!!ZGVy",  # bad base64
    "data:text/csv;base64,SGVh ZGVy",  # whitespace is not base64
    "data:text/csv;base64,=SGVh",  # padding first
    "data:text/csv;base65,SGVhZGVyMSxIZWFkZXIyCg==",  # not the base64 marker
    "data:text/csv;base64x,SGVhZGVyMSxIZWFkZXIyCg==",  # not the base64 marker
    "data:text/csv;base64;charset=utf-8,SGVh",  # the marker must come last
    "data:text/csv;;base64,SGVh",  # empty parameter
    "data:text csv;base64,SGVh",  # not a media type
    "data:",  # nothing at all
    "data:text/csv" + ";x=" + "a" * 2000 + ",SGVh",  # header too long to be sane
])
def test_bad_data_urls_are_400(app_client: TestClient, seeded: Seeded, url: str) -> None:
    r = app_client.post(f"/api/v1/file/{seeded.file_id}/upload", json={"file": url})
    assert_envelope(r, 400, "BAD_REQUEST")
    seeded.assert_unchanged()


def test_plain_data_url_keeps_binary_bytes(app_client: TestClient, seeded: Seeded) -> None:
    """Percent-escapes in a non-base64 data URL are bytes, not UTF-8 text."""
    raw = bytes(range(256))
    url = "data:application/octet-stream," + quote(raw, safe="")
    r = app_client.post(f"/api/v1/file/{seeded.file_id}/upload", json={"file": url})
    assert r.status_code == 200, r.text
    assert app_client.get(f"/api/v1/file/{seeded.file_id}/download").content == raw


# --------------------------------------------------------------------------- multipart


@pytest.mark.parametrize("case", ["no-boundary", "wrong-boundary", "truncated-in-data",
                                  "no-closing-boundary", "no-file-part", "garbage", "empty"])
def test_bad_multipart_is_400(app_client: TestClient, seeded: Seeded, case: str) -> None:
    good = multipart_body(b"Header1,Header2\nData1,Data2,Data3,Data4\n")
    ctype = MULTIPART["Content-Type"]
    body = {
        "no-boundary": good, "wrong-boundary": good,
        "truncated-in-data": good[:good.index(b"Data3")],
        "no-closing-boundary": good[:-len(f"--{BOUNDARY}--\r\n")],
        "no-file-part": (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="x"\r\n\r\n'
                         f"y\r\n--{BOUNDARY}--\r\n").encode(),
        "garbage": b"this is not multipart", "empty": b"",
    }[case]
    if case == "no-boundary":
        ctype = "multipart/form-data"
    elif case == "wrong-boundary":
        ctype = "multipart/form-data; boundary=somethingelse"
    r = app_client.post(f"/api/v1/file/{seeded.file_id}/upload", content=body,
                        headers={"Content-Type": ctype})
    assert_envelope(r, 400, "BAD_REQUEST")
    seeded.assert_unchanged()


def test_multipart_odd_part_headers_are_served_safely(app_client: TestClient,
                                                      seeded: Seeded) -> None:
    """A part's Content-Type or filename that cannot go back out in a header is dropped or
    cleaned, not stored to break the download later."""
    body = multipart_body(b"abc", content_type="текст/csv",
                          filename="../../etc/pass\x01wd.csv")
    fid = app_client.post("/api/v1/file/create", json={}).json()["id"]
    r = app_client.post(f"/api/v1/file/{fid}/upload", content=body, headers=MULTIPART)
    assert r.status_code == 200, r.text
    meta = fetch(app_client, fid)
    assert meta["name"] == "passwd.csv"
    assert meta["type"] == "application/octet-stream"
    r = app_client.get(f"/api/v1/file/{fid}/download")
    assert r.status_code == 200 and r.content == b"abc"


def test_raw_empty_body_is_400(app_client: TestClient, seeded: Seeded) -> None:
    r = app_client.post(f"/api/v1/file/{seeded.file_id}/upload", content=b"",
                        headers={"Content-Type": "text/csv"})
    assert_envelope(r, 400, "BAD_REQUEST")
    seeded.assert_unchanged()


# --------------------------------------------------------------------------- direct PUT URLs


def test_direct_put_with_garbage_query_is_403(app_client: TestClient, seeded: Seeded,
                                              backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("our own signed PUT URL is the local adapter's; S3 signs its own")
    r = app_client.post(f"/api/v1/file/{seeded.file_id}/upload",
                        json={"file": {"type": "text/csv", "size": 3, "name": "a.csv"}})
    url = r.json()["uploadRequest"]["url"]
    base, query = url.split("?")
    q = dict(p.split("=") for p in query.split("&"))
    anon = TestClient(app_client.app)
    for bad in (f"expires=%C2%B2{q['expires']}&signature={q['signature']}",  # '²'.isdigit()
                f"expires={'9' * 5000}&signature={q['signature']}",  # int() digit limit
                f"expires=-1&signature={q['signature']}",
                f"expires={q['expires']}&signature=%C3%A9{q['signature'][1:]}",  # non-ASCII
                f"expires={q['expires']}&signature={q['signature'].upper()}",
                f"expires={q['expires']}", ""):
        r = anon.put(f"{base}?{bad}", content=b"new", headers={"Content-Type": "text/csv"})
        assert_envelope(r, 403, "NOT_AUTHORIZED")
    seeded.assert_unchanged()


def test_direct_ticket_name_is_replayable_as_a_header(app_client: TestClient) -> None:
    fid = app_client.post("/api/v1/file/create", json={}).json()["id"]
    r = app_client.post(f"/api/v1/file/{fid}/upload", json={"file": {
        "type": "text/csv", "size": 3, "name": 'ümlaut "quoted"\r\nX-Evil: 1.csv'}})
    assert r.status_code == 200, r.text
    req = r.json()["uploadRequest"]
    disposition = req["headers"]["Content-Disposition"]
    assert disposition.isascii() and "\r" not in disposition and "\n" not in disposition
    if req["url"].startswith("http://testserver/"):
        r = TestClient(app_client.app).put(req["url"], content=b"a,b", headers=req["headers"])
    else:  # a presigned PUT to the bucket
        r = httpx.put(req["url"], content=b"a,b", headers=req["headers"])
    assert r.status_code == 200, r.text
    r = app_client.get(f"/api/v1/file/{fid}/download")
    assert r.status_code == 200 and r.content == b"a,b"


# --------------------------------------------------------------------------- listing params


def test_invalid_take_order_cursor_are_400(app_client: TestClient,
                                           world: dict[str, str]) -> None:
    d = world["ds"]
    routes = ["/api/v1/file/list", "/api/v1/dataset/list", f"/api/v1/dataset/{d}/file/list",
              f"/api/v1/dataset/{d}/event/list", "/api/v1/event/list", "/api/v1/event/log/list",
              f"/api/v1/dataset/{d}/record/list", f"/api/v1/dataset/{d}/record/export"]
    not_json = base64.urlsafe_b64encode(b"not json").decode()
    wrong_shape = base64.urlsafe_b64encode(b'{"id": 5}').decode()
    no_id = base64.urlsafe_b64encode(b'{"x": "y"}').decode()
    a_list = base64.urlsafe_b64encode(b'["file_1"]').decode()
    bad = [{"take": v} for v in ("0", "-1", "101", "abc", "1.5", "1e3", "99999999999999999999")]
    bad += [{"order": v} for v in ("up", "random", "asc;drop")]
    bad += [{"cursor": v} for v in ("!!!", "%%%", not_json, wrong_shape, no_id, a_list,
                                    "x" * 5000)]
    for path in routes:
        for params in bad:
            for accept in ("application/json", "application/jsonl"):
                r = app_client.get(path, params=params, headers={"Accept": accept})
                assert r.status_code == 400, (path, params, accept, r.status_code, r.text[:200])
                assert_envelope(r, 400, "BAD_REQUEST")


# --------------------------------------------------------------------------- SSRF


class Canary:
    """A listener on 127.0.0.1 (and ::1, same port, when possible) that counts connections."""

    def __init__(self) -> None:
        self.socks: list[socket.socket] = []
        s4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s4.bind(("127.0.0.1", 0))
        s4.listen(16)
        s4.settimeout(0.1)
        self.port = int(s4.getsockname()[1])
        self.socks.append(s4)
        with contextlib.suppress(OSError):
            s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            try:
                s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s6.bind(("::1", self.port))
                s6.listen(16)
                s6.settimeout(0.1)
                self.socks.append(s6)
            except OSError:
                s6.close()
        self.connections: list[object] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, args=(s,), daemon=True)
                         for s in self.socks]
        for t in self._threads:
            t.start()

    def _accept(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, addr = sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections.append(addr)
            conn.close()

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(2)
        for s in self.socks:
            s.close()


@pytest.fixture
def canary() -> Iterator[Canary]:
    c = Canary()
    try:
        yield c
    finally:
        c.close()


def test_canary_works(canary: Canary) -> None:
    """The canary does notice a connection (so its silence below means something)."""
    with socket.create_connection(("127.0.0.1", canary.port), timeout=2):
        pass
    deadline = time.monotonic() + 2
    while not canary.connections and time.monotonic() < deadline:
        time.sleep(0.01)
    assert canary.connections


def _forbidden(port: int) -> list[str]:
    return [
        f"http://127.0.0.1:{port}/",
        f"http://localhost:{port}/",
        f"http://LOCALHOST.:{port}/",
        f"http://[::1]:{port}/",
        f"http://[::ffff:127.0.0.1]:{port}/",
        f"http://[::ffff:7f00:1]:{port}/",
        f"http://2130706433:{port}/",
        f"http://0x7f000001:{port}/",
        f"http://0177.0.0.1:{port}/",
        f"http://127.1:{port}/",
        f"http://0.0.0.0:{port}/",
        f"http://[::]:{port}/",
        f"https://127.0.0.1:{port}/",
        f"http://user:pw@127.0.0.1:{port}/",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://100.100.100.200/latest/meta-data/",
        "http://192.168.0.1/",
        "http://172.16.0.1/",
    ]


def test_ssrf_refused(small: tuple[TestClient, Store], canary: Canary) -> None:
    client, store = small
    seeded = seed_file(client, store)
    for url in [*_forbidden(canary.port), "file:///etc/passwd", "gopher://127.0.0.1/"]:
        started = time.monotonic()
        r = client.post(f"/api/v1/file/{seeded.file_id}/upload", json={"file": url})
        assert r.status_code == 400, (url, r.status_code, r.text)
        assert_envelope(r, 400, "BAD_REQUEST")
        assert time.monotonic() - started < 2.5, f"{url} was not refused up front"
        seeded.assert_unchanged()
    time.sleep(0.2)
    assert canary.connections == []


def test_ssrf_via_redirect_from_an_allowed_origin_refused(small: tuple[TestClient, Store],
                                                           canary: Canary, origin: int) -> None:
    client, store = small
    seeded = seed_file(client, store)
    upload = f"/api/v1/file/{seeded.file_id}/upload"
    for target in [*_forbidden(canary.port), "file:///etc/passwd", "ftp://127.0.0.1/x"]:
        hop = f"http://127.0.0.1:{origin}/redirect?to={quote(target, safe='')}"
        r = client.post(upload, json={"file": hop})
        assert r.status_code == 400, (target, r.status_code, r.text)
        assert_envelope(r, 400, "BAD_REQUEST")
        seeded.assert_unchanged()
    time.sleep(0.2)
    assert canary.connections == []
    # Control: a redirect to the allowed origin itself is followed.
    ok = f"http://127.0.0.1:{origin}/redirect?to=" + quote(f"http://127.0.0.1:{origin}/ok.csv",
                                                          safe="")
    r = client.post(upload, json={"file": ok})
    assert r.status_code == 200, r.text
    assert client.get(f"/api/v1/file/{seeded.file_id}/download").content == ORIGINAL


def test_ssrf_refused_with_default_settings(app_client: TestClient, seeded: Seeded,
                                            canary: Canary) -> None:
    """No allow-list at all (the default): loopback is refused too."""
    for url in (f"http://127.0.0.1:{canary.port}/", f"http://localhost:{canary.port}/"):
        r = app_client.post(f"/api/v1/file/{seeded.file_id}/upload", json={"file": url})
        assert_envelope(r, 400, "BAD_REQUEST")
    time.sleep(0.2)
    assert canary.connections == []
    seeded.assert_unchanged()


def test_fetch_errors_are_400(tmp_path: Path, origin: int, backend_settings: Any) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with app_with(backend_settings, tmp_path,
                  url_fetch_allow=f"127.0.0.1:{origin},127.0.0.1:{port}",
                  url_fetch_timeout=3) as (client, store):
        seeded = seed_file(client, store)
        for url in (f"http://127.0.0.1:{origin}/missing.csv",  # 404 upstream
                    f"http://127.0.0.1:{port}/a.csv"):  # nothing listening
            r = client.post(f"/api/v1/file/{seeded.file_id}/upload", json={"file": url})
            assert_envelope(r, 400, "BAD_REQUEST")
            seeded.assert_unchanged()
        # Control: relative redirects on the allowed origin are followed to the end.
        chain = f"http://127.0.0.1:{origin}/redirect?to=%2Fredirect%3Fto%3D%252Fok.csv"
        r = client.post(f"/api/v1/file/{seeded.file_id}/upload", json={"file": chain})
        assert r.status_code == 200, r.text
        assert client.get(f"/api/v1/file/{seeded.file_id}/download").content == ORIGINAL


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/api/v1/file/a%00b/fetch", None),
    ("GET", "/api/v1/dataset/a%00b/fetch", None),
    ("GET", "/api/v1/file/a%00b/download", None),
    ("POST", "/api/v1/dataset/a%00b/search", {"search": "x"}),
    ("POST", "/api/v1/file/create", {"name": "a\u0000b"}),
    ("POST", "/api/v1/dataset/create", {"name": "d", "description": "\u0000"}),
    ("POST", "/api/v1/file/create", {"name": "f", "meta": {"k": "a\u0000b"}}),
    ("POST", "/api/v1/dataset/create", {"name": "d", "meta": {"a\u0000": 1}}),
])
def test_nul_characters_are_a_4xx_on_every_backend(app_client: TestClient, method: str,
                                                    path: str, body: Any) -> None:
    """PostgreSQL refuses NUL in text where SQLite stores it: never a 500 either way."""
    r = app_client.request(method, path, json=body)
    assert 200 <= r.status_code < 500, r.text
    if r.status_code >= 400:
        assert_envelope(r, r.status_code)


def test_no_500_ever_in_this_module(app_client: TestClient) -> None:
    """A sanity check on the envelope for framework-level errors too."""
    assert_envelope(app_client.get("/api/v1/nope"), 404, "NOT_FOUND")
    assert_envelope(app_client.get("/api/v1/file/create"), 405, "METHOD_NOT_ALLOWED")
    assert_envelope(app_client.put("/api/v1/file/x/upload"), 405, "METHOD_NOT_ALLOWED")


def test_huge_integers_are_4xx(app_client: TestClient) -> None:
    """Issue #11 finding 6: an offset past 2**63 was a 500 (a null for a NOT NULL column too:
    tests/api/test_hardening.py test_null_visibility_on_update_is_400)."""
    agt = app_client.post("/api/v1/assistant/create", json={"name": "a"}).json()["id"]
    for query in ("start=9223372036854775808", "start=-1", "limit=9223372036854775808"):
        r = app_client.get(f"/api/assistants/{agt}/datasets?{query}")
        assert 400 <= r.status_code < 500, (query, r.status_code, r.text)


def test_a_file_name_with_control_characters_still_downloads(app_client: TestClient) -> None:
    """Found by Schemathesis: a stored name went into Content-Disposition as it was, and
    uvicorn dropped the connection on the control character instead of answering."""
    fid = app_client.post("/api/v1/file/create", json={"name": "a\x01b\tc\x7f\"d.csv"}).json()["id"]
    assert app_client.post(f"/api/v1/file/{fid}/upload", content=b"x,y\n1,2\n",
                           headers={"Content-Type": "text/csv"}).status_code == 200
    r = app_client.get(f"/api/v1/file/{fid}/download")
    assert r.status_code == 200 and r.content == b"x,y\n1,2\n"
    disposition = r.headers["content-disposition"]
    assert disposition.isprintable() and "\x01" not in disposition and '"d' not in disposition
