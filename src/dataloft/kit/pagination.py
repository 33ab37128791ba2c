"""Cursor pagination over time-sortable ids.

A cursor is base64url(JSON {"id": last_id}), the form the seed documents. Because ids sort
by creation and are unique, "id after the cursor" is a stable position that survives
concurrent inserts and deletes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from dataloft.errors import BadRequest

T = TypeVar("T")
MAX_TAKE = 100
DEFAULT_TAKE = 25


def encode_cursor(last_id: str) -> str:
    raw = json.dumps({"id": last_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        value = data["id"]
        if not isinstance(value, str) or len(value) > 100:
            raise ValueError
        return value
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise BadRequest("cursor is not valid; pass the cursor of a previous page") from exc


@dataclass(frozen=True)
class PageParams:
    cursor: str | None = None
    take: int = DEFAULT_TAKE
    order: Literal["asc", "desc"] = "desc"
    query: list[tuple[str, str]] = field(default_factory=list)  # the raw query string pairs

    @classmethod
    def from_query(cls, pairs: Sequence[tuple[str, str]], max_take: int = MAX_TAKE) -> PageParams:
        q = dict(pairs)
        take_raw = q.get("take")
        try:
            take = DEFAULT_TAKE if take_raw in (None, "") else int(take_raw)
        except ValueError as exc:
            raise BadRequest("take must be an integer") from exc
        if not 1 <= take <= max_take:
            raise BadRequest(f"take must be between 1 and {max_take}")
        order = q.get("order") or "desc"
        if order not in ("asc", "desc"):
            raise BadRequest("order must be 'asc' or 'desc'")
        cursor = q.get("cursor") or None
        if cursor is not None:
            decode_cursor(cursor)
        return cls(cursor=cursor, take=take, order=order, query=list(pairs))  # type: ignore[arg-type]


def _ordered(stmt: Select[Any], id_col: InstrumentedAttribute[str], order: str,
             after: str | None) -> Select[Any]:
    if after is not None:
        stmt = stmt.where(id_col > after if order == "asc" else id_col < after)
    return stmt.order_by(id_col.asc() if order == "asc" else id_col.desc())


def page(session: Session, stmt: Select[Any], id_col: InstrumentedAttribute[str],
         params: PageParams) -> tuple[list[Any], str | None]:
    """One page plus the cursor of the next one (None when this is the last page)."""
    after = decode_cursor(params.cursor) if params.cursor else None
    rows = list(session.scalars(_ordered(stmt, id_col, params.order, after).limit(params.take + 1)))
    more = len(rows) > params.take
    rows = rows[: params.take]
    return rows, (encode_cursor(rows[-1].id) if more and rows else None)


def stream(open_session: Callable[[], Any], stmt: Select[Any], id_col: InstrumentedAttribute[str],
           params: PageParams, render: Callable[[Any], dict[str, Any]],
           batch: int = 200) -> Iterator[dict[str, Any]]:
    """Every item from the cursor on (up to `take` if the client gave one), fetched in
    batches with a short read transaction each, so a long stream never pins a snapshot."""
    after = decode_cursor(params.cursor) if params.cursor else None
    limit = params.take if any(k == "take" for k, _ in params.query) else None
    sent = 0
    while limit is None or sent < limit:
        n = batch if limit is None else min(batch, limit - sent)
        with open_session() as session:
            rows = list(session.scalars(_ordered(stmt, id_col, params.order, after).limit(n)))
            items = [render(r) for r in rows]
        yield from items
        sent += len(rows)
        if len(rows) < n:
            return
        after = rows[-1].id
