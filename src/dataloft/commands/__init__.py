"""The client-side commands of the CLI (upload, search, query, lists, events, chat), built
on dataloft.client and registered on the main app by `register`."""

from __future__ import annotations

import typer

from dataloft.commands.chat import chat
from dataloft.commands.read import datasets_app, events_app, files_app, query, search
from dataloft.commands.upload import upload


def register(app: typer.Typer) -> None:
    app.command()(upload)
    app.command()(search)
    app.command()(query)
    app.command()(chat)
    app.add_typer(datasets_app, name="datasets")
    app.add_typer(files_app, name="files")
    app.add_typer(events_app, name="events")
