"""Retrieval-only answers (no model configured) over documents of an associated dataset:
quoted passages with their files, within the association filter, and nothing at all for a
question the data does not answer."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataloft.agent.scope import Scope
from dataloft.agent.summary import summary
from dataloft.agent.tools import ToolError, Tools
from dataloft.api.deps import principal_of
from tests.conftest import KEY
from tests.support.api import create_dataset, create_file, sync

POLICY = (b"Refunds. The refund window is 45 days for annual plans and 14 days for monthly "
          b"plans.\n\nShipping. Orders ship within two business days from the Lyon warehouse.")
DRAFT = b"Draft policy. The refund window might become 90 days next year."


def _default_agent(client: TestClient) -> str:
    return str(next(a["id"] for a in client.get("/api/v1/assistant/list").json()["items"]
                    if a["default"]))


def _ask(client: TestClient, agent: str, question: str) -> dict[str, Any]:
    conv = client.post(f"/api/v1/agents/{agent}/conversations",
                       json={"userIdentifier": "reader"}).json()["id"]
    r = client.post(f"/api/v1/agents/{agent}/conversations/{conv}/response",
                    json={"message": question})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_passages_are_quoted_with_their_files_within_the_association(
        app_client: TestClient) -> None:
    ds = create_dataset(app_client, visibility="protected")
    for name, body, status in (("policy.txt", POLICY, "final"), ("draft.txt", DRAFT, "draft")):
        fid = create_file(app_client, body, name=name)
        app_client.post(f"/api/v1/file/{fid}/update",
                        json={"visibility": "protected", "meta": {"status": status}})
        sync(app_client, ds, fid)
    agent = _default_agent(app_client)
    r = app_client.post(f"/api/assistants/{agent}/datasets",
                        json={"datasetId": ds, "filter": {"fileName": "policy.txt"}})
    assert r.status_code == 201, r.text

    body = _ask(app_client, agent, "How long is the refund window?")
    assert body["type"] == "text", body
    assert "No language model is configured" in body["message"]
    assert "45 days" in body["message"] and "policy.txt" in body["message"], body
    assert "90 days" not in str(body)  # the draft is outside the association filter
    assert {s["fileName"] for s in body["sources"]} == {"policy.txt"}
    assert all(s["recordId"].startswith("rec_") and s["quote"] for s in body["sources"])


def test_nothing_in_reach_says_so(app_client: TestClient) -> None:
    body = _ask(app_client, _default_agent(app_client), "What is the capital of Peru?")
    assert body["type"] == "text" and "Nothing in the data you can reach" in body["message"]
    assert body["sources"] == []


def test_a_users_private_file_in_an_associated_dataset_stays_theirs(
        app_client: TestClient) -> None:
    """The dataset is readable by every user of the org, one of its files is u1's own: the
    tools of u2's conversation neither list it nor return its records."""
    ds = create_dataset(app_client, visibility="protected")
    shared = create_file(app_client, b"Opening hours. The office opens at nine.",
                         name="shared.txt")
    app_client.post(f"/api/v1/file/{shared}/update", json={"visibility": "protected"})
    as_u1 = TestClient(app_client.app, headers={**app_client.headers, "X-RunAs-User-Id": "u1"})
    mine = create_file(as_u1, b"Private note. My salary review asks for a raise of 7 percent.",
                       name="u1-note.txt")
    for fid in (shared, mine):
        sync(app_client, ds, fid)
    agent = _default_agent(app_client)
    r = app_client.post(f"/api/assistants/{agent}/datasets", json={"datasetId": ds})
    assert r.status_code == 201, r.text
    ctx = app_client.app.state.ctx  # type: ignore[attr-defined]

    def tools(user: str) -> Tools:
        return Tools(ctx, Scope(principal_of(ctx, KEY, user, None), agent))

    def names(user: str) -> set[str]:
        return {f["name"] for f in tools(user).call("list_files", {})["files"]}

    owner = tools("u1").call("search", {"query": "salary review raise"})["results"]
    theirs = [h["recordId"] for h in owner if h["fileId"] == mine]
    assert theirs and names("u1") == {"shared.txt", "u1-note.txt"}
    assert names("u2") == {"shared.txt"}
    found = tools("u2").call("search", {"query": "salary review raise"})["results"]
    assert all(h["fileId"] == shared for h in found), found
    with pytest.raises(ToolError) as refused:
        tools("u2").call("read_record", {"recordId": theirs[0]})
    assert refused.value.kind == "not_found"
    assert "u1-note" not in summary(tools("u2"))
    assert "Documents (2):" in summary(tools("u1")) and "- u1-note.txt" in summary(tools("u1"))
