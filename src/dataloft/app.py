"""The application factory. Settings become a Context inside the lifespan, never at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

from fastapi import Depends, FastAPI
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

from dataloft import __version__
from dataloft.api import (
    agents,
    assistants,
    dashboard,
    datasets,
    errors,
    events,
    files,
    inconvo,
    informer,
    keys,
    mcp,
    openai,
    openapi,
    orgs,
    records,
    sql,
    webhooks,
)
from dataloft.api.limits import BodyLimit
from dataloft.config import Settings
from dataloft.context import Context, build


class Health(BaseModel):
    status: Literal["ok"]


def create_app(settings: Settings | None = None, *, on_ready: object = None) -> FastAPI:
    settings = settings or Settings()
    mcp_server, mcp_endpoint = mcp.build()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx: Context = await run_in_threadpool(build, settings)
        app.state.ctx = ctx
        # Idle query workers import DuckDB now, so the first query does not wait for it.
        await run_in_threadpool(ctx.query.engine.warm)
        if callable(on_ready):
            on_ready(ctx)
        try:
            async with mcp_server.session_manager.run():
                yield
        finally:
            await run_in_threadpool(ctx.close)

    # /docs and /redoc come from openapi.install, served from the package's own assets.
    app = FastAPI(title="dataloft", version=__version__, lifespan=lifespan,
                  description="Self-hosted dataset service for AI agents.",
                  docs_url=None, redoc_url=None)
    errors.install(app)
    openapi.install(app)
    app.add_middleware(BodyLimit)
    # The hot routes first: FastAPI (0.165) matches a request against each included router
    # in turn, every route of it twice (~5 us each), so a route behind ~100 others paid
    # ~0.3-0.7 ms of server CPU to be found (docs/benchmarks.md section 43).
    @app.get("/healthz", tags=["health"], response_model=Health)
    def healthz() -> dict[str, str]:
        ctx: Context = app.state.ctx
        with ctx.db.read() as session:
            session.connection().exec_driver_sql("SELECT 1")
        return {"status": "ok"}

    app.include_router(datasets.searching)
    app.include_router(openai.searching)
    app.include_router(assistants.searching)
    app.include_router(files.router)
    app.include_router(datasets.router)
    app.include_router(records.router)
    app.include_router(assistants.router)
    app.include_router(keys.router)
    app.include_router(orgs.router)
    app.include_router(informer.router)
    app.include_router(sql.router)
    app.include_router(openai.router)
    app.include_router(webhooks.router)
    app.include_router(events.router)
    app.include_router(agents.router)
    app.router.routes.append(Route(mcp.PATH, mcp_endpoint, methods=["GET", "POST", "DELETE"],
                                   include_in_schema=False))
    app.include_router(inconvo.router, prefix="/api/v1/agents/{agent_id}",
                       dependencies=[Depends(inconvo.agent_path)])
    app.include_router(inconvo.router, prefix="/api/v1")

    dashboard.install(app)  # last: every API route above keeps its path
    return app
