"""The MCP server through the official `mcp` client: streamable HTTP at /mcp on a live server
(tools listed; search and sql scoped per credential; a bad credential is 401 with
WWW-Authenticate) and `dataloft mcp` over stdio."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import BackendSettings
from tests.support.live import REPO, LiveServer, backend_env
from tests.support.mentions import mentions

PRICING = b"plan,price\nStarter,19\nEnterprise,1299\n"
NOTES = b"region,note\nnorth,quokka-memo-77\n"
TOOLS = {"search", "sql", "schema", "list_files", "read_record"}


@pytest.fixture(scope="module")
def server(backend: str, backend_settings: BackendSettings, request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("mcp")
    env = {"DATALOFT_SYNC_COOLDOWN_SECONDS": "0", "DATALOFT_JOB_POLL_SECONDS": "0.05"}
    if backend == "postgres":
        env.update(backend_env(backend, backend_settings(tmp), request))
    live = LiveServer(data_dir=tmp / "data", env_extra=env).start()
    try:
        _seed(live)
        yield live
    finally:
        live.stop()


def _seed(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url, headers=live.headers, timeout=60) as http:
        r = http.post("/api/v1/datasets/context/orgId/org_456",
                      files={"file": ("company_pricing.csv", PRICING, "text/csv")})
        assert r.status_code == 200, r.text
        r = http.post("/api/v1/datasets/user/user_123",
                      files={"file": ("notes.csv", NOTES, "text/csv")})
        assert r.status_code == 200, r.text
    deadline = time.monotonic() + 60
    while len(_tool(live, _token(live, "user_123", {"orgId": "org_456"}), "schema", {})[
            "tables"]) < 2:
        assert time.monotonic() < deadline, "the uploads were not synced"
        time.sleep(0.2)


def _token(live: LiveServer, user: str, context: dict[str, str]) -> str:
    r = httpx.post(f"{live.url}/api/v1/token/create", headers=live.headers,
                   json={"userIdentifier": user, "userContext": context})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


async def _session(live: LiveServer, headers: dict[str, str], work: Any) -> Any:
    async with httpx2.AsyncClient(headers=headers, timeout=60) as http, \
            Client(streamable_http_client(f"{live.url}/mcp", http_client=http)) as client:
        return await work(client)


def _tool(live: LiveServer, credential: str, name: str, args: dict[str, Any],
          extra: dict[str, str] | None = None) -> dict[str, Any]:
    async def work(client: Client) -> Any:
        return await client.call_tool(name, args)

    result = asyncio.run(_session(live, {"Authorization": f"Bearer {credential}",
                                         **(extra or {})}, work))
    text = "".join(getattr(c, "text", "") for c in result.content)
    if result.is_error if hasattr(result, "is_error") else result.isError:
        return {"toolError": text}
    return result.structured_content if hasattr(result, "structured_content") \
        else result.structuredContent or json.loads(text)


def test_tools_are_listed(server: LiveServer) -> None:
    async def work(client: Client) -> Any:
        return await client.list_tools()

    listed = asyncio.run(_session(server, server.headers, work))
    assert {t.name for t in listed.tools} == TOOLS
    search = next(t for t in listed.tools if t.name == "search")
    schema = search.input_schema if hasattr(search, "input_schema") else search.inputSchema
    assert schema["required"] == ["query"]


def test_search_and_sql_are_scoped_per_token(server: LiveServer) -> None:
    insider = _token(server, "user_123", {"orgId": "org_456"})
    outsider = _token(server, "user_999", {"orgId": "org_789"})
    found = _tool(server, insider, "search", {"query": "Enterprise plan price"})
    assert any("1299" in r["text"] for r in found["results"]), found
    assert found["results"][0]["fileName"] == "company_pricing.csv"
    record = _tool(server, insider, "read_record", {"recordId": found["results"][0]["recordId"]})
    assert record["fileName"] == "company_pricing.csv"
    rows = _tool(server, insider, "sql", {"sql": "SELECT price FROM company_pricing "
                                                 "WHERE plan = 'Enterprise'"})
    assert rows["rows"] == [[1299]], rows
    assert _tool(server, insider, "sql", {"sql": "SELECT note FROM notes"})["rows"] == [
        ["quokka-memo-77"]]

    nothing = _tool(server, outsider, "search", {"query": "Enterprise plan price"})
    assert not mentions(nothing, "1299") and "quokka" not in json.dumps(nothing)
    refused = _tool(server, outsider, "sql", {"sql": "SELECT * FROM company_pricing"})
    assert "toolError" in refused and not mentions(refused, "1299")
    assert not mentions(_tool(server, outsider, "read_record", {
        "recordId": found["results"][0]["recordId"]}), "1299")
    assert _tool(server, outsider, "list_files", {}) == {"files": []}
    # an API key acting for the insider sees what the insider's token sees
    acting = _tool(server, server.key, "sql", {"sql": "SELECT count(*) FROM notes"},
                   {"X-RunAs-User-Id": "user_123",
                    "X-User-Context": json.dumps({"orgId": "org_456"})})
    assert acting["rows"] == [[1]]


@pytest.mark.parametrize("authorization", ["Bearer dlk_not_a_key_0123456789abcdef", None,
                                           "Bearer dlt_forged.x.y", "Basic abc"])
def test_bad_credential_is_401_with_www_authenticate(server: LiveServer,
                                                      authorization: str | None) -> None:
    headers = {"Accept": "application/json, text/event-stream"}
    if authorization is not None:
        headers["Authorization"] = authorization
    r = httpx.post(f"{server.url}/mcp", headers=headers,
        json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}})
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"].startswith("Bearer"), r.headers


def test_stdio_mode_starts_and_serves_the_tools(server: LiveServer) -> None:
    """On the live server's data: its directory, and its database and bucket in cluster
    mode (env_extra), as a stdio client on that host would run it."""
    env = {**os.environ, **server.env_extra, "DATALOFT_DATA_DIR": str(server.data_dir),
           "DATALOFT_API_KEY": server.key, "DATALOFT_RUNAS_USER_ID": "user_123",
           "DATALOFT_USER_CONTEXT": json.dumps({"orgId": "org_456"}),
           "DATALOFT_LOG_LEVEL": "warning", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    params = StdioServerParameters(command=sys.executable, args=["-m", "dataloft.cli", "mcp"],
                                   env=env, cwd=str(REPO))

    async def run() -> tuple[set[str], Any]:
        async with Client(params) as client:
            tools = await client.list_tools()
            result = await client.call_tool("sql", {"sql": "SELECT note FROM notes"})
            return {t.name for t in tools.tools}, result

    names, result = asyncio.run(asyncio.wait_for(run(), 120))
    assert names == TOOLS
    assert "quokka-memo-77" in json.dumps([getattr(c, "text", "") for c in result.content])




def test_x_agent_id_picks_the_assistant_by_id_or_alias(server: LiveServer) -> None:
    """The uploads belong to the default assistant: through another one (named by its
    alias) the same token reaches none of them; an unknown assistant is 404, not 401."""
    r = httpx.post(f"{server.url}/api/v1/assistant/create", headers=server.headers,
                   json={"name": "other", "alias": "team:mcp-other"})
    assert r.status_code == 200, r.text
    insider = _token(server, "user_123", {"orgId": "org_456"})
    other = _tool(server, insider, "schema", {}, {"X-Agent-Id": "team:mcp-other"})
    assert other == {"tables": []}, other
    default = _tool(server, insider, "schema", {})
    assert {t["name"] for t in default["tables"]} >= {"company_pricing", "notes"}
    r = httpx.post(f"{server.url}/mcp", headers={
        "Authorization": f"Bearer {insider}", "X-Agent-Id": "agt_nope",
        "Accept": "application/json, text/event-stream"},
        json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}})
    assert r.status_code == 404, r.text
