"""Commands that read: search, query, datasets|files list, events tail."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable
from typing import Annotated

import typer

from dataloft.client import Event, QueryResult
from dataloft.commands.common import (
    DatasetOpt,
    JsonOpt,
    KeyOpt,
    UrlOpt,
    connected,
    dataset_id,
    emit,
    show,
)

datasets_app = typer.Typer(help="Datasets.", no_args_is_help=True)
files_app = typer.Typer(help="Files.", no_args_is_help=True)
events_app = typer.Typer(help="The event log.", no_args_is_help=True)


def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    dataset: DatasetOpt,
    mode: Annotated[str, typer.Option(help="hybrid, lexical or semantic.")] = "hybrid",
    take: Annotated[int, typer.Option(help="How many records.")] = 5,
    json_out: JsonOpt = False, url: UrlOpt = None, api_key: KeyOpt = None,
) -> None:
    """Search a dataset: the best records with their scores and highlighted quotes."""
    with connected(url, api_key) as client:
        found = client.search(dataset_id(client, dataset), query, mode=mode, take=take)
    if json_out:
        emit(found.model_dump(by_alias=True))
        return
    show(["score", "source", "quote", "id"],
         [[f"{r.score:.3f}", r.source, " … ".join(r.highlights) or r.text[:200], r.id]
          for r in found.records])


def query(
    sql: Annotated[str, typer.Argument(help="One SELECT over the dataset's tables.")],
    dataset: DatasetOpt,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 1000,
    json_out: JsonOpt = False, url: UrlOpt = None, api_key: KeyOpt = None,
) -> None:
    """Governed SQL over a dataset's tabular files."""
    with connected(url, api_key) as client:
        result = client.query(dataset_id(client, dataset), sql, limit=limit)
    assert isinstance(result, QueryResult)
    if json_out:
        emit(result.model_dump(by_alias=True))
        return
    show([c.name for c in result.columns], result.rows)


@datasets_app.command("list")
def datasets_list(json_out: JsonOpt = False, url: UrlOpt = None,
                  api_key: KeyOpt = None) -> None:
    """Datasets you can read."""
    with connected(url, api_key) as client:
        found = client.list_datasets()
    if json_out:
        emit([d.model_dump(by_alias=True) for d in found])
        return
    show(["id", "name", "visibility", "description"],
         [[d.id, d.name, d.visibility, d.description] for d in found])


@files_app.command("list")
def files_list(
    dataset: Annotated[str | None, typer.Option(
        "--dataset", "-d", help="Only this dataset's files, with their sync status.")] = None,
    json_out: JsonOpt = False, url: UrlOpt = None, api_key: KeyOpt = None,
) -> None:
    """Files, or a dataset's files with their sync status."""
    with connected(url, api_key) as client:
        found = (client.dataset_files(dataset_id(client, dataset)) if dataset
                 else client.list_files())
    if json_out:
        emit([f.model_dump(by_alias=True) for f in found])
        return
    show(["id", "name", "type", "size", "sync", "reason"],
         [[f.id, f.name, f.type, f.size, f.attachment.label if f.attachment else "",
           f.attachment.error_code if f.attachment else ""] for f in found])


@events_app.command("tail")
def events_tail(
    dataset: Annotated[str | None, typer.Option("--dataset", "-d")] = None,
    follow: Annotated[bool, typer.Option(help="Keep printing new events.")] = True,
    take: Annotated[int, typer.Option(help="How many recent events first.")] = 10,
    json_out: JsonOpt = False, url: UrlOpt = None, api_key: KeyOpt = None,
) -> None:
    """The latest events, then new ones as they happen (Ctrl-C stops)."""
    with connected(url, api_key) as client:
        ds = dataset_id(client, dataset) if dataset else None
        recent = list(reversed(client.events(ds, take)))
        events: Iterable[Event] = (itertools.chain(recent, client.tail_events(ds))
                                   if follow else recent)
        try:
            for e in events:
                if json_out:
                    print(e.model_dump_json(by_alias=True), flush=True)
                else:
                    when = time.strftime("%H:%M:%S", time.localtime(e.created_at / 1000))
                    print(f"{when}\t{e.type}\t{e.dataset_id or ''}\t{e.file_id or ''}\t"
                          f"{e.data.get('reason') or e.data.get('recordCount') or ''}",
                          flush=True)
        except KeyboardInterrupt:
            pass

