"""Assistant aliases (Informer ids such as `team:sales-assistant`) wherever an assistant id
is accepted, and the user-context configuration of an agent (Inconvo): when enabled, a
conversation's userContext and a context upload's contextKey are checked against it."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

ALIAS = "team:sales-assistant"


def _agent(client: TestClient, **fields: Any) -> str:
    r = client.post("/api/v1/assistant/create", json={"name": "sales", **fields})
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def test_alias_resolves_wherever_an_assistant_id_is_accepted(app_client: TestClient) -> None:
    agent = _agent(app_client, alias=ALIAS)
    fetched = app_client.get(f"/api/v1/assistant/{ALIAS}/fetch")
    assert fetched.status_code == 200 and fetched.json()["id"] == agent
    assert fetched.json()["alias"] == ALIAS
    ds = app_client.post("/api/v1/dataset/create", json={"name": "d"}).json()["id"]
    r = app_client.post(f"/api/assistants/{ALIAS}/datasets", json={"datasetId": ds})
    assert r.status_code == 201, r.text
    conv = app_client.post(f"/api/v1/agents/{ALIAS}/conversations",
                           json={"userIdentifier": "u1"})
    assert conv.status_code == 200, conv.text
    listed = app_client.get(f"/api/v1/agents/{agent}/conversations").json()["items"]
    assert [c["id"] for c in listed] == [conv.json()["id"]]
    r = app_client.post("/api/v1/assistant/create", json={"alias": ALIAS})
    assert r.status_code == 409, r.text
    assert app_client.post("/api/v1/assistant/create",
                           json={"alias": "agt_fake"}).status_code == 400
    assert app_client.post("/api/v1/assistant/create",
                           json={"alias": "bad alias!"}).status_code in (400, 422)


def test_user_context_configuration_is_enforced(app_client: TestClient) -> None:
    agent = _agent(app_client, userContext={"status": "enabled", "fields": [
        {"key": "orgId", "type": "string"}, {"key": "seats", "type": "number"},
        {"key": "beta", "type": "boolean"}]})
    assert app_client.get(f"/api/v1/assistant/{agent}/fetch").json()["userContext"][
        "status"] == "enabled"
    base = f"/api/v1/agents/{agent}/conversations"
    r = app_client.post(base, json={"userIdentifier": "u1", "userContext": {"region": "eu"}})
    assert r.status_code == 400 and "orgId" in r.json()["message"], r.text
    r = app_client.post(base, json={"userIdentifier": "u1", "userContext": {"orgId": 5}})
    assert r.status_code == 400 and "string" in r.json()["message"], r.text
    r = app_client.post(base, json={"userIdentifier": "u1"})
    assert r.status_code == 400, r.text
    r = app_client.post(base, json={"userIdentifier": "u1", "userContext": {
        "orgId": "org_456", "seats": 12, "beta": True}})
    assert r.status_code == 200, r.text
    got = app_client.get(f"{base}/{r.json()['id']}").json()
    assert got["userContext"] == {"orgId": "org_456", "seats": "12", "beta": "true"}

    csv = ("p.csv", b"plan,price\nPro,79\n", "text/csv")
    r = app_client.post(f"/api/v1/agents/{agent}/datasets/context/region/eu",
                        files={"file": csv})
    assert r.status_code == 400 and "orgId" in r.json()["message"], r.text
    r = app_client.post(f"/api/v1/agents/{agent}/datasets/context/orgId/org_456",
                        files={"file": csv})
    assert r.status_code == 200, r.text


def test_disabled_user_context_refuses_one(app_client: TestClient) -> None:
    agent = _agent(app_client, userContext={"status": "disabled"})
    base = f"/api/v1/agents/{agent}/conversations"
    r = app_client.post(base, json={"userIdentifier": "u1", "userContext": {"orgId": "x"}})
    assert r.status_code == 400, r.text
    assert app_client.post(base, json={"userIdentifier": "u1"}).status_code == 200


def test_unset_user_context_keeps_uploads_open(app_client: TestClient) -> None:
    agent = _agent(app_client)
    r = app_client.post(f"/api/v1/agents/{agent}/datasets/context/anyKey/v",
                        files={"file": ("p.csv", b"a,b\n1,2\n", "text/csv")})
    assert r.status_code == 200, r.text


def test_conversation_listing_filters_pages_and_checks_its_parameters(
        app_client: TestClient) -> None:
    agent = _agent(app_client)
    base = f"/api/v1/agents/{agent}/conversations"
    made = [app_client.post(base, json={"userIdentifier": u, "userContext": {"orgId": o}})
            .json()["id"] for u, o in (("u1", "a"), ("u1", "b"), ("u2", "a"))]
    for bad in ({"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"cursor": "junk"}):
        r = app_client.get(base, params=bad)
        assert r.status_code == 400, (bad, r.text)
    got = app_client.get(base, params=[("userIdentifier", "u1"), ("userContext[orgId]", "a")])
    assert [c["id"] for c in got.json()["items"]] == [made[0]], got.text
    got = app_client.get(base, params={"userContext[orgId]": "a"}).json()["items"]
    assert [c["id"] for c in got] == [made[2], made[0]]
    assert app_client.get(base, params={"userContext[region]": "None"}).json()["items"] == []
    seen: list[str] = []
    cursor = None
    while True:
        page = app_client.get(base, params={"limit": 1, **({"cursor": cursor} if cursor
                                                           else {})}).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))
    assert app_client.delete(f"{base}/{made[1]}").status_code == 200
    assert app_client.get(f"{base}/{made[1]}").status_code == 404
    assert made[1] not in [c["id"] for c in app_client.get(base).json()["items"]]


def test_feedback_is_checked(app_client: TestClient) -> None:
    agent = _agent(app_client)
    base = f"/api/v1/agents/{agent}/conversations"
    conv = app_client.post(base, json={"userIdentifier": "u1"}).json()["id"]
    resp = app_client.post(f"{base}/{conv}/response", json={"message": "hi"}).json()["id"]
    fb = f"{base}/{conv}/response/{resp}/feedback"
    for bad in ({}, {"rating": "meh"}, {"rating": "positive", "comment": 5},
                {"rating": "positive", "comment": "x" * 10_001}):
        r = app_client.post(fb, json=bad)
        assert r.status_code == 400, (bad, r.text)
    made = app_client.post(fb, json={"rating": "positive", "comment": "good"}).json()
    r = app_client.patch(f"{fb}/{made['id']}", json={"comment": None})
    assert r.json() == {"id": made["id"], "rating": "positive", "comment": None}, r.text
    assert app_client.patch(f"{fb}/{made['id']}", json={"rating": "meh"}).status_code == 400
    assert app_client.patch(f"{fb}/fb_nope", json={"rating": "negative"}).status_code == 404
    assert app_client.post(f"{base}/{conv}/response/resp_nope/feedback",
                           json={"rating": "negative"}).status_code == 404
