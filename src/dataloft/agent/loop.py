"""The model loop: ask the model, run the tools it calls, feed the results back, until it
answers, the iteration cap is reached or the deadline passes. Every failure ends in an
`error` answer with the trace so far, never an exception."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dataloft.agent import charts
from dataloft.agent.llm import ChatClient, ModelError, ToolCall
from dataloft.agent.tools import ToolError, Tools, openai_tools

log = logging.getLogger("dataloft.agent")

SYSTEM = ("You answer questions about the user's data with the tools given: `schema` and "
          "`sql` for tables, `search` and `read_record` for documents and rows, `list_files` "
          "for what exists. Use only what the tools return; if they return nothing relevant, "
          "say you found nothing. Cite the files you used. To show a table or chart, pass "
          "`present: \"table\"` or `present: \"chart\"` to the `sql` call whose result you "
          "want shown.")
Progress = Callable[[str], None]


@dataclass
class Answer:
    text: str
    type: str = "text"  # text | table | chart | error
    table: dict[str, Any] | None = None
    chart: dict[str, Any] | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)
    trace: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Turn:
    """What one run of the loop collects besides the messages."""

    answer: Answer
    shown: dict[str, Any] | None = None  # the last sql result the model chose to present


@dataclass(frozen=True)
class Loop:
    tools: Tools
    client: ChatClient
    model: str
    instructions: str | None
    max_iterations: int
    deadline_s: float

    def run(self, history: list[dict[str, Any]], question: str, *, stream: bool,
            progress: Progress, on_text: Progress | None = None) -> Answer:
        """`progress` hears each step; `on_text` (default: `progress`) each piece of the
        answer's text as the model streams it."""
        turn = Turn(Answer(""))
        system = SYSTEM + (f"\n\n{self.instructions}" if self.instructions else "")
        messages = [{"role": "system", "content": system}, *history,
                    {"role": "user", "content": question}]
        deadline = time.monotonic() + self.deadline_s
        try:
            for _ in range(self.max_iterations):
                reply = self.client.complete(self.model, messages, openai_tools(),
                                             deadline=deadline, stream=stream,
                                             on_text=(on_text or progress) if stream else None)
                messages.append(reply.message())
                if not reply.tool_calls:
                    return _finish(turn, reply.content)
                for call in reply.tool_calls:
                    messages.append(self._tool(turn, call, progress))
            return _failed(turn, f"the agent stopped after {self.max_iterations} model calls "
                                 "without an answer")
        except ModelError as exc:
            return _failed(turn, f"the language model failed: {exc}")

    def _tool(self, turn: Turn, call: ToolCall, progress: Progress) -> dict[str, Any]:
        progress(f"Running {call.name}")
        args: Any = None
        try:
            args = json.loads(call.arguments or "{}")
            output = self.tools.call(call.name, args)
        except ValueError as exc:
            output = ToolError("invalid_arguments", f"arguments are not valid JSON: {exc}"
                               ).render()
        except ToolError as exc:
            output = exc.render()
        turn.answer.trace.append({"name": call.name, "input": args if args is not None
                                  else call.arguments, "output": output})
        _collect(turn, call.name, args, output)
        return {"role": "tool", "tool_call_id": call.id,
                "content": json.dumps(output, default=str)}


def _collect(turn: Turn, name: str, args: Any, output: dict[str, Any]) -> None:
    if "error" in output:
        return
    # A table is shown when the last tool result is one the model chose to present: a
    # later call (a search, another query) means the model moved on from it.
    turn.shown = None
    if name == "search":
        turn.answer.sources += [{"recordId": r["recordId"], "fileId": r["fileId"],
                                 "fileName": r["fileName"],
                                 "quote": (r["quotes"] or [r["text"]])[0]}
                                for r in output["results"]]
    elif name == "read_record":
        turn.answer.sources.append({"recordId": output["recordId"], "fileId": output["fileId"],
                                    "fileName": output["fileName"],
                                    "quote": output["text"][:300]})
    elif name == "sql":
        present = args.get("present") if isinstance(args, dict) else None
        turn.shown = {**output, "present": present} if present in ("table", "chart") else None


def _finish(turn: Turn, text: str) -> Answer:
    answer = turn.answer
    answer.text = text
    shown = turn.shown
    if shown is not None and shown["rows"]:
        answer.table = {"head": shown["columns"], "body": charts.cells(shown["rows"])}
        answer.type = "table"
        if shown["present"] == "chart":
            drawn = charts.chart(shown["columns"], shown["rows"], text[:120],
                                 ordered=shown.get("ordered", False))
            if drawn is not None:
                answer.chart, answer.type = drawn, "chart"
    _dedupe(answer)
    return answer


def _dedupe(answer: Answer) -> None:
    seen: set[str] = set()
    kept = []
    for s in answer.sources:
        if s["recordId"] not in seen:
            seen.add(s["recordId"])
            kept.append(s)
    answer.sources = kept[:20]


def _failed(turn: Turn, message: str) -> Answer:
    log.info("agent answer failed: %s", message)
    answer = turn.answer
    answer.text, answer.type, answer.table, answer.chart = message, "error", None, None
    return answer
