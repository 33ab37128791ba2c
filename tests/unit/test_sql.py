"""Governed SQL pieces without the HTTP layer: names, labels, charts, the engine's lock-down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dataloft.errors import BadRequest
from dataloft.query import engine, present
from dataloft.query.engine import LoadTable, Result
from dataloft.tables import catalog, snapshot


@pytest.mark.parametrize(("file_name", "meta", "expected"), [
    ("sales.csv", {"table": "sales"}, "sales"),
    ("Sales Report 2024.CSV", {}, "sales_report_2024"),
    ("budget.xlsx", {"sheet": "Q1", "table": "Q1"}, "budget_q1"),
    ("2024.jsonl", {}, "t_2024"),
    ("!!!.csv", {}, "table"),
    ("données.tsv", {}, "donn_es"),
])
def test_table_names_come_from_file_names(file_name: str, meta: dict[str, str],
                                          expected: str) -> None:
    assert snapshot.base_name(file_name, meta) == expected


@pytest.mark.parametrize(("name", "expected"), [
    ("order_date", "Order date"), ("customerId", "Customer ID"), ("amount", "Amount"),
    ("order-id", "Order ID"), ("URL", "URL"), ("x", "X"),
])
def test_labels(name: str, expected: str) -> None:
    assert catalog.label(name) == expected


def test_field_edits_are_validated() -> None:
    assert catalog.check_field_edits([{"name": "a", "label": "A", "dataType": "date"}]) == [
        {"name": "a", "label": "A", "dataType": "date"}]
    for bad in (None, "a", [1], [{"name": ""}], [{"name": "a", "dataType": "json"}],
                [{"name": "a", "label": 5}], [{"name": "a"}, {"name": "a"}]):
        with pytest.raises(BadRequest):
            catalog.check_field_edits(bad)


def _result(*types: str) -> Result:
    cols = [{"name": f"c{i}", "type": t, "sqlType": ""} for i, t in enumerate(types)]
    return Result(cols, [], False)


@pytest.mark.parametrize(("types", "mark"), [
    (("date", "number"), "line"), (("datetime", "integer", "string"), "line"),
    (("string", "number"), "bar"), (("boolean", "integer"), "bar"),
    (("number", "integer"), "point"), (("string",), "bar"), (("string", "string"), "bar"),
])
def test_chart_marks_follow_column_types(types: tuple[str, ...], mark: str) -> None:
    spec = present.chart(_result(*types))
    assert spec["mark"] == mark
    assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/")


def test_one_quantitative_column_is_a_histogram() -> None:
    spec = present.chart(_result("number"))
    assert spec["encoding"]["x"]["bin"] is True


@pytest.mark.parametrize(("sql_type", "data_type"), [
    ("BIGINT", "integer"), ("HUGEINT", "integer"), ("DECIMAL(18,2)", "number"),
    ("DOUBLE", "number"), ("DATE", "date"), ("TIMESTAMP WITH TIME ZONE", "datetime"),
    ("VARCHAR", "string"), ("INTEGER[]", "json"), ("STRUCT(a INTEGER)", "json"),
    ("BOOLEAN", "boolean"),
])
def test_result_types(sql_type: str, data_type: str) -> None:
    assert engine.data_type(sql_type) == data_type


@pytest.fixture(scope="module")
def parquet(tmp_path_factory: pytest.TempPathFactory) -> str:
    duckdb = pytest.importorskip("duckdb")
    path = str(tmp_path_factory.mktemp("snap") / "t.parquet")
    con = duckdb.connect()
    con.execute(f"COPY (SELECT range AS n, range % 2 = 0 AS even FROM range(10)) "
                f"TO '{path}' (FORMAT parquet)")
    con.close()
    return path


LIMITS = engine.QueryLimits(memory_bytes=128 << 20, threads=1, timeout_s=20)


@pytest.fixture(scope="module")
def sql() -> Iterator[engine.QueryEngine]:
    query_engine = engine.QueryEngine(LIMITS)
    yield query_engine
    query_engine.close()


def test_a_restricted_snapshot_is_not_readable_by_the_query(parquet: str,
                                                            sql: engine.QueryEngine) -> None:
    restricted = LoadTable('"t"', parquet, '"n"', '"even"')
    assert sql.run([restricted], "SELECT count(*) FROM t", 10).rows == [[5]]
    for text in (f"SELECT * FROM '{parquet}'", f"SELECT * FROM read_parquet('{parquet}')",
                 f"SELECT * FROM parquet_scan('{parquet}')"):
        with pytest.raises(engine.SqlNotAllowed):
            sql.run([restricted], text, 10)


def test_an_unrestricted_table_is_a_view_of_its_snapshot_only(
        parquet: str, tmp_path: Path, sql: engine.QueryEngine) -> None:
    whole = LoadTable('"t"', parquet, '"n"', "TRUE")
    assert sql.run([whole], "SELECT sum(n) FROM t", 10).rows == [[45]]
    other = tmp_path / "other.csv"
    other.write_text("secret\n1\n")
    with pytest.raises(engine.SqlNotAllowed):
        sql.run([whole], f"SELECT * FROM '{other}'", 10)


def test_wall_clock_kill_is_a_typed_limit(parquet: str, sql: engine.QueryEngine) -> None:
    quick = engine.QueryEngine(engine.QueryLimits(memory_bytes=128 << 20, threads=1,
                                                  timeout_s=1.5))
    try:
        with pytest.raises(engine.QueryTimeLimit):
            quick.run([], "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) "
                      "SELECT count(*) FROM r", 10)
    finally:
        quick.close()
    assert sql.run([], "SELECT 42", 10).rows == [[42]]


def test_the_snapshot_cache_drops_the_least_recently_used(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from dataloft.query import service

    monkeypatch.setattr(service, "CACHE_MAX_BYTES", 250)
    files = []
    for i in range(4):
        p = tmp_path / f"{i}.parquet"
        p.write_bytes(b"x" * 100)
        os.utime(p, (1000 + i, 1000 + i))
        files.append(p)
    service._prune(tmp_path, keep=files[0])
    assert [p.exists() for p in files] == [True, False, False, True]
