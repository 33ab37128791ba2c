"""/api/v1/event/*: the organisation's event log: listed, exported, followed live.

Live readers (`log/subscribe` as @chatbotkit/sdk calls it, and the Server-Sent Events
`stream`) poll the events table (events/tail.py), so an event written by any API process or
worker reaches every reader, in embedded and cluster mode alike."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from dataloft.api.deps import Bearer, CtxDep, PrincipalDep, SessionDep, get_principal
from dataloft.api.listing import LISTING, respond, with_meta_filter
from dataloft.api.openapi import Documented, errors
from dataloft.context import Context
from dataloft.errors import BadRequest
from dataloft.events import service as events
from dataloft.events.schemas import EventPage
from dataloft.events.tail import Tail, history
from dataloft.keys import service as keys
from dataloft.keys import tokens
from dataloft.kit.pagination import PageParams, stream
from dataloft.kit.principal import Principal
from dataloft.models import Event

router = APIRouter(prefix="/api/v1", tags=["events"], route_class=Documented,
                   responses=errors())

CSV_COLUMNS = ("id", "type", "datasetId", "fileId", "createdAt", "data")
_EXPORT: dict[int | str, dict[str, Any]] = {200: {
    **LISTING[200], "content": {**LISTING[200]["content"],
                                "text/csv": {"schema": {"type": "string"}}}}}
_LIVE = "An endless stream (until the client leaves or DATALOFT_EVENT_STREAM_MAX_SECONDS)."
_SUBSCRIBE: dict[int | str, dict[str, Any]] = {200: {
    "description": f"{_LIVE} One `{{\"type\": \"item\", \"data\": event}}` line per "
                   "event, `{\"type\": \"ping\"}` lines as keep-alives.",
    "content": {"application/jsonl": {"schema": {"type": "string", "format": "binary"}}}}}
_SSE: dict[int | str, dict[str, Any]] = {200: {
    "description": f"{_LIVE} Server-Sent Events: `id:` the event id, `data:` the event.",
    "content": {"text/event-stream": {"schema": {"type": "string", "format": "binary"}}}}}


class SubscribeBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    historyLength: int | None = Field(default=None, ge=0, le=1000)


def _listing(request: Request, ctx: Context, principal: Principal) -> Any:
    return with_meta_filter(events.listing(principal), Event.data, events.FIELDS,
                            list(request.query_params.multi_items()), ctx.dialect,
                            rewrite=events.promote)


@router.get("/event/list", response_model=EventPage, responses=LISTING)
@router.get("/event/log/list", response_model=EventPage, responses=LISTING)
def list_events(request: Request, ctx: CtxDep, session: SessionDep,
                principal: PrincipalDep) -> Any:
    return respond(request, ctx, session, _listing(request, ctx, principal), Event.id,
                   events.render)


@router.get("/event/log/export", response_model=EventPage, responses=_EXPORT)
def export_events(request: Request, ctx: CtxDep, session: SessionDep,
                  principal: PrincipalDep) -> Any:
    """`format=json` (a page, as list), `jsonl` or `csv` (every matching event, streamed);
    without `format`, the Accept header decides as for list."""
    fmt = request.query_params.get("format") or (
        "csv" if "text/csv" in request.headers.get("accept", "") else "")
    if fmt not in ("", "json", "jsonl", "csv"):
        raise BadRequest("format must be json, jsonl or csv")
    stmt = _listing(request, ctx, principal)
    params = PageParams.from_query(list(request.query_params.multi_items()))
    if fmt == "jsonl":
        lines = (json.dumps({"type": "item", "data": item}, ensure_ascii=False) + "\n"
                 for item in stream(ctx.db.read, stmt, Event.id, params, events.render))
        return StreamingResponse(_encoded(lines), media_type="application/jsonl")
    if fmt == "csv":
        rows = stream(ctx.db.read, stmt, Event.id, params, events.render)
        return StreamingResponse(_csv(rows), media_type="text/csv",
                                 headers={"Content-Disposition": 'attachment; '
                                          'filename="events.csv"'})
    return respond(request, ctx, session, stmt, Event.id, events.render)


def _encoded(lines: Iterator[str]) -> Iterator[bytes]:
    for line in lines:
        yield line.encode()


def _csv(items: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for item in items:
        writer.writerow([json.dumps(item[c], ensure_ascii=False) if c == "data" else item[c]
                         for c in CSV_COLUMNS])
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue().encode()


@router.post("/event/log/subscribe", response_class=StreamingResponse, responses=_SUBSCRIBE)
async def subscribe_events(request: Request, ctx: CtxDep, principal: PrincipalDep,
                           body: SubscribeBody | None = None) -> StreamingResponse:
    """JSONL: the last `historyLength` events, then each new one as it is committed, one
    `{"type": "item", "data": event}` per line; `{"type": "ping"}` lines keep it open."""
    n = (body or SubscribeBody()).historyLength or 0
    tail = Tail(principal)

    def start() -> list[dict[str, Any]]:
        with ctx.db.read() as session:  # one snapshot: no event falls between the two
            past = history(session, principal, n)
            tail.prime(session)
        return past

    past = await run_in_threadpool(start)

    def line(item: dict[str, Any] | None) -> bytes:
        obj = {"type": "ping"} if item is None else {"type": "item", "data": item}
        return (json.dumps(obj, ensure_ascii=False) + "\n").encode()

    async def body_lines() -> AsyncIterator[bytes]:
        for old in past:
            yield line(old)
        async for new in _follow(request, ctx, tail):
            yield line(new)

    return StreamingResponse(body_lines(), media_type="application/jsonl",
                             headers={"Cache-Control": "no-store"})


def _sse_principal(request: Request, ctx: CtxDep, _bearer: Bearer = None) -> Principal:
    """A browser's EventSource sends no headers: it may carry an end-user token as `?token=`
    (short-lived and narrow; API keys stay out of URLs, which logs keep)."""
    token = request.query_params.get("token")
    if not token or request.headers.get("authorization"):
        return get_principal(request, ctx)
    if not token.startswith(tokens.PREFIX):
        raise BadRequest("?token= takes an end-user token; send API keys as "
                         "'Authorization: Bearer <key>'")
    with ctx.db.read() as session:
        return keys.from_token(session, tokens.verify(ctx.verify_keys, token))


@router.get("/event/stream", response_class=StreamingResponse, responses=_SSE)
async def event_stream(request: Request, ctx: CtxDep,
                       principal: Annotated[Principal, Depends(_sse_principal)]
                       ) -> StreamingResponse:
    """Server-Sent Events: each new event as `id:` + `data:`; a reconnecting EventSource
    sends `Last-Event-ID` and gets every visible event after that one first."""
    last = (request.headers.get("last-event-id")
            or request.query_params.get("lastEventId") or "").strip()
    if last and not last.startswith("evt_"):
        raise BadRequest("Last-Event-ID must be an event id")
    tail = Tail(principal, last or None)
    if not last:
        await run_in_threadpool(_prime, ctx, tail)

    async def frames() -> AsyncIterator[bytes]:
        yield b"retry: 2000\n\n"
        async for item in _follow(request, ctx, tail):
            if item is None:
                yield b": keep-alive\n\n"
            else:
                data = json.dumps(item, ensure_ascii=False)
                yield f"id: {item['id']}\ndata: {data}\n\n".encode()

    return StreamingResponse(frames(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store",
                                      "X-Accel-Buffering": "no"})


def _prime(ctx: Context, tail: Tail) -> None:
    with ctx.db.read() as session:
        tail.prime(session)


def _poller(ctx: Context, tail: Tail) -> Callable[[], list[dict[str, Any]]]:
    def poll() -> list[dict[str, Any]]:
        with ctx.db.read() as session:
            return tail.poll(session)
    return poll


async def _follow(request: Request, ctx: Context, tail: Tail
                  ) -> AsyncIterator[dict[str, Any] | None]:
    """New events as they come; None when a keep-alive is due. Ends when the client goes,
    or at the streams' time limit."""
    poll = _poller(ctx, tail)
    quiet_since = time.monotonic()
    limit = ctx.settings.event_stream_max_seconds
    ends = quiet_since + limit if limit > 0 else float("inf")
    while time.monotonic() < ends and not await request.is_disconnected():
        items = await run_in_threadpool(poll)
        for item in items:
            yield item
        if items:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= ctx.settings.event_keepalive_seconds:
            quiet_since = time.monotonic()
            yield None
        await asyncio.sleep(ctx.settings.event_poll_seconds)
