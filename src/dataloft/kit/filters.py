"""The one filter language: a Mongo-style JSON filter over records and files.

A filter is a JSON object. ``{"field": value}`` is equality; ``{"field": {"$op": operand}}``
applies operators ($eq $ne $gt $gte $lt $lte $in $nin $exists); ``$and``/``$or`` take a non-empty
list of filters and ``$not`` one filter. Several keys in one object are ANDed.

Fields: a caller-given set of system fields (real columns such as ``source``) wins; any other
name is a key of the JSON ``meta`` column, with ``a.b`` descending into nested objects and
``meta.x`` addressing meta key ``x`` explicitly. Field segments are printable ASCII without
``"`` or ``\\`` (SQLite's JSON paths cannot address other keys reliably).

Semantics, identical in Python (``matches``), SQL (``to_sql``, SQLite and PostgreSQL) and
DuckDB over synced table snapshots (``to_duckdb``, typed columns over shared file meta):

* ``$eq``/``$in`` are type-strict: "5" != 5, true != 1, 5 == 5.0. ``null`` matches a missing
  key or an explicit JSON null. Arrays and objects never equal anything.
* ``$ne``/``$nin`` are the exact negation: they also match documents lacking the field.
* ``$gt``/``$gte``/``$lt``/``$lte`` take a number or a string; numbers compare only with numbers,
  strings only with strings by code point (so ISO dates order correctly); anything else,
  booleans included, does not match.
* ``$exists: true`` means the key is present, even when its value is null (as in Mongo;
  ``{"$ne": null}`` asks for present-and-not-null). A system field exists when not NULL.
* Number operands must lie within +-(2**53 - 1), where doubles and exact decimals agree.

Query strings (``from_query_params``) compile to an internal ``$qs`` condition: the text
matches an equal string, an equal number if it parses as one, or a boolean for true/false.
PostgreSQL needs ``meta`` to be JSONB.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ColumnElement
from sqlalchemy.dialects.postgresql import JSONB

from dataloft.errors import BadRequest

Scalar = str | int | float | bool | None

MAX_DEPTH = 16
MAX_NODES = 256
MAX_LIST = 1000
MAX_FIELD = 200
MAX_NUMBER = 2**53 - 1

_CMP = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}
_OPERATORS = ("$eq", "$ne", *_CMP, "$in", "$nin", "$exists")
_NUMBER_TEXT = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_QS_KEY = re.compile(r"meta(?:\.(.*)|((?:\[[^\[\]]*\])+))")


@dataclass(frozen=True, slots=True)
class Filter:
    """A validated node. ``op`` is ``$and``/``$or``/``$not`` (over ``children``) or a condition
    on ``field``: ``$in`` (a tuple of scalars; $eq is a one-value $in, $ne/$nin are $not),
    ``$gt``/``$gte``/``$lt``/``$lte`` (a str or number), ``$exists`` or ``$qs`` (query text)."""

    op: str
    field: str = ""
    value: Any = None
    children: tuple[Filter, ...] = ()


# --- parsing -----------------------------------------------------------------------------


def _bad(where: str, message: str) -> BadRequest:
    return BadRequest(f"{where}: {message}")


def _meta_path(field: str) -> list[str]:
    return field.split(".")[1:] if field.startswith("meta.") else field.split(".")


def _check_field(field: str, where: str) -> None:
    if not field:
        raise _bad(where, "empty field name")
    if len(field) > MAX_FIELD:
        raise _bad(where, f"field name longer than {MAX_FIELD} characters")
    for seg in _meta_path(field):
        if not seg:
            raise _bad(where, f"field {field!r} has an empty path segment")
        if any(not (" " <= ch <= "~") or ch in '"\\' for ch in seg):
            raise _bad(where, f'field {field!r}: use printable ASCII without " or \\')


def _value(v: object, where: str, *, orderable: bool = False) -> Scalar:
    if isinstance(v, str):
        if "\x00" in v:
            raise _bad(where, "strings must not contain NUL characters")
        return v
    if isinstance(v, int | float) and not isinstance(v, bool):
        if not math.isfinite(v) or abs(v) > MAX_NUMBER:
            raise _bad(where, f"numbers must be finite and within +-{MAX_NUMBER}")
        return v
    if orderable:
        raise _bad(where, "expected a number or a string")
    if v is None or isinstance(v, bool):
        return v
    raise _bad(where, "expected a string, number, boolean or null")


class _Parser:
    def __init__(self) -> None:
        self.nodes = 0

    def count(self, where: str) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _bad(where, f"filter has more than {MAX_NODES} conditions")

    def object(self, raw: object, where: str, depth: int) -> Filter:
        if depth > MAX_DEPTH:
            raise _bad(where, f"filter nested deeper than {MAX_DEPTH} levels")
        if not isinstance(raw, dict):
            raise _bad(where, "expected an object")
        return _join("$and", [self.entry(k, v, f"{where}.{k}", depth) for k, v in raw.items()])

    def entry(self, key: object, value: object, where: str, depth: int) -> Filter:
        if not isinstance(key, str):
            raise _bad(where, "keys must be strings")
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise _bad(where, "expected a non-empty list of filters")
            self.count(where)
            kids = [self.object(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
            return Filter(key, children=tuple(kids))
        if key == "$not":
            self.count(where)
            return Filter("$not", children=(self.object(value, where, depth + 1),))
        if key.startswith("$"):
            raise _bad(where, f"unknown operator {key!r}; expected a field name, $and, $or or $not")
        _check_field(key, where)
        if not isinstance(value, dict):
            return self.condition(key, "$eq", value, where)
        if not value:
            raise _bad(where, f"expected at least one operator of {', '.join(_OPERATORS)}")
        conds = [self.condition(key, op, v, f"{where}.{op}") for op, v in value.items()]
        return _join("$and", conds)

    def condition(self, field: str, op: str, v: object, where: str) -> Filter:
        self.count(where)
        if op in ("$eq", "$ne"):
            node = Filter("$in", field, (_value(v, where),))
        elif op in ("$in", "$nin"):
            if not isinstance(v, list):
                raise _bad(where, "expected a list")
            if len(v) > MAX_LIST:
                raise _bad(where, f"more than {MAX_LIST} values")
            node = Filter("$in", field, tuple(_value(x, f"{where}[{i}]") for i, x in enumerate(v)))
        elif op in _CMP:
            node = Filter(op, field, _value(v, where, orderable=True))
        elif op == "$exists":
            if not isinstance(v, bool):
                raise _bad(where, "expected true or false")
            node = Filter("$exists", field, True)
        else:
            raise _bad(where, f"unknown operator {op!r}; expected one of {', '.join(_OPERATORS)}")
        negated = op in ("$ne", "$nin") or (op == "$exists" and v is False)
        return Filter("$not", children=(node,)) if negated else node


def _join(op: str, parts: list[Filter]) -> Filter:
    return parts[0] if len(parts) == 1 else Filter(op, children=tuple(parts))


def parse_filter(raw: object) -> Filter | None:
    """Validate a JSON filter; None or {} means no restriction. Raises BadRequest."""
    if raw is None or raw == {}:
        return None
    return _Parser().object(raw, "filter", 1)


def from_query_params(params: Mapping[str, str] | Sequence[tuple[str, str]]) -> Filter | None:
    """Equality on meta from ``meta[key]=v`` / ``meta[a][b]=v`` / ``meta.key=v``; other keys
    are ignored. A key given several times matches any of its values."""
    pairs = params.items() if isinstance(params, Mapping) else params
    by_field: dict[str, list[Filter]] = {}  # field -> its $qs conditions
    parser = _Parser()
    for key, text in pairs:
        m = _QS_KEY.fullmatch(key)
        if not m:
            continue
        dotted, brackets = m.groups()
        field = "meta." + (dotted if brackets is None else ".".join(brackets[1:-1].split("][")))
        where = f"query.{key}"
        _check_field(field, where)
        parser.count(where)
        by_field.setdefault(field, []).append(Filter("$qs", field, _value(str(text), where)))
    if not by_field:
        return None
    return _join("$and", [_join("$or", qs) for qs in by_field.values()])


def _qs_candidates(text: str) -> tuple[Scalar, ...]:
    """The values a query-string text stands for; both evaluators match any of them."""
    out: list[Scalar] = [text]
    if len(text) <= 40 and _NUMBER_TEXT.fullmatch(text):
        n = int(text) if text.lstrip("-").isdigit() else float(text)
        if math.isfinite(n) and abs(n) <= MAX_NUMBER:
            out.append(n)
    if text in ("true", "false"):
        out.append(text == "true")
    return tuple(out)


# --- Python evaluation -------------------------------------------------------------------

_MISSING: Any = object()


def _kind(v: object) -> str:
    if v is _MISSING or v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    return "string" if isinstance(v, str) else "other"


def _lookup(field: str, meta: object, system: Mapping[str, object] | None) -> Any:
    if system is not None and field in system:
        v = system[field]
        return _MISSING if v is None else v  # a NULL column is an absent field
    cur = meta
    for seg in _meta_path(field):
        if not isinstance(cur, dict) or seg not in cur:
            return _MISSING
        cur = cur[seg]
    return cur


def matches(f: Filter | None, meta: dict, system: dict[str, object] | None = None) -> bool:
    """Evaluate in Python; ``system`` holds the row's values of the caller's system fields."""
    if f is None:
        return True
    if f.op == "$and":
        return all(matches(c, meta, system) for c in f.children)
    if f.op == "$or":
        return any(matches(c, meta, system) for c in f.children)
    if f.op == "$not":
        return not matches(f.children[0], meta, system)
    v = _lookup(f.field, meta, system)
    if f.op == "$exists":
        return v is not _MISSING
    if f.op in _CMP:
        return _kind(v) == _kind(f.value) and bool(_CMP[f.op](v, f.value))
    values = _qs_candidates(f.value) if f.op == "$qs" else f.value
    return any(_kind(v) == _kind(x) and (x is None or v == x) for x in values)


# --- SQL ---------------------------------------------------------------------------------
# Every predicate below is two-valued (never SQL NULL), so $not stays the exact complement.


@dataclass(frozen=True)
class _Ref:
    """How one field reads in SQL: presence, type tests, and typed value expressions."""

    present: ColumnElement[bool]
    null: ColumnElement[bool]  # missing or JSON null
    is_true: ColumnElement[bool]
    is_false: ColumnElement[bool]
    is_num: ColumnElement[bool]
    num: ColumnElement[Any]
    is_str: ColumnElement[bool]
    text: ColumnElement[Any]
    num_param: Callable[[int | float], ColumnElement[Any]]


def _plain_number(n: int | float) -> ColumnElement[Any]:
    # An explicit type: a bind typed after an integer column would truncate 1.5.
    return sa.literal(n, sa.BigInteger() if isinstance(n, int) else sa.Float())


def _sqlite_meta(meta_col: ColumnElement[Any], path: list[str]) -> _Ref:
    p = "$" + "".join(f'."{seg}"' for seg in path)
    jtype = sa.func.json_type(meta_col, p)
    t = sa.func.coalesce(jtype, "")
    x = sa.func.json_extract(meta_col, p)
    return _Ref(
        present=jtype.is_not(None),
        null=sa.func.coalesce(jtype, "null") == "null",
        is_true=t == "true",
        is_false=t == "false",
        is_num=t.in_(["integer", "real"]),
        num=x,
        is_str=t == "text",
        text=x,
        num_param=_plain_number,
    )


def _pg_number(n: int | float) -> ColumnElement[Any]:
    # Exact decimal text (repr is the shortest round-trip form of a float).
    return sa.cast(sa.literal(repr(n) if isinstance(n, float) else str(n)), sa.Numeric)


def _pg_meta(meta_col: ColumnElement[Any], path: list[str]) -> _Ref:
    # Chained `->` with text keys, not `#>`: a digit key must not index into an array.
    j: ColumnElement[Any] = meta_col
    for seg in path[:-1]:
        j = j.op("->", return_type=JSONB)(sa.cast(sa.literal(seg), sa.Text))
    last = sa.cast(sa.literal(path[-1]), sa.Text)
    jt = j.op("->>", return_type=sa.Text)(last)
    j = j.op("->", return_type=JSONB)(last)
    jtype = sa.func.jsonb_typeof(j)
    t = sa.func.coalesce(jtype, "")
    return _Ref(
        present=j.is_not(None),
        null=sa.func.coalesce(jtype, "null") == "null",
        is_true=sa.and_(t == "boolean", jt == "true"),
        is_false=sa.and_(t == "boolean", jt == "false"),
        is_num=t == "number",
        # AND does not short-circuit in PostgreSQL: the CASE keeps the cast off non-numbers.
        # NUMERIC, not float8, so huge stored numbers neither overflow nor round.
        num=sa.case((jtype == "number", sa.cast(jt, sa.Numeric))),
        is_str=t == "string",
        # Code point order, as in Python and SQLite, whatever the database collation.
        text=sa.collate(jt, "C"),
        num_param=_pg_number,
    )


_COLUMN_KINDS = (
    (sa.Boolean, "bool"),
    (sa.Integer, "number"),
    (sa.Numeric, "number"),
    (sa.String, "string"),
)


def _system_column(col: ColumnElement[Any], dialect: str) -> _Ref:
    t = col.type.impl_instance if isinstance(col.type, sa.TypeDecorator) else col.type
    kind = next((k for cls, k in _COLUMN_KINDS if isinstance(t, cls)), None)
    if kind is None:
        raise TypeError(f"system field column of unsupported type {t!r}")
    present = col.is_not(None)
    return _Ref(
        present=present,
        null=col.is_(None),
        is_true=col.is_(True) if kind == "bool" else sa.false(),
        is_false=col.is_(False) if kind == "bool" else sa.false(),
        is_num=present if kind == "number" else sa.false(),
        num=col,
        is_str=present if kind == "string" else sa.false(),
        text=sa.collate(col, "C") if dialect == "postgresql" and kind == "string" else col,
        num_param=_plain_number,
    )


def _leaf_sql(f: Filter, r: _Ref) -> ColumnElement[bool]:
    if f.op == "$exists":
        return r.present
    if f.op in _CMP:
        if isinstance(f.value, str):
            return sa.and_(r.is_str, _CMP[f.op](r.text, f.value))
        return sa.and_(r.is_num, _CMP[f.op](r.num, r.num_param(f.value)))
    values = _qs_candidates(f.value) if f.op == "$qs" else f.value
    parts: list[ColumnElement[bool]] = []
    if any(v is None for v in values):
        parts.append(r.null)
    if any(v is True for v in values):
        parts.append(r.is_true)
    if any(v is False for v in values):
        parts.append(r.is_false)
    if nums := [v for v in values if _kind(v) == "number"]:
        parts.append(sa.and_(r.is_num, r.num.in_([r.num_param(n) for n in nums])))
    if strs := [v for v in values if isinstance(v, str)]:
        parts.append(sa.and_(r.is_str, r.text.in_(strs)))
    return sa.or_(*parts) if parts else sa.false()


def to_sql(
    f: Filter | None,
    meta_col: ColumnElement[Any],
    system_cols: Mapping[str, ColumnElement[Any]],
    dialect: str,
) -> ColumnElement[bool]:
    """Compile to a WHERE clause for ``dialect`` "sqlite" or "postgresql"; None -> true()."""
    if dialect not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported dialect {dialect!r}")
    if f is None:
        return sa.true()
    if f.op == "$and":
        kids = [to_sql(c, meta_col, system_cols, dialect) for c in f.children]
        return sa.and_(*kids) if kids else sa.true()
    if f.op == "$or":
        return sa.or_(*(to_sql(c, meta_col, system_cols, dialect) for c in f.children))
    if f.op == "$not":
        return sa.not_(to_sql(f.children[0], meta_col, system_cols, dialect))
    if f.field in system_cols:
        ref = _system_column(system_cols[f.field], dialect)
    elif dialect == "sqlite":
        ref = _sqlite_meta(meta_col, _meta_path(f.field))
    else:
        ref = _pg_meta(meta_col, _meta_path(f.field))
    return _leaf_sql(f, ref)


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
    return _qs_candidates(f.value) if f.op == "$qs" else f.value  # type: ignore[no-any-return]


def _duck_scalar_leaf(f: Filter, expr: str, kind: str) -> str:
    """The leaf on a present, non-null value of one static kind."""
    if f.op == "$exists":
        return "TRUE"
    want = {"number": "number", "string": "string", "bool": "bool"}[kind]
    if f.op in _CMP:
        if _kind(f.value) != want:
            return "FALSE"
        return f"({expr} {_SQL_CMP[f.op]} {duck_literal(f.value)})"
    hits = [v for v in _duck_values(f) if _kind(v) == want]
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
    if f.op in _CMP:
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
    if nums := [v for v in values if _kind(v) == "number"]:
        parts.append(f"({t} IN {_DUCK_NUMBER_TYPES} AND "
                     f"{num} IN ({', '.join(duck_literal(n) for n in nums)}))")  # type: ignore[arg-type]
    if strs := [v for v in values if isinstance(v, str)]:
        parts.append(f"({t} = 'VARCHAR' AND {text} IN ({', '.join(map(duck_literal, strs))}))")
    return "(" + " OR ".join(parts) + ")" if parts else "FALSE"


def _duck_leaf(f: Filter, columns: Mapping[str, DuckColumn], shared: dict[str, Any]) -> str:
    path = _meta_path(f.field)
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
