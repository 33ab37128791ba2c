"""The dataloft command line: serve, worker, migrate, keys."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from dataloft.config import Settings

if TYPE_CHECKING:
    from dataloft.kit.db import Database

app = typer.Typer(help="dataloft: a self-hosted dataset service for AI agents.",
                  no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
console = Console()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (DATALOFT_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (DATALOFT_PORT).")] = None,
) -> None:
    """Migrate, bootstrap on first start, and serve the API."""
    import uvicorn

    from dataloft.app import create_app

    settings = Settings()
    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = settings.model_copy(update=overrides)
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def announce(ctx: object) -> None:
        raw = getattr(ctx, "bootstrap_key", None)
        if raw:
            console.print("[bold green]dataloft is set up.[/] Your first admin API key "
                          "(shown once, store it now):")
            print(f"DATALOFT_API_KEY={raw}", flush=True)
        console.print(f"Serving on http://{settings.host}:{settings.port} "
                      f"(data: {_where(settings)})")

    uvicorn.run(create_app(settings, on_ready=announce), host=settings.host, port=settings.port,
                log_level=settings.log_level, proxy_headers=False)


@app.command()
def mcp() -> None:
    """Serve the agent's tools to an MCP client over stdio. Credentials from the environment:
    DATALOFT_API_KEY (an API key or end-user token), optionally DATALOFT_RUNAS_USER_ID,
    DATALOFT_USER_CONTEXT (JSON) and DATALOFT_AGENT_ID."""
    import os
    import sys

    from dataloft.agent import mcp as agent_mcp
    from dataloft.api.mcp import stdio_access
    from dataloft.context import build

    settings = Settings()
    # stdout carries the protocol: logs go to stderr.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    ctx = build(settings, start_workers=False)
    try:
        stdio_access(ctx, os.environ)  # a bad credential stops here, not at the first call
        agent_mcp.build(lambda _request: stdio_access(ctx, os.environ)).run("stdio")
    finally:
        ctx.close()


@app.command()
def worker() -> None:
    """Run job workers only, no HTTP: DATALOFT_WORKERS threads claiming jobs from the
    database. Start any number, on any hosts sharing one PostgreSQL and one bucket.
    SIGTERM or Ctrl-C stops claiming and lets running jobs finish
    (DATALOFT_JOB_SHUTDOWN_SECONDS)."""
    import signal
    import threading

    from dataloft.context import build_worker

    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.workers < 1:
        console.print("[red]DATALOFT_WORKERS is 0: a worker process needs at least one.[/]")
        raise typer.Exit(2)
    if settings.backend == "sqlite":
        # Works (SQLite's single writer serialises everything), but only on this host and
        # beside a server that owns the same data directory.
        console.print("[yellow]Embedded SQLite database: `dataloft serve` already runs "
                      "workers; a separate worker helps only on this host.[/]")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    ctx = build_worker(settings)
    assert ctx.workers is not None
    console.print(f"dataloft worker {ctx.workers.owner}: {settings.workers} threads "
                  f"(data: {_where(settings)})")
    try:
        while not stop.wait(1.0):
            pass
    finally:
        console.print("stopping: running jobs get "
                      f"{settings.job_shutdown_seconds:g} s to finish")
        ctx.close()
    console.print("worker stopped")


def _where(settings: Settings) -> str:
    """Where the data lives, without credentials."""
    if settings.backend == "sqlite":
        return str(settings.data_dir.resolve())
    return settings.database_url.split("@")[-1]


@app.command()
def migrate() -> None:
    """Apply database migrations and exit."""
    from dataloft.kit import migrate as m

    settings = Settings()
    if settings.backend == "sqlite":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    m.upgrade(settings.sqlalchemy_url)
    console.print("migrations applied")


def _db() -> Database:
    from dataloft.kit import migrate as m
    from dataloft.kit.db import Database

    settings = Settings()
    if settings.backend == "sqlite":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    m.upgrade(settings.sqlalchemy_url)
    return Database(settings.sqlalchemy_url)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
    permission: Annotated[list[str] | None, typer.Option(
        "--permission", "-p", help="Repeatable; default: admin.")] = None,
) -> None:
    """Create an API key in the default organisation and print it once."""
    from dataloft.keys import service

    db = _db()
    with db.write() as session:
        service.bootstrap(session)
        key, raw = service.create_key(session, service.default_org_id(session), name=name,
                                      permissions=permission or ["admin"])
        key_id = key.id
    print(json.dumps({"id": key_id, "key": raw}))


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (never their secrets)."""
    from dataloft.keys import service

    db = _db()
    table = Table("id", "org", "name", "prefix", "permissions", "revoked")
    with db.read() as session:
        for k in service.list_keys(session):
            table.add_row(k.id, k.org_id, k.name, k.prefix + "…", ",".join(k.permissions),
                          "yes" if k.revoked_at else "")
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke an API key by id; requests with it are refused from now on."""
    from dataloft.errors import DataloftError
    from dataloft.keys import service

    db = _db()
    try:
        with db.write() as session:
            service.revoke_key(session, key_id)
    except DataloftError as exc:
        console.print(f"[red]{exc.message}[/]")
        raise typer.Exit(1) from exc
    console.print(f"revoked {key_id}")


if __name__ == "__main__":
    app()
