"""The data summary (`GET data-summary`): what the agent can reach, readable by a person."""

from __future__ import annotations

from dataloft.agent.tools import ToolError, Tools


def summary(tools: Tools) -> str:
    try:
        tables = tools.call("schema", {})["tables"]
        files = tools.call("list_files", {})["files"]
    except ToolError as exc:
        return f"The data summary is unavailable: {exc.message}"
    lines: list[str] = []
    if tables:
        lines.append(f"Tables ({len(tables)}):")
        for t in tables:
            cols = ", ".join(f"{c['name']} ({c['type']})" for c in t["columns"])
            lines.append(f"- {t['name']} from {t['fileName'] or t['fileId']}: "
                         f"{t['rowCount']} rows; columns: {cols}")
    tabular = {t["fileId"] for t in tables}
    documents = [f for f in files if f["fileId"] not in tabular]
    if documents:
        lines.append(f"Documents ({len(documents)}):")
        lines += [f"- {f['name']} ({f['contentType'] or 'unknown type'})" for f in documents]
    return "\n".join(lines) or "No tables or documents are available to this agent yet."
