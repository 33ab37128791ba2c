"""The MCP server: the agent's one tool set for MCP clients (Claude, Cursor, the OpenAI
Agents SDK, LangGraph ...), over streamable HTTP (mounted at /mcp) or stdio (`dataloft mcp`).

Each tool call runs as the principal of its credential, resolved per call by `Resolve`
from the HTTP request (None over stdio, where the credential comes from the environment).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError as McpToolError

from dataloft.agent.scope import Deps, Scope
from dataloft.agent.tools import SPECS, ToolError, Tools
from dataloft.kit.principal import Principal

INSTRUCTIONS = ("Tools over the caller's datasets: `schema` and `sql` (DuckDB SQL, read-only) "
                "for tables, `search` and `read_record` for documents and rows, `list_files` "
                "for what exists. Everything is limited to what the credential may see.")


@dataclass(frozen=True)
class Access:
    deps: Deps
    principal: Principal
    assistant_id: str


# The HTTP request of a call (a Starlette Request), or None over stdio -> who asks.
Resolve = Callable[[Any], Access]


def _description(name: str) -> str:
    return str(next(s["description"] for s in SPECS if s["name"] == name))


def build(resolve: Resolve) -> MCPServer:
    server = MCPServer("dataloft", instructions=INSTRUCTIONS)

    async def run(ctx: Context, name: str, args: dict[str, Any]) -> dict[str, Any]:
        request = ctx.request_context.request

        def call() -> dict[str, Any]:
            access = resolve(request)
            tools = Tools(access.deps, Scope(access.principal, access.assistant_id))
            return tools.call(name, args)

        try:
            return await anyio.to_thread.run_sync(call)
        except ToolError as exc:
            raise McpToolError(json.dumps(exc.render())) from exc

    @server.tool(name="search", description=_description("search"))
    async def search(query: str, ctx: Context, take: int = 8,
                     filter: dict[str, Any] | None = None) -> dict[str, Any]:
        return await run(ctx, "search", {"query": query, "take": take, "filter": filter})

    @server.tool(name="sql", description=_description("sql"))
    async def sql(sql: str, ctx: Context) -> dict[str, Any]:
        return await run(ctx, "sql", {"sql": sql})

    @server.tool(name="schema", description=_description("schema"))
    async def schema(ctx: Context) -> dict[str, Any]:
        return await run(ctx, "schema", {})

    @server.tool(name="list_files", description=_description("list_files"))
    async def list_files(ctx: Context) -> dict[str, Any]:
        return await run(ctx, "list_files", {})

    @server.tool(name="read_record", description=_description("read_record"))
    async def read_record(recordId: str, ctx: Context) -> dict[str, Any]:  # noqa: N803
        return await run(ctx, "read_record", {"recordId": recordId})

    return server
