"""The answer when no language model is configured: the best evidence the search finds in
the same scope, as a table of matching rows and quoted passages with their files."""

from __future__ import annotations

from typing import Any

from dataloft.agent.loop import Answer
from dataloft.agent.tools import ToolError, Tools

NOTICE = ("No language model is configured, so this answer is the best matching evidence "
          "from your data (retrieval only).")
TAKE = 8
# Hits scoring below this share of the best one of their file are left out: a table of
# everything would bury the row that answers. Per file, so a question over two files (sales
# against targets) keeps the best rows of each.
KEEP_SHARE = 0.5


def _fields(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            out[key] = value
    return out


def answer(tools: Tools, question: str) -> Answer:
    trace_input = {"query": question, "take": TAKE}
    try:
        found = tools.call("search", trace_input)
    except ToolError as exc:
        return Answer(f"{NOTICE}\n\nThe search failed: {exc.message}", "error",
                      trace=[{"name": "search", "input": trace_input, "output": exc.render()}])
    trace = [{"name": "search", "input": trace_input, "output": found}]
    hits = found["results"]
    best: dict[str, float] = {}
    for h in hits:
        best.setdefault(h["fileId"] or "", h["score"])
    hits = [h for h in hits if h["score"] >= best[h["fileId"] or ""] * KEEP_SHARE]
    sources = [{"recordId": h["recordId"], "fileId": h["fileId"], "fileName": h["fileName"],
                "quote": _quote(h)} for h in hits]
    if not hits:
        return Answer(f"{NOTICE}\n\nNothing in the data you can reach matches the question.",
                      trace=trace)
    rows = [h for h in hits if h["table"] is not None]
    passages = [h for h in hits if h["table"] is None]
    lines = [NOTICE, ""]
    table = _table(rows) if rows else None
    if rows:
        lines.append("Matching rows:")
        lines += [f"- {_row_line(h)} ({h['fileName']})" for h in rows]
    if passages:
        lines.append("Matching passages:")
        lines += [f"- \"{_quote(h)}\" ({h['fileName']}, record {h['recordId']})"
                  for h in passages]
    return Answer("\n".join(lines), "table" if table else "text", table=table,
                  sources=sources, trace=trace)


def _quote(hit: dict[str, Any]) -> str:
    """The sentences that share most with the question, in text order (a heading alone,
    such as "Refunds.", rarely answers)."""
    return " … ".join(hit["quotes"]) if hit["quotes"] else str(hit["text"])


def _row_line(hit: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in _fields(hit["text"]).items())


def _table(hits: list[dict[str, Any]]) -> dict[str, Any]:
    rows = [(h["fileName"] or "", _fields(h["text"])) for h in hits]
    head: list[str] = []
    for _, fields in rows:
        head += [k for k in fields if k not in head]
    return {"head": ["file", *head],
            "body": [[name, *(fields.get(k, "") for k in head)] for name, fields in rows]}
