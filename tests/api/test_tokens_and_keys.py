"""API keys, end-user tokens, acting for end-users, dataset-limited keys, public downloads
and assistants: who may do what, and that everything else answers the error envelope.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from dataloft.app import create_app
from tests.conftest import KEY, make_settings
from tests.support.api import assert_envelope, create_dataset, create_file, sync

CSV = b"region,amount\nnorth,quokka2048\n"


# --------------------------------------------------------------------------- helpers


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def mint(client: TestClient, user: str = "user_123", *, as_: dict[str, str] | None = None,
         **body: Any) -> httpx.Response:
    return client.post("/api/v1/token/create", json={"userIdentifier": user, **body},
                       headers=as_ or {})


def token(client: TestClient, user: str = "user_123", **body: Any) -> str:
    r = mint(client, user, **body)
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def new_key(client: TestClient, permissions: list[str], datasets: list[str] | None = None,
            as_: dict[str, str] | None = None) -> tuple[str, str]:
    body: dict[str, Any] = {"name": "test", "permissions": permissions}
    if datasets is not None:
        body["datasets"] = datasets
    r = client.post("/api/v1/key/create", json=body, headers=as_ or {})
    assert r.status_code == 200, r.text
    return str(r.json()["id"]), str(r.json()["key"])


def names(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {item["name"] for item in response.json()["items"]}


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def claims_of(tok: str) -> dict[str, Any]:
    body = tok.removeprefix("dlt_").partition(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))


def with_claims(tok: str, **changes: Any) -> str:
    """The token with changed claims and its original signature."""
    claims = {**claims_of(tok), **changes}
    body = b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    return f"dlt_{body}.{tok.partition('.')[2]}"


def inconvo_upload(client: TestClient, user: str, headers: dict[str, str]) -> httpx.Response:
    return client.post(f"/api/v1/datasets/user/{user}", headers=headers,
                       files={"file": ("sales.csv", CSV, "text/csv")})


# --------------------------------------------------------------------------- tokens


def test_token_mint_use_expire(app_client: TestClient) -> None:
    before = int(time.time() * 1000)
    r = mint(app_client, ttl=1, permissions=["files:write"])
    assert r.status_code == 200, r.text
    tok, expires = r.json()["token"], r.json()["expiresAt"]
    assert tok.startswith("dlt_") and before + 1000 <= expires <= int(time.time() * 1000) + 1000
    assert claims_of(tok)["u"] == "user_123"

    created = app_client.post("/api/v1/file/create", json={"name": "mine"}, headers=bearer(tok))
    assert created.status_code == 200, created.text
    assert names(app_client.get("/api/v1/file/list", headers=bearer(tok))) == {"mine"}

    time.sleep(max(0.0, (expires - time.time() * 1000) / 1000) + 0.1)
    for probe in (app_client.get("/api/v1/file/list", headers=bearer(tok)),
                  app_client.post("/api/v1/file/create", json={}, headers=bearer(tok)),
                  inconvo_upload(app_client, "user_123", bearer(tok))):
        assert_envelope(probe, 401, "NOT_AUTHENTICATED")

    default = mint(app_client).json()["expiresAt"]
    assert abs(default - (time.time() * 1000 + 3600_000)) < 60_000
    for ttl in (0, -5, 7 * 24 * 3600 + 1):
        assert_envelope(mint(app_client, ttl=ttl), 400, "BAD_REQUEST")
    for user in ("", "user 1", "u" * 257, "ü"):
        assert_envelope(mint(app_client, user), 400, "BAD_REQUEST")
    assert_envelope(mint(app_client, userContext={"orgId": {"nested": 1}}), 400, "BAD_REQUEST")


def test_forged_tampered_and_garbage_tokens_are_401(app_client: TestClient,
                                                    tmp_path: Path) -> None:
    good = token(app_client, permissions=["files:write"])
    assert app_client.get("/api/v1/file/list", headers=bearer(good)).status_code == 200
    body, _, sig = good.partition(".")
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    claims = claims_of(good)
    with TestClient(create_app(make_settings(tmp_path / "elsewhere")), headers=bearer(KEY)) as c2:
        foreign = token(c2)  # a real token of another instance: another signing key
    bad = {
        "forged signature": f"{body}.{flipped}",
        "no signature": body,
        "empty signature": f"{body}.",
        "tampered user": with_claims(good, u="user_999"),
        "tampered permissions": with_claims(good, p=["admin", "keys:write"]),
        "tampered expiry": with_claims(good, e=claims["e"] + 10**9),
        "tampered key": with_claims(good, k="key_other"),
        "garbage": "dlt_x",
        "prefix only": "dlt_",
        "dots": "dlt_..",
        "not base64": "dlt_!!!.???",
        "another instance": foreign,
        "unknown API key": "dlk_" + "x" * 40,
    }
    for name, credential in bad.items():
        for probe in (app_client.get("/api/v1/file/list", headers=bearer(credential)),
                      inconvo_upload(app_client, "user_123", bearer(credential))):
            assert probe.status_code == 401, (name, probe.text)
            assert_envelope(probe, 401, "NOT_AUTHENTICATED")
    for header in ("", "Bearer", "Bearer ", "Basic " + KEY, KEY):
        r = app_client.get("/api/v1/file/list", headers={"Authorization": header})
        assert_envelope(r, 401, "NOT_AUTHENTICATED")
    assert app_client.get("/api/v1/file/list").status_code == 200  # the admin key still works


def test_revoking_a_key_revokes_its_tokens(app_client: TestClient) -> None:
    key_id, raw = new_key(app_client, ["files:write"])
    minted = mint(app_client, as_=bearer(raw), permissions=["files:write"])
    assert minted.status_code == 200, minted.text
    tok = minted.json()["token"]
    admin_tok = token(app_client)
    assert inconvo_upload(app_client, "user_123", bearer(tok)).status_code == 200
    assert app_client.get("/api/v1/file/list", headers=bearer(raw)).status_code == 200

    r = app_client.post(f"/api/v1/key/{key_id}/revoke")
    assert r.status_code == 200 and r.json() == {"id": key_id}, r.text
    for credential in (tok, raw):
        assert_envelope(app_client.get("/api/v1/file/list", headers=bearer(credential)), 401,
                        "NOT_AUTHENTICATED")
    assert_envelope(inconvo_upload(app_client, "user_123", bearer(tok)), 401,
                    "NOT_AUTHENTICATED")
    assert_envelope(mint(app_client, as_=bearer(raw)), 401, "NOT_AUTHENTICATED")
    # tokens of other keys live on; the listing shows the revocation
    assert app_client.get("/api/v1/file/list", headers=bearer(admin_tok)).status_code == 200
    listed = {k["id"]: k for k in app_client.get("/api/v1/key/list").json()["items"]}
    assert listed[key_id]["revokedAt"] is not None
    assert "hash" not in listed[key_id] and "key" not in listed[key_id]
    assert_envelope(app_client.post("/api/v1/key/key_nope/revoke"), 404, "NOT_FOUND")


def test_a_token_cannot_mint_tokens_nor_manage_keys(app_client: TestClient) -> None:
    tok = bearer(token(app_client, permissions=["files:write", "datasets:write"]))
    key_id, _ = new_key(app_client, [])
    for probe in (mint(app_client, as_=tok),
                  mint(app_client, "user_other", as_=tok),
                  app_client.post("/api/v1/key/create", json={"permissions": []}, headers=tok),
                  app_client.get("/api/v1/key/list", headers=tok),
                  app_client.post(f"/api/v1/key/{key_id}/revoke", headers=tok)):
        assert_envelope(probe, 403, "NOT_AUTHORIZED")
    # a backend key acting for an end-user mints only for that user, and manages no keys
    acting = {"X-RunAs-User-Id": "user_123"}
    assert mint(app_client, "user_123", as_=acting).status_code == 200
    assert_envelope(mint(app_client, "user_456", as_=acting), 403, "NOT_AUTHORIZED")
    assert_envelope(app_client.post("/api/v1/key/create", json={}, headers=acting), 403,
                    "NOT_AUTHORIZED")
    assert app_client.get(f"/api/v1/key/{key_id}/revoke").status_code == 405


def test_token_permissions_are_a_subset_of_the_keys(app_client: TestClient) -> None:
    _, read_only = new_key(app_client, [])
    _, files_only = new_key(app_client, ["files:write"])
    for as_, wanted in ((read_only, ["files:write"]), (read_only, ["datasets:write"]),
                        (files_only, ["datasets:write"]), (files_only, ["admin"]),
                        (KEY, ["admin"]), (KEY, ["keys:write"]), (KEY, ["assistant:write"]),
                        (KEY, ["nonsense"])):
        assert_envelope(mint(app_client, as_=bearer(as_), permissions=wanted), 400,
                        "BAD_REQUEST")
    tok = token(app_client, as_=bearer(files_only), permissions=["files:write"])
    assert claims_of(tok)["p"] == ["files:write"]
    assert inconvo_upload(app_client, "user_123", bearer(tok)).status_code == 200
    assert_envelope(app_client.post("/api/v1/dataset/create", json={}, headers=bearer(tok)),
                    403, "NOT_AUTHORIZED")
    # a read-only key mints read-only tokens
    assert claims_of(token(app_client, as_=bearer(read_only)))["p"] == []
    # keys: a key never grants more than it holds, and needs keys:write to create any
    _, manager = new_key(app_client, ["keys:write", "files:write"])
    assert_envelope(app_client.post("/api/v1/key/create", json={"permissions": ["admin"]},
                                    headers=bearer(manager)), 403, "NOT_AUTHORIZED")
    assert_envelope(app_client.post("/api/v1/key/create", json={"permissions": []},
                                    headers=bearer(files_only)), 403, "NOT_AUTHORIZED")
    assert app_client.post("/api/v1/key/create", json={"permissions": ["files:write"]},
                           headers=bearer(manager)).status_code == 200
    assert_envelope(app_client.post("/api/v1/key/create", json={"permissions": ["root"]}), 400,
                    "BAD_REQUEST")


def test_a_read_only_token_cannot_write(app_client: TestClient) -> None:
    file_id = create_file(app_client, CSV, "shared.csv", "text/csv", visibility="protected")
    tok = bearer(token(app_client))
    assert names(app_client.get("/api/v1/file/list", headers=tok)) == {"shared.csv"}
    for probe in (inconvo_upload(app_client, "user_123", tok),
                  app_client.post("/api/v1/datasets/context/orgId/org_1", headers=tok,
                                  files={"file": ("a.csv", CSV, "text/csv")}),
                  app_client.delete("/api/v1/datasets/user/user_123/sales.csv", headers=tok),
                  app_client.post("/api/v1/file/create", json={}, headers=tok),
                  app_client.post(f"/api/v1/file/{file_id}/upload", content=CSV,
                                  headers={**tok, "Content-Type": "text/csv"}),
                  app_client.post(f"/api/v1/file/{file_id}/delete", json={}, headers=tok),
                  app_client.post("/api/v1/dataset/create", json={}, headers=tok),
                  app_client.post("/api/v1/assistant/create", json={}, headers=tok)):
        assert_envelope(probe, 403, "NOT_AUTHORIZED")
    assert app_client.get("/api/v1/datasets/user/user_123").json() == {"files": []}
    assert names(app_client.get("/api/v1/file/list")) == {"shared.csv"}


# --------------------------------------------------------------------------- acting for users


def test_run_as_user_sees_only_its_own_and_shared_items(app_client: TestClient) -> None:
    as_a, as_b = {"X-RunAs-User-Id": "user_a"}, {"X-RunAs-User-Id": "user_b"}
    ids = {"private": create_file(app_client, CSV, "org-private.csv", "text/csv"),
           "protected": create_file(app_client, CSV, "org-protected.csv", "text/csv",
                                    visibility="protected"),
           "public": create_file(app_client, CSV, "org-public.csv", "text/csv",
                                 visibility="public"),
           "a": app_client.post("/api/v1/file/create", json={"name": "a.csv"},
                                headers=as_a).json()["id"],
           "b": app_client.post("/api/v1/file/create", json={"name": "b.csv"},
                                headers=as_b).json()["id"]}
    assert inconvo_upload(app_client, "user_b", {}).status_code == 200

    assert names(app_client.get("/api/v1/file/list", headers=as_a)) == {
        "org-protected.csv", "org-public.csv", "a.csv"}
    assert names(app_client.get("/api/v1/file/list", headers=as_b)) == {
        "org-protected.csv", "org-public.csv", "b.csv", "sales.csv"}
    assert names(app_client.get("/api/v1/file/list")) == {
        "org-private.csv", "org-protected.csv", "org-public.csv", "a.csv", "b.csv", "sales.csv"}
    for hidden in ("private", "b"):
        assert_envelope(app_client.get(f"/api/v1/file/{ids[hidden]}/fetch", headers=as_a), 404,
                        "NOT_FOUND")
    assert app_client.post(f"/api/v1/file/{ids['a']}/upload", content=CSV, headers={
        **as_a, "Content-Type": "text/csv"}).status_code == 200
    assert app_client.get(f"/api/v1/file/{ids['a']}/download", headers=as_a).content == CSV
    assert_envelope(app_client.get(f"/api/v1/file/{ids['a']}/download", headers=as_b), 404,
                    "NOT_FOUND")
    # end-users change only their own items
    assert_envelope(app_client.post(f"/api/v1/file/{ids['protected']}/update", headers=as_a,
                                    json={"name": "mine now"}), 403, "NOT_AUTHORIZED")
    assert app_client.post(f"/api/v1/file/{ids['a']}/update", headers=as_a,
                           json={"description": "x"}).status_code == 200
    assert_envelope(app_client.get("/api/v1/datasets/user/user_b", headers=as_a), 404,
                    "NOT_FOUND")
    # datasets too: protected ones are shared, private ones are not
    shared = create_dataset(app_client, name="shared", visibility="protected")
    private = create_dataset(app_client, name="private")
    listed = {d["id"] for d in app_client.get("/api/v1/dataset/list",
                                              headers=as_a).json()["items"]}
    assert shared in listed and private not in listed
    assert_envelope(app_client.get(f"/api/v1/dataset/{private}/fetch", headers=as_a), 404,
                    "NOT_FOUND")
    # a token acting as itself is fine; as anyone else it is refused
    tok = token(app_client, "user_a")
    assert app_client.get("/api/v1/file/list", headers={
        **bearer(tok), "X-RunAs-User-Id": "user_a"}).status_code == 200
    assert_envelope(app_client.get("/api/v1/file/list", headers={
        **bearer(tok), "X-RunAs-User-Id": "user_b"}), 403, "NOT_AUTHORIZED")


MALFORMED_ACTING = {
    "context not JSON": {"X-RunAs-User-Id": "user_a", "X-User-Context": "{not json"},
    "context an array": {"X-RunAs-User-Id": "user_a", "X-User-Context": "[1, 2]"},
    "context a string": {"X-RunAs-User-Id": "user_a", "X-User-Context": '"orgId"'},
    "context nested": {"X-RunAs-User-Id": "user_a", "X-User-Context": '{"orgId": {"a": 1}}'},
    "context bool": {"X-RunAs-User-Id": "user_a", "X-User-Context": '{"orgId": true}'},
    "context bad value": {"X-RunAs-User-Id": "user_a", "X-User-Context": '{"orgId": "o 4"}'},
    "context empty key": {"X-RunAs-User-Id": "user_a", "X-User-Context": '{"": "x"}'},
    "context without run-as": {"X-User-Context": '{"orgId": "org_456"}'},
    "run-as with a space": {"X-RunAs-User-Id": "user a"},
    "run-as of 257 chars": {"X-RunAs-User-Id": "u" * 257},
    "run-as empty": {"X-RunAs-User-Id": ""},
}


def test_malformed_acting_headers_are_400(app_client: TestClient) -> None:
    for name, headers in MALFORMED_ACTING.items():
        for probe in (app_client.get("/api/v1/file/list", headers=headers),
                      inconvo_upload(app_client, "user_a", headers),
                      app_client.post("/api/v1/file/create", json={}, headers=headers)):
            assert probe.status_code == 400, (name, probe.text)
            assert_envelope(probe, 400, "BAD_REQUEST")
    assert app_client.get("/api/v1/datasets/user/user_a").json() == {"files": []}
    assert app_client.get("/api/v1/file/list").json()["items"] == []


def test_well_formed_acting_headers_work(app_client: TestClient) -> None:
    for context in ('{"orgId": "org_456"}', '{"orgId": 456, "teamId": "t-1"}', "{}", ""):
        r = app_client.get("/api/v1/file/list", headers={"X-RunAs-User-Id": "user.a@x.com",
                                                         "X-User-Context": context})
        assert r.status_code == 200, (context, r.text)


# --------------------------------------------------------------------------- scoped keys


def test_a_dataset_limited_key_sees_only_its_datasets(app_client: TestClient) -> None:
    ds_a = create_dataset(app_client, name="A")
    ds_b = create_dataset(app_client, name="B")
    fa = create_file(app_client, b"k,v\nalpha,pangolin11\n", "a.csv", "text/csv")
    fb = create_file(app_client, b"k,v\nbeta,narwhal22\n", "b.csv", "text/csv")
    assert sync(app_client, ds_a, fa)["type"] == "sync.completed"
    assert sync(app_client, ds_b, fb)["type"] == "sync.completed"

    _, raw = new_key(app_client, [], datasets=[ds_a])
    lim = bearer(raw)
    assert [d["id"] for d in app_client.get("/api/v1/dataset/list",
                                            headers=lim).json()["items"]] == [ds_a]
    assert names(app_client.get("/api/v1/file/list", headers=lim)) == {"a.csv"}
    for probe in (app_client.get(f"/api/v1/dataset/{ds_b}/fetch", headers=lim),
                  app_client.get(f"/api/v1/dataset/{ds_b}/file/list", headers=lim),
                  app_client.get(f"/api/v1/dataset/{ds_b}/record/list", headers=lim),
                  app_client.post(f"/api/v1/dataset/{ds_b}/search", headers=lim,
                                  json={"search": "narwhal22"}),
                  app_client.get(f"/api/v1/file/{fb}/fetch", headers=lim),
                  app_client.get(f"/api/v1/file/{fb}/download", headers=lim)):
        assert_envelope(probe, 404, "NOT_FOUND")
    hits = app_client.post(f"/api/v1/dataset/{ds_a}/search", headers=lim,
                           json={"search": "pangolin11"}).json()["records"]
    assert hits and "pangolin11" in hits[0]["text"]
    assert app_client.get(f"/api/v1/file/{fa}/download", headers=lim).content.startswith(b"k,v")
    # tokens minted by the limited key are limited too
    tok = bearer(token(app_client, as_=lim))
    assert_envelope(app_client.get(f"/api/v1/dataset/{ds_b}/fetch", headers=tok), 404,
                    "NOT_FOUND")
    # creating a limited key checks the datasets exist
    assert_envelope(app_client.post("/api/v1/key/create",
                                    json={"permissions": [], "datasets": ["ds_nope"]}),
                    404, "NOT_FOUND")
    _, lim_manager = new_key(app_client, ["keys:write"], datasets=[ds_a])
    assert_envelope(app_client.post("/api/v1/key/create", json={"datasets": [ds_b]},
                                    headers=bearer(lim_manager)), 404, "NOT_FOUND")
    assert_envelope(app_client.post("/api/v1/key/create", json={},
                                    headers=bearer(lim_manager)), 403, "NOT_AUTHORIZED")


def test_a_key_without_permissions_is_read_only(app_client: TestClient) -> None:
    ds = create_dataset(app_client, name="ro")
    file_id = create_file(app_client, CSV, "ro.csv", "text/csv")
    agent = app_client.get("/api/v1/assistant/list").json()["items"][0]["id"]
    _, raw = new_key(app_client, [])
    ro = bearer(raw)
    for probe in (app_client.post("/api/v1/file/create", json={}, headers=ro),
                  app_client.post(f"/api/v1/file/{file_id}/update", json={"name": "x"},
                                  headers=ro),
                  app_client.post(f"/api/v1/file/{file_id}/upload", content=CSV,
                                  headers={**ro, "Content-Type": "text/csv"}),
                  app_client.post(f"/api/v1/file/{file_id}/delete", json={}, headers=ro),
                  app_client.post("/api/v1/dataset/create", json={}, headers=ro),
                  app_client.post(f"/api/v1/dataset/{ds}/delete", json={}, headers=ro),
                  app_client.post(f"/api/v1/dataset/{ds}/file/{file_id}/attach",
                                  json={"type": "source"}, headers=ro),
                  app_client.post("/api/v1/assistant/create", json={}, headers=ro),
                  app_client.post(f"/api/v1/assistant/{agent}/update", json={}, headers=ro),
                  app_client.post("/api/v1/key/create", json={}, headers=ro),
                  app_client.get("/api/v1/key/list", headers=ro),
                  inconvo_upload(app_client, "user_123", ro)):
        assert_envelope(probe, 403, "NOT_AUTHORIZED")
    for read in ("/api/v1/file/list", f"/api/v1/file/{file_id}/fetch", "/api/v1/dataset/list",
                 f"/api/v1/dataset/{ds}/fetch", "/api/v1/assistant/list",
                 "/api/v1/datasets/user/user_123"):
        assert app_client.get(read, headers=ro).status_code == 200, read
    assert app_client.get(f"/api/v1/file/{file_id}/download", headers=ro).content == CSV


# --------------------------------------------------------------------------- downloads


def test_public_files_download_without_a_key(app_client: TestClient,
                                             anon_client: TestClient) -> None:
    public = create_file(app_client, b"open,data\n1,2\n", "open.csv", "text/csv",
                         visibility="public")
    protected = create_file(app_client, CSV, "p.csv", "text/csv", visibility="protected")
    private = create_file(app_client, CSV, "s.csv", "text/csv")
    r = anon_client.get(f"/api/v1/file/{public}/download")
    assert r.status_code == 200 and r.content == b"open,data\n1,2\n"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-disposition"].startswith("attachment;")
    for hidden in (private, protected, "file_doesnotexist"):
        assert_envelope(anon_client.get(f"/api/v1/file/{hidden}/download"), 401,
                        "NOT_AUTHENTICATED")
    # only the bytes go public: the metadata and listings still need a key
    for probe in (anon_client.get(f"/api/v1/file/{public}/fetch"),
                  anon_client.get("/api/v1/file/list")):
        assert_envelope(probe, 401, "NOT_AUTHENTICATED")
    # a credential sent is checked, even for a public file
    assert_envelope(anon_client.get(f"/api/v1/file/{public}/download",
                                    headers=bearer("dlk_" + "z" * 40)), 401,
                    "NOT_AUTHENTICATED")
    assert app_client.get(f"/api/v1/file/{private}/download").content == CSV


# --------------------------------------------------------------------------- assistants


def test_assistants_crud_and_the_default_assistant(app_client: TestClient) -> None:
    listed = app_client.get("/api/v1/assistant/list").json()["items"]
    defaults = [a for a in listed if a["default"] is True]
    assert len(listed) == 1 and len(defaults) == 1, listed
    default_id = defaults[0]["id"]
    assert default_id.startswith("agt_")

    body = {"name": "Sales analyst", "description": "Answers sales questions",
            "instructions": "Be brief.", "model": "small", "meta": {"team": "sales"}}
    agent = app_client.post("/api/v1/assistant/create", json=body).json()["id"]
    fetched = app_client.get(f"/api/v1/assistant/{agent}/fetch").json()
    assert {k: fetched[k] for k in body} == body and fetched["default"] is False
    assert set(fetched) >= {"id", "createdAt", "updatedAt"}

    r = app_client.post(f"/api/v1/assistant/{agent}/update",
                        json={"instructions": "Answer in one sentence."})
    assert r.json() == {"id": agent}
    updated = app_client.get(f"/api/v1/assistant/{agent}/fetch").json()
    assert updated["instructions"] == "Answer in one sentence."
    assert updated["name"] == "Sales analyst"  # untouched fields stay
    assert {a["id"] for a in app_client.get("/api/v1/assistant/list").json()["items"]} == {
        default_id, agent}

    # end-users read assistants, but change none
    tok = bearer(token(app_client, permissions=["files:write", "datasets:write"]))
    assert app_client.get(f"/api/v1/assistant/{agent}/fetch", headers=tok).status_code == 200
    assert_envelope(app_client.post(f"/api/v1/assistant/{agent}/delete", headers=tok), 403,
                    "NOT_AUTHORIZED")

    assert_envelope(app_client.post(f"/api/v1/assistant/{default_id}/delete"), 409, "CONFLICT")
    assert app_client.post(f"/api/v1/assistant/{agent}/delete").json() == {"id": agent}
    assert_envelope(app_client.get(f"/api/v1/assistant/{agent}/fetch"), 404, "NOT_FOUND")
    assert_envelope(app_client.post(f"/api/v1/assistant/{agent}/delete"), 404, "NOT_FOUND")
    assert [a["id"] for a in app_client.get("/api/v1/assistant/list").json()["items"]] == [
        default_id]


def test_search_resolves_the_key_in_its_own_transaction(app_client: TestClient) -> None:
    """The search route reads the key in the search's read transaction instead of through
    the principal dependency: the same outcomes, revocation at once included."""
    ds = create_dataset(app_client, name="S")
    f = create_file(app_client, b"k,v\nalpha,okapi33\n", "s.csv", "text/csv")
    assert sync(app_client, ds, f)["type"] == "sync.completed"
    path, body = f"/api/v1/dataset/{ds}/search", {"search": "okapi33"}
    key_id, raw = new_key(app_client, [], datasets=[ds])
    tok = token(app_client, as_=bearer(raw))
    acting = {**bearer(raw), "X-RunAs-User-Id": "user_9"}
    r = app_client.post(path, json=body, headers=bearer(raw))
    assert r.status_code == 200 and "okapi33" in r.json()["records"][0]["text"], r.text
    # An end-user sees what the policy lets it see, as through the principal dependency.
    for headers in (bearer(tok), acting):
        fetched = app_client.get(f"/api/v1/dataset/{ds}/fetch", headers=headers)
        searched = app_client.post(path, json=body, headers=headers)
        assert (searched.status_code, searched.json().get("code")) == \
            (fetched.status_code, fetched.json().get("code")), searched.text
    assert_envelope(app_client.post(path, json=body, headers={**bearer(tok),
                                                             "X-RunAs-User-Id": "user_8"}),
                    403, "NOT_AUTHORIZED")
    assert_envelope(app_client.post(path, json=body, headers={**bearer(raw),
                                                             "X-User-Context": "{}"}),
                    400, "BAD_REQUEST")
    assert_envelope(app_client.post(path, json=body, headers={"Authorization": ""}), 401,
                    "NOT_AUTHENTICATED")
    assert_envelope(app_client.post(path, json=body, headers=bearer("dl_nope")), 401,
                    "NOT_AUTHENTICATED")
    # The body is validated before the handler runs; a bad key still answers 401 first, as
    # on a route with the principal dependency, and a good key gets the body's 400.
    bad_body = {"search": "okapi33", "take": -1}
    assert_envelope(app_client.post(path, json=bad_body, headers=bearer("dl_nope")), 401,
                    "NOT_AUTHENTICATED")
    assert_envelope(app_client.post(path, json=bad_body, headers=bearer(raw)), 400,
                    "BAD_REQUEST")
    assert app_client.post(f"/api/v1/key/{key_id}/revoke").status_code == 200
    for credential in (raw, tok):
        for sent in (body, bad_body):
            assert_envelope(app_client.post(path, json=sent, headers=bearer(credential)), 401,
                            "NOT_AUTHENTICATED")
