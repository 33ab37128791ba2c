"""The shapes the extraction child gathers for the SQL snapshots (issue 16): the same
column types and offset columns as the plain rule, read row by row."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dataloft.ingest.extract import Row
from dataloft.ingest.extract.columns import (
    DATETIME,
    UTC_OFFSET,
    Column,
    TableShape,
    add_shape,
    convert,
    merge_schema,
    typed_rows,
)

_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**64), max_value=2**64),
    st.sampled_from([2**63, -(2**63), 2**63 - 1, 10**20, 0, 1.5, float("inf")]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", " ", "2024-05-01", "2024-05-01T10:30:00", "2024-05-01T10:30:00Z",
                     "2024-05-01 10:30:00+02:00", "2024-05-01T10:30:00-0500", "lyon",
                     "12", "007", "Z", "+01:00", "1e3"]),
    st.text(max_size=6), st.lists(st.integers(), max_size=2))
_ROWS = st.lists(st.tuples(st.sampled_from(["t1", "t2"]),
                           st.dictionaries(st.sampled_from("abc"), _VALUES, max_size=3)),
                 max_size=40)


@settings(max_examples=400, deadline=None)
@given(_ROWS)
def test_shapes_type_every_column_as_merging_every_row_does(rows: list[tuple[str, Any]]
                                                            ) -> None:
    shapes: dict[str, TableShape] = {}
    schemas: dict[str, dict[str, str]] = {}
    offsets: dict[str, set[str]] = {}
    counts: dict[str, int] = {}
    for n, (table, fields) in enumerate(rows):
        add_shape(shapes, Row(fields, {"table": table, "row": n + 2, "sheet": "s"}))
        merge_schema(schemas.setdefault(table, {}), fields)
        offsets.setdefault(table, set()).update(
            k for k, v in fields.items() if isinstance(v, str) and UTC_OFFSET.search(v[-6:]))
        counts[table] = counts.get(table, 0) + 1
    assert list(shapes) == list(schemas)  # tables in file order
    for table, shape in shapes.items():
        assert shape.rows == counts[table]
        assert shape.meta == {"table": table, "sheet": "s"}
        assert shape.schema == schemas[table]
        assert list(shape.schema) == list(schemas[table])  # columns in order
        # Only a datetime column's offsets matter (its SQL type stays text).
        datetimes = {k for k, t in schemas[table].items() if t == DATETIME}
        assert shape.offsets & datetimes == offsets[table] & datetimes


@settings(max_examples=400, deadline=None)
@given(st.lists(st.lists(_VALUES, min_size=3, max_size=3), max_size=20), st.booleans())
def test_typed_rows_type_every_cell_as_convert_does(rows: list[list[Any]],
                                                    parse_text: bool) -> None:
    # typed_rows takes a text cell's path inline (a CSV's every cell): the same values.
    names = ["a", "b", "c"]
    columns = [Column(parse_text) for _ in names]
    for cells in rows:
        for column, cell in zip(columns, cells, strict=True):
            column.observe(cell)
    expected = [fields for cells in rows
                if (fields := {n: v for n, c, cell in zip(names, columns, cells, strict=True)
                               if (v := convert(cell, c.type)) is not None})]
    typed = list(typed_rows(names, columns, rows, {"table": "t"}))
    assert [r.fields for r in typed] == expected
    assert [r.meta["row"] for r in typed] == list(range(1, len(expected) + 1))
