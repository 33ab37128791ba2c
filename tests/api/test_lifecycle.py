"""The file -> dataset -> attach -> sync -> records lifecycle over the in-process app."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from tests.support.api import assert_envelope, create_dataset, create_file, sync, wait_for_sync


def test_dataset_crud_keeps_sdk_settings(app_client: TestClient) -> None:
    ds = create_dataset(app_client, description="d", meta={"team": "a"}, recordMaxTokens=200,
                        searchMaxRecords=7, visibility="protected", alias="kb")
    got = app_client.get(f"/api/v1/dataset/{ds}/fetch").json()
    assert got["recordMaxTokens"] == 200 and got["searchMaxRecords"] == 7
    assert got["visibility"] == "protected" and got["meta"] == {"team": "a"}
    assert isinstance(got["createdAt"], int) and got["createdAt"] > 1_600_000_000_000
    assert app_client.post(f"/api/v1/dataset/{ds}/update",
                           json={"name": "renamed", "searchMaxRecords": None}).status_code == 200
    got = app_client.get(f"/api/v1/dataset/{ds}/fetch").json()
    assert got["name"] == "renamed" and "searchMaxRecords" not in got
    assert_envelope(app_client.post("/api/v1/dataset/create", json={"alias": "kb"}), 409,
                    "CONFLICT")
    assert app_client.post(f"/api/v1/dataset/{ds}/delete", json={}).json() == {"id": ds}
    assert_envelope(app_client.get(f"/api/v1/dataset/{ds}/fetch"), 404, "NOT_FOUND")


def test_sync_makes_records_searchable_and_replaces_them_on_resync(app_client: TestClient) -> None:
    text = b"Alpha paragraph about owls.\n\nBeta paragraph about the cobalt lighthouse."
    fid = create_file(app_client, text, name="birds.txt")
    ds = create_dataset(app_client)
    done = sync(app_client, ds, fid)
    assert done["type"] == "sync.completed" and done["data"]["recordCount"] >= 1
    hits = app_client.post(f"/api/v1/dataset/{ds}/search", json={"search": "lighthouse"}).json()
    assert hits["id"] == ds
    assert "cobalt lighthouse" in hits["records"][0]["text"]
    assert hits["records"][0]["source"] == f"file:///{fid}"
    assert hits["records"][0]["meta"]["fileName"] == "birds.txt"
    assert app_client.post(f"/api/v1/dataset/{ds}/search",
                           json={"search": "giraffes", "mode": "lexical"}).json()["records"] == []

    # New content, re-sync: old records are gone, new ones searchable, never both.
    app_client.post(f"/api/v1/file/{fid}/upload", content=b"Gamma text about giraffes.",
                    headers={"Content-Type": "text/plain"})
    app_client.post(f"/api/v1/dataset/{ds}/file/{fid}/sync", json={})
    wait_for_sync(app_client, ds, fid, after=done["createdAt"] + 1)
    records = app_client.get(f"/api/v1/dataset/{ds}/record/list").json()["items"]
    assert [r["text"] for r in records] == ["Gamma text about giraffes."]
    assert app_client.post(f"/api/v1/dataset/{ds}/search",
                           json={"search": "lighthouse", "mode": "lexical"}).json()["records"] == []


def test_csv_and_jsonl_give_one_record_per_row(app_client: TestClient) -> None:
    ds = create_dataset(app_client)
    csv_id = create_file(app_client, b"name,amount\nacme,10\nglobex,20\n", name="s.csv",
                         content_type="text/csv")
    assert sync(app_client, ds, csv_id)["data"]["recordCount"] == 2
    jl = create_file(app_client, b'{"a": 1}\n{"a": 2}\n\n{"a": 3}\n', name="r.jsonl",
                     content_type="application/octet-stream")
    assert sync(app_client, ds, jl)["data"]["recordCount"] == 3
    rows = app_client.get(f"/api/v1/dataset/{ds}/record/list", params={"order": "asc"}).json()
    texts = [r["text"] for r in rows["items"]]
    assert "name: acme\namount: 10" in texts


def test_sync_failures_are_typed_events(app_client: TestClient) -> None:
    ds = create_dataset(app_client)
    empty = app_client.post("/api/v1/file/create", json={"name": "nothing.txt"}).json()["id"]
    failed = sync(app_client, ds, empty)
    assert failed["type"] == "sync.failed" and failed["data"]["reason"] == "empty_content"
    junk = create_file(app_client, b"\x00\x01\x02binary" * 100, name="junk.bin",
                       content_type="application/octet-stream")
    failed = sync(app_client, ds, junk)
    assert failed["type"] == "sync.failed"
    assert failed["data"]["reason"] in {"unsupported_format", "corrupted_file"}
    assert failed["data"]["message"]
    # The queue goes on after failures.
    ok = create_file(app_client, b"still works", name="ok.txt")
    assert sync(app_client, ds, ok)["type"] == "sync.completed"


def test_attach_detach_and_sync_rules(app_client: TestClient) -> None:
    ds = create_dataset(app_client)
    fid = create_file(app_client, b"detach me please")
    assert_envelope(app_client.post(f"/api/v1/dataset/{ds}/file/{fid}/sync", json={}), 404,
                    "NOT_FOUND")
    sync(app_client, ds, fid)
    # Re-attaching replaces the type.
    app_client.post(f"/api/v1/dataset/{ds}/file/{fid}/attach", json={"type": "reference"})
    assert len(app_client.get(f"/api/v1/dataset/{ds}/file/list").json()["items"]) == 1
    # Detach without deleteRecords keeps records; with it, removes them.
    app_client.post(f"/api/v1/dataset/{ds}/file/{fid}/detach", json={})
    assert len(app_client.get(f"/api/v1/dataset/{ds}/record/list").json()["items"]) == 1
    sync(app_client, ds, fid)
    app_client.post(f"/api/v1/dataset/{ds}/file/{fid}/detach", json={"deleteRecords": True})
    assert app_client.get(f"/api/v1/dataset/{ds}/record/list").json()["items"] == []
    assert app_client.get(f"/api/v1/dataset/{ds}/file/list").json()["items"] == []
    assert_envelope(app_client.post(f"/api/v1/dataset/{ds}/file/{fid}/sync", json={}), 404)
    types = [e["type"] for e in app_client.get(f"/api/v1/dataset/{ds}/event/list",
                                                params={"take": 100}).json()["items"]]
    assert "file.detached" in types and "file.attached" in types


def test_sync_cooldown_answers_429_with_retry_after(tmp_path: object) -> None:
    from pathlib import Path

    from dataloft.app import create_app
    from tests.conftest import KEY, make_settings

    app = create_app(make_settings(Path(str(tmp_path)), sync_cooldown_seconds=120))
    with TestClient(app, headers={"Authorization": f"Bearer {KEY}"}) as client:
        ds = create_dataset(client)
        fid = create_file(client, b"hello")
        client.post(f"/api/v1/dataset/{ds}/file/{fid}/attach", json={})
        assert client.post(f"/api/v1/dataset/{ds}/file/{fid}/sync", json={}).status_code == 200
        again = client.post(f"/api/v1/dataset/{ds}/file/{fid}/sync", json={})
        assert_envelope(again, 429, "TOO_MANY_REQUESTS")
        assert 110 <= int(again.headers["Retry-After"]) <= 120


def test_records_crud_and_export(app_client: TestClient) -> None:
    ds = create_dataset(app_client)
    rid = app_client.post(f"/api/v1/dataset/{ds}/record/create",
                          json={"text": "opening hours nine to five",
                                "meta": {"k": "v"}}).json()["id"]
    assert app_client.get(f"/api/v1/dataset/{ds}/record/{rid}/fetch").json()["meta"] == {"k": "v"}
    app_client.post(f"/api/v1/dataset/{ds}/record/{rid}/update", json={"text": "closing time six"})
    found = app_client.post(f"/api/v1/dataset/{ds}/search", json={"search": "closing"}).json()
    assert [r["id"] for r in found["records"]] == [rid]
    assert app_client.post(f"/api/v1/dataset/{ds}/search",
                           json={"search": "opening", "mode": "lexical"}).json()["records"] == []
    csv_export = app_client.get(f"/api/v1/dataset/{ds}/record/export",
                                headers={"Accept": "text/csv"})
    assert csv_export.headers["content-type"].startswith("text/csv")
    assert "closing time six" in csv_export.text
    app_client.post(f"/api/v1/dataset/{ds}/record/{rid}/delete", json={})
    assert_envelope(app_client.get(f"/api/v1/dataset/{ds}/record/{rid}/fetch"), 404)
    assert app_client.post(f"/api/v1/dataset/{ds}/search",
                           json={"search": "closing", "mode": "lexical"}).json()["records"] == []


def test_cursor_pages_are_stable_across_inserts(app_client: TestClient) -> None:
    ids = [app_client.post("/api/v1/file/create", json={"name": f"f{i}"}).json()["id"]
           for i in range(12)]
    seen: list[str] = []
    page = app_client.get("/api/v1/file/list", params={"take": 5}).json()
    seen += [f["id"] for f in page["items"]]
    # Files created mid-pagination appear before the cursor (desc) and never shift pages.
    app_client.post("/api/v1/file/create", json={"name": "late"})
    while "cursor" in page:
        page = app_client.get("/api/v1/file/list", params={"take": 5,
                                                           "cursor": page["cursor"]}).json()
        seen += [f["id"] for f in page["items"]]
    assert seen == list(reversed(ids))
    asc = app_client.get("/api/v1/file/list", params={"take": 100, "order": "asc"}).json()
    assert [f["id"] for f in asc["items"]][:12] == ids


def test_meta_filters_in_both_notations_and_jsonl(app_client: TestClient) -> None:
    a = app_client.post("/api/v1/file/create",
                        json={"meta": {"category": "docs", "v": 2}}).json()["id"]
    app_client.post("/api/v1/file/create", json={"meta": {"category": "other"}})
    for params in ({"meta[category]": "docs"}, {"meta.category": "docs"}, {"meta.v": "2"}):
        items = app_client.get("/api/v1/file/list", params=params).json()["items"]
        assert [f["id"] for f in items] == [a], params
    lines = app_client.get("/api/v1/file/list", headers={"Accept": "application/jsonl"}).text
    parsed = [json.loads(line) for line in lines.splitlines()]
    assert len(parsed) == 2 and all(p["type"] == "item" and "id" in p["data"] for p in parsed)
    assert app_client.get("/api/v1/file/list", headers={"Accept": "application/jsonl"}
                          ).headers["content-type"].startswith("application/jsonl")


def test_openapi_is_served(app_client: TestClient) -> None:
    spec = app_client.get("/openapi.json").json()
    assert "/api/v1/dataset/{dataset_id}/search" in spec["paths"]
    assert app_client.get("/docs").status_code == 200


def test_listings_take_a_json_filter(app_client: TestClient) -> None:
    ds = create_dataset(app_client)
    for amount, status in ((500, "won"), (1500, "won"), (2500, "lost"), (3000, "closed")):
        app_client.post(f"/api/v1/dataset/{ds}/record/create",
                        json={"text": f"deal {amount}",
                              "meta": {"amount": amount, "status": status}})
    flt = json.dumps({"amount": {"$gte": 1000}, "status": {"$in": ["closed", "won"]}})
    items = app_client.get(f"/api/v1/dataset/{ds}/record/list", params={"filter": flt}).json()
    assert sorted(r["meta"]["amount"] for r in items["items"]) == [1500, 3000]
    bad = app_client.get(f"/api/v1/dataset/{ds}/record/list",
                         params={"filter": '{"amount": {"$gt": []}}'})
    assert_envelope(bad, 400, "BAD_REQUEST")
    assert "amount" in bad.json()["message"]
    assert_envelope(app_client.get(f"/api/v1/dataset/{ds}/record/list",
                                   params={"filter": "{nope"}), 400, "BAD_REQUEST")
