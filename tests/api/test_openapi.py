"""/openapi.json describes the API the server really speaks, and /docs works offline.

The description is checked as a whole (typed 2xx bodies, the bearer scheme, errors as the
400 envelope, no 422) and against the wire: a walk through the main routes of every
surface (ChatBotKit-style, Informer, Inconvo, SQL, /v1) validates each response, success
or error, with `jsonschema` against the schema documented for its path, method, status and
content type. The response models are documentation only: a test pins that the bytes are
what render() returns (key order, absent keys, 1 vs 1.0), which a serialising model would
change.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator

from tests.support.api import create_file, sync

SALES = b"order_id,amount,region\nA-1,1200.5,North\nA-2,80,South\n"
ERROR_REFS = {"#/components/schemas/ErrorBody", "#/components/schemas/ErrorResponse"}


class Checker:
    """Validates every response of a client against the documented schema."""

    def __init__(self, doc: dict[str, Any]):
        self.doc = doc
        self.seen: list[tuple[str, str, int]] = []
        self.paths = sorted(((re.compile(re.sub(r"\{[^/]+\}", "[^/]+", p)), p)
                             for p in doc["paths"]), key=lambda rp: rp[1].count("{"))

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]]:
        for regex, template in self.paths:
            if regex.fullmatch(path) and method.lower() in self.doc["paths"][template]:
                return template, self.doc["paths"][template][method.lower()]
        raise AssertionError(f"{method} {path} is not documented")

    def __call__(self, response: httpx.Response) -> None:
        response.read()
        request = response.request
        template, op = self.operation(request.method, request.url.path)
        where = f"{request.method} {template} -> {response.status_code}"
        documented = op["responses"].get(str(response.status_code))
        assert documented is not None, f"{where}: status not documented ({response.text})"
        ctype = response.headers.get("content-type", "").split(";")[0].strip()
        self.seen.append((request.method, template, response.status_code))
        if response.status_code == 204:
            assert not response.content, where
            return
        content = documented.get("content", {})
        assert ctype in content or "*/*" in content, f"{where}: {ctype} not documented"
        if ctype == "application/json":
            schema = content[ctype]["schema"]
            validator = Draft202012Validator({**schema, "components": self.doc["components"]})
            errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                      for e in validator.iter_errors(response.json())]
            assert not errors, f"{where}: {errors[:3]}\n{response.text[:2000]}"


@pytest.fixture
def doc(app_client: TestClient) -> dict[str, Any]:
    r = app_client.get("/openapi.json")
    assert r.status_code == 200
    return dict(r.json())


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, item in doc["paths"].items()
            for method, op in item.items()]


def _kind(op: dict[str, Any]) -> str:
    success = {s: r for s, r in op["responses"].items() if s.startswith("2")}
    for response in success.values():
        schema = response.get("content", {}).get("application/json", {}).get("schema", {})
        if "$ref" in schema or "anyOf" in schema:
            return "typed"
    binary = [r for r in success.values()
              if any(c.get("schema", {}).get("format") == "binary"
                     for c in r.get("content", {}).values())]
    if binary:
        return "binary"
    return "empty" if set(success) == {"204"} else "untyped"


def test_nine_in_ten_operations_declare_a_typed_json_body(doc: dict[str, Any]) -> None:
    kinds = {f"{m} {p}": _kind(op) for m, p, op in _operations(doc)}
    untyped = [name for name, kind in kinds.items() if kind == "untyped"]
    assert not untyped, f"neither typed, binary nor 204: {untyped}"
    typed = sum(kind == "typed" for kind in kinds.values())
    assert typed / len(kinds) >= 0.9, (typed, len(kinds))
    assert len(kinds) >= 80  # every surface is in the description


def test_errors_are_the_envelope_on_400_never_422(doc: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for method, path, op in _operations(doc):
        assert "422" not in op["responses"], (method, path)
        if op.get("parameters") or op.get("requestBody"):
            bad = op["responses"].get("400", {})
            ref = bad.get("content", {}).get("application/json", {}).get("schema", {})
            assert ref.get("$ref") in ERROR_REFS, (method, path, bad)
    envelope = doc["components"]["schemas"]["ErrorBody"]
    assert set(envelope["required"]) == {"message", "code"}


def test_a_bearer_scheme_covers_every_authenticated_route(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert schemes["HTTPBearer"] == {"type": "http", "scheme": "bearer",
                                     "description": schemes["HTTPBearer"]["description"]}
    public = {"/healthz", "/api/v1/file/{file_id}/upload/{ticket_id}"}
    for method, path, op in _operations(doc):
        if path not in public:
            assert {"HTTPBearer": []} in op.get("security", []), (method, path)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_assets_served_here(anon_client: TestClient, page: str) -> None:
    r = anon_client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html), html
    assert not re.search(r"https?://", html), html
    assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assert len(assets) >= 2, html
    for url in assets:
        got = anon_client.get(url)
        assert got.status_code == 200 and len(got.content) > 500, url
    assert "/openapi.json" in html


def test_responses_keep_the_bytes_render_gives(app_client: TestClient) -> None:
    """Documented models do not serialise: keys stay in render()'s order, unset settings
    stay absent (not null) and 1 stays 1 where a float field would write 1.0."""
    ds = app_client.post("/api/v1/dataset/create", json={"name": "b", "meta": {"z": 1}}
                         ).json()["id"]
    raw = app_client.get(f"/api/v1/dataset/{ds}/fetch").text
    assert raw.startswith(f'{{"id":"{ds}","name":"b","description":null,"meta":{{"z":1}},'), raw
    assert '"reranker"' not in raw and '"fields"' not in raw, raw
    rec = app_client.post(f"/api/v1/dataset/{ds}/record/create",
                          json={"text": "t", "meta": {"a": 1, "b": 1.0}}).json()["id"]
    raw = app_client.get(f"/api/v1/dataset/{ds}/record/{rec}/fetch").text
    assert '"meta":{"a":1,"b":1.0}' in raw, raw


def test_documented_schemas_validate_a_walk_through_the_main_routes(
        app_client: TestClient, anon_client: TestClient, doc: dict[str, Any]) -> None:
    check = Checker(doc)
    for client in (app_client, anon_client):
        client.event_hooks = {"request": [], "response": [check]}
    c = app_client
    _native(c, anon_client)
    _informer_and_sql(c)
    _inconvo_and_keys(c)
    _openai(c)
    statuses = {s for _, _, s in check.seen}
    assert {200, 201, 204, 400, 401, 404} <= statuses, statuses
    assert len({(m, p) for m, p, _ in check.seen}) >= 50, len(check.seen)
    for expected in [("PUT", "/api/assistants/{assistant_id}/datasets/{dataset_id}", 200),
                     ("POST", "/api/v1/file/{file_id}/upload/confirm", 200),
                     ("POST", "/api/v1/datasets/user/{user_identifier}", 200),
                     ("POST", "/api/v1/dataset/{dataset_id}/query", 200),
                     ("POST", "/api/v1/assistant/{assistant_id}/search", 200)]:
        assert expected in check.seen, expected


def _native(c: TestClient, anon: TestClient) -> None:
    ds = c.post("/api/v1/dataset/create", json={
        "name": "docs", "meta": {"team": "a"}, "recordMaxTokens": 128, "searchMinScore": 0,
        "hybridLexicalWeight": 0.5, "matchInstruction": "m"}).json()["id"]
    c.post(f"/api/v1/dataset/{ds}/update", json={"fields": [{"name": "region",
                                                              "label": "Region"}]})
    c.get(f"/api/v1/dataset/{ds}/fetch")
    c.get("/api/v1/dataset/list", params={"take": 1})
    c.get("/api/v1/dataset/list", headers={"Accept": "application/jsonl"})
    fid = create_file(c, b"Oslo is the capital of Norway. It has fjords.", name="oslo.txt",
                      meta={"k": "v"})
    c.post(f"/api/v1/file/{fid}/update", json={"description": "d"})
    c.get(f"/api/v1/file/{fid}/fetch")
    c.get("/api/v1/file/list")
    c.get(f"/api/v1/file/{fid}/download")
    sync(c, ds, fid)
    c.post(f"/api/v1/file/{fid}/sync")
    c.get(f"/api/v1/dataset/{ds}/file/list")
    direct = c.post("/api/v1/file/create", json={"name": "d.txt"}).json()["id"]
    c.post(f"/api/v1/file/{direct}/upload/confirm")  # 409: nothing arrived yet
    put = c.post(f"/api/v1/file/{direct}/upload", json={"file": {
        "type": "text/plain", "size": 3, "name": "d.txt"}}).json()["uploadRequest"]
    if put["url"].startswith("http://testserver/"):  # local blobs: our signed PUT route
        anon.put(put["url"], content=b"abc", headers=put["headers"])
    else:  # a bucket's presigned URL
        assert httpx.put(put["url"], content=b"abc", headers=put["headers"]).is_success
    c.post(f"/api/v1/file/{direct}/upload/confirm")
    c.post(f"/api/v1/dataset/{ds}/search", json={"search": "capital of Norway"})
    rec = c.post(f"/api/v1/dataset/{ds}/record/create",
                 json={"text": "a record", "meta": {"n": 1}}).json()["id"]
    c.post(f"/api/v1/dataset/{ds}/record/{rec}/update", json={"text": "changed"})
    c.get(f"/api/v1/dataset/{ds}/record/{rec}/fetch")
    c.get(f"/api/v1/dataset/{ds}/record/list", params={"take": 1})
    c.get(f"/api/v1/dataset/{ds}/record/export")
    c.get(f"/api/v1/dataset/{ds}/record/export", headers={"Accept": "text/csv"})
    c.get(f"/api/v1/dataset/{ds}/event/list")
    c.get("/api/v1/event/list")
    c.post(f"/api/v1/dataset/{ds}/record/{rec}/delete")
    agt = c.post("/api/v1/assistant/create", json={"name": "a"}).json()["id"]
    c.post(f"/api/v1/assistant/{agt}/update", json={"model": "m"})
    c.get(f"/api/v1/assistant/{agt}/fetch")
    c.get("/api/v1/assistant/list")
    c.post(f"/api/v1/dataset/{ds}/file/{fid}/detach", json={})
    c.post(f"/api/v1/dataset/{ds}/file/{fid}/attach", json={})
    # Errors: validation (400), unknown (404), no credential (401), each in the envelope.
    c.post(f"/api/v1/dataset/{ds}/search", json={"search": 5, "take": "x"})
    c.post("/api/v1/dataset/create", json={"recordMaxTokens": 1})
    c.get("/api/v1/dataset/ds_missing/fetch")
    anon.get("/api/v1/dataset/list")
    c.post(f"/api/v1/file/{fid}/delete")


def _informer_and_sql(c: TestClient) -> None:
    ds = c.post("/api/v1/dataset/create", json={"name": "sales"}).json()["id"]
    fid = create_file(c, SALES, name="sales.csv", content_type="text/csv")
    sync(c, ds, fid)
    agt = c.post("/api/v1/assistant/create", json={"name": "analyst"}).json()["id"]
    c.post(f"/api/assistants/{agt}/datasets", json={"datasetId": ds,
                                                    "filter": {"region": "North"}})
    other = c.post("/api/v1/dataset/create", json={"name": "notes"}).json()["id"]
    c.post(f"/api/assistants/{agt}/datasets", json={"datasetId": other})
    c.get(f"/api/assistants/{agt}/datasets", params={"limit": 1})
    c.get(f"/api/assistants/{agt}/datasets", params={"start": 1, "limit": 1})
    c.get(f"/api/assistants/{agt}/datasets/{ds}")
    c.put(f"/api/assistants/{agt}/datasets/{ds}", json={"filter": None})
    c.get(f"/api/datasets/{ds}")
    c.post(f"/api/v1/assistant/{agt}/search", json={"search": "North"})
    c.delete(f"/api/assistants/{agt}/datasets/{other}")
    c.get(f"/api/v1/dataset/{ds}/schema")
    table = c.get(f"/api/v1/dataset/{ds}/schema").json()["tables"][0]["name"]
    for fmt in ("rows", "table", "chart"):
        c.post(f"/api/v1/dataset/{ds}/query",
               json={"sql": f'SELECT region, amount FROM "{table}"', "format": fmt})
    c.post(f"/api/v1/assistant/{agt}/query",
           json={"sql": f'SELECT count(*) AS n FROM "{table}"'})
    c.post(f"/api/v1/dataset/{ds}/query", json={"sql": "DROP TABLE x"})
    c.post(f"/api/v1/assistant/{agt}/delete")
    c.post(f"/api/v1/dataset/{other}/delete")


def _inconvo_and_keys(c: TestClient) -> None:
    base = "/api/v1/datasets/user/user_1"
    c.post(base, files={"file": ("sales.csv", SALES, "text/csv")}, data={"notes": "n"})
    c.get(base)
    c.delete(f"{base}/sales.csv")
    c.delete(f"{base}/missing.csv")
    c.get("/api/v1/datasets/context/org/acme")
    key = c.post("/api/v1/key/create", json={"name": "k", "permissions": ["datasets:write"]}
                 ).json()["id"]
    c.get("/api/v1/key/list")
    c.post(f"/api/v1/key/{key}/revoke")
    c.post("/api/v1/token/create", json={"userIdentifier": "user_1", "ttl": 60})
    c.get("/healthz")


def _openai(c: TestClient) -> None:
    store = c.post("/v1/vector_stores", json={"name": "s"}).json()["id"]
    c.get("/v1/vector_stores")
    c.get(f"/v1/vector_stores/{store}")
    c.get(f"/v1/vector_stores/{store}/files")
    c.post(f"/v1/vector_stores/{store}/search", json={"query": "x"})
    c.get("/v1/files")
    c.get("/v1/files/file_missing")
    c.post("/v1/vector_stores", json={"name": 5})
    c.delete(f"/v1/vector_stores/{store}")
