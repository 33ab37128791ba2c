"""The agent through the unmodified `inconvo` SDK against a live server on each backend:
conversations (create, list paged, retrieve), responses (whole and streamed, retrieved with
their trace), feedback, data-summary, and seed 000's two questions for a user inside and a
user outside `orgId=org_456`, with a scripted OpenAI-compatible model and with no model."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import BackendSettings
from tests.e2e.test_inconvo_sdks import node, node_sdk  # noqa: F401 - fixtures
from tests.support.chat_server import ChatServer, Step, tool_messages
from tests.support.live import LiveServer, backend_env
from tests.support.mentions import mentions
from tests.support.node import run_steps

inconvo = pytest.importorskip("inconvo")

PRICING = b"plan,price\nStarter,19\nPro,79\nEnterprise,1299\n"
ACTUALS = b"region,sales\nnorth,1320\nsouth,955\n"
TARGETS = b"region,target\nnorth,1500\nsouth,900\n"
INSIDER = ("user_123", {"orgId": "org_456"})
OUTSIDER = ("user_999", {"orgId": "org_789"})
PRICE_Q = "What's the price for the Enterprise plan?"
COMPARE_Q = "How do our actual sales compare to the targets in my uploaded file?"


def model(body: dict[str, Any]) -> Step:
    """A scripted model that reads its tool results like a real one would."""
    question = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
    results = tool_messages(body)
    if question == PRICE_Q:
        if not results:
            return {"tool_calls": [{"name": "search", "arguments": json.dumps(
                {"query": "Enterprise plan price"})}]}
        rows = [r["text"] for r in results[-1].get("results", []) if "Enterprise" in r["text"]]
        return {"content": f"Found: {rows[0]}" if rows else "I found no pricing information."}
    if question == COMPARE_Q:
        if not results:
            return {"tool_calls": [{"name": "schema", "arguments": "{}"}]}
        if len(results) == 1:
            names = {t["name"] for t in results[0]["tables"]}
            if not {"sales_actuals", "targets"} <= names:
                return {"content": "I found no sales or targets data you can see."}
            return {"tool_calls": [{"name": "sql", "arguments": json.dumps({
                "sql": "SELECT a.region, a.sales, t.target FROM sales_actuals a "
                       "JOIN targets t USING (region) ORDER BY a.region",
                "present": "table"})}]}
        rows = results[-1]["rows"]
        return {"content": "; ".join(f"{r[0]}: sales {r[1]} vs target {r[2]}" for r in rows)}
    return {"content": "Hello."}


@pytest.fixture(scope="module")
def chat() -> Iterator[ChatServer]:
    with ChatServer() as server:
        server.script = model
        yield server


@pytest.fixture(scope="module", params=["model", "no-model"])
def app(request: pytest.FixtureRequest, backend: str, backend_settings: BackendSettings,
        chat: ChatServer, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[tuple[str, LiveServer]]:
    tmp = tmp_path_factory.mktemp("agent")
    env = {"DATALOFT_SYNC_COOLDOWN_SECONDS": "0", "DATALOFT_JOB_POLL_SECONDS": "0.05"}
    if request.param == "model":
        env.update({"DATALOFT_LLM_URL": chat.url, "DATALOFT_LLM_MODEL": "scripted",
                    "DATALOFT_AGENT_MAX_ITERATIONS": "4", "DATALOFT_LLM_TIMEOUT_SECONDS": "2",
                    "DATALOFT_AGENT_DEADLINE_SECONDS": "30",
                    "DATALOFT_AGENT_KEEPALIVE_SECONDS": "0.2"})
    if backend == "postgres":
        env.update(backend_env(backend, backend_settings(tmp), request))
    live = LiveServer(data_dir=tmp / "data", env_extra=env).start()
    try:
        yield request.param, live
    finally:
        live.stop()


def sdk(server: LiveServer, headers: dict[str, str] | None = None,
        key: str | None = None) -> Any:
    return inconvo.Inconvo(api_key=key or server.key, base_url=f"{server.url}/api/v1",
                           max_retries=0, default_headers=headers or {})


@pytest.fixture(scope="module")
def world(app: tuple[str, LiveServer]) -> dict[str, Any]:
    """Seed 000's data on the default agent: pricing and actual sales for org_456's context,
    targets.csv of user_123; waits until the insider's agent sees all three tables."""
    _, client = app
    items = httpx.get(f"{client.url}/api/v1/assistant/list",
                      headers=client.headers).json()["items"]
    agent = next(a["id"] for a in items if a["default"])
    datasets = sdk(client).agents.datasets
    datasets.context.upload("org_456", agent_id=agent, context_key="orgId",
                            file=("company_pricing.csv", PRICING, "text/csv"))
    datasets.context.upload("org_456", agent_id=agent, context_key="orgId",
                            file=("sales_actuals.csv", ACTUALS, "text/csv"))
    datasets.user.upload("user_123", agent_id=agent, file=("targets.csv", TARGETS, "text/csv"))
    insider = sdk(client, {"X-RunAs-User-Id": "user_123",
                           "X-User-Context": json.dumps({"orgId": "org_456"})})
    deadline = time.monotonic() + 60
    while True:
        summary = insider.agents.data_summary.retrieve(agent).data_summary
        if "Tables (3)" in summary:
            break
        assert time.monotonic() < deadline, summary
        time.sleep(0.1)
    return {"agent": agent, "summary": summary}


def test_conversations_list_retrieve_and_feedback(app: tuple[str, LiveServer],
                                                  world: dict[str, Any]) -> None:
    _, client = app
    agents = sdk(client).agents
    agent = world["agent"]
    made = [agents.conversations.create(agent, user_identifier="pager",
                                        user_context={"orgId": "org_456"}).id
            for _ in range(5)]
    assert all(m and m.startswith("conv_") for m in made)
    first = agents.conversations.list(agent, limit=2, user_identifier="pager")
    assert len(first.items) == 2 and first.next_cursor
    seen = [c.id for c in agents.conversations.list(agent, limit=2, user_identifier="pager")]
    assert seen == list(reversed(made))  # auto-paging, newest first, each once
    assert [c.id for c in agents.conversations.list(
        agent, user_identifier="pager", user_context={"orgId": "org_999"})] == []
    item = first.items[0]
    assert item.user_identifier == "pager" and item.user_context == {"orgId": "org_456"}

    conv = made[0]
    reply = agents.conversations.response.create(conv, agent_id=agent, message="Hello there")
    assert reply.conversation_id == conv and reply.id and reply.type in ("text", "table")
    got = agents.conversations.retrieve(conv, agent_id=agent)
    assert [m.message for m in got.messages][0] == "Hello there"
    assert got.messages[1].id == reply.id and got.user_identifier == "pager"

    fb = agents.conversations.response.feedback.create(reply.id, agent_id=agent,
                                                       conversation_id=conv, rating="positive")
    assert fb.rating == "positive" and fb.comment is None
    fb2 = agents.conversations.response.feedback.update(
        fb.id, agent_id=agent, conversation_id=conv, response_id=reply.id,
        rating="negative", comment="wrong plan")
    assert (fb2.id, fb2.rating, fb2.comment) == (fb.id, "negative", "wrong plan")
    other = sdk(client).agents.conversations.create(agent, user_identifier="someone").id
    with pytest.raises(inconvo.NotFoundError):
        agents.conversations.response.retrieve(reply.id, agent_id=agent, conversation_id=other)


def test_data_summary_names_tables_columns_and_counts(world: dict[str, Any]) -> None:
    summary = world["summary"]
    assert "company_pricing" in summary and "plan" in summary and "3 rows" in summary


def _ask(client: LiveServer, agent: str, who: tuple[str, dict[str, str]], question: str,
         stream: bool) -> tuple[str, dict[str, Any], Any]:
    agents = sdk(client).agents
    conv = agents.conversations.create(agent, user_identifier=who[0], user_context=who[1]).id
    if stream:
        events = list(agents.conversations.response.create(conv, agent_id=agent,
                                                           message=question, stream=True))
        kinds = [e["type"] for e in events]
        assert kinds[0] == "response.created" and kinds[-1] == "response.completed", kinds
        body = events[-1]["response"]
    else:
        raw = agents.conversations.response.with_raw_response.create(conv, agent_id=agent,
                                                                     message=question)
        assert raw.headers["content-type"].startswith("application/json")
        body = raw.json()
    trace = agents.conversations.response.retrieve(body["id"], agent_id=agent,
                                                   conversation_id=conv)
    return conv, body, trace


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_seed_price_question_inside_and_outside_the_context(
        app: tuple[str, LiveServer], world: dict[str, Any], stream: bool) -> None:
    mode, client = app
    _, inside, trace = _ask(client, world["agent"], INSIDER, PRICE_Q, stream)
    assert "1299" in inside["message"], inside
    assert trace.trace and trace.trace[0].name == "search" and trace.input.message == PRICE_Q
    assert "1299" in json.dumps(trace.trace[0].output)
    assert any(s["fileName"] == "company_pricing.csv" for s in inside["sources"]), inside
    if mode == "no-model":
        assert "No language model is configured" in inside["message"]
        assert inside["type"] == "table" and any("1299" in row for row in
                                                 inside["table"]["body"])
    _, outside, trace = _ask(client, world["agent"], OUTSIDER, PRICE_Q, stream)
    assert not mentions(outside, "1299") and not mentions(trace.to_dict(), "1299")


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_seed_comparison_question_inside_and_outside(
        app: tuple[str, LiveServer], world: dict[str, Any], stream: bool) -> None:
    mode, client = app
    _, inside, trace = _ask(client, world["agent"], INSIDER, COMPARE_Q, stream)
    text = json.dumps(inside)
    assert all(n in text for n in ("1320", "1500", "955", "900")), inside
    if mode == "model":
        assert inside["type"] == "table"
        assert inside["table"] == {"head": ["region", "sales", "target"],
                                   "body": [["north", "1320", "1500"], ["south", "955", "900"]]}
        assert [t.name for t in trace.trace] == ["schema", "sql"]
    _, outside, trace = _ask(client, world["agent"], OUTSIDER, COMPARE_Q, stream)
    text = json.dumps(outside) + json.dumps(trace.to_dict())
    assert not any(mentions(text, n) for n in ("1320", "1500", "955")), outside


def test_end_user_token_converses_only_as_itself(app: tuple[str, LiveServer],
                                                 world: dict[str, Any]) -> None:
    _, client = app
    token = httpx.post(f"{client.url}/api/v1/token/create", headers=client.headers, json={
        "userIdentifier": "user_123", "userContext": {"orgId": "org_456"}}).json()["token"]
    user = sdk(client, key=token)
    agent = world["agent"]
    with pytest.raises(inconvo.BadRequestError):
        user.agents.conversations.create(agent, user_identifier="user_999")
    mine = user.agents.conversations.create(agent, user_identifier="user_123").id
    theirs = sdk(client).agents.conversations.create(agent, user_identifier="user_999").id
    with pytest.raises(inconvo.NotFoundError):
        user.agents.conversations.retrieve(theirs, agent_id=agent)
    listed = list(user.agents.conversations.list(agent))
    assert mine in [c.id for c in listed] and theirs not in [c.id for c in listed]
    assert {c.user_identifier for c in listed} == {"user_123"}
    reply = user.agents.conversations.response.create(mine, agent_id=agent, message=PRICE_Q)
    assert "1299" in reply.message
    r = httpx.delete(f"{client.url}/api/v1/agents/{agent}/conversations/{mine}",
                      headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    with pytest.raises(inconvo.NotFoundError):
        user.agents.conversations.retrieve(mine, agent_id=agent)


def test_stream_only_when_asked(app: tuple[str, LiveServer], world: dict[str, Any]) -> None:
    _, client = app
    agent = world["agent"]
    headers = {**client.headers, "Accept": "text/event-stream"}
    http = httpx.Client(base_url=client.url, timeout=60)
    conv = http.post(f"/api/v1/agents/{agent}/conversations", headers=headers,
                       json={"userIdentifier": "u1"}).json()["id"]
    r = http.post(f"/api/v1/agents/{agent}/conversations/{conv}/response", headers=headers,
                    json={"message": "hi"})
    assert r.headers["content-type"].startswith("application/json") and r.json()["id"]
    r = http.post(f"/api/v1/agents/{agent}/conversations/{conv}/response", headers=headers,
                    json={"message": "hi", "stream": True})
    assert r.headers["content-type"].startswith("text/event-stream")
    frames = [json.loads(line[6:]) for line in r.text.splitlines()
              if line.startswith("data: ")]
    assert frames[-1]["type"] == "response.completed", frames



def test_node_sdk_conversations(app: tuple[str, LiveServer], world: dict[str, Any],
                                node: str, node_sdk: Path) -> None:  # noqa: F811
    """@inconvoai/node: create, list paged, response whole and streamed, retrieve with trace,
    feedback, data summary, and the outsider's empty answer (js_inconvo/agent_conversations)."""
    _, server = app
    steps, report = run_steps(node, node_sdk / "agent_conversations.mjs", node_sdk, server,
                              timeout=120)
    names = [s["step"] for s in steps]
    assert "response.create streamed" in names and "outsider sees nothing" in names, report
