"""Wire shapes of governed SQL: a dataset's schema (tables.catalog.schema()) and a query's
answer in each `format` (present.py), key for key (kit/wire.py)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from dataloft.kit.wire import JsonObject, Out, absent


class ColumnOut(Out):
    name: str
    type: str = Field(description="Our type: string, integer, number, boolean, date, "
                                  "datetime or json.")
    sqlType: str


class TableOut(Out):
    name: str = Field(description="The name to use in SQL.")
    fileId: str
    fileName: str | None
    sheet: str | None
    rowCount: int
    columns: list[ColumnOut]


class SchemaAnswer(Out):
    id: str
    tables: list[TableOut]


class ResultColumn(Out):
    name: str
    type: str


class Rows(Out):
    """format=rows (the default)."""
    columns: list[ResultColumn]
    rows: list[list[Any]]
    truncated: bool = Field(description="More rows matched than `limit`.")
    ordered: bool = Field(description="The statement has an ORDER BY of its own: the rows "
                                      "come in that order, and a chart of them should keep it.")


class Table(Out):
    """format=table."""
    head: list[str]
    body: list[list[Any]]
    truncated: bool


class ChartData(Out):
    values: list[JsonObject]


class Chart(Out):
    """format=chart: a Vega-Lite specification of the result."""
    schema_: str = Field(alias="$schema")
    data: ChartData
    mark: str
    encoding: JsonObject = absent("Absent when the result has no columns.")


QueryAnswer = Annotated[Rows | Table | Chart, Field(title="QueryAnswer")]
