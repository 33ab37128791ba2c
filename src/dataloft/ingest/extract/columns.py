"""Column types for tables: one type per column, inferred from all of its values.

Types (the `dataType` of a dataset field): "integer", "number", "boolean", "date",
"datetime", "string", and "json" for nested objects/arrays (JSON, JSONL, YAML only).

Text cells (CSV, TSV, text cells of XLSX) are read as the narrowest type that fits every
non-empty value of the column:

* integer: `-12`, `+7`, `0` (at most 18 digits; a leading zero such as `007` or `02134`
  is an identifier and stays a string);
* number: integers and decimals mixed, exponents (`1.5e3`); same leading-zero rule;
* boolean: true/false/yes/no, any case (not 1/0: those are integers);
* date: ISO `YYYY-MM-DD`, kept as that string; datetime: ISO date and time
  (`2024-05-01T10:30:00`, space or `T`, optional seconds, fraction, `Z` or offset), kept
  as an ISO string normalised by `datetime.isoformat`; dates and datetimes mixed are
  "datetime", each value keeping its own form;
* string: anything else, including a column mixing the kinds above.

Typed sources (JSON, JSONL, YAML, numeric/date/boolean XLSX cells) keep their values' own
types; their string values are only tested for ISO dates (a quoted "1200" stays a
string: the producer chose to quote it). A column whose values mix types becomes "string"
and every value in it is rendered as text, so a column always holds one type.
Empty cells (and null) are omitted from the row.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from dataloft.ingest.extract.base import Row, Section

INTEGER, NUMBER, BOOLEAN = "integer", "number", "boolean"
DATE, DATETIME, STRING, JSON = "date", "datetime", "string", "json"

_INT = re.compile(r"[+-]?(?:0|[1-9][0-9]{0,17})")
_NUMBER = re.compile(r"[+-]?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}"
                       r"(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?")
_TRUE, _FALSE = frozenset({"true", "yes"}), frozenset({"false", "no"})


def _date_kind(text: str) -> str:
    try:
        if _DATE.fullmatch(text):
            date.fromisoformat(text)
            return DATE
        if _DATETIME.fullmatch(text):
            datetime.fromisoformat(text)
            return DATETIME
    except ValueError:
        pass  # 2024-02-30 looks like a date and is not one
    return STRING


def text_kind(text: str) -> str:
    """The kind of one stripped, non-empty text cell."""
    if _INT.fullmatch(text):
        return INTEGER
    if _NUMBER.fullmatch(text):
        return NUMBER if math.isfinite(float(text)) else STRING
    if text.lower() in _TRUE or text.lower() in _FALSE:
        return BOOLEAN
    return _date_kind(text) if text[:1].isdigit() else STRING


def value_kind(value: Any, parse_text: bool) -> str | None:
    """The kind of one value; None for an empty one (skipped, never typed)."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if parse_text:
            return text_kind(text)
        return _date_kind(text) if text[:1].isdigit() else STRING
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return INTEGER if abs(value) < 2**63 else STRING
    if isinstance(value, float):
        return NUMBER if math.isfinite(value) else STRING
    if isinstance(value, datetime):
        return DATE if value.time() == time() and value.tzinfo is None else DATETIME
    if isinstance(value, date):
        return DATE
    if isinstance(value, dict | list | tuple):
        return JSON
    return STRING


def resolve(kinds: set[str]) -> str:
    """The one type of a column whose values have `kinds`."""
    if len(kinds) == 1:
        return next(iter(kinds))
    if kinds and kinds <= {INTEGER, NUMBER}:
        return NUMBER
    if kinds and kinds <= {DATE, DATETIME}:
        return DATETIME
    return STRING


class Column:
    """Kinds seen so far in one column; stops looking once it can only be a string."""

    __slots__ = ("kinds", "settled", "parse_text")

    def __init__(self, parse_text: bool) -> None:
        self.kinds: set[str] = set()
        self.settled = False
        self.parse_text = parse_text

    def observe(self, value: Any) -> None:
        if self.settled:
            return
        kind = value_kind(value, self.parse_text)
        if kind is None or kind in self.kinds:
            return
        self.kinds.add(kind)
        self.settled = resolve(self.kinds) == STRING

    @property
    def type(self) -> str:
        return resolve(self.kinds) if self.kinds else STRING


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value).strip()


def convert(value: Any, column_type: str) -> Any:
    """`value` as its column's type; None for an empty value."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if column_type == STRING:
        return _as_text(value)
    if isinstance(value, str):
        return _from_text(value.strip(), column_type)
    if isinstance(value, datetime):
        return value.date().isoformat() if column_type == DATE else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


def _from_text(text: str, column_type: str) -> Any:
    """A non-empty stripped text cell as its (non-string) column's type."""
    if column_type == INTEGER:
        return int(text)
    if column_type == NUMBER:
        return int(text) if _INT.fullmatch(text) else float(text)
    if column_type == BOOLEAN:
        return text.lower() in _TRUE
    if column_type == DATETIME and _DATETIME.fullmatch(text):
        return datetime.fromisoformat(text).isoformat()
    return text


def unique_names(raw: Iterable[Any]) -> list[str]:
    """Header cells as field names: blank ones become column_N, repeats get _2, _3 ..."""
    names: list[str] = []
    seen: set[str] = set()
    for i, cell in enumerate(raw):
        base = _as_text(cell) if cell is not None else ""
        base = " ".join(base.split()) or f"column_{i + 1}"
        name, n = base, 2
        while name in seen:
            name, n = f"{base}_{n}", n + 1
        seen.add(name)
        names.append(name)
    return names


def extend_names(names: list[str], width: int) -> None:
    """Name the extra cells of a ragged row (column_N), keeping names unique."""
    seen = set(names)
    while len(names) < width:
        base = name = f"column_{len(names) + 1}"
        n = 2
        while name in seen:
            name, n = f"{base}_{n}", n + 1
        seen.add(name)
        names.append(name)


def typed_rows(names: list[str], columns: list[Column], rows: Iterable[Iterable[Any]],
               meta: Mapping[str, Any]) -> Iterable[Row]:
    """Rows of raw cells (already observed by `columns`) as typed `Row`s; empty rows skip."""
    types = [c.type for c in columns]
    n = 0
    for cells in rows:
        fields = {}
        for name, ctype, cell in zip(names, types, cells, strict=False):
            if type(cell) is str:  # every CSV cell: `convert`'s text path, inline
                text = cell.strip()
                if text:
                    fields[name] = text if ctype == STRING else _from_text(text, ctype)
                continue
            value = convert(cell, ctype)
            if value is not None:
                fields[name] = value
        if fields:
            n += 1
            yield Row(fields, {**meta, "row": n})


def merge_schema(schema: dict[str, str], fields: Mapping[str, Any]) -> None:
    for name, value in fields.items():
        kind = value_kind(value, parse_text=False)
        if kind is None:
            continue
        old = schema.get(name)
        schema[name] = kind if old is None or old == kind else resolve({old, kind})


def infer_schema(items: Iterable[Section | Row]) -> dict[str, str]:
    """`{column: dataType}` over every row of `items` (all tables together; a column name
    shared by tables of different types becomes "string"). Rows hold values already
    converted to their column's type, so this reads the types back, in one pass."""
    schema: dict[str, str] = {}
    for item in items:
        if isinstance(item, Row):
            merge_schema(schema, item.fields)
    return schema


def table_schemas(items: Iterable[Section | Row]) -> dict[str, dict[str, str]]:
    """`{table: {column: dataType}}`: one schema per sheet or table (`Row.meta["table"]`)."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        if isinstance(item, Row):
            merge_schema(out.setdefault(str(item.meta.get("table", "")), {}), item.fields)
    return out


# A text value ending in a UTC offset: its datetime column stays text in SQL (DuckDB's
# TIMESTAMP would drop the offset silently).
UTC_OFFSET = re.compile(r"(Z|[+-][0-9]{2}:?[0-9]{2})$")
# A table wider than this gets no SQL snapshot; its schema stops growing past it.
MAX_TABLE_COLUMNS = 2000


@dataclass
class TableShape:
    """What a table's SQL snapshot needs to know of its rows, gathered in one pass (by the
    extraction child, as it writes them): the first row's meta (less `row`), the row
    count, the column types, and the columns with a text value ending in an offset."""

    meta: dict[str, Any]
    rows: int = 0
    schema: dict[str, str] = field(default_factory=dict)
    offsets: set[str] = field(default_factory=set)


def add_shape(shapes: dict[str, TableShape], row: Row) -> None:
    """Count `row` into its table's shape (`Row.meta["table"]`), tables in file order."""
    key = str(row.meta.get("table", ""))
    shape = shapes.get(key)
    if shape is None:
        shape = shapes[key] = TableShape({k: v for k, v in row.meta.items() if k != "row"})
    shape.rows += 1
    if len(shape.schema) > MAX_TABLE_COLUMNS:
        return
    schema = shape.schema
    for name, value in row.fields.items():
        old = schema.get(name)
        if old == STRING or _keeps(old, value):  # the common case: nothing to learn
            continue
        kind = value_kind(value, parse_text=False)
        if kind is None:
            continue
        new = schema[name] = kind if old is None or old == kind else resolve({old, kind})
        # An offset matters only to a column that ends up a datetime (string absorbs).
        if new in (DATE, DATETIME) and type(value) is str and UTC_OFFSET.search(value[-6:]):
            shape.offsets.add(name)


def _keeps(old: str | None, value: Any) -> bool:
    """Whether merging `value` into a column of type `old` leaves it as it is, told by
    the value's type alone (`merge_schema` would read it: a row's worth of regexes)."""
    kind = type(value)
    if kind is int:
        return old in (INTEGER, NUMBER) and -(2**63) < value < 2**63
    if kind is float:
        return old == NUMBER and math.isfinite(value)
    return kind is bool and old == BOOLEAN


def rows_from_mappings(objects: Sequence[Mapping[Any, Any]], meta: Mapping[str, Any],
                       parse_text: bool = False) -> Iterable[Row]:
    """Typed rows from parsed records (JSON objects, YAML mappings), columns by key."""
    columns: dict[str, Column] = {}
    for obj in objects:
        for key, value in obj.items():
            column = columns.get(str(key))
            if column is None:
                column = columns[str(key)] = Column(parse_text)
            column.observe(value)
    types = {name: column.type for name, column in columns.items()}
    n = 0
    for obj in objects:
        fields = {}
        for key, value in obj.items():
            converted = convert(value, types[str(key)])
            if converted is not None:
                fields[str(key)] = converted
        if fields:
            n += 1
            yield Row(fields, {**meta, "row": n})
