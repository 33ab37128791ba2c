"""What the sync and async clients share: each call as a description (method, path, body,
how to read the answer), so both run the same calls and only the I/O differs."""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx

from dataloft.client.models import (
    Dataset,
    Event,
    File,
    QueryResult,
    Reply,
    SearchResult,
    SyncResult,
)

T = TypeVar("T")
DEFAULT_URL = "http://127.0.0.1:8080"
MAX_SERVER_WAIT = 60.0  # the server grants at most this per `?wait`
CHUNK = 256 * 1024


class ApiError(Exception):
    """The server answered an error: its status, its `code` and its `message`."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


@dataclass
class Call(Generic[T]):
    method: str
    path: str
    read: Callable[[Any], T]
    json: Any = None
    params: Mapping[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def settings(url: str | None, api_key: str | None) -> tuple[str, str]:
    """The server and the key: arguments first, then DATALOFT_URL and DATALOFT_API_KEY."""
    base = url or os.environ.get("DATALOFT_URL") or DEFAULT_URL
    key = api_key or os.environ.get("DATALOFT_API_KEY") or ""
    return base.rstrip("/"), key


def check(response: httpx.Response) -> Any:
    if response.is_success:
        return response.json() if response.content else None
    try:
        body = response.json()
        code, message = str(body.get("code", "ERROR")), str(body.get("message", body))
    except ValueError:
        code, message = "ERROR", response.text[:500]
    raise ApiError(response.status_code, code, message)


def content_type(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


def chunks(path: Path, progress: Callable[[int], None] | None) -> Iterator[bytes]:
    """The file in pieces, reporting the bytes sent so far after each."""
    sent = 0
    with path.open("rb") as f:
        while piece := f.read(CHUNK):
            sent += len(piece)
            yield piece
            if progress:
                progress(sent)


def _id(body: Any) -> str:
    return str(body["id"])


def _items(body: Any) -> tuple[list[dict[str, Any]], str | None]:
    return list(body["items"]), body.get("cursor")


def _query(body: Any) -> QueryResult | dict[str, Any]:
    if "columns" in body and "rows" in body:
        return QueryResult.model_validate(body)
    return dict(body)


class Calls:
    """The API, call by call."""

    @staticmethod
    def create_dataset(name: str, **fields: Any) -> Call[str]:
        return Call("POST", "/api/v1/dataset/create", _id, json={"name": name, **fields})

    @staticmethod
    def update_dataset(dataset_id: str, **fields: Any) -> Call[str]:
        return Call("POST", f"/api/v1/dataset/{dataset_id}/update", _id, json=fields)

    @staticmethod
    def get_dataset(dataset_id: str) -> Call[Dataset]:
        return Call("GET", f"/api/v1/dataset/{dataset_id}/fetch", Dataset.model_validate)

    @staticmethod
    def page(path: str, cursor: str | None, take: int = 100,
             params: Mapping[str, Any] | None = None
             ) -> Call[tuple[list[dict[str, Any]], str | None]]:
        query = {"take": take, **(params or {})}
        if cursor:
            query["cursor"] = cursor
        return Call("GET", path, _items, params=query)

    @staticmethod
    def create_file(name: str, **fields: Any) -> Call[str]:
        return Call("POST", "/api/v1/file/create", _id, json={"name": name, **fields})

    @staticmethod
    def get_file(file_id: str) -> Call[File]:
        return Call("GET", f"/api/v1/file/{file_id}/fetch", File.model_validate)

    @staticmethod
    def attach(dataset_id: str, file_id: str, kind: str = "source") -> Call[str]:
        return Call("POST", f"/api/v1/dataset/{dataset_id}/file/{file_id}/attach", _id,
                    json={"type": kind})

    @staticmethod
    def detach(dataset_id: str, file_id: str, delete_records: bool = True) -> Call[str]:
        return Call("POST", f"/api/v1/dataset/{dataset_id}/file/{file_id}/detach", _id,
                    json={"deleteRecords": delete_records})

    @staticmethod
    def sync(dataset_id: str, file_id: str, wait: float | None) -> Call[SyncResult]:
        params = None if wait is None else {"wait": min(wait, MAX_SERVER_WAIT)}
        return Call("POST", f"/api/v1/dataset/{dataset_id}/file/{file_id}/sync",
                    SyncResult.model_validate, params=params)

    @staticmethod
    def search(dataset_id: str, text: str, mode: str, take: int | None,
               filter: dict[str, Any] | None) -> Call[SearchResult]:
        body: dict[str, Any] = {"search": text, "mode": mode}
        if take is not None:
            body["take"] = take
        if filter is not None:
            body["filter"] = filter
        return Call("POST", f"/api/v1/dataset/{dataset_id}/search",
                    SearchResult.model_validate, json=body)

    @staticmethod
    def query(dataset_id: str, sql: str, fmt: str, limit: int | None
              ) -> Call[QueryResult | dict[str, Any]]:
        body: dict[str, Any] = {"sql": sql, "format": fmt}
        if limit is not None:
            body["limit"] = limit
        return Call("POST", f"/api/v1/dataset/{dataset_id}/query", _query, json=body)

    @staticmethod
    def schema(dataset_id: str) -> Call[dict[str, Any]]:
        return Call("GET", f"/api/v1/dataset/{dataset_id}/schema", dict)

    @staticmethod
    def events(dataset_id: str | None, take: int) -> Call[list[Event]]:
        path = f"/api/v1/dataset/{dataset_id}/event/list" if dataset_id else "/api/v1/event/list"
        return Call("GET", path, lambda b: [Event.model_validate(e) for e in b["items"]],
                    params={"take": take})

    @staticmethod
    def start_conversation(agent_id: str, user: str, context: dict[str, Any] | None
                           ) -> Call[str]:
        body: dict[str, Any] = {"userIdentifier": user}
        if context:
            body["userContext"] = context
        return Call("POST", f"/api/v1/agents/{agent_id}/conversations", _id, json=body)

    @staticmethod
    def reply(agent_id: str, conversation_id: str, message: str) -> Call[Reply]:
        return Call("POST", f"/api/v1/agents/{agent_id}/conversations/{conversation_id}"
                    "/response", Reply.model_validate, json={"message": message})

    @staticmethod
    def stream_path(agent_id: str, conversation_id: str) -> str:
        return f"/api/v1/agents/{agent_id}/conversations/{conversation_id}/response"
