"""Retrieval-only answers (no model configured) over documents of an associated dataset:
quoted passages with their files, within the association filter, and nothing at all for a
question the data does not answer."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

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
