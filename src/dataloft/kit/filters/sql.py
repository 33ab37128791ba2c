"""A filter compiled to a SQLAlchemy predicate (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ColumnElement
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import QueryableAttribute

from dataloft.kit.filters.parse import COMPARISONS, Filter, meta_path, qs_candidates
from dataloft.kit.filters.python import kind_of

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
    if f.op in COMPARISONS:
        if isinstance(f.value, str):
            return sa.and_(r.is_str, COMPARISONS[f.op](r.text, f.value))
        return sa.and_(r.is_num, COMPARISONS[f.op](r.num, r.num_param(f.value)))
    values = qs_candidates(f.value) if f.op == "$qs" else f.value
    parts: list[ColumnElement[bool]] = []
    if any(v is None for v in values):
        parts.append(r.null)
    if any(v is True for v in values):
        parts.append(r.is_true)
    if any(v is False for v in values):
        parts.append(r.is_false)
    if nums := [v for v in values if isinstance(v, int | float) and kind_of(v) == "number"]:
        parts.append(sa.and_(r.is_num, r.num.in_([r.num_param(n) for n in nums])))
    if strs := [v for v in values if isinstance(v, str)]:
        parts.append(sa.and_(r.is_str, r.text.in_(strs)))
    return sa.or_(*parts) if parts else sa.false()


Column = ColumnElement[Any] | QueryableAttribute[Any]


def to_sql(
    f: Filter | None,
    meta_col: Column,
    system_cols: Mapping[str, Column],
    dialect: str,
) -> ColumnElement[bool]:
    """Compile to a WHERE clause for ``dialect`` "sqlite" or "postgresql"; None -> true()."""
    if dialect not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported dialect {dialect!r}")
    return _compile(f, _element(meta_col),
                    {name: _element(col) for name, col in system_cols.items()}, dialect)


def _element(col: Column) -> ColumnElement[Any]:
    return col.expression if isinstance(col, QueryableAttribute) else col


def _compile(f: Filter | None, meta_col: ColumnElement[Any],
             system_cols: Mapping[str, ColumnElement[Any]], dialect: str
             ) -> ColumnElement[bool]:
    if f is None:
        return sa.true()
    if f.op == "$and":
        kids = [_compile(c, meta_col, system_cols, dialect) for c in f.children]
        return sa.and_(*kids) if kids else sa.true()
    if f.op == "$or":
        return sa.or_(*(_compile(c, meta_col, system_cols, dialect) for c in f.children))
    if f.op == "$not":
        return sa.not_(_compile(f.children[0], meta_col, system_cols, dialect))
    if f.field in system_cols:
        ref = _system_column(system_cols[f.field], dialect)
    elif dialect == "sqlite":
        ref = _sqlite_meta(meta_col, meta_path(f.field))
    else:
        ref = _pg_meta(meta_col, meta_path(f.field))
    return _leaf_sql(f, ref)


