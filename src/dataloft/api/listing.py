"""One way to answer a listing: a JSON page with a cursor, or a JSONL stream."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from dataloft.context import Context
from dataloft.kit import filters
from dataloft.kit.pagination import PageParams, page, stream


def wants_jsonl(request: Request) -> bool:
    accept = request.headers.get("accept", "").lower()
    return "application/jsonl" in accept or "application/x-ndjson" in accept


def with_meta_filter(stmt: Select[Any], meta_col: Any, system: dict[str, Any],
                     pairs: list[tuple[str, str]], dialect: str) -> Select[Any]:
    parsed = filters.from_query_params(pairs)
    return stmt.where(filters.to_sql(parsed, meta_col, system, dialect)) if parsed else stmt


def respond(request: Request, ctx: Context, session: Session, stmt: Select[Any],
            id_col: InstrumentedAttribute[str], render: Callable[[Any], dict[str, Any]]
            ) -> Any:
    params = PageParams.from_query(list(request.query_params.multi_items()))
    if wants_jsonl(request):
        def lines() -> Iterator[bytes]:
            for item in stream(ctx.db.read, stmt, id_col, params, render):
                yield (json.dumps({"type": "item", "data": item}, ensure_ascii=False)
                       + "\n").encode()
        return StreamingResponse(lines(), media_type="application/jsonl")
    items, cursor = page(session, stmt, id_col, params)
    body: dict[str, Any] = {"items": [render(i) for i in items]}
    if cursor:
        body["cursor"] = cursor
    return body
