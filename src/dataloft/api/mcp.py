"""/mcp: the MCP server over streamable HTTP, behind our credentials.

A request with no valid credential is answered 401 with `WWW-Authenticate` before the MCP
transport sees it; each tool call then resolves its principal from the same headers (an API
key, optionally acting for an end-user via X-RunAs-User-Id / X-User-Context, or an end-user
token). `X-Agent-Id` picks the assistant whose scope the tools reach (id or alias; the org's
default assistant otherwise)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from dataloft.agent import mcp
from dataloft.api.deps import get_principal, principal_of
from dataloft.api.errors import envelope
from dataloft.assistants import service as assistants
from dataloft.context import Context
from dataloft.errors import DataloftError, NotAuthenticated
from dataloft.kit.principal import Principal

PATH = "/mcp"
CTX_KEY = "dataloft.ctx"


def access(request: Any) -> mcp.Access:
    """Who asks, from the HTTP request of a tool call."""
    # The MCP transport's own app is request.app here: the context rides in the scope.
    ctx: Context = request.scope[CTX_KEY]
    return _with_agent(ctx, get_principal(request, ctx), request.headers.get("x-agent-id"))


def stdio_access(ctx: Context, env: Mapping[str, str]) -> mcp.Access:
    """Who asks over stdio (`dataloft mcp`): DATALOFT_API_KEY (an API key or an end-user
    token), optionally DATALOFT_RUNAS_USER_ID, DATALOFT_USER_CONTEXT and DATALOFT_AGENT_ID."""
    credential = env.get("DATALOFT_API_KEY", "").strip()
    if not credential:
        raise NotAuthenticated("set DATALOFT_API_KEY to an API key or an end-user token")
    principal = principal_of(ctx, credential, env.get("DATALOFT_RUNAS_USER_ID") or None,
                             env.get("DATALOFT_USER_CONTEXT") or None)
    return _with_agent(ctx, principal, env.get("DATALOFT_AGENT_ID") or None)


def _with_agent(ctx: Context, principal: Principal, wanted: str | None) -> mcp.Access:
    with ctx.db.read() as session:
        agent = (assistants.get(session, principal, wanted) if wanted
                 else assistants.default(session, principal.org_id))
    return mcp.Access(ctx, principal, agent.id)


class Endpoint:
    """The MCP transport app, behind a credential check."""

    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[CTX_KEY] = scope["app"].state.ctx
        request = Request(scope, receive)
        try:
            await run_in_threadpool(access, request)
        except DataloftError as exc:
            headers = ({"WWW-Authenticate": 'Bearer realm="dataloft", error="invalid_token"'}
                       if exc.status == 401 else None)
            await envelope(exc.status, exc.message, exc.code, headers)(scope, receive, send)
            return
        await self.inner(scope, receive, send)


def build() -> tuple[MCPServer, Endpoint]:
    server = mcp.build(access)
    # Credentials guard this endpoint, and it is served on whatever host name the
    # deployment has: the SDK's localhost-only Host check would refuse it.
    app = server.streamable_http_app(
        streamable_http_path=PATH, json_response=False,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
    return server, Endpoint(app)
