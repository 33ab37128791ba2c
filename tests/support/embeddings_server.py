"""A scripted OpenAI-compatible embeddings endpoint on loopback, for embedder and e2e tests.

It speaks the real wire protocol: ``POST {base}/embeddings`` with ``{"model", "input": [...]}``
answers ``{"object": "list", "data": [{"object": "embedding", "index": i, "embedding": [...]}],
"model": ..., "usage": {...}}``. Vectors are deterministic: a function of the text's SHA-256
only (not unit length, so adapters must normalise). Every request is recorded (path, headers,
body) and the next answers can be scripted: an HTTP error status, a delay, a malformed body,
the ``data`` items in reverse order.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np


def vector_for(text: str, dimension: int) -> np.ndarray:
    """The server's embedding of `text`: a float64 vector seeded from the text's hash."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).normal(size=dimension) * 3.0


@dataclass
class Step:
    """One scripted answer: `status` != 200 sends an error body; `delay` sleeps first;
    `gate` (an Event) holds the answer until the test sets it; `body` (bytes) replaces the
    whole answer; `reverse` sends data items last-first."""

    status: int = 200
    delay: float = 0.0
    gate: threading.Event | None = None
    body: bytes | None = None
    reverse: bool = False


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class EmbeddingsServer:
    dimension: int = 24
    model_name: str | None = None
    requests: list[Seen] = field(default_factory=list)
    _script: deque[Step] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    # --- scripting -------------------------------------------------------------------

    def script(self, *steps: Step) -> None:
        """Queue answers for the next requests; once used up, requests succeed normally."""
        with self._lock:
            self._script.extend(steps)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self.requests.clear()

    @property
    def inputs(self) -> list[list[str]]:
        """The `input` list of every embeddings request received, in order."""
        with self._lock:
            return [list(s.body.get("input") or []) for s in self.requests
                    if isinstance(s.body, dict)]

    # --- life cycle ------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> EmbeddingsServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                return None

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"_raw": raw.decode(errors="replace")}
                with server._lock:
                    server.requests.append(Seen(self.path, dict(self.headers.items()), body))
                    step = server._script.popleft() if server._script else Step()
                if step.delay:
                    time.sleep(step.delay)
                if step.gate is not None:
                    step.gate.wait(120)
                if not self.path.rstrip("/").endswith("/embeddings"):
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                if step.body is not None:
                    return self._send_raw(step.status, step.body)
                if step.status != 200:
                    return self._send(step.status, {"error": {
                        "message": f"scripted failure {step.status}", "type": "test"}})
                inputs = body.get("input") if isinstance(body, dict) else None
                if isinstance(inputs, str):
                    inputs = [inputs]
                if not isinstance(inputs, list) or not all(isinstance(t, str) for t in inputs):
                    return self._send(400, {"error": {"message": "input must be a list of "
                                                                 "strings"}})
                data = [{"object": "embedding", "index": i,
                         "embedding": vector_for(t, server.dimension).tolist()}
                        for i, t in enumerate(inputs)]
                if step.reverse:
                    data.reverse()
                self._send(200, {"object": "list", "data": data,
                                 "model": server.model_name or body.get("model"),
                                 "usage": {"prompt_tokens": 0, "total_tokens": 0}})

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                self._send_raw(status, json.dumps(payload).encode())

            def _send_raw(self, status: int, raw: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> EmbeddingsServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
