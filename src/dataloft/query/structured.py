"""Structured queries: a small JSON shape for clients that do not write SQL, compiled to
SQL text for the same governed engine (so they get the same restrictions and limits).

    {"table": "sales",                       # optional when the scope has one table
     "select": ["region", "amount"],         # plain columns (only without aggregate)
     "aggregate": {"total": {"sum": "amount"}, "orders": {"count": "*"}},
     "groupBy": ["region"],
     "filter": {"amount": {"$gte": 100}},    # the one filter language, over the columns
     "orderBy": [{"field": "total", "direction": "desc"}],
     "limit": 100}
"""

from __future__ import annotations

from typing import Any

from dataloft.errors import BadRequest
from dataloft.kit.filters import DuckColumn, duck_quote, parse_filter, to_duckdb
from dataloft.tables.catalog import Table

AGGREGATES = {"count": "count", "sum": "sum", "avg": "avg", "min": "min", "max": "max",
              "countDistinct": "count(DISTINCT {})"}
_KINDS = {"integer": "number", "number": "number", "boolean": "bool", "json": "json"}


def _names(raw: object, where: str) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(x, str) and x for x in raw):
        raise BadRequest(f"{where}: expected a list of column names")
    return list(raw)


def _column_ref(t: Table, name: str, where: str) -> str:
    if name not in {c["name"] for c in t.row.columns}:
        raise BadRequest(f"{where}: table {t.name!r} has no column {name!r}")
    return duck_quote(name)


def _filter_columns(t: Table) -> dict[str, DuckColumn]:
    out = {}
    for c in t.row.columns:
        q = duck_quote(c["name"])
        if c["sqlType"] == "DATE":
            expr = f"strftime({q}, '%Y-%m-%d')"
        elif c["sqlType"] == "TIMESTAMP":
            expr = f"strftime({q}, '%Y-%m-%dT%H:%M:%S')"
        else:
            expr = f"CAST({q} AS VARCHAR)" if c["sqlType"] == "JSON" else q
        out[c["name"]] = DuckColumn(expr, _KINDS.get(c["type"], "string"))
    return out


def compile_query(body: dict[str, Any], tables: list[Table]) -> str:
    """SQL text for a structured query over `tables` (the caller's scope)."""
    t = _table(body.get("table"), tables)
    group = [_column_ref(t, g, "groupBy") for g in _names(body.get("groupBy") or [], "groupBy")]
    aggregate = body.get("aggregate") or {}
    if not isinstance(aggregate, dict):
        raise BadRequest("aggregate: expected {alias: {function: column}}")
    if aggregate or group:
        if body.get("select"):
            raise BadRequest("select: use groupBy and aggregate together, not select")
        select = list(group)
    else:
        cols = _names(body.get("select") or [c["name"] for c in t.row.columns], "select")
        select = [_column_ref(t, c, "select") for c in cols]
    select += [_aggregate(t, str(alias), spec) for alias, spec in aggregate.items()]
    sql = f"SELECT {', '.join(select)} FROM {duck_quote(t.name)}"
    f = parse_filter(body.get("filter"))
    if f is not None:
        sql += f" WHERE {to_duckdb(f, _filter_columns(t))}"
    if group:
        sql += f" GROUP BY {', '.join(group)}"
    outputs = set(aggregate) | set(body.get("groupBy") or []) | set(body.get("select") or [])
    terms = _order(t, body.get("orderBy") or [], outputs)
    if terms:
        sql += f" ORDER BY {', '.join(terms)}"
    return sql


def _table(name: object, tables: list[Table]) -> Table:
    if name is None:
        if len(tables) != 1:
            raise BadRequest(f"table: name one of {[t.name for t in tables]}")
        return tables[0]
    found = [t for t in tables if t.name == name]
    if not found:
        raise BadRequest(f"table: no table {name!r} here; see the schema route")
    return found[0]


def _aggregate(t: Table, alias: str, spec: object) -> str:
    where = f"aggregate.{alias}"
    if not isinstance(spec, dict) or len(spec) != 1:
        raise BadRequest(f"{where}: expected one of {{{', '.join(AGGREGATES)}: column}}")
    fn, col = next(iter(spec.items()))
    if fn not in AGGREGATES:
        raise BadRequest(f"{where}: unknown function {fn!r}; use {', '.join(AGGREGATES)}")
    if not isinstance(col, str):
        raise BadRequest(f"{where}: expected a column name")
    arg = "*" if col == "*" and fn == "count" else _column_ref(t, col, where)
    call = AGGREGATES[fn].format(arg) if "{}" in AGGREGATES[fn] else f"{fn}({arg})"
    return f"{call} AS {duck_quote(alias)}"


def _order(t: Table, order: object, outputs: set[str]) -> list[str]:
    if not isinstance(order, list):
        raise BadRequest("orderBy: expected a list of {field, direction}")
    terms = []
    for i, o in enumerate(order):
        spec = {"field": o} if isinstance(o, str) else o
        if not isinstance(spec, dict) or not isinstance(spec.get("field"), str):
            raise BadRequest(f"orderBy[{i}]: expected {{field, direction}}")
        direction = str(spec.get("direction", "asc")).lower()
        if direction not in ("asc", "desc"):
            raise BadRequest(f"orderBy[{i}].direction: expected asc or desc")
        field = spec["field"]
        if field not in outputs:
            _column_ref(t, field, f"orderBy[{i}]")
        terms.append(f"{duck_quote(field)} {direction.upper()}")
    return terms
