"""Charts for answers: a Vega-Lite v6 spec with its data inline, and Inconvo's legacy chart
object ({type, title, data: {labels, datasets: [{name, values}]}}) for older clients."""

from __future__ import annotations

from typing import Any

VEGA_LITE = "https://vega.github.io/schema/vega-lite/v6.json"


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def chart(columns: list[str], rows: list[list[Any]], title: str, ordered: bool = False
          ) -> dict[str, Any] | None:
    """A bar (or line, for a time-like first column) chart of the first column against the
    numeric columns; None when there is nothing numeric to draw. Bars are ordered by
    value, largest first (summed over the series), not alphabetically, unless the
    statement had an ORDER BY of its own (`ordered`): then the rows' order is kept."""
    if len(columns) < 2 or not rows:
        return None
    numeric = [i for i in range(1, len(columns))
               if all(_number(r[i]) is not None for r in rows if r[i] is not None)]
    if not numeric:
        return None
    x = columns[0]
    temporal = any(w in x.lower() for w in ("date", "time", "month", "year", "day"))
    mark = "line" if temporal else "bar"
    values = [{c: r[i] for i, c in enumerate(columns)} for r in rows]
    measures = [columns[i] for i in numeric]
    spec: dict[str, Any] = {
        "$schema": VEGA_LITE, "title": title, "data": {"values": values},
        "mark": {"type": mark, "tooltip": True},
        "transform": [{"fold": measures, "as": ["series", "value"]}],
        "encoding": {"x": {"field": x, "type": "temporal"} if temporal
                     else {"field": x, "type": "nominal", "sort": None if ordered else "-y"},
                     "y": {"field": "value", "type": "quantitative"},
                     "color": {"field": "series", "type": "nominal"},
                     **({} if temporal else {"xOffset": {"field": "series"}})}}
    legacy = {"type": mark, "title": title, "xLabel": x, "yLabel": ", ".join(measures),
              "data": {"labels": [str(r[0]) for r in rows],
                       "datasets": [{"name": columns[i],
                                     "values": [_number(r[i]) or 0 for r in rows]}
                                    for i in numeric]}}
    return {"spec": spec, **legacy}


def cells(rows: list[list[Any]]) -> list[list[str]]:
    """Table cells as strings, the wire form of Inconvo tables."""
    return [["" if v is None else str(v) for v in row] for row in rows]
