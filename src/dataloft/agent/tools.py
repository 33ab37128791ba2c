"""The one tool set, shared by the model loop, the retrieval-only answer and the MCP server.

Every tool runs as the principal of its Scope, reaches only that scope, returns a JSON-able
result bounded in size, and reports any failure as a ToolError the model can read.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from dataloft.agent import repository
from dataloft.agent.scope import Deps, Scope, within
from dataloft.errors import DataloftError
from dataloft.knowledge.search import search_sources
from dataloft.query.service import QueryBody
from dataloft.search.highlight import highlights
from dataloft.search.service import SearchBody

log = logging.getLogger("dataloft.agent")
MAX_HITS = 20
MAX_ROWS = 50
MAX_TEXT = 2000
MAX_RESULT_CHARS = 24_000


class ToolError(Exception):
    """A failure the model (or MCP client) reads: {"error": {"type", "message"}}."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message

    def render(self) -> dict[str, Any]:
        return {"error": {"type": self.kind, "message": self.message}}


def _clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _bounded(result: dict[str, Any]) -> dict[str, Any]:
    """Drop list items from the end until the JSON fits, and say so."""
    for key in ("results", "rows", "files", "tables"):
        items = result.get(key)
        while isinstance(items, list) and items and len(json.dumps(result, default=str)) > \
                MAX_RESULT_CHARS:
            items.pop()
            result["truncated"] = True
    return result


def _str_arg(args: dict[str, Any], name: str) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ToolError("invalid_arguments", f"{name}: a non-empty string is required")
    return value


def _take(args: dict[str, Any]) -> int:
    """How many hits: a whole number, brought into 1..MAX_HITS (a model asking for 100
    still gets an answer)."""
    value = args.get("take")
    if value is None:
        return 8
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or value != int(value)):
        raise ToolError("invalid_arguments", f"take: a whole number from 1 to {MAX_HITS}")
    return max(1, min(int(value), MAX_HITS))


@dataclass(frozen=True)
class Tools:
    deps: Deps
    scope: Scope

    def call(self, name: str, args: object) -> dict[str, Any]:
        """Run one tool; every failure becomes a ToolError."""
        fn = TOOLS.get(name)
        if fn is None:
            raise ToolError("unknown_tool", f"no tool named {name!r}; tools: {', '.join(TOOLS)}")
        if not isinstance(args, dict):
            raise ToolError("invalid_arguments", "arguments must be a JSON object")
        try:
            return _bounded(fn(self, args))
        except ToolError:
            raise
        except ValidationError as exc:
            raise ToolError("invalid_arguments", str(exc.errors(include_url=False))) from exc
        except DataloftError as exc:
            raise ToolError(type(exc).__name__, str(exc.message)) from exc
        except Exception as exc:  # the model reads that the tool broke; the log says why
            log.exception("the agent tool %s failed", name)
            raise ToolError("internal_error", f"the {name} tool failed unexpectedly") from exc

    def search(self, args: dict[str, Any]) -> dict[str, Any]:
        query = _str_arg(args, "query")
        body = SearchBody(search=query, filter=args.get("filter"),
                          take=_take(args),
                          mode=args.get("mode") or "hybrid")
        deps = self.deps
        with deps.db.read() as session:
            hits = search_sources(session, deps.index, deps.embedder, self.scope.principal,
                                  self.scope.sources(session), body, deps.dialect)
            names = repository.file_names(session, sorted({r.file_id for r, _ in hits
                                                           if r.file_id}))
        return {"results": [{
            "recordId": r.id, "datasetId": r.dataset_id, "fileId": r.file_id,
            "fileName": names.get(r.file_id or ""), "score": round(s, 4),
            "text": _clip(r.text, 800), "quotes": highlights(r.text, query, 2),
            "table": r.meta.get("table")} for r, s in hits]}

    def sql(self, args: dict[str, Any]) -> dict[str, Any]:
        body = QueryBody(sql=_str_arg(args, "sql"), limit=MAX_ROWS)
        result = self.deps.query.query_sources(self.scope.principal, self.scope.sources, body)
        return {"columns": [c["name"] for c in result["columns"]],
                "types": [c["type"] for c in result["columns"]],
                "rows": result["rows"], "truncated": result["truncated"],
                "ordered": result["ordered"]}

    def schema(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"tables": self.deps.query.schema_sources(self.scope.principal,
                                                         self.scope.sources)}

    def list_files(self, args: dict[str, Any]) -> dict[str, Any]:
        with self.deps.db.read() as session:
            ids = [s.dataset.id for s in self.scope.sources(session)]
            found = repository.files(session, self.scope.principal, ids, 200) if ids else []
        return {"files": [{"fileId": f.id, "name": f.name, "datasetId": d,
                           "contentType": f.content_type, "size": f.size} for f, d in found]}

    def read_record(self, args: dict[str, Any]) -> dict[str, Any]:
        record_id = _str_arg(args, "recordId")
        with self.deps.db.read() as session:
            found = repository.record(session, self.scope.principal, record_id,
                                      within(self.scope.sources(session), self.deps.dialect))
            if found is None:
                raise ToolError("not_found", f"no record {record_id!r} in reach")
            names = repository.file_names(session, [found.file_id] if found.file_id else [])
        return {"recordId": found.id, "datasetId": found.dataset_id, "fileId": found.file_id,
                "fileName": names.get(found.file_id or ""), "text": _clip(found.text, 8000),
                "meta": {k: v for k, v in found.meta.items() if k != "headings"}}


TOOLS: dict[str, Callable[[Tools, dict[str, Any]], dict[str, Any]]] = {
    "search": Tools.search, "sql": Tools.sql, "schema": Tools.schema,
    "list_files": Tools.list_files, "read_record": Tools.read_record,
}

_STR = {"type": "string"}
SPECS: list[dict[str, Any]] = [
    {"name": "search", "description": "Hybrid search over the user's documents and table rows."
     " Returns records with recordId, fileId, fileName and quotes.",
     "parameters": {"type": "object", "required": ["query"], "properties": {
         "query": _STR, "take": {"type": "integer", "minimum": 1, "maximum": MAX_HITS},
         "filter": {"type": "object", "description": "a metadata filter"}}}},
    {"name": "sql", "description": "Run a read-only SQL query (DuckDB dialect) over the "
     "tables listed by `schema`. Returns columns and rows (at most 50).",
     "parameters": {"type": "object", "required": ["sql"], "properties": {
         "sql": _STR, "present": {"type": "string", "enum": ["none", "table", "chart"],
                                  "description": "show this result to the user"}}}},
    {"name": "schema", "description": "The tables the user can query: names, columns, types, "
     "row counts and the file each comes from.",
     "parameters": {"type": "object", "properties": {}}},
    {"name": "list_files", "description": "The files the user's data comes from.",
     "parameters": {"type": "object", "properties": {}}},
    {"name": "read_record", "description": "The full text and metadata of one record.",
     "parameters": {"type": "object", "required": ["recordId"],
                    "properties": {"recordId": _STR}}},
]


def openai_tools() -> list[dict[str, Any]]:
    return [{"type": "function", "function": spec} for spec in SPECS]
