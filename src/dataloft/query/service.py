"""Governed SQL: the tables a caller may read, restricted, queried in the sandboxed engine.

Rows reachable = rows of attached files the access policy lets the caller read, and (via an
assistant) only those matching the association filter. Both are applied while the rows are
loaded into the query's DuckDB, before it is locked down (see `query/engine.py`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from dataloft.datasets import service as datasets
from dataloft.errors import BadRequest
from dataloft.kit.db import Database
from dataloft.kit.filters import DuckColumn, Filter, duck_quote, to_duckdb
from dataloft.kit.principal import Principal
from dataloft.knowledge import service as knowledge
from dataloft.query import engine, present, structured
from dataloft.storage.blobs.base import BlobStore
from dataloft.tables import catalog
from dataloft.tables.catalog import Table

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
# Snapshot copies kept on an API host when blobs are remote (S3): enough for the working
# set of a few hundred million rows; the least recently fetched go first.
CACHE_MAX_BYTES = 8 << 30
# The sources a query reaches, read in the query's own session.
SourcesFn = Callable[[Session], list[knowledge.Source]]
_KINDS = {"integer": "number", "number": "number", "boolean": "bool", "json": "json"}


class SnapshotGone(Exception):
    """A snapshot the catalog named was deleted meanwhile (a newer sync replaced it)."""


class QueryBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sql: str | None = Field(default=None, max_length=100_000)
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    format: Literal["rows", "table", "chart"] = "rows"
    # A structured query (see query/structured.py) instead of `sql`.
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


@dataclass(frozen=True)
class QueryService:
    """Governed SQL for one deployment: its database, blobs and warm query engine."""

    db: Database
    blobs: BlobStore
    engine: engine.QueryEngine
    cache_dir: Path  # snapshot copies on this host when blobs are remote

    def schema(self, principal: Principal, dataset_id: str) -> dict[str, Any]:
        tables = [t for t, _ in self._scope_dataset(principal, dataset_id)]
        return {"id": dataset_id, "tables": catalog.schema(tables)}

    def query_dataset(self, principal: Principal, dataset_id: str,
                      body: QueryBody) -> dict[str, Any]:
        return self._retrying(lambda: self._scope_dataset(principal, dataset_id), body)

    def query_assistant(self, principal: Principal, assistant_id: str,
                        body: QueryBody) -> dict[str, Any]:
        return self._retrying(lambda: self._scope_assistant(principal, assistant_id), body)

    def query_sources(self, principal: Principal, sources: SourcesFn,
                      body: QueryBody) -> dict[str, Any]:
        """Governed SQL over sources chosen by the caller (the agent's automatic scope)."""
        return self._retrying(lambda: self._scope_sources(principal, sources), body)

    def schema_sources(self, principal: Principal, sources: SourcesFn) -> list[dict[str, Any]]:
        return catalog.schema([t for t, _ in self._scope_sources(principal, sources)])

    def _scope_sources(self, principal: Principal, sources: SourcesFn
                       ) -> list[tuple[Table, Filter | None]]:
        out: list[tuple[Table, Filter | None]] = []
        taken: set[str] = set()
        with self.db.read() as session:
            for source in sources(session):
                out += [(t, source.filter)
                        for t in catalog.tables(session, principal, source.dataset, taken)]
        return out

    def _scope_dataset(self, principal: Principal, dataset_id: str
                       ) -> list[tuple[Table, Filter | None]]:
        with self.db.read() as session:
            dataset = datasets.get(session, principal, dataset_id)
            return [(t, None) for t in catalog.tables(session, principal, dataset)]

    def _scope_assistant(self, principal: Principal, assistant_id: str
                         ) -> list[tuple[Table, Filter | None]]:
        return self._scope_sources(
            principal, lambda session: knowledge.sources(session, principal, assistant_id))

    def _retrying(self, scope: Callable[[], list[tuple[Table, Filter | None]]],
                  body: QueryBody) -> dict[str, Any]:
        """Run once more on a fresh catalog if a sync replaced a snapshot under the query."""
        try:
            return self._run(scope(), body)
        except (SnapshotGone, engine.SqlInvalid) as exc:
            if isinstance(exc, engine.SqlInvalid) and "parquet" not in exc.message.lower():
                raise
            return self._run(scope(), body)

    def _run(self, scope: list[tuple[Table, Filter | None]], body: QueryBody
             ) -> dict[str, Any]:
        sql = _statement(body, [t for t, _ in scope])
        loads = [_load(t, self.snapshot_path(t.row.blob_key), f) for t, f in scope]
        if any(not os.path.exists(load.path) for load in loads):
            raise SnapshotGone()
        result = self.engine.run(loads, sql, body.limit)
        if body.format == "table":
            return present.table(result)
        if body.format == "chart":
            return present.chart(result)
        return present.rows(result)

    def snapshot_path(self, key: str) -> str:
        """A local path of the snapshot blob: the local store's own file, or a copy cached
        on this host's disk (keys are never reused, so a cached copy never goes stale)."""
        local = self.blobs.local_path(key)
        if local is not None:
            return str(local)
        cache = self.cache_dir
        target = cache / (hashlib.sha256(key.encode()).hexdigest() + ".parquet")
        if target.exists():
            with contextlib.suppress(FileNotFoundError):
                os.utime(target)  # recently used: pruned last
            return str(target)
        cache.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                for chunk in self.blobs.open(key):
                    fh.write(chunk)
            os.replace(tmp, target)
        except FileNotFoundError as exc:
            raise SnapshotGone() from exc
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        _prune(cache, keep=target)
        return str(target)


def _statement(body: QueryBody, tables: list[Table]) -> str:
    """The SQL to run: the caller's text, or the structured query compiled."""
    structured_parts = body.model_dump(exclude_none=True,
                                       include={"table", "select", "aggregate", "groupBy",
                                                "filter", "orderBy"})
    if body.sql is not None and structured_parts:
        raise BadRequest("send either sql or a structured query (aggregate, groupBy ...), "
                         "not both")
    if body.sql is None and not structured_parts:
        raise BadRequest("sql: required (or a structured query: table, select, aggregate ...)")
    sql = body.sql if body.sql is not None else structured.compile_query(structured_parts,
                                                                         tables)
    if not sql.strip():
        raise BadRequest("sql: must not be empty")
    return sql


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
