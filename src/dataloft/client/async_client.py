"""The asynchronous client: the same calls as Client, awaited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from dataloft.client.core import CHUNK, Call, Calls, check, content_type, settings
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
from dataloft.client.sync_client import sse_events

T = TypeVar("T")


class AsyncClient:
    """`AsyncClient()` reads DATALOFT_URL and DATALOFT_API_KEY; or pass `url` and
    `api_key`. Use it as `async with AsyncClient() as dl: ...`."""

    def __init__(self, url: str | None = None, api_key: str | None = None, *,
                 timeout: float = 120.0, transport: httpx.AsyncBaseTransport | None = None):
        self.url, key = settings(url, api_key)
        self.http = httpx.AsyncClient(base_url=self.url, timeout=timeout, transport=transport,
                                      headers={"Authorization": f"Bearer {key}"})

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _run(self, call: Call[T]) -> T:
        r = await self.http.request(call.method, call.path, json=call.json,
                                    params=call.params, headers=call.headers)
        return call.read(check(r))

    async def _all(self, path: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            items, cursor = await self._run(Calls.page(path, cursor))
            out.extend(items)
            if not cursor or not items:
                return out

    async def create_dataset(self, name: str, **fields: Any) -> str:
        return await self._run(Calls.create_dataset(name, **fields))

    async def update_dataset(self, dataset_id: str, **fields: Any) -> str:
        return await self._run(Calls.update_dataset(dataset_id, **fields))

    async def get_dataset(self, dataset_id: str) -> Dataset:
        return await self._run(Calls.get_dataset(dataset_id))

    async def list_datasets(self) -> list[Dataset]:
        return [Dataset.model_validate(d) for d in await self._all("/api/v1/dataset/list")]

    async def upload(self, source: str | Path | bytes, name: str | None = None, *,
                     type: str | None = None, progress: Callable[[int], None] | None = None,
                     **fields: Any) -> str:
        if isinstance(source, bytes):
            name, data = name or "upload.bin", source
        else:
            path = Path(source)
            name, data = name or path.name, path.read_bytes()
        file_id = await self._run(Calls.create_file(name, **fields))

        async def pieces() -> AsyncIterator[bytes]:
            for start in range(0, len(data), CHUNK):
                yield data[start:start + CHUNK]
                if progress:
                    progress(min(start + CHUNK, len(data)))

        r = await self.http.post(f"/api/v1/file/{file_id}/upload", content=pieces(), headers={
            "Content-Type": type or content_type(name), "Content-Length": str(len(data))})
        check(r)
        return file_id

    async def get_file(self, file_id: str) -> File:
        return await self._run(Calls.get_file(file_id))

    async def list_files(self) -> list[File]:
        return [File.model_validate(f) for f in await self._all("/api/v1/file/list")]

    async def dataset_files(self, dataset_id: str) -> list[File]:
        return [File.model_validate(f)
                for f in await self._all(f"/api/v1/dataset/{dataset_id}/file/list")]

    async def attach(self, dataset_id: str, file_id: str, type: str = "source") -> str:
        return await self._run(Calls.attach(dataset_id, file_id, type))

    async def detach(self, dataset_id: str, file_id: str, delete_records: bool = True) -> str:
        return await self._run(Calls.detach(dataset_id, file_id, delete_records))

    async def sync(self, dataset_id: str, file_id: str, wait: float | None = None
                   ) -> SyncResult:
        result = await self._run(Calls.sync(dataset_id, file_id, wait))
        if wait is None or result.done:
            return result
        found = (await self.wait_for(dataset_id, [file_id], wait))[file_id]
        return SyncResult(id=file_id, status=found.status or "queued", done=found.ended,
                          attachment=found)

    async def sync_statuses(self, dataset_id: str) -> dict[str, Attachment]:
        return {f.id: f.attachment for f in await self.dataset_files(dataset_id)
                if f.attachment is not None}

    async def wait_for(self, dataset_id: str, file_ids: Iterable[str], timeout: float = 600.0,
                       poll: float = 0.5) -> dict[str, Attachment]:
        wanted = set(file_ids)
        deadline = time.monotonic() + timeout
        while True:
            statuses = {k: v for k, v in (await self.sync_statuses(dataset_id)).items()
                        if k in wanted}
            if all(s.ended for s in statuses.values()) or time.monotonic() >= deadline:
                return statuses
            await asyncio.sleep(poll)

    async def search(self, dataset_id: str, text: str, *, mode: str = "hybrid",
                     take: int | None = None, filter: dict[str, Any] | None = None
                     ) -> SearchResult:
        return await self._run(Calls.search(dataset_id, text, mode, take, filter))

    async def query(self, dataset_id: str, sql: str, *, format: str = "rows",
                    limit: int | None = None) -> QueryResult | dict[str, Any]:
        return await self._run(Calls.query(dataset_id, sql, format, limit))

    async def schema(self, dataset_id: str) -> dict[str, Any]:
        return await self._run(Calls.schema(dataset_id))

    async def events(self, dataset_id: str | None = None, take: int = 50) -> list[Event]:
        return await self._run(Calls.events(dataset_id, take))

    async def start_conversation(self, agent_id: str, user: str,
                                 context: dict[str, Any] | None = None) -> str:
        return await self._run(Calls.start_conversation(agent_id, user, context))

    async def ask(self, agent_id: str, conversation_id: str, message: str) -> Reply:
        return await self._run(Calls.reply(agent_id, conversation_id, message))

    async def ask_stream(self, agent_id: str, conversation_id: str, message: str
                         ) -> AsyncIterator[dict[str, Any]]:
        async with self.http.stream("POST", Calls.stream_path(agent_id, conversation_id),
                                    json={"message": message, "stream": True},
                                    headers={"Accept": "text/event-stream"}) as r:
            if not r.is_success:
                await r.aread()
                check(r)
            data: list[str] = []
            async for line in r.aiter_lines():
                if line.startswith("data:"):
                    data.append(line)
                elif not line.strip() and data:
                    for event in sse_events([*data, ""]):
                        yield event
                    data = []
            for event in sse_events(data):
                yield event
