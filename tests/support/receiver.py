"""A scripted webhook receiver: a real HTTP server on a loopback port that answers each POST
with the next status of its script (then 200), and keeps every request it got."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Receiver:
    script: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def allow(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, port: int = 0) -> Receiver:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with owner._lock:
                    status = owner.script.pop(0) if owner.script else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()
                with owner._arrived:
                    owner.received.append(Received(self.path, dict(self.headers.items()),
                                                   body, status))
                    owner._arrived.notify_all()

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def wait(self, predicate: Any, timeout: float = 60.0) -> list[Received]:
        with self._arrived:
            ok = self._arrived.wait_for(lambda: predicate(self.received), timeout)
        assert ok, f"the receiver did not get what was expected: {self.received}"
        return list(self.received)


def running(script: list[int] | None = None) -> Iterator[Receiver]:
    receiver = Receiver(script=list(script or [])).start()
    try:
        yield receiver
    finally:
        receiver.stop()
