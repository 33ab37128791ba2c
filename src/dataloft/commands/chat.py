"""`dataloft chat`: talk to an agent through the conversations API, answers streamed."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from dataloft.client import Client
from dataloft.commands.common import JsonOpt, KeyOpt, UrlOpt, connected, emit, err, show


def chat(
    agent: Annotated[str, typer.Option("--agent", "-a", help="The agent (assistant) id.")],
    message: Annotated[str | None, typer.Argument(
        help="One question; without it, read questions line by line.")] = None,
    user: Annotated[str, typer.Option(help="Act as this end user.")] = "cli-user",
    context: Annotated[list[str] | None, typer.Option(
        help="User context as key=value (repeatable).")] = None,
    json_out: JsonOpt = False, url: UrlOpt = None, api_key: KeyOpt = None,
) -> None:
    """Ask an agent about your data; its answer streams in, with its table or chart."""
    user_context = dict(kv.split("=", 1) for kv in context or [] if "=" in kv)
    with connected(url, api_key) as client:
        conversation = client.start_conversation(agent, user, user_context or None)
        questions = [message] if message is not None else _lines()
        for question in questions:
            reply = _ask(client, agent, conversation, question, json_out)
            if json_out:
                emit(reply)


def _lines() -> list[str]:
    if sys.stdin.isatty():
        err.print("ask away (Ctrl-D ends):")
    return [line.strip() for line in sys.stdin if line.strip()]


def _ask(client: Client, agent: str, conversation: str, question: str, quiet: bool
         ) -> dict[str, Any]:
    final: dict[str, Any] = {}
    live = _Live(enabled=not quiet and sys.stdout.isatty())
    for event in client.ask_stream(agent, conversation, question):
        kind = event.get("type")
        if kind == "response.progress" and not quiet:
            live.progress(event)
        elif kind == "response.completed":
            final = dict(event.get("response") or {})
        elif kind == "response.error":
            live.end()
            err.print(f"[red]error:[/] {(event.get('error') or {}).get('message')}")
            raise typer.Exit(1)
    if not quiet:
        live.end(final.get("message") or "")
        table = final.get("table")
        if isinstance(table, dict) and table.get("head"):
            show(table["head"], table.get("body") or [])
        if final.get("chart") or final.get("spec"):
            err.print("[dim](a chart: see it in the dashboard, or use --json for its spec)[/]")
            if final.get("spec"):
                err.print(json.dumps(final["spec"])[:200])
    return final


class _Live:
    """The answer's text as it streams, on a terminal; steps (`kind: step`) go to stderr.
    Piped, only the final message is printed, once."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.text: list[str] = []

    def progress(self, event: dict[str, Any]) -> None:
        piece = str(event.get("message", ""))
        if event.get("kind") != "text":
            err.print(f"[dim]… {piece}[/]")
        elif self.enabled:
            self.text.append(piece)
            sys.stdout.write(piece)
            sys.stdout.flush()

    def end(self, message: str | None = None) -> None:
        """Close the streamed line; print `message` unless it is what was streamed."""
        if self.text:
            print()
        if message is not None and message != "".join(self.text):
            print(message)
        self.text = []
