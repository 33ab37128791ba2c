"""A scripted OpenAI-compatible chat-completions server: real HTTP, whole JSON replies or SSE
chunks (`stream: true`), tool calls, and failures on demand.

`server.script(request_body) -> Step` decides each reply from what the client sent, so a
test can read the tool results the agent fed back (its `role: tool` messages). A Step is
a dict:
- {"content": "text"}: a final answer;
- {"tool_calls": [{"name": ..., "arguments": "<json text>"}]}: ask for tools;
- {"status": 500}: an HTTP error (with {"retry_after": s} a Retry-After header);
- {"sleep": s, ...}: wait s seconds first (a slow or hung model);
- {"raw": "text"}: answer 200 with this body as it is (JSON, or SSE lines when streamed);
- {"drip": s}: answer 200 and then send a little every s seconds without ever finishing
  (SSE content chunks when streamed, body bytes of a whole reply otherwise): a model that
  is never silent long enough for a read timeout, yet never answers.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Step = dict[str, Any]


def tool_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool results the client sent back, parsed, in order."""
    return [json.loads(m["content"]) for m in body["messages"] if m.get("role") == "tool"]


class ChatServer:
    def __init__(self) -> None:
        self.script: Callable[[dict[str, Any]], Step] = lambda body: {"content": "ok"}
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []  # of each request, in order
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> ChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                if self.path != "/v1/chat/completions":
                    self.send_error(404)
                    return
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                outer.requests.append(body)
                outer.headers.append(dict(self.headers.items()))
                step = outer.script(body)
                time.sleep(step.get("sleep", 0))
                if "raw" in step:
                    self._raw(bool(body.get("stream")), str(step["raw"]).encode())
                elif "drip" in step:
                    self._drip(bool(body.get("stream")), float(step["drip"]))
                elif "status" in step:
                    self._send(step["status"], {"error": {"message": "scripted failure"}},
                               {"Retry-After": str(step.get("retry_after", 0))})
                elif body.get("stream"):
                    self._stream(body["model"], step)
                else:
                    self._send(200, _completion(body["model"], step))

            def _send(self, status: int, payload: object,
                      headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, model: str, step: Step) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for chunk in _chunks(model, step):
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

            def _raw(self, stream: bool, data: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type",
                                 "text/event-stream" if stream else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _drip(self, stream: bool, every: float) -> None:
                self.send_response(200)
                if stream:
                    self.send_header("Content-Type", "text/event-stream")
                    piece = b'data: {"choices": [{"index": 0, "delta": {"content": "."}}]}\n\n'
                else:
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(10**9))
                    piece = b" "
                self.end_headers()
                try:
                    while True:  # until the client hangs up
                        self.wfile.write(piece)
                        self.wfile.flush()
                        time.sleep(every)
                except OSError:
                    return

        return Handler


def _calls(step: Step) -> list[dict[str, Any]]:
    return [{"id": f"call_{i}", "type": "function",
             "function": {"name": c["name"], "arguments": c["arguments"]}}
            for i, c in enumerate(step.get("tool_calls") or [])]


def _completion(model: str, step: Step) -> dict[str, Any]:
    calls = _calls(step)
    message: dict[str, Any] = {"role": "assistant", "content": step.get("content")}
    if calls:
        message["tool_calls"] = calls
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "message": message,
                                         "finish_reason": "tool_calls" if calls else "stop"}]}


def _chunks(model: str, step: Step) -> list[dict[str, Any]]:
    """The reply cut as real servers cut it: content in pieces, each tool call's name first
    and its arguments over several chunks."""
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": model}
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    text = step.get("content") or ""
    deltas += [{"content": text[i:i + 7]} for i in range(0, len(text), 7)]
    for i, call in enumerate(_calls(step)):
        args = call["function"]["arguments"]
        deltas.append({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                       "function": {"name": call["function"]["name"],
                                                    "arguments": ""}}]})
        deltas += [{"tool_calls": [{"index": i, "function": {"arguments": args[j:j + 5]}}]}
                   for j in range(0, len(args), 5)]
    out = [{**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]}
           for d in deltas]
    out.append({**base, "choices": [{"index": 0, "delta": {},
                                     "finish_reason": "tool_calls" if step.get("tool_calls")
                                     else "stop"}]})
    return out
