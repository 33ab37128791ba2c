"""A client for any OpenAI-compatible chat-completions endpoint (OpenAI, Ollama, vLLM,
llama.cpp): whole or streamed replies, tool calls, retries on 429/5xx, a deadline."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

RETRIES = 3
BACKOFF_S = 0.5
_clients: dict[str, httpx.Client] = {}
_clients_lock = threading.Lock()
Piece = TypeVar("Piece", str, bytes)


def _http(base_url: str) -> httpx.Client:
    """One pooled client per endpoint: a new client per call costs an SSL context and a
    connection, which dominated a tool round trip against a local model."""
    with _clients_lock:
        client = _clients.get(base_url)
        if client is None:
            client = _clients[base_url] = httpx.Client()
        return client


class ModelError(Exception):
    """The model could not give a reply (unreachable, refused, malformed, out of time)."""


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # raw JSON text, as the model wrote it


@dataclass
class Reply:
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)

    def message(self) -> dict[str, Any]:
        """The assistant message to send back in the next request."""
        out: dict[str, Any] = {"role": "assistant", "content": self.content or None}
        if self.tool_calls:
            out["tool_calls"] = [{"id": c.id, "type": "function", "function": {
                "name": c.name, "arguments": c.arguments}} for c in self.tool_calls]
        return out


@dataclass(frozen=True)
class ChatClient:
    base_url: str  # ends in /v1
    api_key: str
    timeout_s: float

    def complete(self, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]],
                 *, deadline: float, stream: bool = False,
                 on_text: Callable[[str], None] | None = None) -> Reply:
        body: dict[str, Any] = {"model": model, "messages": messages, "stream": stream}
        if tools:
            body["tools"] = tools
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        url = self.base_url.rstrip("/") + "/chat/completions"
        for attempt in range(RETRIES + 1):
            left = deadline - time.monotonic()
            if left <= 0:
                raise ModelError("the model did not answer before the deadline")
            try:
                return self._once(url, headers, body, min(left, self.timeout_s), deadline,
                                  on_text)
            except _Retryable as exc:
                wait = max(exc.retry_after, BACKOFF_S * 2 ** attempt)
                if attempt == RETRIES or time.monotonic() + wait >= deadline:
                    raise ModelError(str(exc)) from exc
                time.sleep(wait)
        raise ModelError("unreachable")  # the loop returns or raises

    def _once(self, url: str, headers: dict[str, str], body: dict[str, Any], timeout: float,
              deadline: float, on_text: Callable[[str], None] | None) -> Reply:
        try:
            with _http(self.base_url).stream("POST", url, json=body, headers=headers,
                                             timeout=timeout) as resp:
                if resp.status_code == 429 or resp.status_code >= 500:
                    resp.read()
                    raise _Retryable(f"the model answered {resp.status_code}",
                                     _retry_after(resp.headers.get("retry-after")))
                if resp.status_code >= 400:
                    resp.read()
                    raise ModelError(f"the model refused the request ({resp.status_code}): "
                                     f"{resp.text[:500]}")
                # httpx's timeout bounds each read, not the reply: a model that keeps
                # sending a little forever is stopped by the deadline, checked per piece.
                if body["stream"]:
                    return _from_stream(_until(resp.iter_lines(), deadline), on_text)
                return _from_json(json.loads(b"".join(_until(resp.iter_bytes(), deadline))))
        except httpx.TimeoutException as exc:
            raise ModelError("the model did not answer in time") from exc
        except httpx.TransportError as exc:
            raise _Retryable(f"the model is unreachable: {exc}", 0.0) from exc
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            # a reply of the wrong shape (a list for an object...) fails on first use
            raise ModelError(f"the model's reply is malformed: {exc!r}") from exc


def _until(pieces: Iterator[Piece], deadline: float) -> Iterator[Piece]:
    for piece in pieces:
        if time.monotonic() > deadline:
            raise ModelError("the model did not answer before the deadline")
        yield piece


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _retry_after(raw: str | None) -> float:
    try:
        return min(float(raw or 0), 10.0)
    except ValueError:
        return 0.0


def _from_json(data: dict[str, Any]) -> Reply:
    msg = data["choices"][0]["message"]
    calls = [ToolCall(str(c.get("id") or f"call_{i}"), str(c["function"]["name"]),
                      str(c["function"].get("arguments") or "{}"))
             for i, c in enumerate(msg.get("tool_calls") or [])]
    return Reply(str(msg.get("content") or ""), calls)


def _from_stream(lines: Iterator[str], on_text: Callable[[str], None] | None) -> Reply:
    text: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    for line in lines:
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            break
        chunk = json.loads(payload)
        if not chunk.get("choices"):
            continue
        delta = chunk["choices"][0].get("delta") or {}
        if delta.get("content"):
            text.append(delta["content"])
            if on_text is not None:
                on_text(delta["content"])
        for part in delta.get("tool_calls") or []:
            slot = calls.setdefault(int(part.get("index", 0)), {"id": "", "name": "", "args": ""})
            slot["id"] = part.get("id") or slot["id"]
            fn = part.get("function") or {}
            slot["name"] += fn.get("name") or ""
            slot["args"] += fn.get("arguments") or ""
    return Reply("".join(text), [ToolCall(c["id"] or f"call_{i}", c["name"], c["args"] or "{}")
                                 for i, c in sorted(calls.items())])
