"""Database engines and units of work.

SQLite has one writer: all writes go through a dedicated single-connection pool whose
transactions start with BEGIN IMMEDIATE, so writers queue in-process instead of failing with
"database is locked"; reads use their own pool and run concurrently under WAL. On PostgreSQL
both roles share one engine. Built from arguments; never reads settings.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Dialect, Engine, Select, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def json_text(value: Any) -> str:
    """JSON as the engines store it (a driver-level insert must match)."""
    # Unescaped UTF-8, so JSON paths can address non-ASCII keys.
    return json.dumps(value, ensure_ascii=False)


def _sqlite_engine(url: str, *, writer: bool, wait_s: float) -> Engine:
    engine = create_engine(
        url,
        pool_size=1 if writer else 8,
        max_overflow=0 if writer else 8,
        pool_timeout=wait_s,
        connect_args={"check_same_thread": False, "timeout": 60},
        json_serializer=json_text,
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        # FULL makes every commit durable: acknowledged uploads and job state survive
        # power loss, not just a process crash.
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine


class Database:
    def __init__(self, url: str, info: dict[str, Any] | None = None, wait_s: float = 300.0):
        """`info` is given to every session (`Session.info`): per-deployment values the
        lower layers read without being handed the settings (quotas' instance defaults).
        `wait_s` (SQLite): how long a unit of work waits for a connection (for the writer:
        the only one) before sqlalchemy's TimeoutError, which the API answers 503
        SERVICE_BUSY. PostgreSQL keeps the pool's own 30 s."""
        self.url = url
        self.dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
        if self.dialect == "sqlite":
            self.write_engine = _sqlite_engine(url, writer=True, wait_s=wait_s)
            self.read_engine = _sqlite_engine(url, writer=False, wait_s=wait_s)
        else:
            # Named after the process, so pg_stat_activity and pg_locks tell an operator
            # which replica or worker holds a transaction (63 bytes is PostgreSQL's limit).
            name = f"dataloft:{os.getpid()}:{socket.gethostname()}"[:63]
            self.write_engine = create_engine(url, pool_size=10, max_overflow=10,
                                              pool_pre_ping=True, json_serializer=json_text,
                                              connect_args={"application_name": name})
            # One snapshot per read unit of work, as SQLite's WAL readers get: a search (or
            # a page and its count) never mixes the state before and after a commit.
            # Read-only transactions never fail to serialise; writers stay READ COMMITTED.
            self.read_engine = self.write_engine.execution_options(
                isolation_level="REPEATABLE READ")
        self._writer = sessionmaker(self.write_engine, expire_on_commit=False, info=info)
        self._reader = sessionmaker(self.read_engine, expire_on_commit=False, info=info)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A unit of work that commits on success and rolls back on any exception."""
        with self._writer() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._reader() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.write_engine.dispose()
        if self.read_engine.pool is not self.write_engine.pool:
            self.read_engine.dispose()


class Lookup:
    """A Core select read on every request (the key, the searched dataset, its index
    version, the records a search returns). On SQLite it runs on the session's own DB-API
    connection (so in its transaction and snapshot), compiled once, with SQLAlchemy's own
    result processors applied: SQLAlchemy's execution of a cached statement costs ~2-3x the
    indexed read itself, and its result rows ~6 us each (docs/benchmarks.md §35, §43).
    Other engines run it through SQLAlchemy."""

    def __init__(self, statement: Select[*tuple[Any, ...]]) -> None:
        self.statement = statement
        self._plan: _Plan | None = None

    def first(self, session: Session, params: dict[str, Any]) -> tuple[Any, ...] | None:
        found = self._run(session, params, first=True)
        return found[0] if found else None

    def all(self, session: Session, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return self._run(session, params, first=False)

    def _run(self, session: Session, params: dict[str, Any], *, first: bool
             ) -> list[tuple[Any, ...]]:
        connection = session.connection()
        if connection.dialect.name != "sqlite":
            result = connection.execute(self.statement, params)
            rows = [result.first()] if first else result.all()
            return [tuple(row) for row in rows if row is not None]
        plan = self._plan
        if plan is None or plan.dialect is not connection.dialect:
            plan = self._plan = _Plan.of(self.statement, connection.dialect)
        driver = connection.connection.driver_connection
        assert driver is not None
        cursor = driver.execute(plan.sql, tuple(params[name] for name in plan.names))
        if first:
            one = cursor.fetchone()
            got: list[tuple[Any, ...]] = [] if one is None else [one]
        else:
            got = cursor.fetchall()
        if not plan.processed:
            return got
        out = []
        for row in got:
            values = list(row)
            for at, process in plan.processed:
                values[at] = process(values[at])
            out.append(tuple(values))
        return out


@dataclass(frozen=True, slots=True)
class _Plan:
    dialect: Dialect
    sql: str
    names: tuple[str, ...]
    # (column, its result processor) for the columns that have one (JSON, dates...).
    processed: tuple[tuple[int, Callable[[Any], Any]], ...]

    @classmethod
    def of(cls, statement: Select[*tuple[Any, ...]], dialect: Dialect) -> _Plan:
        compiled = statement.compile(dialect=dialect)
        if compiled.post_compile_params:  # an expanding IN is rendered per execution
            raise ValueError("a Lookup takes plain bound parameters only")
        processors = (column.type.dialect_impl(dialect).result_processor(dialect, None)
                      for column in statement.selected_columns)
        processed = tuple((at, p) for at, p in enumerate(processors) if p is not None)
        return cls(dialect, compiled.string, tuple(compiled.positiontup or ()), processed)
