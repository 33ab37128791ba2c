"""The model loop against a scripted OpenAI-compatible server that misbehaves: a timeout, 5xx,
429 then success, malformed tool arguments, endless tool calls. Each ends in an answer
(`error` where the model failed) with its trace, never a 5xx or a hang."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataloft.agent.llm import ChatClient
from dataloft.app import create_app
from tests.conftest import KEY, BackendSettings
from tests.support.chat_server import ChatServer, Step


@pytest.fixture(scope="module")
def chat() -> Iterator[ChatServer]:
    with ChatServer() as server:
        yield server


@pytest.fixture(scope="module")
def client(backend_settings: BackendSettings, chat: ChatServer,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = backend_settings(tmp_path_factory.mktemp("loop"), llm_url=chat.url,
                                llm_timeout_seconds=5.0, agent_max_iterations=3,
                                agent_deadline_seconds=20.0, agent_keepalive_seconds=0.2)
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {KEY}"}) as c:
        yield c


def ask(client: TestClient, message: str = "anything?", stream: bool = False,
        raw: list[str] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """One answer and its stored detail; `raw` collects a streamed reply's text."""
    agent = next(a["id"] for a in client.get("/api/v1/assistant/list").json()["items"]
                 if a["default"])
    conv = client.post(f"/api/v1/agents/{agent}/conversations",
                       json={"userIdentifier": "u1"}).json()["id"]
    r = client.post(f"/api/v1/agents/{agent}/conversations/{conv}/response",
                    json={"message": message, "stream": stream})
    assert r.status_code == 200, r.text
    if stream:
        if raw is not None:
            raw.append(r.text)
        frames = [json.loads(line[6:]) for line in r.text.splitlines()
                  if line.startswith("data: ")]
        assert frames[-1]["type"] == "response.completed", frames
        body = frames[-1]["response"]
    else:
        body = r.json()
    trace = client.get(f"/api/v1/agents/{agent}/conversations/{conv}/response/{body['id']}")
    assert trace.status_code == 200, trace.text
    return body, trace.json()


def script(chat: ChatServer, steps: list[Step]) -> None:
    """Reply with the steps in turn, repeating the last one."""
    it = iter(steps)
    last: list[Step] = [steps[-1]]

    def next_step(body: dict[str, Any]) -> Step:
        step = next(it, last[0])
        return step

    chat.script = next_step


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_model_timeout_is_an_error_answer(client: TestClient, chat: ChatServer,
                                          stream: bool) -> None:
    script(chat, [{"sleep": 8, "content": "too late"}])
    raw: list[str] = []
    body, trace = ask(client, stream=stream, raw=raw)
    assert body["type"] == "error" and "in time" in body["message"], body
    assert trace["output"]["type"] == "error"
    if stream:  # the silent wait for the model was bridged by keep-alive comments
        assert ": keep-alive\n\n" in raw[0]


@pytest.mark.timeout(120)  # what failing looks like: the request never returns
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_model_that_never_finishes_meets_the_deadline(
        backend_settings: BackendSettings, chat: ChatServer,
        tmp_path_factory: pytest.TempPathFactory, stream: bool) -> None:
    """Never silent for the read timeout, never done: only the total deadline ends it.
    (On a loaded host a gap between two pieces can outlast the remaining time: that read
    timeout is the deadline too.)"""
    settings = backend_settings(tmp_path_factory.mktemp("drip"), llm_url=chat.url,
                                llm_timeout_seconds=30.0, agent_deadline_seconds=2.0)
    script(chat, [{"drip": 0.1}])
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {KEY}"}) as c:
        body, trace = ask(c, stream=stream)
    assert body["type"] == "error", body
    assert "deadline" in body["message"] or "in time" in body["message"], body
    assert trace["output"]["type"] == "error"


def test_progress_frames_report_the_tools_and_the_text(client: TestClient,
                                                       chat: ChatServer) -> None:
    script(chat, [{"tool_calls": [{"name": "list_files", "arguments": "{}"}]},
                  {"content": "Nothing is uploaded yet, so I cannot tell."}])
    raw: list[str] = []
    body, _ = ask(client, stream=True, raw=raw)
    frames = [json.loads(line[6:]) for line in raw[0].splitlines() if line.startswith("data: ")]
    assert frames[0] == {"type": "response.created", "id": body["id"],
                         "conversationId": body["conversationId"]}
    progress = [f["message"] for f in frames if f["type"] == "response.progress"]
    assert progress[0] == "Running list_files", frames
    assert "".join(progress[1:]) == body["message"] == "Nothing is uploaded yet, so I cannot tell."


def test_model_500_is_retried_then_an_error_answer(client: TestClient,
                                                   chat: ChatServer) -> None:
    before = len(chat.requests)
    script(chat, [{"status": 500}])
    body, _ = ask(client)
    assert body["type"] == "error" and "500" in body["message"], body
    assert len(chat.requests) - before == 4  # the first try and three retries


def test_429_then_success_answers(client: TestClient, chat: ChatServer) -> None:
    script(chat, [{"status": 429, "retry_after": 0}, {"status": 503}, {"content": "fine"}])
    body, _ = ask(client)
    assert (body["type"], body["message"]) == ("text", "fine"), body


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_malformed_tool_arguments_are_told_to_the_model(client: TestClient, chat: ChatServer,
                                                        stream: bool) -> None:
    script(chat, [{"tool_calls": [{"name": "search", "arguments": "{not json"}]},
                  {"tool_calls": [{"name": "sql", "arguments": json.dumps({"sql": 5})}]},
                  {"tool_calls": [{"name": "nope", "arguments": "{}"}]}])
    body, trace = ask(client, stream=stream)
    assert body["type"] == "error" and "3 model calls" in body["message"], body
    errors = [t["output"]["error"]["type"] for t in trace["trace"]]
    assert errors == ["invalid_arguments", "invalid_arguments", "unknown_tool"], trace
    assert trace["trace"][0]["input"] == "{not json"
    # what the model was told: the typed error, as the tool's result
    told = [m for m in chat.requests[-1]["messages"] if m["role"] == "tool"]
    assert json.loads(told[0]["content"])["error"]["type"] == "invalid_arguments"


def test_endless_tool_calls_stop_at_the_cap(client: TestClient, chat: ChatServer) -> None:
    script(chat, [{"tool_calls": [{"name": "list_files", "arguments": "{}"}]}])
    body, trace = ask(client)
    assert body["type"] == "error" and "stopped after 3" in body["message"], body
    assert [t["name"] for t in trace["trace"]] == ["list_files"] * 3
    assert trace["trace"][0]["output"] == {"files": []}


def test_unreachable_model_is_an_error_answer(backend_settings: BackendSettings,
                                              tmp_path_factory: pytest.TempPathFactory) -> None:
    settings = backend_settings(tmp_path_factory.mktemp("gone"),
                                llm_url="http://127.0.0.1:9/v1", agent_deadline_seconds=3.0)
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {KEY}"}) as c:
        body, _ = ask(c)
    assert body["type"] == "error" and "unreachable" in body["message"], body


def test_instructions_and_model_of_the_assistant_reach_the_model(client: TestClient,
                                                                 chat: ChatServer) -> None:
    script(chat, [{"content": "ok"}])
    agent = next(a["id"] for a in client.get("/api/v1/assistant/list").json()["items"]
                 if a["default"])
    r = client.post(f"/api/v1/assistant/{agent}/update",
                    json={"instructions": "Answer like a pirate.", "model": "pirate-7b"})
    assert r.status_code == 200, r.text
    ask(client)
    sent = chat.requests[-1]
    assert sent["model"] == "pirate-7b"
    assert "Answer like a pirate." in sent["messages"][0]["content"]
    assert {t["function"]["name"] for t in sent["tools"]} == {
        "search", "sql", "schema", "list_files", "read_record"}


def test_chart_answer_has_a_vega_lite_v6_spec_and_the_legacy_chart(client: TestClient,
                                                                   chat: ChatServer) -> None:
    agent = next(a["id"] for a in client.get("/api/v1/assistant/list").json()["items"]
                 if a["default"])
    r = client.post("/api/v1/datasets/user/u1", files={
        "file": ("monthly.csv", b"month,revenue\n2026-01,120\n2026-02,150\n", "text/csv")})
    assert r.status_code == 200, r.text
    as_u1 = {"X-RunAs-User-Id": "u1"}
    deadline = time.monotonic() + 60
    while "monthly from monthly.csv" not in client.get(f"/api/v1/agents/{agent}/data-summary",
                                      headers=as_u1).json()["dataSummary"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    script(chat, [{"tool_calls": [{"name": "sql", "arguments": json.dumps(
        {"sql": "SELECT month, revenue FROM monthly ORDER BY month", "present": "chart"})}]},
        {"content": "Revenue grew from 120 to 150."}])
    body, trace = ask(client)
    assert body["type"] == "chart", body
    assert body["table"] == {"head": ["month", "revenue"],
                             "body": [["2026-01", "120"], ["2026-02", "150"]]}
    assert body["chart"]["data"] == {"labels": ["2026-01", "2026-02"],
                                     "datasets": [{"name": "revenue", "values": [120, 150]}]}
    spec = body["spec"]
    assert spec["$schema"] == "https://vega.github.io/schema/vega-lite/v6.json"
    assert spec["data"]["values"] == [{"month": "2026-01", "revenue": 120},
                                      {"month": "2026-02", "revenue": 150}]
    assert trace["output"]["type"] == "chart" and trace["output"]["spec"] == spec
    # Bars keep the statement's own ORDER BY, not the largest-first
    # default of a chart without one.
    for sql, sort in (("SELECT 'm' || month AS label, revenue FROM monthly "
                       "ORDER BY revenue DESC", None),
                      ("SELECT 'm' || month AS label, revenue FROM monthly", "-y")):
        script(chat, [{"tool_calls": [{"name": "sql", "arguments": json.dumps(
            {"sql": sql, "present": "chart"})}]}, {"content": "Revenue by month."}])
        body, _ = ask(client)
        assert body["spec"]["encoding"]["x"] == {"field": "label", "type": "nominal",
                                                 "sort": sort}, body


def test_a_conversation_deleted_while_answering_ends_the_stream_with_an_error(
        client: TestClient, chat: ChatServer) -> None:
    agent = next(a["id"] for a in client.get("/api/v1/assistant/list").json()["items"]
                 if a["default"])
    base = f"/api/v1/agents/{agent}/conversations"
    conv = client.post(base, json={"userIdentifier": "u1"}).json()["id"]
    asked = threading.Event()

    def slow(body: dict[str, Any]) -> Step:
        asked.set()
        return {"sleep": 0.5, "content": "an answer nobody will see"}

    chat.script = slow
    replies: list[str] = []
    worker = threading.Thread(target=lambda: replies.append(client.post(
        f"{base}/{conv}/response", json={"message": "hi", "stream": True}).text))
    worker.start()
    assert asked.wait(60)
    assert client.delete(f"{base}/{conv}").status_code == 200
    worker.join(60)
    frames = [json.loads(line[6:]) for line in replies[0].splitlines()
              if line.startswith("data: ")]
    assert [f["type"] for f in frames][0] == "response.created", frames
    assert frames[-1]["type"] == "response.error", frames
    assert "conversation" in frames[-1]["error"]["message"], frames


def test_the_api_key_is_sent_as_a_bearer_token(chat: ChatServer) -> None:
    script(chat, [{"content": "ok"}])
    for key, sent in (("sk-test-123", "Bearer sk-test-123"), ("", None)):
        reply = ChatClient(chat.url, key, 5.0).complete(
            "m", [{"role": "user", "content": "hi"}], [], deadline=time.monotonic() + 30)
        assert reply.content == "ok"
        assert chat.headers[-1].get("Authorization") == sent


MALFORMED = {  # replies of the right status and type whose shape is wrong
    "whole": ['{"choices": [{"message": "hi"}]}', '{"choices": []}', '[1]', 'not json',
              '{"choices": [{"message": {"tool_calls": [{"function": 5}]}}]}'],
    "streamed": ['data: [1]\n\n', 'data: {"choices": [{"delta": "x"}]}\n\n',
                 'data: {nope\n\n',
                 'data: {"choices": [{"delta": {"tool_calls": [{"index": "a"}]}}]}\n\n'],
}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_malformed_model_reply_is_an_error_answer_that_keeps_the_trace(
        client: TestClient, chat: ChatServer, stream: bool) -> None:
    for raw in MALFORMED["streamed" if stream else "whole"]:
        script(chat, [{"tool_calls": [{"name": "list_files", "arguments": "{}"}]},
                      {"raw": raw}])
        body, trace = ask(client, stream=stream)
        assert body["type"] == "error" and "malformed" in body["message"], (raw, body)
        assert [t["name"] for t in trace["trace"]] == ["list_files"], (raw, trace)


def test_a_table_is_shown_only_when_it_is_the_last_tool_result(client: TestClient,
                                                               chat: ChatServer) -> None:
    shown = {"name": "sql", "arguments": json.dumps({"sql": "SELECT 7 AS n",
                                                      "present": "table"})}
    files = {"name": "list_files", "arguments": "{}"}
    script(chat, [{"tool_calls": [files]}, {"tool_calls": [shown]}, {"content": "Seven."}])
    body, _ = ask(client)
    assert body["type"] == "table" and body["table"] == {"head": ["n"], "body": [["7"]]}, body
    script(chat, [{"tool_calls": [shown]}, {"tool_calls": [files]}, {"content": "Seven."}])
    body, _ = ask(client)
    assert (body["type"], body.get("table")) == ("text", None), body
