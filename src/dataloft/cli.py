"""The dataloft command line: serve, worker, migrate, keys and orgs on the server's own data;
upload, search, query, datasets, files, events and chat as a client of a running server."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from dataloft import __version__
from dataloft.commands import register
from dataloft.commands.common import JsonOpt, emit, show
from dataloft.config import Settings

if TYPE_CHECKING:
    from dataloft.kit.db import Database

app = typer.Typer(help="dataloft: a self-hosted dataset service for AI agents.",
                  no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
orgs_app = typer.Typer(help="Manage organisations.", no_args_is_help=True)
app.add_typer(orgs_app, name="orgs")
console = Console()
register(app)


def _version(value: bool) -> None:
    if value:
        print(f"dataloft {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")
         ] = False) -> None:
    """dataloft: a self-hosted dataset service for AI agents."""


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
    """The existing database, migrated to this version. A data directory (or PostgreSQL
    database) that was never set up is refused: creating an empty one here would make keys
    and organisations that no server of this deployment ever sees."""
    from dataloft.kit import migrate as m
    from dataloft.kit.db import Database

    settings = Settings()
    if settings.backend == "sqlite":
        path = settings.data_dir / "dataloft.db"
        if not path.exists():
            console.print(f"[red]No dataloft database at {path.resolve()}: set "
                          "DATALOFT_DATA_DIR to your data directory, or set one up with "
                          "`dataloft migrate` (or `dataloft serve`).[/]")
            raise typer.Exit(2)
    elif not m.is_set_up(settings.sqlalchemy_url):
        console.print(f"[red]No dataloft database at {_where(settings)}: run `dataloft "
                      "migrate` (or `dataloft serve`) first.[/]")
        raise typer.Exit(2)
    m.upgrade(settings.sqlalchemy_url)
    return Database(settings.sqlalchemy_url)


@app.command("rotate-signing-key")
def rotate_signing_key() -> None:
    """Make a new signing key for end-user tokens and upload URLs. API processes sign with
    it from their next start; tokens and URLs already out stay valid until they expire."""
    from dataloft.context import signing_grace_seconds
    from dataloft.keys import signing

    settings = Settings()
    db = _db()
    master = signing.master_key(settings.secret_key, settings.secret_key_path)
    with db.write() as session:
        signing.load(session, master, signing_grace_seconds(settings))
        name = signing.rotate(session, master)
    console.print(f"new signing key {name}; restart the API processes to sign with it")


def _fail(exc: Exception) -> typer.Exit:
    console.print(f"[red]{getattr(exc, 'message', exc)}[/]")
    return typer.Exit(1)


OrgOption = Annotated[str | None, typer.Option(
    "--org", help="Organisation id or name; default: the first organisation.")]


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
    permission: Annotated[list[str] | None, typer.Option(
        "--permission", "-p", help="Repeatable; default: admin. 'instance:admin' makes a key "
        "that manages organisations over HTTP.")] = None,
    org: OrgOption = None,
) -> None:
    """Create an API key in an organisation and print it once."""
    from dataloft.errors import DataloftError
    from dataloft.keys import service
    from dataloft.orgs import service as orgs

    db = _db()
    try:
        with db.write() as session:
            org_id = orgs.resolve(session, org).id if org else service.default_org_id(session)
            key, raw = service.create_key(session, org_id, name=name,
                                          permissions=permission or ["admin"])
            key_id = key.id
    except DataloftError as exc:
        raise _fail(exc) from exc
    print(json.dumps({"id": key_id, "org": org_id, "key": raw}))


@keys_app.command("list")
def keys_list(org: OrgOption = None, json_out: JsonOpt = False) -> None:
    """List API keys (never their secrets), of one organisation or all. Ids are printed
    whole, ready for `revoke`."""
    from dataloft.errors import DataloftError
    from dataloft.keys import service
    from dataloft.orgs import service as orgs

    db = _db()
    try:
        with db.read() as session:
            org_id = orgs.resolve(session, org).id if org else None
            keys = [(k.id, k.org_id, k.name, k.prefix, list(k.permissions), bool(k.revoked_at))
                    for k in service.list_keys(session, org_id)]
    except DataloftError as exc:
        raise _fail(exc) from exc
    if json_out:
        emit([{"id": i, "org": o, "name": n, "prefix": p, "permissions": perms, "revoked": r}
              for i, o, n, p, perms, r in keys])
        return
    show(["id", "org", "name", "prefix", "permissions", "revoked"],
         [[i, o, n, f"{p}…", ",".join(perms), "yes" if r else ""]
          for i, o, n, p, perms, r in keys])


@keys_app.command("revoke")
def keys_revoke(key_id: str, org: OrgOption = None) -> None:
    """Revoke an API key by id (with --org: only if it is that organisation's)."""
    from dataloft.errors import DataloftError
    from dataloft.keys import service
    from dataloft.orgs import service as orgs

    db = _db()
    try:
        with db.write() as session:
            org_id = orgs.resolve(session, org).id if org else None
            service.revoke_key(session, key_id, org_id)
    except DataloftError as exc:
        raise _fail(exc) from exc
    console.print(f"revoked {key_id}")


@orgs_app.command("create")
def orgs_create(name: str) -> None:
    """Create an organisation and print its first admin key once."""
    from dataloft.errors import DataloftError
    from dataloft.orgs import service as orgs

    db = _db()
    try:
        with db.write() as session:
            org, raw = orgs.create(session, name)
            org_id = org.id
    except DataloftError as exc:
        raise _fail(exc) from exc
    print(json.dumps({"id": org_id, "name": name.strip(), "key": raw}))


@orgs_app.command("list")
def orgs_list(json_out: JsonOpt = False) -> None:
    """List organisations. Ids are printed whole."""
    from dataloft.orgs import service as orgs

    db = _db()
    with db.read() as session:
        rows = [(org.id, org.name, org.created_at) for org in orgs.listing(session)]
    if json_out:
        emit([{"id": i, "name": n, "createdAt": c} for i, n, c in rows])
        return
    show(["id", "name", "created"], [[i, n, str(c)] for i, n, c in rows])


if __name__ == "__main__":
    app()
