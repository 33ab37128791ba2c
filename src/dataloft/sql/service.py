"""Governed SQL: the tables a caller may read, restricted, queried in the sandboxed engine.

Rows reachable = rows of attached files the access policy lets the caller read, and (via an
assistant) only those matching the association filter. Both are applied while the rows are
loaded into the query's DuckDB, before it is locked down (see `sql.engine`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dataloft.context import Context
from dataloft.datasets import service as datasets
from dataloft.errors import BadRequest
from dataloft.kit.filters import DuckColumn, Filter, duck_quote, to_duckdb
from dataloft.kit.principal import Principal
from dataloft.knowledge import service as knowledge
from dataloft.sql import catalog, engine, present, structured
from dataloft.sql.catalog import Table

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
# Snapshot copies kept on an API host when blobs are remote (S3): enough for the working
# set of a few hundred million rows; the least recently fetched go first.
CACHE_MAX_BYTES = 8 << 30
_KINDS = {"integer": "number", "number": "number", "boolean": "bool", "json": "json"}


class SnapshotGone(Exception):
    """A snapshot the catalog named was deleted meanwhile (a newer sync replaced it)."""


class QueryBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sql: str | None = Field(default=None, max_length=100_000)
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    format: Literal["rows", "table", "chart"] = "rows"
    # A structured query (see sql/structured.py) instead of `sql`.
    table: str | None = None
    select: list[str] | None = None
    aggregate: dict[str, Any] | None = None
    groupBy: list[str] | None = None
    filter: dict[str, Any] | None = None
    orderBy: list[Any] | None = None


def _load(t: Table, path: str, restriction: Filter | None) -> engine.LoadTable:
    row = t.row
    select, columns = [], {}
    for c in row.columns:
        q = duck_quote(c["name"])
        sql_type = c["sqlType"]
        if sql_type in ("DATE", "TIMESTAMP"):
            select.append(f"TRY_CAST({q} AS {sql_type}) AS {q}")
        elif sql_type == "JSON":
            select.append(f"CAST({q} AS JSON) AS {q}")
        else:
            select.append(q)
        columns[c["name"]] = DuckColumn(q, _KINDS.get(c["type"], "string"))
    if "row" not in columns:
        columns["row"] = DuckColumn(duck_quote(row.row_column), "number")
    return engine.LoadTable(duck_quote(t.name), path, ", ".join(select),
                            to_duckdb(restriction, columns, row.meta))


def snapshot_path(ctx: Context, key: str) -> str:
    """A local path of the snapshot blob: the local store's own file, or a copy cached on
    this host's disk (keys are never reused, so a cached copy never goes stale)."""
    local = getattr(ctx.blobs, "path", None)
    if callable(local):
        return str(local(key))
    cache = Path(ctx.settings.data_dir).resolve() / "sql-cache"
    target = cache / (hashlib.sha256(key.encode()).hexdigest() + ".parquet")
    if target.exists():
        with contextlib.suppress(FileNotFoundError):
            os.utime(target)  # recently used: pruned last
    else:
        cache.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                for chunk in ctx.blobs.open(key):
                    fh.write(chunk)
            os.replace(tmp, target)
        except FileNotFoundError as exc:
            raise SnapshotGone() from exc
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        _prune(cache, keep=target)
    return str(target)


def _prune(cache: Path, keep: Path) -> None:
    """Drop the least recently fetched copies beyond CACHE_MAX_BYTES. A copy deleted under a
    query that already opened it stays readable; one deleted just before is fetched again
    (the query is retried once, see `_retrying`)."""
    entries = []
    for p in cache.glob("*.parquet"):
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        entries.append((st.st_mtime, st.st_size, p))
    total = sum(size for _, size, _ in entries)
    for _, size, p in sorted(entries):
        if total <= CACHE_MAX_BYTES:
            break
        if p != keep:
            p.unlink(missing_ok=True)
            total -= size


def _scope_dataset(ctx: Context, principal: Principal, dataset_id: str
                   ) -> list[tuple[Table, Filter | None]]:
    with ctx.db.read() as session:
        dataset = datasets.get(session, principal, dataset_id)
        return [(t, None) for t in catalog.tables(session, principal, dataset)]


def _scope_assistant(ctx: Context, principal: Principal, assistant_id: str
                     ) -> list[tuple[Table, Filter | None]]:
    out: list[tuple[Table, Filter | None]] = []
    taken: set[str] = set()
    with ctx.db.read() as session:
        for source in knowledge.sources(session, principal, assistant_id):
            out += [(t, source.filter)
                    for t in catalog.tables(session, principal, source.dataset, taken)]
    return out


def schema(ctx: Context, principal: Principal, dataset_id: str) -> dict[str, Any]:
    return {"id": dataset_id,
            "tables": catalog.schema([t for t, _ in _scope_dataset(ctx, principal, dataset_id)])}


def query_dataset(ctx: Context, principal: Principal, dataset_id: str,
                  body: QueryBody) -> dict[str, Any]:
    return _retrying(ctx, lambda: _scope_dataset(ctx, principal, dataset_id), body)


def query_assistant(ctx: Context, principal: Principal, assistant_id: str,
                    body: QueryBody) -> dict[str, Any]:
    return _retrying(ctx, lambda: _scope_assistant(ctx, principal, assistant_id), body)


def _retrying(ctx: Context, scope: Callable[[], list[tuple[Table, Filter | None]]],
              body: QueryBody) -> dict[str, Any]:
    """Run once more on a fresh catalog if a sync replaced a snapshot under the query."""
    try:
        return _run(ctx, scope(), body)
    except (SnapshotGone, engine.SqlInvalid) as exc:
        if isinstance(exc, engine.SqlInvalid) and "parquet" not in exc.message.lower():
            raise
        return _run(ctx, scope(), body)


def limits(ctx: Context) -> engine.Limits:
    configured = ctx.extra.get("sql_limits")
    return configured if isinstance(configured, engine.Limits) else engine.Limits()


def _run(ctx: Context, scope: list[tuple[Table, Filter | None]], body: QueryBody
         ) -> dict[str, Any]:
    structured_parts = body.model_dump(exclude_none=True,
                                       include={"table", "select", "aggregate", "groupBy",
                                                "filter", "orderBy"})
    if body.sql is not None and structured_parts:
        raise BadRequest("send either sql or a structured query (aggregate, groupBy ...), "
                         "not both")
    if body.sql is None and not structured_parts:
        raise BadRequest("sql: required (or a structured query: table, select, aggregate ...)")
    tables = [t for t, _ in scope]
    sql = body.sql if body.sql is not None else structured.compile_query(structured_parts,
                                                                         tables)
    if not sql.strip():
        raise BadRequest("sql: must not be empty")
    loads = [_load(t, snapshot_path(ctx, t.row.blob_key), f) for t, f in scope]
    if any(not os.path.exists(load.path) for load in loads):
        raise SnapshotGone()
    result = engine.run(loads, sql, body.limit, limits(ctx))
    if body.format == "table":
        return present.table(result)
    if body.format == "chart":
        return present.chart(result)
    return present.rows(result)
