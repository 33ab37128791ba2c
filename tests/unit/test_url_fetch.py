"""SSRF-safe URL fetcher: refused spellings/addresses, pinning, redirects, size cap, timeout.

Everything runs against local servers (a real HTTP server and a "canary" listener on
127.0.0.1) or a mocked resolver/transport; nothing here touches the internet.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from dataloft.errors import BadRequest, ContentTooLarge
from dataloft.files import url_fetch
from dataloft.files.url_fetch import Fetched, fetch_url, is_forbidden_address

PAYLOAD = os.urandom(200_000) + b"end"


# --------------------------------------------------------------------------- fixtures


class Canary:
    """A listener on 127.0.0.1 (and ::1 on the same port when possible) that records
    every connection it gets; the forbidden URLs point at it and it must stay silent."""

    def __init__(self) -> None:
        self.socks: list[socket.socket] = []
        s4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s4.bind(("127.0.0.1", 0))
        s4.listen(16)
        self.port = s4.getsockname()[1]
        self.socks.append(s4)
        with contextlib.suppress(OSError):
            s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                s6.bind(("::1", self.port))
                s6.listen(16)
                self.socks.append(s6)
            except OSError:
                s6.close()
        for s in self.socks:
            s.setblocking(False)
        self._accepted = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _accept_all(self) -> None:
        for s in self.socks:
            while True:
                try:
                    conn, _ = s.accept()
                except (BlockingIOError, OSError):
                    break
                conn.close()
                with self._lock:
                    self._accepted += 1

    def _loop(self) -> None:
        sel = selectors.DefaultSelector()
        for s in self.socks:
            sel.register(s, selectors.EVENT_READ)
        while not self._stop.is_set():
            if sel.select(timeout=0.05):
                self._accept_all()
        sel.close()

    @property
    def accepted(self) -> int:
        time.sleep(0.1)  # let the accept loop see any late connection
        self._accept_all()
        with self._lock:
            return self._accepted

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for s in self.socks:
            s.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    release: threading.Event  # set on the class by the fixture

    def log_message(self, format, *args):  # keep pytest output quiet
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str, status: int = 302) -> None:
        self._send(status, headers={"Location": location})

    def do_GET(self) -> None:  # a small router
        parts = urlsplit(self.path)
        path, qs = parts.path, parse_qs(parts.query)
        try:
            if path in ("/file.txt", "/dir/file.txt"):
                self._send(200, PAYLOAD, {"Content-Type": "text/plain; charset=utf-8"})
            elif path == "/cd":
                cd = qs.get("cd", ['attachment; filename="../../etc/report.csv"'])[0]
                self._send(
                    200, b"a,b\n1,2\n", {"Content-Type": "text/csv", "Content-Disposition": cd}
                )
            elif path == "/echo-host":
                self._send(200, self.headers["Host"].encode(), {"Content-Type": "text/plain"})
            elif path == "/redirect":
                self._redirect(qs["to"][0], int(qs.get("status", ["302"])[0]))
            elif path == "/loop":
                self._redirect("/loop")
            elif path.startswith("/hops/"):
                n = int(path.rsplit("/", 1)[1])
                if n == 0:
                    self._send(200, b"landed", {"Content-Type": "text/plain"})
                else:
                    self._redirect(f"/hops/{n - 1}", 307)
            elif path == "/missing":
                self._send(404, b"nope")
            elif path == "/chunked":
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                total = int(qs.get("n", ["1000000"])[0])
                chunk = b"x" * 16384
                sent = 0
                while sent < total:
                    piece = chunk[: total - sent]
                    self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    sent += len(piece)
                self.wfile.write(b"0\r\n\r\n")
            elif path == "/biglen":
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(10**9))
                self.end_headers()
                self.wfile.write(b"y" * 4096)
                self.close_connection = True
            elif path == "/stall":
                self.release.wait(10)
                self._send(200, b"late")
            elif path == "/stall-body":
                self.send_response(200)
                self.send_header("Content-Length", "100")
                self.end_headers()
                self.wfile.write(b"partial")
                self.wfile.flush()
                self.release.wait(10)
            else:
                self._send(404, b"")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # client aborts are expected
        pass


@pytest.fixture(scope="module")
def canary() -> Iterator[Canary]:
    c = Canary()
    yield c
    c.close()


@pytest.fixture
def quiet_canary(canary: Canary) -> Iterator[Canary]:
    before = canary.accepted
    yield canary
    assert canary.accepted == before, "the forbidden listener got a connection"


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    release = threading.Event()
    handler = type("Handler", (_Handler,), {"release": release})
    srv = _Server(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1]
    release.set()
    srv.shutdown()
    srv.server_close()


def fetch(url: str, **kw) -> tuple[Fetched, bytes, list[bytes]]:
    chunks: list[bytes] = []
    kw.setdefault("max_bytes", 10_000_000)
    kw.setdefault("timeout", 10)
    res = asyncio.run(fetch_url(url, chunks.append, **kw))
    return res, b"".join(chunks), chunks


def refused(url: str, exc: type[Exception] = BadRequest, **kw) -> Exception:
    chunks: list[bytes] = []
    kw.setdefault("max_bytes", 10_000_000)
    kw.setdefault("timeout", 10)
    with pytest.raises(exc) as ei:
        asyncio.run(fetch_url(url, chunks.append, **kw))
    return ei.value


# --------------------------------------------------------------------------- rules 1-3


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://127.0.0.1./",
        "http://0x7f.0.0.1/",
        "http://127.000.000.001/",
        "http://1.2.3.4.5/",
        "http://256.1.1.1/",
        "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/",  # fullwidth 127.0.0.1
        "http://10.0.0.1/",
        "http://172.16.5.4/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/",
        "http://100.100.100.200/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://255.255.255.255/",
        "http://[::]/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:8.8.8.8]/",
        "http://[2002:7f00:1::]/",
        "http://[fe80::1%25eth0]/",
        "http://::1/",
        "file:///etc/passwd",
        "ftp://x/",
        "gopher://x/",
        "data:text/plain,hello",
        "javascript:alert(1)",
        "//example.com/",
        "http:///nohost",
        "http://user:pw@example.com/",
        "http://user@example.com/",
        "http://example.com\\@127.0.0.1/",
        "http://exa mple.com/",
        "http://example.com:99999/",
    ],
)
def test_refused_spellings_and_addresses(url: str) -> None:
    refused(url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1/", "URL host resolves to a non-public address"),
        ("http://localhost/", "URL host resolves to a non-public address"),
        ("http://[::ffff:127.0.0.1]/", "URL host resolves to a non-public address"),
        ("http://169.254.169.254/latest/meta-data", "URL host resolves to a non-public address"),
        ("http://2130706433/", "canonical"),
        ("file:///etc/passwd", "scheme"),
        ("http://user:pw@example.com/", "credentials"),
    ],
)
def test_refusal_messages(url: str, message: str) -> None:
    assert message in str(refused(url))


def test_canary_never_contacted(quiet_canary: Canary) -> None:
    p = quiet_canary.port
    urls = [
        f"http://127.0.0.1:{p}/",
        f"http://localhost:{p}/",
        f"http://2130706433:{p}/",
        f"http://0x7f000001:{p}/",
        f"http://0177.0.0.1:{p}/",
        f"http://127.1:{p}/",
        f"http://0.0.0.0:{p}/",
        f"http://[::1]:{p}/",
        f"http://[::ffff:127.0.0.1]:{p}/",
        f"http://[::ffff:7f00:1]:{p}/",
        f"http://127.0.0.1.:{p}/",
        f"http://localhost.:{p}/",
        f"http://LOCALHOST:{p}/",
        f"http://\uff11\uff12\uff17.\uff10.\uff10.\uff11:{p}/",
        f"https://127.0.0.1:{p}/",
        f"https://localhost:{p}/",
    ]
    for url in urls:
        refused(url)
    # an allow entry for a different host:port does not open the canary
    refused(f"http://127.0.0.1:{p}/", allow=frozenset({f"localhost:{p}", f"127.0.0.1:{p + 1}"}))
    refused(f"http://localhost:{p}/", allow=frozenset({f"127.0.0.1:{p}"}))


@pytest.mark.parametrize(
    "addr",
    [
        "127.0.0.1",
        "127.255.255.254",
        "10.1.2.3",
        "172.31.255.255",
        "192.168.0.1",
        "169.254.169.254",
        "169.254.1.1",
        "100.64.0.1",
        "100.127.255.255",
        "100.100.100.200",
        "0.0.0.0",
        "0.1.2.3",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.0.8",
        "192.0.2.1",
        "198.18.0.1",
        "198.51.100.7",
        "203.0.113.9",
        "::",
        "::1",
        "::ffff:127.0.0.1",
        "::ffff:8.8.8.8",
        "::127.0.0.1",
        "fc00::1",
        "fd00:ec2::254",
        "fe80::1",
        "fec0::1",
        "ff02::1",
        "2001:db8::1",
        "64:ff9b::7f00:1",
        "2002:7f00:1::1",
        "2002:a00:1::1",
        "2001:0:4136:e378:8000:63bf:80ff:fffe",
        "100::1",
    ],
)
def test_forbidden_addresses(addr: str) -> None:
    assert is_forbidden_address(ipaddress.ip_address(addr))


@pytest.mark.parametrize(
    "addr", ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "2a00:1450::1"]
)
def test_public_addresses(addr: str) -> None:
    assert not is_forbidden_address(ipaddress.ip_address(addr))


# --------------------------------------------------------------------------- mocked DNS / send


class FakeNet:
    """Replaces the resolver and httpx's send; records what would go on the wire."""

    def __init__(
        self,
        monkeypatch: pytest.MonkeyPatch,
        dns: dict[str, list[list[str]]],
        responses: dict[str, httpx.Response] | None = None,
    ) -> None:
        self.dns = dns
        self.lookups: list[str] = []
        self.sent: list[httpx.Request] = []
        self.responses = responses or {}

        async def fake_resolve(host: str, port: int) -> list[str]:
            self.lookups.append(host)
            answers = self.dns[host]
            return answers[min(self.lookups.count(host), len(answers)) - 1]

        async def fake_send(client, request, **kwargs):
            assert kwargs.get("stream") is True
            self.sent.append(request)
            resp = self.responses.get(request.headers["host"] + request.url.raw_path.decode())
            if resp is None:
                resp = httpx.Response(200, content=b"ok", headers={"Content-Type": "text/plain"})
            resp.request = request
            return resp

        monkeypatch.setattr(url_fetch, "_resolve", fake_resolve)
        monkeypatch.setattr(httpx.AsyncClient, "send", fake_send)


@pytest.mark.parametrize(
    "answers",
    [
        ["10.0.0.5"],
        ["127.0.0.1"],
        ["8.8.8.8", "10.0.0.1"],
        ["2606:4700::1", "::1"],
        ["169.254.169.254"],
        ["::ffff:127.0.0.1"],
        ["100.64.1.1"],
        ["fd00:ec2::254"],
    ],
)
def test_name_resolving_to_non_public_address_is_refused(monkeypatch, answers) -> None:
    net = FakeNet(monkeypatch, {"evil.example": [answers]})
    err = refused("http://evil.example/x")
    assert str(err) == "URL host resolves to a non-public address"
    assert net.sent == []


def test_connects_to_checked_address_only_dns_rebinding(monkeypatch) -> None:
    # first answer public, every later answer loopback: a second lookup would be fatal
    net = FakeNet(monkeypatch, {"rebind.example": [["93.184.216.34"], ["127.0.0.1"]]})
    res, body, _ = fetch("http://rebind.example/data.bin?x=1")
    assert body == b"ok"
    assert net.lookups == ["rebind.example"]
    [req] = net.sent
    assert req.url.host == "93.184.216.34"
    assert req.url.port in (None, 80)
    assert req.url.raw_path == b"/data.bin?x=1"
    assert req.headers["host"] == "rebind.example"
    assert "sni_hostname" not in req.extensions
    assert res == Fetched("text/plain", "data.bin", "http://rebind.example/data.bin?x=1")


def test_https_pins_ip_and_keeps_hostname_for_sni(monkeypatch) -> None:
    net = FakeNet(monkeypatch, {"public.example": [["2606:4700::1111"]]})
    fetch("https://Public.Example:8443/a/b.pdf#frag")
    [req] = net.sent
    assert req.url.scheme == "https"
    assert req.url.host == "2606:4700::1111"
    assert req.url.port == 8443
    assert req.headers["host"] == "public.example:8443"
    assert req.extensions["sni_hostname"] == "public.example"


def test_https_ip_literal_has_no_sni_override(monkeypatch) -> None:
    net = FakeNet(monkeypatch, {})
    fetch("https://8.8.8.8/")
    [req] = net.sent
    assert req.url.host == "8.8.8.8"
    assert req.headers["host"] == "8.8.8.8"
    assert "sni_hostname" not in req.extensions
    assert net.lookups == []


def test_redirect_to_name_resolving_private_is_refused(monkeypatch) -> None:
    net = FakeNet(
        monkeypatch,
        {"public.example": [["8.8.8.8"]], "internal.example": [["10.0.0.7"]]},
        {
            "public.example/go": httpx.Response(
                302, headers={"Location": "http://internal.example/"}
            )
        },
    )
    err = refused("http://public.example/go")
    assert "non-public" in str(err)
    assert [r.url.host for r in net.sent] == ["8.8.8.8"]


# --------------------------------------------------------------------------- real local server


def test_fetch_from_allowed_server(server: int) -> None:
    chunks: list[bytes] = []
    res = asyncio.run(
        fetch_url(
            f"http://127.0.0.1:{server}/dir/file.txt",
            chunks.append,
            max_bytes=10**7,
            allow=frozenset({f"127.0.0.1:{server}"}),
        )
    )
    assert b"".join(chunks) == PAYLOAD
    assert res.content_type == "text/plain; charset=utf-8"
    assert res.filename == "file.txt"
    assert res.final_url == f"http://127.0.0.1:{server}/dir/file.txt"


def test_fetch_exactly_max_bytes_is_fine(server: int) -> None:
    _, body, _ = fetch(
        f"http://127.0.0.1:{server}/file.txt",
        max_bytes=len(PAYLOAD),
        allow=frozenset({f"127.0.0.1:{server}"}),
    )
    assert body == PAYLOAD


def test_allowed_named_host_keeps_host_header(server: int) -> None:
    res, body, _ = fetch(
        f"http://LocalHost:{server}/echo-host", allow=frozenset({f"LOCALHOST:{server}"})
    )
    assert body == f"localhost:{server}".encode()
    assert res.filename == "echo-host"


@pytest.mark.parametrize(
    ("cd", "expected"),
    [
        ('attachment; filename="../../etc/report.csv"', "report.csv"),
        ("attachment; filename=..\\..\\win.ini", "win.ini"),
        ("attachment; filename*=UTF-8''na%C3%AFve%20r%C3%A9sum%C3%A9.csv", "naïve résumé.csv"),
        ('attachment; filename=".."', "cd"),  # unusable: falls back to the URL segment
        ("inline", "cd"),
    ],
)
def test_filename_from_content_disposition_is_sanitised(server: int, cd: str, expected) -> None:
    res, body, _ = fetch(
        f"http://127.0.0.1:{server}/cd?{httpx.QueryParams({'cd': cd})}",
        allow=frozenset({f"127.0.0.1:{server}"}),
    )
    assert body == b"a,b\n1,2\n"
    assert res.content_type == "text/csv"
    assert res.filename == expected


def test_non_2xx_is_bad_request(server: int) -> None:
    err = refused(f"http://127.0.0.1:{server}/missing", allow=frozenset({f"127.0.0.1:{server}"}))
    assert str(err) == "URL fetch failed: HTTP 404"


def test_connection_refused_is_bad_request() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    err = refused(f"http://127.0.0.1:{port}/", allow=frozenset({f"127.0.0.1:{port}"}))
    assert "could not connect" in str(err)


# --------------------------------------------------------------------------- redirects


def _allow(server: int) -> frozenset[str]:
    return frozenset({f"127.0.0.1:{server}"})


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{canary}/",
        "http://localhost:{canary}/",
        "http://[::ffff:127.0.0.1]:{canary}/",
        "http://2130706433:{canary}/",
        "http://[::1]:{canary}/",
        "//127.0.0.1:{canary}/",  # scheme-relative
        "file:///etc/passwd",
        "http://u:p@127.0.0.1:{canary}/",
    ],
)
def test_redirect_to_forbidden_target_is_refused(server, quiet_canary, target) -> None:
    to = target.format(canary=quiet_canary.port)
    url = f"http://127.0.0.1:{server}/redirect?{httpx.QueryParams({'to': to})}"
    refused(url, allow=_allow(server))


def test_redirect_to_localhost_other_port_refused(server, quiet_canary) -> None:
    # the allowed server's own name on another port is a different host:port
    to = f"http://localhost:{quiet_canary.port}/"
    err = refused(
        f"http://127.0.0.1:{server}/redirect?{httpx.QueryParams({'to': to})}",
        allow=frozenset({f"127.0.0.1:{server}", f"localhost:{server}"}),
    )
    assert "non-public" in str(err)


def test_redirect_loop_is_refused(server: int) -> None:
    err = refused(f"http://127.0.0.1:{server}/loop", allow=_allow(server))
    assert "too many redirects" in str(err)


def test_redirect_hop_limit(server: int) -> None:
    res, body, _ = fetch(f"http://127.0.0.1:{server}/hops/3", allow=_allow(server), max_redirects=3)
    assert body == b"landed"
    assert res.final_url == f"http://127.0.0.1:{server}/hops/0"
    err = refused(f"http://127.0.0.1:{server}/hops/4", allow=_allow(server), max_redirects=3)
    assert "too many redirects" in str(err)
    refused(f"http://127.0.0.1:{server}/hops/1", allow=_allow(server), max_redirects=0)


@pytest.mark.parametrize(
    ("to", "status"),
    [("file.txt", 302), ("/dir/file.txt", 303), ("./dir/../dir/file.txt", 301), ("file.txt", 308)],
)
def test_relative_redirect_within_allowed_server(server: int, to: str, status: int) -> None:
    qs = httpx.QueryParams({"to": to, "status": str(status)})
    res, body, _ = fetch(f"http://127.0.0.1:{server}/redirect?{qs}", allow=_allow(server))
    assert body == PAYLOAD
    assert res.filename == "file.txt"
    assert res.final_url.startswith(f"http://127.0.0.1:{server}/")
    assert res.final_url.endswith("file.txt")


def test_redirect_to_allowed_named_host(server: int) -> None:
    to = f"http://localhost:{server}/echo-host"
    res, body, _ = fetch(
        f"http://127.0.0.1:{server}/redirect?{httpx.QueryParams({'to': to})}",
        allow=frozenset({f"127.0.0.1:{server}", f"localhost:{server}"}),
    )
    assert body == f"localhost:{server}".encode()
    assert res.final_url == to


# --------------------------------------------------------------------------- size cap


def test_chunked_body_over_cap(server: int) -> None:
    chunks: list[bytes] = []
    with pytest.raises(ContentTooLarge):
        asyncio.run(
            fetch_url(
                f"http://127.0.0.1:{server}/chunked?n=1000000",
                chunks.append,
                max_bytes=100_000,
                allow=_allow(server),
                timeout=10,
            )
        )
    assert sum(map(len, chunks)) <= 100_000


def test_chunked_body_under_cap(server: int) -> None:
    res, body, _ = fetch(
        f"http://127.0.0.1:{server}/chunked?n=50000", max_bytes=50_000, allow=_allow(server)
    )
    assert body == b"x" * 50_000
    assert res.content_type == "application/octet-stream"


def test_declared_content_length_over_cap_is_refused_before_reading(server: int) -> None:
    chunks: list[bytes] = []
    started = time.monotonic()
    with pytest.raises(ContentTooLarge):
        asyncio.run(
            fetch_url(
                f"http://127.0.0.1:{server}/biglen",
                chunks.append,
                max_bytes=1_000_000,
                allow=_allow(server),
                timeout=10,
            )
        )
    assert chunks == []
    assert time.monotonic() - started < 5


def test_sink_cap_error_propagates(server: int) -> None:
    written = 0

    def sink(chunk: bytes) -> None:
        nonlocal written
        written += len(chunk)
        if written > 1000:
            raise ContentTooLarge("blob cap")

    with pytest.raises(ContentTooLarge, match="blob cap"):
        asyncio.run(
            fetch_url(
                f"http://127.0.0.1:{server}/file.txt", sink, max_bytes=10**7, allow=_allow(server)
            )
        )


# --------------------------------------------------------------------------- timeout


@pytest.mark.parametrize("path", ["/stall", "/stall-body"])
def test_stalled_server_times_out(server: int, path: str) -> None:
    started = time.monotonic()
    err = refused(f"http://127.0.0.1:{server}{path}", allow=_allow(server), timeout=1)
    elapsed = time.monotonic() - started
    assert str(err) == "URL fetch timed out after 1 s"
    assert elapsed < 2.0


def test_canary_detects_connections(canary: Canary) -> None:
    """Positive control: an explicitly allowed fetch to the canary IS seen by it."""
    before = canary.accepted
    refused(
        f"http://127.0.0.1:{canary.port}/", allow=frozenset({f"127.0.0.1:{canary.port}"}), timeout=2
    )
    assert canary.accepted > before


def test_a_blocking_sink_runs_off_the_event_loop(server: int) -> None:
    """Issue #11 finding 14: the blob writer (an S3 part upload) was called on the loop."""
    threads: list[threading.Thread] = []
    sizes: list[int] = []

    def sink(chunk: bytes) -> None:
        threads.append(threading.current_thread())
        sizes.append(len(chunk))

    async def go() -> threading.Thread:
        await fetch_url(f"http://127.0.0.1:{server}/chunked?n=3000000", sink,
                        max_bytes=10_000_000, allow=frozenset({f"127.0.0.1:{server}"}),
                        timeout=10)
        return threading.current_thread()

    loop_thread = asyncio.run(go())
    assert sum(sizes) == 3_000_000
    assert threads and all(t is not loop_thread for t in threads)
    assert len(sizes) < 10  # batched (~1 MiB), not one call per network read
