"""An HTTP forwarder that can hold requests: put it in front of a real server (moto's S3)
to see what a caller does while one of its calls is slow.

    with GatedProxy("http://127.0.0.1:5000") as proxy:   # proxy.url: point the client here
        proxy.hold = True                  # from now on, each request waits for release
        held = proxy.next_held()           # the method and path of the first one waiting
        proxy.release(held)                # forward it; the caller gets the real answer
"""

from __future__ import annotations

import http.client
import queue
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


@dataclass
class Held:
    method: str
    path: str
    go: threading.Event = field(default_factory=threading.Event)


class GatedProxy:
    def __init__(self, upstream: str) -> None:
        target = urlsplit(upstream)
        self._host, self._port = target.hostname or "127.0.0.1", target.port or 80
        self.hold = False
        self._held: queue.Queue[Held] = queue.Queue()
        self._waiting: list[Held] = []
        self._lock = threading.Lock()  # a request is either held and released, or not held
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> GatedProxy:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release_all()
        self._server.shutdown()
        self._server.server_close()

    def next_held(self, timeout: float = 120.0) -> Held | None:
        """The next request held (None if none arrives within `timeout`)."""
        try:
            return self._held.get(timeout=timeout)
        except queue.Empty:
            return None

    def release(self, held: Held) -> None:
        held.go.set()

    def release_all(self) -> None:
        """Stop holding and forward every request held so far; next_held then waits for a
        request held after this call, not one of these."""
        with self._lock:
            self.hold = False
            for held in self._waiting:
                held.go.set()
            self._waiting.clear()
            while not self._held.empty():
                self._held.get_nowait()

    def _forward(self, method: str, path: str, headers: Any, body: bytes
                 ) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(self._host, self._port, timeout=120)
        try:
            conn.request(method, path, body=body or None,
                         headers={k: v for k, v in headers.items() if k.lower() not in _HOP})
            r = conn.getresponse()
            return r.status, r.getheaders(), r.read()
        finally:
            conn.close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                held = Held(self.command, self.path)
                with proxy._lock:
                    if proxy.hold:
                        proxy._waiting.append(held)
                        proxy._held.put(held)
                    else:
                        held.go.set()
                held.go.wait()
                status, headers, data = proxy._forward(self.command, self.path, self.headers,
                                                       body)
                self.send_response(status)
                for k, v in headers:
                    if k.lower() not in _HOP and k.lower() != "content-length":
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        return Handler
