"""The synchronous client."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx

from dataloft.client.core import (
    ApiError,
    Call,
    Calls,
    check,
    chunks,
    content_type,
    settings,
)
from dataloft.client.models import (
    Attachment,
    Dataset,
    Event,
    File,
    QueryResult,
    Reply,
    SearchResult,
    SyncResult,
)

T = TypeVar("T")


class Client:
    """`Client()` reads DATALOFT_URL and DATALOFT_API_KEY; or pass `url` and `api_key`."""

    def __init__(self, url: str | None = None, api_key: str | None = None, *,
                 timeout: float = 120.0, transport: httpx.BaseTransport | None = None):
        self.url, key = settings(url, api_key)
        self.http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport,
                                 headers={"Authorization": f"Bearer {key}"})

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _run(self, call: Call[T]) -> T:
        r = self.http.request(call.method, call.path, json=call.json, params=call.params,
                              headers=call.headers)
        return call.read(check(r))

    def _all(self, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            items, cursor = self._run(Calls.page(path, cursor, params=params))
            out.extend(items)
            if not cursor or not items:
                return out

    # datasets
    def create_dataset(self, name: str, **fields: Any) -> str:
        return self._run(Calls.create_dataset(name, **fields))

    def update_dataset(self, dataset_id: str, **fields: Any) -> str:
        return self._run(Calls.update_dataset(dataset_id, **fields))

    def get_dataset(self, dataset_id: str) -> Dataset:
        return self._run(Calls.get_dataset(dataset_id))

    def list_datasets(self) -> list[Dataset]:
        return [Dataset.model_validate(d) for d in self._all("/api/v1/dataset/list")]

    def find_dataset(self, name_or_id: str) -> Dataset | None:
        """The dataset with this id or name (the newest when several share the name)."""
        for d in self.list_datasets():
            if name_or_id in (d.id, d.name):
                return d
        return None

    def ensure_dataset(self, name: str, **fields: Any) -> tuple[str, bool]:
        """The id of the dataset so named (or with this id), created when missing; and
        whether it was created."""
        found = self.find_dataset(name)
        if found is not None:
            return found.id, False
        return self.create_dataset(name, **fields), True

    # files
    def upload(self, source: str | Path | bytes, name: str | None = None, *,
               type: str | None = None, progress: Callable[[int], None] | None = None,
               **fields: Any) -> str:
        """Create a file and upload its content (a path or bytes); its id. `progress` is
        called with the bytes sent so far."""
        if isinstance(source, bytes):
            name = name or "upload.bin"
            body: bytes | Iterator[bytes] = source
            size = len(source)
        else:
            path = Path(source)
            name = name or path.name
            body, size = chunks(path, progress), path.stat().st_size
        file_id = self._run(Calls.create_file(name, **fields))
        r = self.http.post(f"/api/v1/file/{file_id}/upload", content=body, headers={
            "Content-Type": type or content_type(name), "Content-Length": str(size)})
        check(r)
        if isinstance(source, bytes) and progress:
            progress(size)
        return file_id

    def get_file(self, file_id: str) -> File:
        return self._run(Calls.get_file(file_id))

    def list_files(self) -> list[File]:
        return [File.model_validate(f) for f in self._all("/api/v1/file/list")]

    def dataset_files(self, dataset_id: str) -> list[File]:
        """The dataset's files, each with its attachment (its sync's state)."""
        return [File.model_validate(f)
                for f in self._all(f"/api/v1/dataset/{dataset_id}/file/list")]

    def attach(self, dataset_id: str, file_id: str, type: str = "source") -> str:
        return self._run(Calls.attach(dataset_id, file_id, type))

    def detach(self, dataset_id: str, file_id: str, delete_records: bool = True) -> str:
        return self._run(Calls.detach(dataset_id, file_id, delete_records))

    # sync
    def sync(self, dataset_id: str, file_id: str, wait: float | None = None) -> SyncResult:
        """Ask for a sync; with `wait`, return once it ended or `wait` seconds passed."""
        result = self._run(Calls.sync(dataset_id, file_id, wait))
        if wait is None or result.done:
            return result
        found = self.wait_for(dataset_id, [file_id], wait)[file_id]
        return SyncResult(id=file_id, status=found.status or "queued", done=found.ended,
                          attachment=found)

    def sync_statuses(self, dataset_id: str) -> dict[str, Attachment]:
        return {f.id: f.attachment for f in self.dataset_files(dataset_id)
                if f.attachment is not None}

    def wait_for(self, dataset_id: str, file_ids: Iterable[str], timeout: float = 600.0,
                 on_change: Callable[[dict[str, Attachment]], None] | None = None,
                 poll: float = 0.5) -> dict[str, Attachment]:
        """Poll the dataset's file list until these files' syncs ended (or the timeout)."""
        wanted = set(file_ids)
        deadline = time.monotonic() + timeout
        while True:
            statuses = {k: v for k, v in self.sync_statuses(dataset_id).items() if k in wanted}
            if on_change:
                on_change(statuses)
            if all(s.ended for s in statuses.values()) or time.monotonic() >= deadline:
                return statuses
            time.sleep(poll)

    # reading
    def search(self, dataset_id: str, text: str, *, mode: str = "hybrid",
               take: int | None = None, filter: dict[str, Any] | None = None) -> SearchResult:
        return self._run(Calls.search(dataset_id, text, mode, take, filter))

    def query(self, dataset_id: str, sql: str, *, format: str = "rows",
              limit: int | None = None) -> QueryResult | dict[str, Any]:
        """Governed SQL: a QueryResult for rows; a dict for `table` and `chart` (a
        Vega-Lite spec)."""
        return self._run(Calls.query(dataset_id, sql, format, limit))

    def schema(self, dataset_id: str) -> dict[str, Any]:
        return self._run(Calls.schema(dataset_id))

    def events(self, dataset_id: str | None = None, take: int = 50) -> list[Event]:
        """The newest events first."""
        return self._run(Calls.events(dataset_id, take))

    def tail_events(self, dataset_id: str | None = None, poll: float = 1.0
                    ) -> Iterator[Event]:
        """Events as they happen (oldest first), forever: poll and yield the unseen."""
        seen = {e.id for e in self.events(dataset_id, 100)}
        while True:
            time.sleep(poll)
            fresh = [e for e in self.events(dataset_id, 100) if e.id not in seen]
            for event in sorted(fresh, key=lambda e: (e.created_at, e.id)):
                seen.add(event.id)
                yield event

    # conversations (the Inconvo agents API)
    def start_conversation(self, agent_id: str, user: str,
                           context: dict[str, Any] | None = None) -> str:
        return self._run(Calls.start_conversation(agent_id, user, context))

    def ask(self, agent_id: str, conversation_id: str, message: str) -> Reply:
        return self._run(Calls.reply(agent_id, conversation_id, message))

    def ask_stream(self, agent_id: str, conversation_id: str, message: str
                   ) -> Iterator[dict[str, Any]]:
        """The answer as server-sent events (each a dict), ending with the full reply."""
        with self.http.stream("POST", Calls.stream_path(agent_id, conversation_id),
                              json={"message": message, "stream": True},
                              headers={"Accept": "text/event-stream"}) as r:
            if not r.is_success:
                r.read()
                check(r)
            yield from sse_events(r.iter_lines())


def sse_events(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """JSON `data:` payloads of a server-sent event stream ([DONE] and non-JSON skipped),
    each as soon as its blank line arrives."""
    data: list[str] = []
    for line in lines:
        if line.startswith("data:"):
            data.append(line[5:].lstrip())
        elif not line.strip() and data:
            yield from _decoded("\n".join(data))
            data = []
    if data:
        yield from _decoded("\n".join(data))


def _decoded(payload: str) -> Iterator[dict[str, Any]]:
    if payload == "[DONE]":
        return
    try:
        value = json.loads(payload)
    except ValueError:
        return
    if isinstance(value, dict):
        yield value


__all__ = ["ApiError", "Client", "sse_events"]
