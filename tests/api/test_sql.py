"""Governed SQL through the HTTP API: tables from real uploads, the access policy, the
association filter, the sandbox, and answers as rows, tables and charts."""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from dataloft.app import create_app
from dataloft.kit.filters import matches, parse_filter
from dataloft.kit.ids import new_id
from dataloft.models import Assistant, AssistantDataset, Record, SqlTable
from tests.conftest import KEY, make_settings
from tests.support.api import assert_envelope, create_dataset, create_file, sync
from tests.support.pg import empty_database
from tests.support.s3 import moto_s3

SALES = (b"order_id,region,amount,order_date,paid\n"
         b"1,North,100,2024-01-05,true\n"
         b"2,South,250.5,2024-02-10,false\n"
         b"3,North,50,2024-03-15,true\n"
         b"4,East,75,,yes\n")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One app for the module (syncs are slow on a shared machine), with tight SQL limits
    so the sandbox tests end quickly."""
    settings_ = make_settings(tmp_path_factory.mktemp("sql"), query_memory_mb=256,
                              query_threads=1, query_timeout_seconds=4.0)
    with TestClient(create_app(settings_), headers={"Authorization": f"Bearer {KEY}"}) as c:
        yield c


def query(client: TestClient, dataset_id: str, sql: str, **extra: Any) -> Any:
    return client.post(f"/api/v1/dataset/{dataset_id}/query", json={"sql": sql, **extra})


def ok(r: Any) -> Any:
    assert r.status_code == 200, r.text
    return r.json()


def xlsx(sheets: dict[str, list[list[Any]]]) -> bytes:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def synced(client: TestClient, content: bytes, name: str, ctype: str,
           dataset_id: str | None = None, **file_fields: Any) -> tuple[str, str]:
    ds = dataset_id or create_dataset(client)
    fid = create_file(client, content, name=name, content_type=ctype, **file_fields)
    event = sync(client, ds, fid, timeout=180)
    assert event["type"] == "sync.completed", event
    return ds, fid


@pytest.fixture(scope="module")
def sales(client: TestClient) -> str:
    return synced(client, SALES, "sales.csv", "text/csv")[0]


def add_assistant(client: TestClient, links: list[tuple[str, dict[str, Any] | None]]) -> str:
    """An assistant associated with datasets through the ORM (the HAL routes live elsewhere)."""
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    with ctx.db.write() as s:
        org_id = s.scalar(select(Record.org_id).limit(1))
        assistant = Assistant(id=new_id("asst"), org_id=org_id, name="analyst", meta={})
        s.add(assistant)
        s.flush()
        for ds, raw in links:
            s.add(AssistantDataset(id=new_id("ad"), org_id=org_id, assistant_id=assistant.id,
                                   dataset_id=ds, filter=raw))
        return assistant.id


def set_filter(client: TestClient, assistant_id: str, raw: dict[str, Any] | None) -> None:
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    with ctx.db.write() as s:
        for link in s.scalars(select(AssistantDataset).where(
                AssistantDataset.assistant_id == assistant_id)):
            link.filter = raw


# --- correctness on real uploads ------------------------------------------------------------

def test_group_by_sum_over_a_csv(client: TestClient, sales: str) -> None:
    body = ok(query(client, sales, "SELECT region, sum(amount) AS total, count(*) AS n "
                    "FROM sales GROUP BY region ORDER BY region"))
    assert body["columns"] == [{"name": "region", "type": "string"},
                               {"name": "total", "type": "number"},
                               {"name": "n", "type": "integer"}]
    assert body["rows"] == [["East", 75.0, 1], ["North", 150.0, 2], ["South", 250.5, 1]]
    assert body["truncated"] is False


def test_columns_are_typed_and_empty_cells_are_null(client: TestClient, sales: str) -> None:
    body = ok(query(client, sales, "SELECT order_id, order_date, paid FROM sales "
                    "WHERE order_date >= DATE '2024-02-01' OR order_date IS NULL ORDER BY 1"))
    assert [c["type"] for c in body["columns"]] == ["integer", "date", "boolean"]
    assert body["rows"] == [[2, "2024-02-10", False], [3, "2024-03-15", True], [4, None, True]]


def test_schema_lists_tables_and_typed_columns(client: TestClient, sales: str) -> None:
    tables = ok(client.get(f"/api/v1/dataset/{sales}/schema"))["tables"]
    assert [(t["name"], t["rowCount"], t["fileName"]) for t in tables] == [
        ("sales", 4, "sales.csv")]
    assert [(c["name"], c["type"], c["sqlType"]) for c in tables[0]["columns"]] == [
        ("order_id", "integer", "BIGINT"), ("region", "string", "VARCHAR"),
        ("amount", "number", "DOUBLE"), ("order_date", "date", "DATE"),
        ("paid", "boolean", "BOOLEAN")]


def test_limit_truncates(client: TestClient, sales: str) -> None:
    body = ok(query(client, sales, "SELECT order_id FROM sales ORDER BY 1", limit=2))
    assert body["rows"] == [[1], [2]] and body["truncated"] is True


def test_every_xlsx_sheet_is_a_table_and_jsonl_works(client: TestClient) -> None:
    book = xlsx({"Q1": [["item", "cost"], ["desk", 120], ["chair", 80.5]],
                 "Q2": [["item", "cost"], ["lamp", 30]]})
    ds, _ = synced(client, book,
                   "budget.xlsx",
                   "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    jsonl = b'{"item": "desk", "qty": 2}\n{"item": "lamp", "qty": 5}\n'
    synced(client, jsonl, "stock.jsonl", "application/jsonl", dataset_id=ds)
    names = [t["name"] for t in ok(client.get(f"/api/v1/dataset/{ds}/schema"))["tables"]]
    assert names == ["budget_q1", "budget_q2", "stock"]
    body = ok(query(client, ds, "SELECT b.item, b.cost * s.qty AS value FROM budget_q1 b "
                    "JOIN stock s USING (item) UNION ALL SELECT item, cost FROM budget_q2 "
                    "ORDER BY 1"))
    assert body["rows"] == [["desk", 240.0], ["lamp", 30.0]]


def test_name_clashes_are_disambiguated_in_attachment_order(client: TestClient) -> None:
    ds, first = synced(client, b"k,v\na,1\n", "sales.csv", "text/csv")
    synced(client, b"k,v\nb,2\n", "Sales.csv", "text/csv", dataset_id=ds)
    tables = ok(client.get(f"/api/v1/dataset/{ds}/schema"))["tables"]
    assert [(t["name"], t["fileId"] == first) for t in tables] == [("sales", True),
                                                                  ("sales_2", False)]
    assert ok(query(client, ds, "SELECT k FROM sales_2"))["rows"] == [["b"]]


def test_resync_replaces_the_table(client: TestClient) -> None:
    ds, fid = synced(client, b"k,v\na,1\n", "t.csv", "text/csv")
    r = client.post(f"/api/v1/file/{fid}/upload", content=b"k,v\nx,7\ny,8\n",
                    headers={"Content-Type": "text/csv"})
    assert r.status_code == 200
    assert sync(client, ds, fid, timeout=180)["type"] == "sync.completed"
    assert ok(query(client, ds, "SELECT sum(v) FROM t"))["rows"] == [[15]]


# --- answers for people, structured queries ------------------------------------------------

def test_table_and_chart_formats(client: TestClient, sales: str) -> None:
    sql = "SELECT region, sum(amount) AS total FROM sales GROUP BY 1 ORDER BY 1"
    table = ok(query(client, sales, sql, format="table"))
    assert table["head"] == ["region", "total"] and table["body"][0] == ["East", 75.0]
    spec = ok(query(client, sales, sql, format="chart"))
    assert spec["mark"] == "bar"
    # The statement's own ORDER BY is kept; without one, bars read largest first.
    assert spec["encoding"]["x"] == {"field": "region", "type": "nominal", "sort": None}
    assert spec["encoding"]["y"] == {"field": "total", "type": "quantitative"}
    assert spec["data"]["values"][0] == {"region": "East", "total": 75.0}
    unordered = ok(query(client, sales, sql.removesuffix(" ORDER BY 1"), format="chart"))
    assert unordered["encoding"]["x"] == {"field": "region", "type": "nominal", "sort": "-y"}
    # Rows say so too, for a client (or the agent) that draws its own chart.
    assert ok(query(client, sales, sql))["ordered"] is True
    assert ok(query(client, sales, sql.removesuffix(" ORDER BY 1")))["ordered"] is False
    line = ok(query(client, sales, "SELECT order_date, amount FROM sales "
                    "WHERE order_date IS NOT NULL", format="chart"))
    assert line["mark"] == "line" and line["encoding"]["x"]["type"] == "temporal"
    point = ok(query(client, sales, "SELECT order_id, amount FROM sales", format="chart"))
    assert point["mark"] == "point"


def test_structured_query(client: TestClient, sales: str) -> None:
    body = ok(client.post(f"/api/v1/dataset/{sales}/query", json={
        "aggregate": {"total": {"sum": "amount"}, "orders": {"count": "*"}},
        "groupBy": ["region"], "filter": {"amount": {"$gte": 60}},
        "orderBy": [{"field": "total", "direction": "desc"}], "limit": 2}))
    assert body["rows"] == [["South", 250.5, 1], ["North", 100.0, 1]]
    assert body["truncated"] is True
    body = ok(client.post(f"/api/v1/dataset/{sales}/query", json={
        "select": ["order_id"], "filter": {"order_date": {"$gte": "2024-02-01"}},
        "orderBy": ["order_id"]}))
    assert body["rows"] == [[2], [3]]
    bad = client.post(f"/api/v1/dataset/{sales}/query",
                      json={"aggregate": {"x": {"median": "amount"}}})
    assert_envelope(bad, 400, "BAD_REQUEST")
    bad = client.post(f"/api/v1/dataset/{sales}/query", json={"groupBy": ["nope"]})
    assert_envelope(bad, 400, "BAD_REQUEST")


# --- fields -----------------------------------------------------------------------------------

def test_fields_are_inferred_and_editable(client: TestClient, sales: str) -> None:
    from dataloft.tables import catalog

    ctx = client.app.state.ctx  # type: ignore[attr-defined]

    def fields() -> list[dict[str, str]]:
        with ctx.db.read() as s:
            from dataloft.models import Dataset
            return catalog.render_fields(catalog.fields(s, s.get(Dataset, sales)))

    assert fields() == [
        {"name": "order_id", "label": "Order ID", "dataType": "integer"},
        {"name": "region", "label": "Region", "dataType": "string"},
        {"name": "amount", "label": "Amount", "dataType": "number"},
        {"name": "order_date", "label": "Order date", "dataType": "date"},
        {"name": "paid", "label": "Paid", "dataType": "boolean"}]
    ok(client.post(f"/api/v1/dataset/{sales}/update", json={"fields": [
        {"name": "amount", "label": "Amount (EUR)"}, {"name": "order_id", "dataType": "string"}]}))
    got = {f["name"]: f for f in fields()}
    assert got["amount"] == {"name": "amount", "label": "Amount (EUR)", "dataType": "number"}
    assert got["order_id"]["dataType"] == "string"
    for bad in ([{"label": "x"}], [{"name": "a", "dataType": "money"}], {"name": "a"},
                [{"name": "a"}, {"name": "a"}], [{"name": "a", "colour": "red"}]):
        r = client.post(f"/api/v1/dataset/{sales}/update", json={"fields": bad})
        assert_envelope(r, 400, "BAD_REQUEST")
    ok(client.post(f"/api/v1/dataset/{sales}/update", json={"fields": []}))
    assert fields()[0]["dataType"] == "integer"


# --- policy -------------------------------------------------------------------------------

def as_user(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY}", "X-RunAs-User-Id": user}


def test_end_users_see_only_rows_of_files_they_may_read(client: TestClient) -> None:
    ds = create_dataset(client, visibility="protected")
    for user in ("u1", "u2"):
        r = client.post("/api/v1/file/create", json={"name": "notes.csv"}, headers=as_user(user))
        fid = r.json()["id"]
        r = client.post(f"/api/v1/file/{fid}/upload", content=f"who\n{user}\n".encode(),
                        headers={**as_user(user), "Content-Type": "text/csv"})
        assert r.status_code == 200, r.text
        assert sync(client, ds, fid, timeout=180)["type"] == "sync.completed"
    everything = ok(query(client, ds, "SELECT who FROM notes UNION ALL "
                          "SELECT who FROM notes_2 ORDER BY 1"))
    assert everything["rows"] == [["u1"], ["u2"]]
    for user in ("u1", "u2"):
        r = client.post(f"/api/v1/dataset/{ds}/query", headers=as_user(user),
                        json={"sql": "SELECT who FROM notes"})
        assert ok(r)["rows"] == [[user]]
        r = client.post(f"/api/v1/dataset/{ds}/query", headers=as_user(user),
                        json={"sql": "SELECT who FROM notes_2"})
        assert_envelope(r, 400, "SQL_INVALID")
        names = [t["name"] for t in ok(client.get(f"/api/v1/dataset/{ds}/schema",
                                                  headers=as_user(user)))["tables"]]
        assert names == ["notes"]


def test_a_key_limited_to_datasets_reaches_only_those(client: TestClient, sales: str) -> None:
    other, _ = synced(client, b"secret\nsq1\n", "secret.csv", "text/csv")
    raw = ok(client.post("/api/v1/key/create", json={"datasets": [sales]}))["key"]
    limited = {"Authorization": f"Bearer {raw}"}
    r = client.post(f"/api/v1/dataset/{sales}/query", headers=limited,
                    json={"sql": "SELECT count(*) FROM sales"})
    assert ok(r)["rows"] == [[4]]
    r = client.post(f"/api/v1/dataset/{other}/query", headers=limited,
                    json={"sql": "SELECT * FROM secret"})
    assert_envelope(r, 404, "NOT_FOUND")
    assert_envelope(client.get(f"/api/v1/dataset/{other}/schema", headers=limited), 404)


# --- the association filter -----------------------------------------------------------------

def test_assistant_sees_associated_tables_through_their_filters(client: TestClient,
                                                                sales: str) -> None:
    stock, _ = synced(client, b"item,qty,region\ndesk,2,North\nlamp,5,South\n", "stock.csv",
                      "text/csv")
    assistant = add_assistant(client, [(sales, {"region": "North"}),
                                       (stock, {"qty": {"$gte": 3}})])
    url = f"/api/v1/assistant/{assistant}/query"
    body = ok(client.post(url, json={"sql": "SELECT order_id FROM sales ORDER BY 1"}))
    assert body["rows"] == [[1], [3]]
    assert ok(client.post(url, json={"sql": "SELECT item FROM stock"}))["rows"] == [["lamp"]]
    # Seed 003's shapes: none, equality, and $gte/$in together.
    set_filter(client, assistant, {"amount": {"$gte": 60}, "region": {"$in": ["North", "East"]}})
    body = ok(client.post(url, json={"sql": "SELECT order_id FROM sales ORDER BY 1"}))
    assert body["rows"] == [[1], [4]]
    set_filter(client, assistant, None)
    assert ok(client.post(url, json={"sql": "SELECT count(*) FROM sales"}))["rows"] == [[4]]
    # File meta is part of every row's meta, as on records.
    set_filter(client, assistant, {"fileName": "other.csv"})
    assert ok(client.post(url, json={"sql": "SELECT count(*) FROM sales"}))["rows"] == [[0]]
    assert_envelope(client.post("/api/v1/assistant/asst_nope/query", json={"sql": "SELECT 1"}),
                    404)


rows_strategy = st.lists(st.fixed_dictionaries({}, optional={
    "a": st.integers(-3, 3) | st.sampled_from([2.5, 1e6]),
    "b": st.sampled_from(["x", "y", "Z", "é", "2024-01-01"]),
    "c": st.booleans()}), min_size=1, max_size=12)
FIELD = st.sampled_from(["a", "b", "c", "id", "fileName", "missing"])
VALUE = st.sampled_from([None, True, False, 0, 1, 2.5, -3, "x", "Z", "é", "2024", "rows.jsonl"])
leaf = st.one_of(
    st.builds(lambda f, v: {f: v}, FIELD, VALUE),
    st.builds(lambda f, op, v: {f: {op: v}}, FIELD,
              st.sampled_from(["$gt", "$gte", "$lt", "$lte"]),
              st.sampled_from([0, 1, 2.5, "x", "Z", "2024"])),
    st.builds(lambda f, op, vs: {f: {op: vs}}, FIELD, st.sampled_from(["$in", "$nin"]),
              st.lists(VALUE, max_size=3)),
    st.builds(lambda f, b: {f: {"$exists": b}}, FIELD, st.booleans()))
filter_strategy = st.recursive(leaf, lambda sub: st.one_of(
    st.builds(lambda fs: {"$or": fs}, st.lists(sub, min_size=1, max_size=3)),
    st.builds(lambda fs: {"$and": fs}, st.lists(sub, min_size=1, max_size=3)),
    st.builds(lambda f: {"$not": f}, sub)), max_leaves=5)


@settings(max_examples=int(os.environ.get("ONE_FILTER_EXAMPLES", "8")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rows=rows_strategy, raws=st.lists(filter_strategy, min_size=1, max_size=5))
def test_one_filter_two_engines(client: TestClient, rows: list[dict[str, Any]],
                                raws: list[dict[str, Any]]) -> None:
    """The rows an assistant reaches through SQL and the records it reaches through search
    are the same set, and both equal the Python oracle over the stored rows."""
    lines = [json.dumps({"id": i, **r}) for i, r in enumerate(rows)]
    ds, fid = synced(client, "\n".join(lines).encode(), "rows.jsonl", "application/jsonl")
    assistant = add_assistant(client, [(ds, None)])
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    with ctx.db.read() as s:
        metas = [r.meta for r in s.scalars(select(Record).where(Record.dataset_id == ds))]
    assert len(metas) == len(rows)
    for raw in raws:
        set_filter(client, assistant, raw)
        expected = {m["id"] for m in metas if matches(parse_filter(raw), m)}
        by_sql = ok(client.post(f"/api/v1/assistant/{assistant}/query",
                                json={"sql": "SELECT id FROM rows", "limit": 100}))["rows"]
        # Every row renders an "id: N" line, so this query matches every reachable record.
        by_search = ok(client.post(f"/api/v1/assistant/{assistant}/search",
                                   json={"search": "id", "mode": "lexical", "take": 200}))
        assert {r[0] for r in by_sql} == expected, raw
        assert {h["meta"]["id"] for h in by_search["records"]} == expected, raw


# --- the sandbox --------------------------------------------------------------------------

SANDBOX = [
    ("SELECT * FROM read_csv('/etc/passwd')", "SQL_NOT_ALLOWED"),
    ("SELECT * FROM '/etc/passwd'", None),
    ("SELECT * FROM read_text('/etc/passwd')", "SQL_NOT_ALLOWED"),
    ("SELECT * FROM glob('/*')", "SQL_NOT_ALLOWED"),
    ("SELECT * FROM sniff_csv('/etc/passwd')", "SQL_NOT_ALLOWED"),
    ("SELECT 1 FROM sales, (SELECT * FROM read_parquet('/tmp/*.parquet'))", "SQL_NOT_ALLOWED"),
    ("COPY (SELECT * FROM sales) TO '/tmp/dataloft-leak.csv'", "SQL_NOT_ALLOWED"),
    ("ATTACH '/tmp/dataloft-evil.db' AS evil", "SQL_NOT_ALLOWED"),
    ("INSTALL httpfs", "SQL_NOT_ALLOWED"),
    ("LOAD httpfs", "SQL_NOT_ALLOWED"),
    ("SET enable_external_access = true", "SQL_NOT_ALLOWED"),
    ("RESET lock_configuration", "SQL_NOT_ALLOWED"),
    ("PRAGMA database_list", "SQL_NOT_ALLOWED"),
    ("SELECT getenv('HOME')", "SQL_NOT_ALLOWED"),
    ("SELECT * FROM duckdb_settings()", "SQL_NOT_ALLOWED"),
    ("SELECT * FROM duckdb_secrets()", "SQL_NOT_ALLOWED"),
    ("SELECT current_setting('enable_external_access')", "SQL_NOT_ALLOWED"),
    ("SELECT * FROM query('SELECT 1')", "SQL_NOT_ALLOWED"),
    ("CREATE TABLE x AS SELECT 1", "SQL_NOT_ALLOWED"),
    ("DROP TABLE sales", "SQL_NOT_ALLOWED"),
    ("INSERT INTO sales (order_id) VALUES (9)", "SQL_NOT_ALLOWED"),
    ("UPDATE sales SET amount = 0", "SQL_NOT_ALLOWED"),
    ("DELETE FROM sales", "SQL_NOT_ALLOWED"),
    ("SELECT 1; DROP TABLE sales", "SQL_NOT_ALLOWED"),
    ("EXPLAIN SELECT 1", "SQL_NOT_ALLOWED"),
    ("SELECT * FROM secret", "SQL_INVALID"),
    # The catalogue shows the snapshots' absolute paths (view definitions): refused.
    ("SELECT * FROM duckdb_views", "SQL_NOT_ALLOWED"),
    ("SELECT sql FROM sqlite_master", "SQL_NOT_ALLOWED"),
    ("SELECT * FROM information_schema.views", "SQL_NOT_ALLOWED"),
    ("SELECT * FROM pg_catalog.pg_views", "SQL_NOT_ALLOWED"),
    ("SELECT * FROM main.duckdb_tables", "SQL_NOT_ALLOWED"),
    ("SELECT * FROM system.main.duckdb_views", "SQL_NOT_ALLOWED"),
    ("WITH sales AS (SELECT sql FROM sqlite_master) SELECT * FROM sales", "SQL_NOT_ALLOWED"),
    ("SELCT 1", "SQL_INVALID"),
    ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
     "QUERY_TIME_LIMIT"),
    ("SELECT count(*) FROM (SELECT repeat('x', 100000) s FROM range(100000) ORDER BY s)",
     "QUERY_MEMORY_LIMIT"),
    # A cross join whose sorted result would need ~160 GB: memory or time, whichever first.
    ("SELECT * FROM range(100000) a, range(100000) b ORDER BY 1 DESC, 2",
     "QUERY_MEMORY_LIMIT|QUERY_TIME_LIMIT"),
    ("SELECT sum(a.range * b.range) FROM range(1000000) a, range(1000000) b",
     "QUERY_TIME_LIMIT"),
]


@pytest.mark.parametrize(("sql", "code"), SANDBOX)
def test_sandbox_refuses_and_the_server_keeps_serving(client: TestClient, sales: str, sql: str,
                                                      code: str | None) -> None:
    r = query(client, sales, sql)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    body = r.json()
    assert set(body) >= {"message", "code"}
    if code:
        assert body["code"] in code.split("|"), body
    assert client.get("/healthz").status_code == 200
    assert ok(query(client, sales, "SELECT count(*) FROM sales"))["rows"] == [[4]]
    assert not Path("/tmp/dataloft-leak.csv").exists()
    assert not Path("/tmp/dataloft-evil.db").exists()


def test_ctes_and_the_tables_by_schema_are_queryable(client: TestClient, sales: str) -> None:
    assert ok(query(client, sales, "WITH s AS (SELECT * FROM sales) "
                                   "SELECT count(*) FROM s"))["rows"] == [[4]]
    assert ok(query(client, sales, "SELECT count(*) FROM main.sales"))["rows"] == [[4]]


def test_another_tenants_table_is_not_reachable(client: TestClient, sales: str) -> None:
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    from dataloft.keys import service as keys
    from dataloft.models import Org

    with ctx.db.write() as s:
        org = Org(id=new_id("org"), name="other")
        s.add(org)
        s.flush()
        _, raw = keys.create_key(s, org.id, name="b", permissions=["admin"])
    other = {"Authorization": f"Bearer {raw}"}
    r = client.post(f"/api/v1/dataset/{sales}/query", headers=other,
                    json={"sql": "SELECT * FROM sales"})
    assert_envelope(r, 404, "NOT_FOUND")
    own = client.post("/api/v1/dataset/create", headers=other, json={"name": "b"}).json()["id"]
    r = client.post(f"/api/v1/dataset/{own}/query", headers=other,
                    json={"sql": "SELECT * FROM sales"})
    assert_envelope(r, 400, "SQL_INVALID")


def test_bad_bodies(client: TestClient, sales: str) -> None:
    for body in ({}, {"sql": ""}, {"sql": "SELECT 1", "limit": 0},
                 {"sql": "SELECT 1", "limit": 10**6}, {"sql": "SELECT 1", "format": "pdf"},
                 {"sql": "SELECT 1", "aggregate": {"n": {"count": "*"}}},
                 {"sql": "SELECT 1", "bogus": 1}):
        r = client.post(f"/api/v1/dataset/{sales}/query", json=body)
        assert 400 <= r.status_code < 500, (body, r.text)


# --- cluster mode: PostgreSQL metadata, S3 blobs ------------------------------------------

def test_cluster_mode_reads_snapshots_from_s3(tmp_path: Path, pg_url: str) -> None:
    url = empty_database(pg_url, "sql")
    with moto_s3() as s3, TestClient(
            create_app(make_settings(tmp_path, database_url=url, blob_url=s3.url)),
            headers={"Authorization": f"Bearer {KEY}"}) as c:
        ds, _ = synced(c, SALES, "sales.csv", "text/csv")
        body = ok(query(c, ds, "SELECT region, sum(amount) FROM sales GROUP BY 1 ORDER BY 1"))
        assert body["rows"] == [["East", 75.0], ["North", 150.0], ["South", 250.5]]
        assert list((tmp_path / "data" / "sql-cache").glob("*.parquet"))  # cached locally
        assistant = add_assistant(c, [(ds, {"region": {"$in": ["South", "East"]}})])
        r = c.post(f"/api/v1/assistant/{assistant}/query",
                   json={"sql": "SELECT order_id FROM sales ORDER BY 1"})
        assert ok(r)["rows"] == [[2], [4]]


def test_a_detached_file_is_no_table(client: TestClient) -> None:
    ds, fid = synced(client, b"k\na\n", "gone.csv", "text/csv")
    assert ok(query(client, ds, "SELECT k FROM gone"))["rows"] == [["a"]]
    ok(client.post(f"/api/v1/dataset/{ds}/file/{fid}/detach", json={}))
    assert ok(client.get(f"/api/v1/dataset/{ds}/schema"))["tables"] == []
    assert_envelope(query(client, ds, "SELECT k FROM gone"), 400, "SQL_INVALID")


def _snapshot_keys(client: TestClient, dataset_id: str) -> set[str]:
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    with ctx.db.read() as s:
        return set(s.scalars(select(SqlTable.blob_key).where(SqlTable.dataset_id == dataset_id)))


def _gone(client: TestClient, keys: set[str], timeout: float = 30.0) -> bool:
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(ctx.blobs.exists(k) for k in keys):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("how", ["detach", "delete file", "delete dataset"])
def test_no_snapshot_outlives_its_table(client: TestClient, how: str) -> None:
    ds, fid = synced(client, b"k,v\na,1\nb,2\n", "snap.csv", "text/csv")
    keys = _snapshot_keys(client, ds)
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    assert keys and all(ctx.blobs.exists(k) for k in keys)
    if how == "detach":
        ok(client.post(f"/api/v1/dataset/{ds}/file/{fid}/detach", json={}))
    elif how == "delete file":
        ok(client.post(f"/api/v1/file/{fid}/delete"))
    else:
        ok(client.post(f"/api/v1/dataset/{ds}/delete"))
    assert _snapshot_keys(client, ds) == set()
    assert _gone(client, keys), "snapshot blobs were left behind"
