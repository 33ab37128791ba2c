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
from dataloft.errors import BadRequest
from dataloft.kit import filters
from dataloft.kit.pagination import PageParams, page, stream

# `responses=` of every listing route: the JSONL alternative next to the documented page.
LISTING: dict[int | str, dict[str, Any]] = {200: {
    "description": "A page of items; with `Accept: application/jsonl`, every matching item "
                   "as one `{\"type\": \"item\", \"data\": {...}}` line.",
    "content": {"application/jsonl": {"schema": {"type": "string"}}}}}


def wants_jsonl(request: Request) -> bool:
    accept = request.headers.get("accept", "").lower()
    return "application/jsonl" in accept or "application/x-ndjson" in accept


def with_meta_filter(stmt: Select[Any], meta_col: Any, system: dict[str, Any],
                     pairs: list[tuple[str, str]], dialect: str,
                     rewrite: Callable[[filters.Filter], filters.Filter] | None = None
                     ) -> Select[Any]:
    """Apply `meta[k]=v` / `meta.k=v` equality and a JSON `filter=` in the filter language;
    `rewrite` may turn the query-string conditions into conditions on system fields."""
    from_query = filters.from_query_params(pairs)
    if from_query is not None and rewrite is not None:
        from_query = rewrite(from_query)
    for parsed in (from_query, _json_filter(pairs)):
        if parsed is not None:
            stmt = stmt.where(filters.to_sql(parsed, meta_col, system, dialect))
    return stmt


def _json_filter(pairs: list[tuple[str, str]]) -> filters.Filter | None:
    raw = dict(pairs).get("filter")
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"filter is not valid JSON: {exc}") from exc
    return filters.parse_filter(value)


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
