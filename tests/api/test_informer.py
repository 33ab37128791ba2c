"""Informer's dataset knowledge (seed 003) and assistant search through the HTTP API.

Seed 003's requests and responses as written (201/204, HAL shapes, paging, the three filter
shapes: none, equality, `$gte`/`$in`), who may do what (`assistant:write`, end-users, other
orgs), and the association filter at work: assistant search reaches exactly the records
that match each dataset's association filter AND the caller's filter AND the policy,
checked against the Python oracle (`kit.filters.matches`) on random rows and filters.

One app (real SQLite, the offline WordLlama embedder, in-process workers) serves the
module; the oracle and the multi-dataset search also run on PostgreSQL + pgvector. Every
test works in assistants and datasets of its own.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataloft.app import create_app
from dataloft.assistants import service as assistants
from dataloft.keys import service as keys
from dataloft.kit.filters import matches, parse_filter
from dataloft.kit.ids import new_id
from dataloft.models import Org
from tests.conftest import KEY, make_settings
from tests.support.api import assert_envelope, create_file, sync
from tests.support.embeddings_server import EmbeddingsServer
from tests.support.pg import empty_database

AUTH = {"Authorization": f"Bearer {KEY}"}
REL = "inf:dataset-knowledge"

SALES_CSV = b"""order_id,amount,region,status,year,created_at
A-1001,1200.50,North America,closed,2024,2024-02-01
A-1002,80,North America,open,2023,2023-11-05
A-1003,4000,Europe,won,2024,2024-03-10
A-1004,1500,North America,won,2024,2023-12-31
A-1005,999.99,North America,lost,2024,2024-05-05
"""
# Seed 003, "Dataset Filtering": the three shapes, and the rows each lets through.
FULL = {"datasetId": "sales-data"}
FILTERED = {"datasetId": "sales-data", "filter": {"region": "North America", "year": 2024}}
ADVANCED = {"datasetId": "sales-data", "filter": {
    "amount": {"$gte": 1000},
    "status": {"$in": ["closed", "won"]},
    "created_at": {"$gte": "2024-01-01"},
}}
SHAPES = [(FULL, {"A-1001", "A-1002", "A-1003", "A-1004", "A-1005"}),
          (FILTERED, {"A-1001", "A-1004", "A-1005"}),
          (ADVANCED, {"A-1001", "A-1003"})]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings_ = make_settings(Path(tmp_path_factory.mktemp("informer")))
    with TestClient(create_app(settings_), headers=AUTH) as c:
        yield c


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def any_backend(request: pytest.FixtureRequest, client: TestClient,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The module's SQLite app, or one on a fresh database of the session's PostgreSQL."""
    if request.param == "sqlite":
        yield client
        return
    url = empty_database(request.getfixturevalue("pg_url"), "informer")
    settings_ = make_settings(Path(tmp_path_factory.mktemp("informer-pg")), database_url=url)
    with TestClient(create_app(settings_), headers=AUTH) as c:
        yield c


@pytest.fixture(scope="module")
def sales(client: TestClient) -> str:
    """The seed's `sales-data` dataset: a synced CSV of five orders."""
    ds = ok(client.post("/api/v1/dataset/create", json={
        "name": "Sales Data", "alias": "sales-data",
        "description": "Historical sales records"}))["id"]
    fid = create_file(client, SALES_CSV, name="sales.csv", content_type="text/csv")
    assert sync(client, ds, fid)["type"] == "sync.completed"
    return str(ds)


def ok(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, (r.request.method, str(r.request.url), r.status_code, r.text)
    return r.json() if r.content else None


def new_assistant(client: TestClient, headers: dict[str, str] | None = None) -> str:
    return str(ok(client.post("/api/v1/assistant/create", json={"name": "analyst"},
                              headers=headers or {}))["id"])


def new_dataset(client: TestClient, headers: dict[str, str] | None = None, **fields: Any) -> str:
    return str(ok(client.post("/api/v1/dataset/create", json={"name": "ds", **fields},
                              headers=headers or {}))["id"])


def add_record(client: TestClient, ds: str, text: str, meta: dict[str, Any],
               headers: dict[str, str] | None = None) -> str:
    return str(ok(client.post(f"/api/v1/dataset/{ds}/record/create",
                              json={"text": text, "meta": meta}, headers=headers or {}))["id"])


def assistant_search(client: TestClient, agt: str, query: str, headers: dict[str, str] | None
                     = None, **body: Any) -> list[dict[str, Any]]:
    r = client.post(f"/api/v1/assistant/{agt}/search",
                    json={"search": query, "take": 200, **body}, headers=headers or {})
    payload = ok(r)
    assert payload["id"] == agt
    hits = list(payload["records"])
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True), "results are not best first"
    assert len({h["id"] for h in hits}) == len(hits), "duplicate results"
    return hits


def as_user(user: str, context: dict[str, str] | None = None) -> dict[str, str]:
    h = {"X-RunAs-User-Id": user}
    if context:
        h["X-User-Context"] = json.dumps(context)
    return h


def check_dataset(doc: dict[str, Any], ds: str) -> None:
    assert {"id", "name", "description", "fields", "filters", "query", "_links"} <= set(doc)
    assert doc["id"] == ds
    assert doc["_links"]["self"]["href"] == f"/api/datasets/{ds}"
    assert isinstance(doc["fields"], list) and isinstance(doc["filters"], list)
    assert doc["query"]["search"]["href"] == f"/api/v1/dataset/{ds}/search"


def check_item(item: dict[str, Any], agt: str, ds: str, flt: Any) -> None:
    assert item["assistantId"] == agt and item["datasetId"] == ds
    assert item["filter"] == flt
    check_dataset(item["dataset"], ds)


# --------------------------------------------------------------------------- seed 003


def test_seed_requests_and_responses_as_written(client: TestClient, sales: str) -> None:
    agt = new_assistant(client)
    base = f"/api/assistants/{agt}/datasets"
    empty = ok(client.get(base))
    assert empty == {"_links": {"self": {"href": base}}, "_embedded": {REL: []},
                     "start": 0, "count": 0, "total": 0}

    # POST {"datasetId": "sales-data"}: the alias names the dataset, as in the seed.
    r = client.post(base, json=FULL)
    made = ok(r, 201)
    assert r.headers["location"] == f"{base}/{sales}"
    check_item(made, agt, sales, None)
    assert made["dataset"]["name"] == "Sales Data"
    assert made["dataset"]["description"] == "Historical sales records"
    assert made["dataset"]["alias"] == "sales-data"

    listed = ok(client.get(base))
    assert listed["_links"]["self"]["href"] == base
    assert (listed["start"], listed["count"], listed["total"]) == (0, 1, 1)
    [item] = listed["_embedded"][REL]
    check_item(item, agt, sales, None)
    assert item == made

    # PUT changes the filter: the seed's filtered shape, then the advanced one.
    for body, _ in SHAPES[1:]:
        updated = ok(client.put(f"{base}/{sales}", json={"filter": body["filter"]}))
        check_item(updated, agt, sales, body["filter"])
        assert ok(client.get(f"{base}/{sales}")) == updated
        assert ok(client.get(f"{base}/sales-data")) == updated
    assert ok(client.get(f"/api/datasets/{sales}")) == updated["dataset"]
    assert ok(client.get("/api/datasets/sales-data")) == updated["dataset"]

    r = client.delete(f"{base}/{sales}")
    assert r.status_code == 204 and r.content == b""
    assert_envelope(client.get(f"{base}/{sales}"), 404, "NOT_FOUND")
    assert_envelope(client.delete(f"{base}/{sales}"), 404, "NOT_FOUND")
    assert ok(client.get(base))["total"] == 0

    # The seed's POST example, with its filter, on a dataset of that natural id.
    customers = new_dataset(client, name="Customers", alias="customer-data")
    seed_post = {"datasetId": "customer-data",
                 "filter": {"status": "active", "region": {"$in": ["US", "CA"]}}}
    check_item(ok(client.post(base, json=seed_post), 201), agt, customers, seed_post["filter"])
    # Every shape of the seed is accepted at creation too.
    for body, _ in SHAPES:
        ds = new_dataset(client)
        check_item(ok(client.post(base, json={**body, "datasetId": ds}), 201), agt, ds,
                   body.get("filter"))
    assert ok(client.get(base))["total"] == 4


def test_the_three_filter_shapes_restrict_what_the_assistant_finds(
        client: TestClient, sales: str) -> None:
    agt = new_assistant(client)
    base = f"/api/assistants/{agt}/datasets"
    ok(client.post(base, json=FULL), 201)
    for body, expected in SHAPES:
        ok(client.put(f"{base}/{sales}", json={"filter": body.get("filter")}))
        for mode in ("lexical", "hybrid"):
            hits = assistant_search(client, agt, "amount", mode=mode)
            found = {h["meta"]["order_id"] for h in hits}
            if mode == "lexical":  # every row says "amount": all that pass are found
                assert found == expected, (body, mode)
            else:
                assert found <= expected and found, (body, mode)
            assert {h["datasetId"] for h in hits} == {sales}
        # The caller's own filter narrows further, never widens.
        hits = assistant_search(client, agt, "amount", mode="lexical",
                                filter={"status": {"$in": ["won", "open"]}})
        want = {o for o in expected if o in {"A-1002", "A-1003", "A-1004"}}
        assert {h["meta"]["order_id"] for h in hits} == want
    # The same dataset searched directly is not restricted by the association.
    direct = ok(client.post(f"/api/v1/dataset/{sales}/search",
                            json={"search": "amount", "mode": "lexical", "take": 50}))
    assert len(direct["records"]) == 5


def test_fields_describe_the_tabular_sources(client: TestClient, sales: str) -> None:
    doc = ok(client.get(f"/api/datasets/{sales}"))
    if not doc["fields"]:
        pytest.skip("sql.catalog.fields is still the stub on this branch (governed-SQL work)")
    by_name = {f["name"]: f for f in doc["fields"]}
    assert by_name["order_id"]["dataType"] == "string"
    assert by_name["amount"]["dataType"] == "number"
    assert by_name["year"]["dataType"] == "integer"
    assert all(isinstance(f["label"], str) and f["label"] for f in doc["fields"])
    filters = {f["field"]: f for f in doc["filters"]}
    assert set(filters) == set(by_name)
    assert "$gte" in filters["amount"]["operators"] and "$in" in filters["status"]["operators"]
    assert doc["query"]["sql"]["href"] == f"/api/v1/dataset/{sales}/query"


def test_paging(client: TestClient) -> None:
    agt = new_assistant(client)
    base = f"/api/assistants/{agt}/datasets"
    made = [new_dataset(client, name=f"page-{i}") for i in range(5)]
    for ds in made:
        ok(client.post(base, json={"datasetId": ds}), 201)

    def page(**params: Any) -> dict[str, Any]:
        return dict(ok(client.get(base, params=params)))

    first = page(start=0, limit=2)
    assert (first["start"], first["count"], first["total"]) == (0, 2, 5)
    assert [i["datasetId"] for i in first["_embedded"][REL]] == made[:2]
    assert first["_links"]["next"]["href"] == f"{base}?start=2&limit=2"
    assert "prev" not in first["_links"]
    second = page(start=2, count=2)  # the page's own word for its size works too
    assert [i["datasetId"] for i in second["_embedded"][REL]] == made[2:4]
    assert second["_links"]["prev"]["href"] == f"{base}?start=0&limit=2"
    last = page(start=4, limit=2)
    assert (last["count"], last["total"]) == (1, 5) and "next" not in last["_links"]
    assert [i["datasetId"] for i in last["_embedded"][REL]] == made[4:]
    beyond = page(start=10)
    assert (beyond["count"], beyond["total"], beyond["_embedded"][REL]) == (0, 5, [])
    assert [i["datasetId"] for i in page()["_embedded"][REL]] == made
    for params in ({"start": -1}, {"limit": 0}, {"limit": 1001}, {"start": "x"},
                   {"limit": 2, "count": 3}):
        assert_envelope(client.get(base, params=params), 400, "BAD_REQUEST")


def test_deleting_a_dataset_ends_its_associations(client: TestClient) -> None:
    agt = new_assistant(client)
    ds = new_dataset(client)
    ok(client.post(f"/api/assistants/{agt}/datasets", json={"datasetId": ds}), 201)
    ok(client.post(f"/api/v1/dataset/{ds}/delete", json={}))
    assert ok(client.get(f"/api/assistants/{agt}/datasets"))["total"] == 0


# --------------------------------------------------------------------------- who may do what


def test_writes_need_assistant_write(client: TestClient) -> None:
    agt = new_assistant(client)
    ds = new_dataset(client)
    base = f"/api/assistants/{agt}/datasets"
    reader = ok(client.post("/api/v1/key/create", json={
        "name": "no assistant:write", "permissions": ["datasets:write", "files:write"]}))
    writer = ok(client.post("/api/v1/key/create", json={
        "name": "assistant writer", "permissions": ["assistant:write"]}))
    r_auth = {"Authorization": f"Bearer {reader['key']}"}
    w_auth = {"Authorization": f"Bearer {writer['key']}"}

    assert_envelope(client.post(base, json={"datasetId": ds}, headers=r_auth), 403,
                    "NOT_AUTHORIZED")
    ok(client.post(base, json={"datasetId": ds, "filter": {"a": 1}}, headers=w_auth), 201)
    for method, body in (("PUT", {"filter": {"a": 2}}), ("PUT", {}), ("DELETE", None)):
        r = client.request(method, f"{base}/{ds}", json=body, headers=r_auth)
        assert_envelope(r, 403, "NOT_AUTHORIZED")
    # Refused writes changed nothing; reads need no permission.
    assert ok(client.get(f"{base}/{ds}", headers=r_auth))["filter"] == {"a": 1}
    assert ok(client.get(base, headers=r_auth))["total"] == 1
    assert ok(client.put(f"{base}/{ds}", json={"filter": None}, headers=w_auth))["filter"] is None
    assert client.delete(f"{base}/{ds}", headers=w_auth).status_code == 204
    # An end-user token never holds assistant:write.
    token = ok(client.post("/api/v1/token/create", json={
        "userIdentifier": "tok-user", "permissions": ["files:write", "datasets:write"]}))["token"]
    t_auth = {"Authorization": f"Bearer {token}"}
    assert_envelope(client.post(base, json={"datasetId": ds}, headers=t_auth), 403,
                    "NOT_AUTHORIZED")
    assert ok(client.get(base, headers=t_auth))["total"] == 0


def test_end_users_see_only_their_own_datasets_through_an_assistant(client: TestClient) -> None:
    agt = new_assistant(client)
    base = f"/api/assistants/{agt}/datasets"
    u1, u2 = as_user("alice"), as_user("bob")
    private = new_dataset(client, u1, name="alice-only")  # owner scope user:alice
    shared = new_dataset(client, name="shared", visibility="protected")
    add_record(client, private, "quarterly plan alpha", {"k": 1}, u1)
    add_record(client, shared, "quarterly plan beta", {"k": 1})
    for ds in (private, shared):  # the backend key sees both and associates both
        ok(client.post(base, json={"datasetId": ds, "filter": {"k": 1}}), 201)

    def visible(headers: dict[str, str]) -> list[str]:
        page = ok(client.get(base, headers=headers))
        assert page["total"] == page["count"]
        return [i["datasetId"] for i in page["_embedded"][REL]]

    assert visible({}) == [private, shared]
    assert visible(u1) == [private, shared]
    assert visible(u2) == [shared]
    found = {h["datasetId"] for h in assistant_search(client, agt, "quarterly plan", u2,
                                                      mode="lexical")}
    assert found == {shared}
    found = {h["datasetId"] for h in assistant_search(client, agt, "quarterly plan", u1,
                                                      mode="lexical")}
    assert found == {private, shared}
    # Bob learns nothing of Alice's dataset: its id answers like one that never existed.
    never = f"ds_{'0' * 26}"
    for ref in (private, never):
        for r in (client.get(f"{base}/{ref}", headers=u2),
                  client.get(f"/api/datasets/{ref}", headers=u2),
                  client.post(base, json={"datasetId": ref}, headers=u2),
                  client.put(f"{base}/{ref}", json={"filter": None}, headers=u2),
                  client.delete(f"{base}/{ref}", headers=u2)):
            assert_envelope(r, 404, "NOT_FOUND")
            assert "alice" not in r.text
    assert ok(client.get(f"{base}/{private}"))["filter"] == {"k": 1}  # untouched


def test_a_key_limited_to_datasets_sees_only_those(client: TestClient) -> None:
    agt = new_assistant(client)
    base = f"/api/assistants/{agt}/datasets"
    a, b = new_dataset(client), new_dataset(client)
    for ds in (a, b):
        add_record(client, ds, "limited key words", {})
        ok(client.post(base, json={"datasetId": ds}), 201)
    limited = ok(client.post("/api/v1/key/create", json={"datasets": [a]}))["key"]
    h = {"Authorization": f"Bearer {limited}"}
    assert [i["datasetId"] for i in ok(client.get(base, headers=h))["_embedded"][REL]] == [a]
    assert {x["datasetId"] for x in assistant_search(client, agt, "limited key words", h)} \
        == {a}
    assert_envelope(client.get(f"{base}/{b}", headers=h), 404, "NOT_FOUND")


def test_other_orgs_ids_are_404(client: TestClient, sales: str) -> None:
    agt = new_assistant(client)
    base = f"/api/assistants/{agt}/datasets"
    ok(client.post(base, json={"datasetId": sales, "filter": {"region": "Europe"}}), 201)
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    with ctx.db.write() as s:
        org = Org(id=new_id("org"), name="other org")
        s.add(org)
        s.flush()
        _, raw = keys.create_key(s, org.id, name="other admin")
        assistants.ensure_defaults(s)
    other = {"Authorization": f"Bearer {raw}"}
    own_agt = new_assistant(client, other)
    own_ds = new_dataset(client, other, alias="sales-data")  # same natural id, other org
    never_agt, never_ds = f"agt_{'0' * 26}", f"ds_{'0' * 26}"
    for a_agt, a_ds, twin in ((agt, sales, (never_agt, never_ds)),
                              (own_agt, sales, (own_agt, never_ds)),
                              (agt, own_ds, (never_agt, own_ds))):
        for method, url, body in (
                ("GET", "/api/assistants/{}/datasets", None),
                ("GET", "/api/assistants/{}/datasets/{}", None),
                ("PUT", "/api/assistants/{}/datasets/{}", {"filter": None}),
                ("DELETE", "/api/assistants/{}/datasets/{}", None),
                ("POST", "/api/assistants/{}/datasets", {"datasetId": "{}"}),
                ("POST", "/api/v1/assistant/{}/search", {"search": "amount"})):
            if a_agt == own_agt and url.count("{}") == 1 and body is None or (
                    a_agt == own_agt and url.endswith("search")):
                continue  # B's own assistant, no A id in the request: checked below
            answers = []
            for x_agt, x_ds in ((a_agt, a_ds), twin):
                payload = json.loads(json.dumps(body).replace("{}", x_ds)) if body else None
                r = client.request(method, url.format(x_agt, x_ds), json=payload,
                                   headers=other)
                assert_envelope(r, 404, "NOT_FOUND")
                answers.append(r.json()["message"].replace(x_agt, "A").replace(x_ds, "D"))
            assert answers[0] == answers[1], (method, url, answers)
    assert_envelope(client.get(f"/api/datasets/{sales}", headers=other), 404, "NOT_FOUND")
    # The natural id resolves within the caller's org only.
    assert ok(client.get("/api/datasets/sales-data", headers=other))["id"] == own_ds
    assert ok(client.get(f"/api/assistants/{own_agt}/datasets", headers=other))["total"] == 0
    assert ok(client.get(f"{base}/{sales}"))["filter"] == {"region": "Europe"}  # untouched


# --------------------------------------------------------------------------- bad input


def test_bad_input_is_a_clear_4xx(client: TestClient, sales: str) -> None:
    agt = new_assistant(client)
    base = f"/api/assistants/{agt}/datasets"
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "datasetId"),
        ({"datasetId": ""}, "datasetId"),
        ({"datasetId": sales, "filter": ["region"]}, "expected an object"),
        ({"datasetId": sales, "filter": {"amount": {"$between": [1, 2]}}}, "$between"),
        ({"datasetId": sales, "filter": {"amount": {"$gte": True}}}, "number or a string"),
        ({"datasetId": sales, "filter": {"$where": "1"}}, "$where"),
        ({"datasetId": sales, "filter": {"status": {"$in": "won"}}}, "expected a list"),
    ]
    for body, words in cases:
        r = client.post(base, json=body)
        assert_envelope(r, 400, "BAD_REQUEST")
        assert words in r.json()["message"], (body, r.text)
    assert_envelope(client.post(base, content=b"{not json",
                                headers={"Content-Type": "application/json"}), 400)
    assert ok(client.get(base))["total"] == 0  # nothing half-written
    ok(client.post(base, json={"datasetId": sales}), 201)
    assert_envelope(client.post(base, json={"datasetId": sales}), 409, "CONFLICT")
    assert_envelope(client.post(base, json={"datasetId": "sales-data"}), 409, "CONFLICT")
    r = client.put(f"{base}/{sales}", json={})
    assert_envelope(r, 400, "BAD_REQUEST")
    assert "filter is required" in r.json()["message"]
    assert_envelope(client.put(f"{base}/{sales}", json={"filter": {"a": {"$nope": 1}}}), 400)
    assert ok(client.get(f"{base}/{sales}"))["filter"] is None  # the refused PUT changed nothing
    other = new_dataset(client)
    for r in (client.get(f"{base}/{other}"), client.put(f"{base}/{other}", json={"filter": None}),
              client.delete(f"{base}/{other}"),
              client.post(base, json={"datasetId": f"ds_{'0' * 26}"}),
              client.get(f"/api/assistants/agt_{'0' * 26}/datasets"),
              client.get(f"/api/datasets/{'x' * 30}")):
        assert_envelope(r, 404, "NOT_FOUND")
    for body in ({"search": "x", "filter": {"$or": []}}, {"search": "x", "take": 0},
                 {"search": "x", "mode": "fuzzy"}, {"take": 3}):
        assert_envelope(client.post(f"/api/v1/assistant/{agt}/search", json=body), 400)


def test_assistant_search_spans_datasets_each_under_its_own_filter(any_backend: TestClient
                                                                   ) -> None:
    client = any_backend
    agt = new_assistant(client)
    base = f"/api/assistants/{agt}/datasets"
    east, west, unlinked = new_dataset(client), new_dataset(client), new_dataset(client)
    ids: dict[tuple[str, str], str] = {}
    for ds in (east, west, unlinked):
        for team in ("red", "blue"):
            ids[(ds, team)] = add_record(client, ds, f"harbour report {team}", {"team": team})
    ok(client.post(base, json={"datasetId": east, "filter": {"team": "red"}}), 201)
    ok(client.post(base, json={"datasetId": west, "filter": {"team": {"$ne": "red"}}}), 201)
    want = {ids[(east, "red")], ids[(west, "blue")]}
    for mode in ("lexical", "semantic", "hybrid"):
        hits = assistant_search(client, agt, "harbour report", mode=mode)
        assert {h["id"] for h in hits} == want, mode
        assert {(h["datasetId"], h["meta"]["team"]) for h in hits} == {(east, "red"),
                                                                     (west, "blue")}
    assert assistant_search(client, agt, "harbour", filter={"team": "blue"}, mode="lexical") \
        and {h["id"] for h in assistant_search(client, agt, "harbour", filter={"team": "blue"},
                                               mode="lexical")} == {ids[(west, "blue")]}
    assert [h["id"] for h in assistant_search(client, agt, "harbour", take=1)][0] in want
    # An assistant that knows no dataset finds nothing, and says so with an empty list.
    assert assistant_search(client, new_assistant(client), "harbour report") == []


def test_datasets_of_another_embedder_in_one_assistant(tmp_path: Path) -> None:
    """After an embedder change, a dataset keeps its old vectors until it is re-indexed
    (here: never, no workers). Lexical and hybrid search still reach it; semantic search
    refuses with 409 naming it rather than silently leaving it out."""
    data = make_settings(tmp_path)
    with TestClient(create_app(data), headers=AUTH) as c:
        old = new_dataset(c, name="old vectors")
        add_record(c, old, "lighthouse keeper logbook", {"side": "old"})
    with EmbeddingsServer(dimension=16) as emb, TestClient(create_app(make_settings(
            tmp_path, workers=0, embedder="openai", embedding_url=emb.url,
            embedding_model="m2")), headers=AUTH) as c:
        new = new_dataset(c, name="new vectors")
        add_record(c, new, "lighthouse keeper logbook", {"side": "new"})
        models = {ok(c.get(f"/api/v1/dataset/{ds}/fetch"))["embeddingModel"]
                  for ds in (old, new)}
        assert models == {"wordllama-l2-supercat-256", "openai:m2"}
        agt = new_assistant(c)
        for ds in (old, new):
            ok(c.post(f"/api/assistants/{agt}/datasets", json={"datasetId": ds}), 201)
        for mode in ("lexical", "hybrid"):
            hits = assistant_search(c, agt, "lighthouse keeper", mode=mode)
            assert {h["meta"]["side"] for h in hits} == {"old", "new"}, mode
        r = c.post(f"/api/v1/assistant/{agt}/search",
                   json={"search": "lighthouse keeper", "mode": "semantic"})
        assert_envelope(r, 409, "CONFLICT")
        assert old in r.json()["message"] and new not in r.json()["message"]
        ok(c.delete(f"/api/assistants/{agt}/datasets/{old}"), 204)
        hits = assistant_search(c, agt, "lighthouse keeper", mode="semantic")
        assert [h["meta"]["side"] for h in hits] == ["new"]


# --------------------------------------------------------------------------- the oracle

FIELDS = ("region", "amount", "status", "day")
VALUES = {
    "region": st.sampled_from(["NA", "EU", "APAC", "na"]),
    "amount": st.one_of(st.integers(-3, 3), st.sampled_from([1.5, -0.5, 2.0]),
                        st.sampled_from(["2", "x"])),
    "status": st.one_of(st.sampled_from(["won", "lost", "open"]), st.booleans(), st.none()),
    "day": st.sampled_from(["2024-01-01", "2024-02-29", "2023-12-31", "2024-10-01"]),
}
rows = st.lists(st.fixed_dictionaries({}, optional={f: VALUES[f] for f in FIELDS}),
                max_size=7)


@st.composite
def leaf(draw: st.DrawFn) -> dict[str, Any]:
    field = draw(st.sampled_from(FIELDS))
    value = VALUES[field]
    op = draw(st.sampled_from(["eq", "$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt",
                               "$lte", "$exists"]))
    if op == "eq":
        return {field: draw(value)}
    if op in ("$in", "$nin"):
        return {field: {op: draw(st.lists(value, max_size=3))}}
    if op == "$exists":
        return {field: {op: draw(st.booleans())}}
    if op in ("$eq", "$ne"):
        return {field: {op: draw(value)}}
    bound = draw(st.one_of(st.integers(-3, 3), st.sampled_from(["2024-01-01", "2024-06", "N"])))
    return {field: {op: bound}}


association_filters = st.one_of(
    st.none(), st.just({}), leaf(),
    st.recursive(leaf(), lambda kids: st.one_of(
        st.builds(lambda xs: {"$and": xs}, st.lists(kids, min_size=1, max_size=3)),
        st.builds(lambda xs: {"$or": xs}, st.lists(kids, min_size=1, max_size=3)),
        st.builds(lambda x: {"$not": x}, kids),
        st.builds(lambda a, b: {**a, **b}, kids, kids)), max_leaves=4))


# Each example is one assistant, 1-3 datasets and up to 21 records (~0.4 s); more with
# INFORMER_ORACLE_EXAMPLES=200.
@settings(max_examples=int(os.environ.get("INFORMER_ORACLE_EXAMPLES", "15")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(data=st.lists(st.tuples(rows, association_filters), min_size=1, max_size=3),
       caller=st.one_of(st.none(), leaf()))
def test_reachable_records_equal_the_oracle(any_backend: TestClient,
                                            data: list[tuple[list[dict[str, Any]], Any]],
                                            caller: Any) -> None:
    client = any_backend
    agt = new_assistant(client)
    expected: set[str] = set()
    for meta_rows, flt in data:
        ds = new_dataset(client)
        ok(client.post(f"/api/assistants/{agt}/datasets",
                       json={"datasetId": ds, "filter": flt}), 201)
        for n, meta in enumerate(meta_rows):
            rid = add_record(client, ds, f"oracle row {n}", meta)
            if matches(parse_filter(flt), meta) and matches(parse_filter(caller), meta):
                expected.add(rid)
    body: dict[str, Any] = {"mode": "lexical"}
    if caller is not None:
        body["filter"] = caller
    hits = assistant_search(client, agt, "oracle row", **body)
    assert {h["id"] for h in hits} == expected, (data, caller)
