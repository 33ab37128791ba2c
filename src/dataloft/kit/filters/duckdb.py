"""A filter compiled to DuckDB SQL over a synced table snapshot."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dataloft.kit.filters.parse import COMPARISONS, Filter, Scalar, meta_path, qs_candidates
from dataloft.kit.filters.python import kind_of, matches

# --- DuckDB (governed SQL over table snapshots) ------------------------------------------
# A table row is the record it was synced as: its typed columns, over the meta every row of
# the table shares (fileName, sheet ...). The columns' types are known, so type tests are
# static; a NULL cell is a missing key, and then the shared meta shows through, exactly as
# in the record's meta. Like the SQL above, every predicate is two-valued (CASE, never NULL).

DUCK_KINDS = ("number", "string", "bool", "json")
_DUCK_NUMBER_TYPES = "('BIGINT', 'UBIGINT', 'DOUBLE', 'HUGEINT')"


@dataclass(frozen=True)
class DuckColumn:
    """A column of a snapshot: its quoted SQL name and the kind of its values. A "json"
    column holds objects and arrays only (a column mixing them with scalars is a string)."""

    sql: str
    kind: str


def duck_quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def duck_literal(v: str | int | float) -> str:
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    if isinstance(v, float):
        return f"CAST('{v!r}' AS DOUBLE)"
    return str(int(v))


def _duck_bool(b: bool) -> str:
    return "TRUE" if b else "FALSE"


def _duck_values(f: Filter) -> tuple[Scalar, ...]:
    values: tuple[Scalar, ...] = qs_candidates(f.value) if f.op == "$qs" else f.value
    return values


def _duck_scalar_leaf(f: Filter, expr: str, kind: str) -> str:
    """The leaf on a present, non-null value of one static kind."""
    if f.op == "$exists":
        return "TRUE"
    want = {"number": "number", "string": "string", "bool": "bool"}[kind]
    if f.op in COMPARISONS:
        if kind_of(f.value) != want:
            return "FALSE"
        return f"({expr} {_SQL_CMP[f.op]} {duck_literal(f.value)})"
    hits = [v for v in _duck_values(f) if kind_of(v) == want]
    if not hits:
        return "FALSE"
    if kind == "bool":
        return " OR ".join(f"({expr} = {_duck_bool(bool(v))})" for v in set(hits))
    return f"({expr} IN ({', '.join(duck_literal(v) for v in hits)}))"  # type: ignore[arg-type]


_SQL_CMP = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def _duck_json_leaf(f: Filter, col: str, path: list[str]) -> str:
    """The leaf on the JSON value at `path` inside a present json column."""
    p = duck_literal("$" + "".join(f'."{seg}"' for seg in path))
    t = f"json_type({col}, {p})"
    num = f"TRY_CAST(json_extract({col}, {p}) AS DOUBLE)"
    text = f"json_extract_string({col}, {p})"
    if f.op == "$exists":
        return "TRUE"
    if f.op in COMPARISONS:
        if isinstance(f.value, str):
            return f"({t} = 'VARCHAR' AND {text} {_SQL_CMP[f.op]} {duck_literal(f.value)})"
        return (f"({t} IN {_DUCK_NUMBER_TYPES} AND "
                f"{num} {_SQL_CMP[f.op]} {duck_literal(f.value)})")
    values = _duck_values(f)
    parts = []
    if any(v is None for v in values):
        parts.append(f"{t} = 'NULL'")
    for b in (True, False):
        if any(v is b for v in values):
            parts.append(f"({t} = 'BOOLEAN' AND {text} = '{'true' if b else 'false'}')")
    if nums := [v for v in values if kind_of(v) == "number"]:
        parts.append(f"({t} IN {_DUCK_NUMBER_TYPES} AND "
                     f"{num} IN ({', '.join(duck_literal(n) for n in nums)}))")  # type: ignore[arg-type]
    if strs := [v for v in values if isinstance(v, str)]:
        parts.append(f"({t} = 'VARCHAR' AND {text} IN ({', '.join(map(duck_literal, strs))}))")
    return "(" + " OR ".join(parts) + ")" if parts else "FALSE"


def _duck_leaf(f: Filter, columns: Mapping[str, DuckColumn], shared: dict[str, Any]) -> str:
    path = meta_path(f.field)
    # The value when the row has no such column, or a NULL in it: the shared meta decides.
    fallback = _duck_bool(matches(f, shared))
    col = columns.get(path[0])
    if col is None:
        return fallback
    if len(path) == 1:
        if col.kind == "json":  # an object or array: equal to nothing, but present
            on_value = _duck_bool(matches(f, {path[0]: {}}))
        else:
            on_value = _duck_scalar_leaf(f, col.sql, col.kind)
    elif col.kind == "json":
        p = duck_literal("$" + "".join(f'."{seg}"' for seg in path[1:]))
        missing = _duck_bool(matches(f, {}))
        on_value = (f"CASE WHEN json_type({col.sql}, {p}) IS NULL THEN {missing} "
                    f"ELSE {_duck_json_leaf(f, col.sql, path[1:])} END")
    else:  # a scalar has no keys below it
        on_value = _duck_bool(matches(f, {}))
    return f"(CASE WHEN {col.sql} IS NULL THEN {fallback} ELSE {on_value} END)"


def to_duckdb(f: Filter | None, columns: Mapping[str, DuckColumn],
              shared: Mapping[str, Any] | None = None) -> str:
    """Compile to a DuckDB WHERE clause over a table whose row `r` stands for the record meta
    `{**shared, **<r's non-null columns>}`; same semantics as `matches` on that meta."""
    base = dict(shared or {})
    if f is None:
        return "TRUE"
    if f.op in ("$and", "$or"):
        joiner = " AND " if f.op == "$and" else " OR "
        return "(" + joiner.join(to_duckdb(c, columns, base) for c in f.children) + ")"
    if f.op == "$not":
        return f"(NOT {to_duckdb(f.children[0], columns, base)})"
    return _duck_leaf(f, columns, base)

