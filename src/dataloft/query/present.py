"""Answers for people: a query result as a table, or as a Vega-Lite chart of it."""

from __future__ import annotations

from typing import Any

from dataloft.query.engine import Result

VEGA_LITE = "https://vega.github.io/schema/vega-lite/v5.json"
_MEASURE = {"integer": "quantitative", "number": "quantitative", "date": "temporal",
            "datetime": "temporal"}


def rows(result: Result) -> dict[str, Any]:
    return {"columns": [{"name": c["name"], "type": c["type"]} for c in result.columns],
            "rows": result.rows, "truncated": result.truncated, "ordered": result.ordered}


def table(result: Result) -> dict[str, Any]:
    return {"head": [c["name"] for c in result.columns], "body": result.rows,
            "truncated": result.truncated}


def _encoding(col: dict[str, str]) -> dict[str, str]:
    return {"field": col["name"], "type": _MEASURE.get(col["type"], "nominal")}


def chart(result: Result) -> dict[str, Any]:
    """A Vega-Lite spec: temporal x -> line, nominal x + quantitative y -> bar, two
    quantitative -> point; one column alone -> a count per value (or a histogram).
    Bars over categories are ordered by their value, largest first: Vega-Lite's default
    (alphabetical) hides the ranking a bar chart is read for; a statement's own ORDER BY
    wins (its rows' order is kept); lines and histograms keep the order of their axis."""
    cols = result.columns
    values = [{c["name"]: v for c, v in zip(cols, row, strict=True)} for row in result.rows]
    spec: dict[str, Any] = {"$schema": VEGA_LITE, "data": {"values": values}}
    if not cols:
        return {**spec, "mark": "text"}
    x = _encoding(cols[0])
    # null: the data's order (the query's ORDER BY); "-y": largest value first.
    bar_order = None if result.ordered else "-y"
    quantitative = [c for c in cols[1:] if _MEASURE.get(c["type"]) == "quantitative"]
    if len(cols) == 1 or not quantitative:
        if x["type"] == "quantitative":
            return {**spec, "mark": "bar", "encoding": {
                "x": {**x, "bin": True}, "y": {"aggregate": "count", "type": "quantitative"}}}
        return {**spec, "mark": "bar", "encoding": {
            "x": {**x, "sort": bar_order},
            "y": {"aggregate": "count", "type": "quantitative"}}}
    y = _encoding(quantitative[0])
    mark = {"temporal": "line", "quantitative": "point"}.get(x["type"], "bar")
    encoding: dict[str, Any] = {"x": {**x, "sort": bar_order} if mark == "bar" else x, "y": y}
    rest = [c for c in cols[1:] if c is not quantitative[0]
            and _MEASURE.get(c["type"]) != "quantitative"]
    if rest:
        encoding["color"] = _encoding(rest[0])
    return {**spec, "mark": mark, "encoding": encoding}
