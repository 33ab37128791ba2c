"""`dataloft upload PATH... --dataset NAME [--wait]`: files and folders into a dataset,
with a progress bar per file and overall, then (with --wait) each sync's outcome."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
)

from dataloft.client import ApiError, Attachment, Client
from dataloft.commands.common import (
    DatasetOpt,
    JsonOpt,
    KeyOpt,
    UrlOpt,
    connected,
    emit,
    err,
    show,
)


@dataclass
class Item:
    path: Path
    size: int
    task: TaskID | None = None
    file_id: str | None = None
    state: str = "pending"
    error_code: str | None = None
    error_message: str | None = None

    def row(self) -> dict[str, Any]:
        return {"path": str(self.path), "id": self.file_id, "size": self.size,
                "state": self.state, "errorCode": self.error_code,
                "errorMessage": self.error_message}


def collect(paths: list[Path]) -> list[Item]:
    """The files named, and every file under the folders named (hidden ones skipped)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and not any(
                part.startswith(".") for part in p.relative_to(path).parts)))
        elif path.is_file():
            found.append(path)
        else:
            err.print(f"[red]error:[/] {path}: no such file or folder")
            raise typer.Exit(2)
    return [Item(p, p.stat().st_size) for p in found]


def upload(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders (recursed).")],
    dataset: DatasetOpt,
    wait: Annotated[bool, typer.Option(help="Wait for each sync to end.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 600.0,
    json_out: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """Upload files and folders into a dataset (created when missing), attach and sync
    them; with --wait, watch the syncs and exit 1 when any failed."""
    items = collect(paths)
    if not items:
        err.print("[yellow]nothing to upload[/]")
        raise typer.Exit(2)
    with connected(url, api_key) as client:
        ds, created = client.ensure_dataset(dataset)
        if created and not json_out:
            err.print(f"created dataset [bold]{dataset}[/] ({ds})")
        progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                            TextColumn("{task.fields[state]}"), console=err,
                            disable=json_out or not err.is_terminal)
        with progress:
            send_all(client, ds, items, progress)
            if wait:
                watch(client, ds, items, progress, timeout)
    report(ds, dataset, created, items, json_out)
    if any(i.state == "failed" for i in items):
        raise typer.Exit(1)


def send_all(client: Client, ds: str, items: list[Item], progress: Progress) -> None:
    total = progress.add_task("[bold]all files", total=sum(i.size for i in items) or 1,
                              state=f"0/{len(items)}")
    done_bytes = 0
    for n, item in enumerate(items, 1):
        item.task = progress.add_task(item.path.name, total=item.size or 1, state="uploading")

        def moved(sent: int, item: Item = item, base: int = done_bytes) -> None:
            assert item.task is not None
            progress.update(item.task, completed=sent)
            progress.update(total, completed=base + sent)

        try:
            item.file_id = client.upload(item.path, progress=moved)
            client.attach(ds, item.file_id)
            client.sync(ds, item.file_id)
            item.state = "queued"
        except ApiError as exc:
            item.state, item.error_code, item.error_message = "failed", exc.code, exc.message
        done_bytes += item.size
        progress.update(item.task, completed=item.size or 1, state=item.state)
        progress.update(total, completed=done_bytes, state=f"{n}/{len(items)} sent")


def watch(client: Client, ds: str, items: list[Item], progress: Progress,
          timeout: float) -> None:
    by_id = {i.file_id: i for i in items if i.file_id}

    def changed(statuses: dict[str, Attachment]) -> None:
        for file_id, status in statuses.items():
            item = by_id[file_id]
            item.state = status.label
            item.error_code, item.error_message = status.error_code, status.error_message
            if item.task is not None:
                shown = f"{item.state} ({item.error_code})" if item.error_code else item.state
                progress.update(item.task, state=shown)

    client.wait_for(ds, list(by_id), timeout, on_change=changed)


def report(ds: str, name: str, created: bool, items: list[Item], json_out: bool) -> None:
    if json_out:
        emit({"dataset": {"id": ds, "name": name, "created": created},
              "files": [i.row() for i in items]})
        return
    counts = Counter(i.state for i in items)
    err.print(", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
    show(["file", "id", "size", "state", "reason"],
         [[str(i.path), i.file_id, decimal(i.size), i.state,
           f"{i.error_code}: {i.error_message}" if i.error_code else ""] for i in items],
         title=f"dataset {name} ({ds})")
