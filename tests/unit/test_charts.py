"""Chart order: bars over categories read largest first (what a bar chart is read for);
lines, points and histograms keep their axis order."""

from __future__ import annotations

import pytest

from dataloft.agent import charts
from dataloft.query import engine, present
from dataloft.query.engine import QueryLimits, Result


def _result(*types: str) -> Result:
    cols = [{"name": f"c{i}", "type": t, "sqlType": ""} for i, t in enumerate(types)]
    return Result(cols, [], False)


@pytest.mark.parametrize("types", [("string", "number"), ("boolean", "integer"),
                                   ("string",), ("string", "string"),
                                   ("string", "integer", "string")])
def test_category_bars_are_ordered_by_value_descending(types: tuple[str, ...]) -> None:
    spec = present.chart(_result(*types))
    assert spec["mark"] == "bar"
    assert spec["encoding"]["x"]["sort"] == "-y"


@pytest.mark.parametrize("types", [("date", "number"), ("number", "integer"), ("number",)])
def test_lines_points_and_histograms_keep_axis_order(types: tuple[str, ...]) -> None:
    assert "sort" not in present.chart(_result(*types))["encoding"]["x"]


def test_agent_bar_chart_is_ordered_by_value_and_its_line_chart_by_time() -> None:
    bars = charts.chart(["item", "price"], [["lamp", 12], ["rope", 30]], "Prices")
    assert bars is not None and bars["spec"]["encoding"]["x"]["sort"] == "-y"
    kept = charts.chart(["item", "price"], [["rope", 30], ["lamp", 12]], "Prices", ordered=True)
    assert kept is not None and kept["spec"]["encoding"]["x"]["sort"] is None
    line = charts.chart(["month", "revenue"], [["2026-01", 1], ["2026-02", 2]], "Revenue")
    assert line is not None and line["spec"]["encoding"]["x"] == {"field": "month",
                                                                   "type": "temporal"}


@pytest.mark.parametrize("types", [("string", "number"), ("string",)])
def test_bars_of_a_statement_with_its_own_order_by_keep_that_order(
        types: tuple[str, ...]) -> None:
    cols = [{"name": f"c{i}", "type": t, "sqlType": ""} for i, t in enumerate(types)]
    spec = present.chart(Result(cols, [], False, ordered=True))
    assert spec["mark"] == "bar" and spec["encoding"]["x"]["sort"] is None


@pytest.mark.parametrize(("sql", "ordered"), [
    ("SELECT 'b' AS k, 1 AS v UNION ALL SELECT 'a', 2 ORDER BY k", True),
    ("SELECT k, v FROM (SELECT 'b' AS k, 1 AS v ORDER BY k) LIMIT 5", False),
    ("WITH t AS (SELECT 'b' AS k, 1 AS v) SELECT * FROM t ORDER BY v DESC", True),
    ("SELECT 'b' AS k, 1 AS v", False),
])
def test_the_engine_tells_whether_the_statement_orders_its_rows(sql: str, ordered: bool) -> None:
    result = engine._execute([], sql, 10, QueryLimits())
    assert result.ordered is ordered
    assert len(result.rows) in (1, 2)
