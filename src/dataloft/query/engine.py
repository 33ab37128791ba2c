"""Run one read-only query in a locked-down DuckDB in a single-use child process.

Why a child: a query can ask for unbounded memory or time (a cross join, an endless
recursive CTE), and DuckDB's own limits do not cover everything (a recursive CTE can run
for ever in bounded memory). The server only waits on a pipe and kills the child at the
wall-clock deadline or when its resident memory passes the bound (the same watchdog and
forkserver launch as every confined child, `kit/confine.py`: a fork of a single-threaded
server, so no lock of a server thread is inherited).

Why single-use children from a warm pool: importing DuckDB in a fresh child costs about as
much as the query; a pool of idle children that have already imported it takes that off the
request. A child serves exactly one query and exits, so nothing of one query (data, a
crash, a mutated setting) reaches the next.

Order in the child, which is the security argument:
1. DuckDB in memory, extensions neither auto-installed nor auto-loaded, thread and memory
   limits, no spilling to disk;
2. each table restricted by an association filter is loaded from its snapshot *with the
   restriction applied* into an in-memory table, so its snapshot file is never readable by
   the query; a table the caller may read whole is a view over its snapshot, and
   `allowed_paths` names exactly those files (what they hold is all the caller's anyway);
3. `enable_external_access=false` (no other file, URL, extension or secret access from here
   on), then `lock_configuration=true`, last;
4. the caller's text: exactly one statement, of type SELECT (DuckDB's own parser), whose
   functions are checked against a deny list on DuckDB's own AST (`json_serialize_sql`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import json
import math
import pickle
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing import Pipe
from multiprocessing.connection import Connection, wait
from typing import Any, ClassVar

from dataloft.errors import BadRequest, DataloftError, TooManyRequests
from dataloft.kit import confine

# Table functions a query may call: generators only, nothing that reads outside the query.
TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest", "json_each", "json_tree"})
DENIED_FUNCTIONS = frozenset({
    "getenv", "current_setting", "which_secret", "query", "query_table", "json_serialize_sql",
    "json_deserialize_sql", "json_serialize_plan", "json_execute_serialized_sql", "glob",
    "sniff_csv", "load", "install", "checkpoint", "force_checkpoint", "enable_profiling",
    "disable_profiling", "enable_logging", "disable_logging", "set_variable", "getvariable",
})
DENIED_PREFIXES = ("duckdb_", "pragma_", "read_", "sniff_", "parquet_", "sqlite_", "postgres_",
                   "mysql_", "iceberg_", "delta_", "icu_", "pg_")
# The query children need nothing preloaded: they import DuckDB themselves while idle.
PRELOAD: tuple[str, ...] = ()
RESULT_MAX_BYTES = 64 << 20
POLL_S = 0.02


class SqlInvalid(BadRequest):
    code = "SQL_INVALID"


class SqlNotAllowed(BadRequest):
    code = "SQL_NOT_ALLOWED"


class QueryLimit(DataloftError):
    status: ClassVar[int] = 422
    code: ClassVar[str] = "QUERY_LIMIT"


class QueryTimeLimit(QueryLimit):
    code = "QUERY_TIME_LIMIT"


class QueryMemoryLimit(QueryLimit):
    code = "QUERY_MEMORY_LIMIT"


class QueryResultLimit(QueryLimit):
    code = "QUERY_RESULT_LIMIT"


_ERRORS: dict[str, type[DataloftError]] = {
    c.code: c for c in (SqlInvalid, SqlNotAllowed, QueryTimeLimit, QueryMemoryLimit,
                        QueryResultLimit)}


@dataclass(frozen=True)
class LoadTable:
    """One table as the query sees it: `select` (typed columns) of the snapshot at `path`,
    only the rows matching `where` (the caller's policy and association filter)."""

    name: str
    path: str
    select: str
    where: str


@dataclass(frozen=True)
class QueryLimits:
    """Per query (memory, threads, wall clock), and how many run and wait ready at once."""

    memory_bytes: int = 512 << 20
    threads: int = 2
    timeout_s: float = 10.0
    concurrency: int = 4
    pool_size: int = 2


@dataclass(frozen=True)
class Result:
    columns: list[dict[str, str]]  # {"name", "type" (dataType), "sqlType"}
    rows: list[list[Any]]
    truncated: bool
    # The statement's own ORDER BY fixed the row order (a chart then keeps it).
    ordered: bool = False


class QueryEngine:
    """The warm pool of single-use query children and the slots that bound concurrency;
    built and closed in the app's lifespan."""

    def __init__(self, limits: QueryLimits) -> None:
        self.limits = limits
        self._pool = _Pool(limits.pool_size)
        self._slots = threading.BoundedSemaphore(limits.concurrency)

    def warm(self) -> None:
        """Start the pool now (server start-up), so the first query does not wait for it."""
        self._pool.fill()

    def close(self) -> None:
        self._pool.close()

    def run(self, tables: list[LoadTable], sql: str, limit: int) -> Result:
        """The first `limit` rows of `sql` over `tables`; raises one of the errors above."""
        # Each running query may hold its memory limit and more: bound how many run at once.
        if not self._slots.acquire(timeout=self.limits.timeout_s):
            raise TooManyRequests(f"more than {self.limits.concurrency} queries are running; "
                                  "retry later", headers={"Retry-After": "1"})
        try:
            return self._run(tables, sql, limit)
        finally:
            self._slots.release()

    def _run(self, tables: list[LoadTable], sql: str, limit: int) -> Result:
        limits = self.limits
        worker = self._pool.take()
        deadline = time.monotonic() + limits.timeout_s
        try:
            worker.conn.send_bytes(pickle.dumps((tables, sql, limit, limits)))
            payload, killed_for = _await(worker, deadline, _rss_bound(limits))
        finally:
            worker.close()
            self._pool.refill()
        if payload is None:
            if killed_for == "timeout":
                raise QueryTimeLimit(f"the query ran longer than {limits.timeout_s:g} s")
            raise QueryMemoryLimit(f"{_memory_message(limits)}, or ended without an answer")
        kind, *rest = pickle.loads(payload)
        if kind == "ok":
            result: Result = rest[0]
            return result
        code, message = rest
        raise _ERRORS.get(code, SqlInvalid)(message)


def _rss_bound(limits: QueryLimits) -> int:
    # DuckDB's own limit covers its buffers; the rest (interpreter, result rows) gets as
    # much again plus a fixed allowance before the watchdog kills.
    return 2 * limits.memory_bytes + (256 << 20)


def _memory_message(limits: QueryLimits) -> str:
    return f"the query needed more than {limits.memory_bytes >> 20} MB of memory"


# ---- the pool (server side) ----------------------------------------------------------------

class _Worker:
    def __init__(self) -> None:
        parent, child = Pipe(duplex=True)
        self.conn: Connection = parent
        self.proc = confine.process(_serve, (child,), preload=PRELOAD, name="dataloft-sql")
        try:
            self.proc.start()
        finally:
            child.close()

    def alive(self) -> bool:
        return bool(self.proc.is_alive())

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.close()
        confine.kill(self.proc)
        confine.reap(self.proc)


class _Pool:
    def __init__(self, size: int) -> None:
        self.size = size
        self.idle: deque[_Worker] = deque()
        self.lock = threading.Lock()
        self.closed = False

    def take(self) -> _Worker:
        with self.lock:
            found = None
            while self.idle and found is None:
                w = self.idle.popleft()
                if w.alive():
                    found = w
                else:
                    w.close()
        return found or _Worker()

    def refill(self) -> None:
        """Replace used workers in the background. Called after a query, not during it: on
        a small machine the replacement's start-up would compete with the query for CPU."""
        threading.Thread(target=self.fill, name="dataloft-sql-pool", daemon=True).start()

    def fill(self) -> None:
        with self.lock:
            while not self.closed and len(self.idle) < self.size:
                self.idle.append(_Worker())

    def close(self) -> None:
        with self.lock:
            self.closed = True
            while self.idle:
                self.idle.popleft().close()


def _await(worker: _Worker, deadline: float, rss_bound: int) -> tuple[bytes | None, str | None]:
    conn, proc = worker.conn, worker.proc
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None, "timeout"
        ready = wait([conn, proc.sentinel], timeout=min(remaining, POLL_S))
        if conn in ready:
            try:
                return conn.recv_bytes(maxlength=RESULT_MAX_BYTES), None
            except EOFError:
                return None, "memory"
            except OSError:
                return pickle.dumps(("error", "QUERY_RESULT_LIMIT",
                                     "the result is larger than "
                                     f"{RESULT_MAX_BYTES >> 20} MB; ask for fewer rows")), None
        if proc.sentinel in ready:
            return None, "memory"  # died without answering: killed by the kernel or a limit
        if proc.pid is not None and confine.rss(proc.pid) > rss_bound:
            return None, "memory"


# ---- in the child --------------------------------------------------------------------------

def _serve(conn: Connection) -> None:
    import duckdb  # noqa: PLC0415 - imported while idle: the point of the pool

    # DuckDB initialises much lazily on first use (a connection, the parser, JSON): pay it
    # while idle too. This connection is closed before any job arrives.
    warmup = duckdb.connect(":memory:")
    warmup.extract_statements("SELECT 1")
    warmup.execute("SELECT json_serialize_sql('SELECT 1')").fetchall()
    warmup.close()
    confine.die_with_parent()
    confine.first_to_be_killed()
    try:
        job = pickle.loads(conn.recv_bytes())
    except (EOFError, OSError):
        return
    try:
        answer: tuple[Any, ...] = ("ok", _execute(*job))
    except DataloftError as exc:
        answer = ("error", exc.code, exc.message)
    except MemoryError:
        answer = ("error", "QUERY_MEMORY_LIMIT", "the query ran out of memory")
    except Exception as exc:  # noqa: BLE001 - every failure must come back typed
        answer = ("error", "SQL_INVALID", f"{type(exc).__name__}: {str(exc)[:500]}")
    try:
        data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # noqa: BLE001 - a value pickle cannot carry
        data = pickle.dumps(("error", "SQL_INVALID", f"the result cannot be returned: {exc}"))
    with contextlib.suppress(OSError):
        conn.send_bytes(data)
        conn.close()


def _connect(limits: QueryLimits) -> Any:
    import duckdb  # noqa: PLC0415

    return duckdb.connect(":memory:", config={
        "threads": limits.threads,
        "memory_limit": f"{max(limits.memory_bytes >> 20, 16)}MB",
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "temp_directory": "",  # no spilling: the memory limit is the limit
    })


LOCK_DOWN = ("SET enable_external_access = false", "SET lock_configuration = true")


def _execute(tables: list[LoadTable], sql: str, limit: int, limits: QueryLimits) -> Result:
    import duckdb  # noqa: PLC0415

    con = _connect(limits)
    try:
        readable = []
        for t in tables:
            path = t.path.replace("'", "''")
            if t.where == "TRUE":
                # Nothing to hide: a view reads only the columns a query needs (10-20x
                # faster than a copy); its file stays readable, and it is all the caller's.
                readable.append(f"'{path}'")
                con.execute(f"CREATE VIEW {t.name} AS SELECT {t.select} "
                            f"FROM read_parquet('{path}')")
            else:
                con.execute(f"CREATE TABLE {t.name} AS SELECT {t.select} "
                            f"FROM read_parquet('{path}') WHERE {t.where}")
        con.execute(f"SET allowed_paths = [{', '.join(readable)}]")
        for statement in LOCK_DOWN:
            con.execute(statement)
        ordered = _check(con, sql)
        cur = con.execute(sql)
        columns = [{"name": str(d[0]), "sqlType": str(d[1]), "type": data_type(str(d[1]))}
                   for d in cur.description or []]
        rows = cur.fetchmany(limit + 1)
    except duckdb.OutOfMemoryException as exc:
        raise QueryMemoryLimit(f"{_memory_message(limits)} ({_first_line(exc)})") from exc
    except duckdb.PermissionException as exc:
        raise SqlNotAllowed(f"not allowed here: {_first_line(exc)}") from exc
    except duckdb.Error as exc:
        raise SqlInvalid(_first_line(exc)) from exc
    finally:
        with contextlib.suppress(Exception):
            con.close()
    return Result(columns, [[plain(v) for v in row] for row in rows[:limit]],
                  len(rows) > limit, ordered)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:500] if str(exc).strip() else type(exc).__name__


def _check(con: Any, sql: str) -> bool:
    """Refuse what may not run; True when the statement ends in its own ORDER BY."""
    import duckdb  # noqa: PLC0415

    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise SqlInvalid(_first_line(exc)) from exc
    if len(statements) != 1:
        raise SqlNotAllowed(f"send exactly one statement (got {len(statements)})")
    if statements[0].type != duckdb.StatementType.SELECT:
        raise SqlNotAllowed(f"only SELECT (and WITH ... SELECT) statements may run, "
                            f"not {statements[0].type.name}")
    tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])
    if tree.get("error"):
        raise SqlNotAllowed(f"the statement cannot be checked: {tree.get('error_message')}")
    _check_tables(con, tree)
    for name, is_table in _functions(tree):
        lowered = name.lower()
        if is_table and lowered not in TABLE_FUNCTIONS:
            raise SqlNotAllowed(f"table function {name!r} is not allowed; query the tables")
        if lowered in DENIED_FUNCTIONS or lowered.startswith(DENIED_PREFIXES):
            raise SqlNotAllowed(f"function {name!r} is not allowed")
    modifiers = tree["statements"][0]["node"].get("modifiers") or []
    return any(m.get("type") == "ORDER_MODIFIER" for m in modifiers)


def _functions(node: Any, table: bool = False) -> Iterator[tuple[str, bool]]:
    if isinstance(node, dict):
        if "function_name" in node:
            yield str(node["function_name"]), table
        for key, value in node.items():
            yield from _functions(value, key == "function" and node.get("type") ==
                                  "TABLE_FUNCTION")
    elif isinstance(node, list):
        for item in node:
            yield from _functions(item)


_FILE_SUFFIXES = (".csv", ".tsv", ".parquet", ".json", ".jsonl", ".ndjson", ".txt", ".gz",
                  ".zst", ".db", ".duckdb", ".sqlite", ".xlsx")


def _check_tables(con: Any, tree: Any) -> None:
    """Every table the statement names is one of the query's own tables or CTEs; files and
    the catalogue (information_schema, pg_catalog, duckdb_views, sqlite_master ...: they
    show the snapshots' server paths) are refused. An unknown plain name is left to DuckDB,
    which answers that it does not exist."""
    ours = {str(n).lower() for (n,) in con.execute(
        "SELECT table_name FROM duckdb_tables() UNION ALL "
        "SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    internal = {str(n).lower() for (n,) in con.execute(
        "SELECT view_name FROM duckdb_views() WHERE internal").fetchall()}
    ctes = set(_cte_names(tree))
    for catalog, schema, name in _base_tables(tree):
        lowered = name.lower()
        if any(ch in name for ch in "/\\:") or lowered.endswith(_FILE_SUFFIXES):
            raise SqlNotAllowed(f"{name!r}: files cannot be queried; query the tables")
        if not schema and not catalog and lowered in ctes:
            continue
        qualified = schema.lower() not in ("", "main") or catalog.lower() not in ("", "memory")
        if qualified or (lowered not in ours and (
                lowered in internal or lowered.startswith(DENIED_PREFIXES))):
            raise SqlNotAllowed(f"{'.'.join(p for p in (catalog, schema, name) if p)!r}: "
                                "the catalogue cannot be queried; query the tables")


def _base_tables(node: Any) -> Iterator[tuple[str, str, str]]:
    if isinstance(node, dict):
        if node.get("type") == "BASE_TABLE" and "table_name" in node:
            yield (str(node.get("catalog_name") or ""), str(node.get("schema_name") or ""),
                   str(node["table_name"]))
        for value in node.values():
            yield from _base_tables(value)
    elif isinstance(node, list):
        for item in node:
            yield from _base_tables(item)


def _cte_names(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for entry in (node.get("cte_map") or {}).get("map", []):
            yield str(entry.get("key", "")).lower()
        for value in node.values():
            yield from _cte_names(value)
    elif isinstance(node, list):
        for item in node:
            yield from _cte_names(item)


def data_type(sql_type: str) -> str:
    """A DuckDB type as a dataset field's dataType."""
    t = sql_type.upper()
    if t.endswith("]") or t.startswith(("STRUCT", "MAP", "UNION", "JSON")):
        return "json"
    if t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
             "UINTEGER", "UBIGINT", "UHUGEINT"):
        return "integer"
    if t.startswith(("DECIMAL", "DOUBLE", "FLOAT", "REAL")):
        return "number"
    if t == "BOOLEAN":
        return "boolean"
    if t == "DATE":
        return "date"
    if t.startswith("TIMESTAMP"):
        return "datetime"
    return "string"


def plain(v: Any) -> Any:
    """A JSON-ready value."""
    if v is None or isinstance(v, bool | int | str):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, decimal.Decimal):
        return float(v) if v.is_finite() else None
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return v.total_seconds()
    if isinstance(v, bytes | bytearray | memoryview):
        return bytes(v).hex()
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [plain(x) for x in v]
    return str(v)
