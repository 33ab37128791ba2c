"""What every client-side command shares: where the server is, `--json`, and tables that
never cut an id."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from dataloft.client import ApiError, Client

UrlOpt = Annotated[str | None, typer.Option(
    "--url", envvar="DATALOFT_URL", help="The server (DATALOFT_URL; default "
    "http://127.0.0.1:8080).", show_envvar=False)]
KeyOpt = Annotated[str | None, typer.Option(
    "--api-key", envvar="DATALOFT_API_KEY", help="The API key (DATALOFT_API_KEY).",
    show_envvar=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
DatasetOpt = Annotated[str, typer.Option("--dataset", "-d", help="Dataset id or name.")]

out = Console()
err = Console(stderr=True)


def emit(value: Any) -> None:
    """JSON on stdout, one document, nothing else."""
    print(json.dumps(value, ensure_ascii=False, default=str, indent=2))


def show(columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None
         ) -> None:
    """A table on a terminal; tab-separated lines when piped, so ids and values arrive
    whole and `cut`/`awk` work. On a terminal, long cells fold onto more lines rather than
    being cut with an ellipsis."""
    if not out.is_terminal:
        print("\t".join(columns))
        for row in rows:
            print("\t".join("" if v is None else str(v) for v in row))
        return
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    table = Table(*columns, title=title)
    for n, column in enumerate(table.columns):
        column.overflow = "fold"
        if columns[n] == "id":  # an id is copied whole: never folded, never cut
            column.no_wrap = True
            column.min_width = max((len(r[n]) for r in cells), default=2)
    for row in cells:
        table.add_row(*row)
    out.print(table)


@contextmanager
def connected(url: str | None, api_key: str | None) -> Iterator[Client]:
    """A client; an API error ends the command with its message and exit code 1."""
    try:
        with Client(url, api_key) as client:
            yield client
    except ApiError as exc:
        err.print(f"[red]error:[/] {exc.status} {exc.code}: {exc.message}")
        raise typer.Exit(1) from exc
    except httpx.HTTPError as exc:  # connection refused, DNS, timeouts
        err.print(f"[red]error:[/] cannot reach the server: {exc}")
        raise typer.Exit(1) from exc


def dataset_id(client: Client, name_or_id: str) -> str:
    found = client.find_dataset(name_or_id)
    if found is None:
        err.print(f"[red]error:[/] no dataset named {name_or_id!r}")
        raise typer.Exit(1)
    return found.id


