"""JSON, JSONL and YAML: a list of records becomes typed Rows; anything else an outline.

The outline renders nested data as readable, searchable text (`key: value`, `- item`,
indented by depth; top-level entries separated by blank lines), not as JSON syntax.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import PurePosixPath
from typing import Any

import yaml

from dataloft.ingest.extract.base import (
    Confidence,
    Extracted,
    ExtractionError,
    Row,
    Section,
    register,
)
from dataloft.ingest.extract.columns import rows_from_mappings
from dataloft.ingest.extract.decode import decode_text

# YAML aliases can make a small file expand without bound (or into a cycle): every walk
# over parsed data counts the values it visits and stops here.
MAX_VALUES = 2_000_000
_JSON_START = re.compile(r"\s*(?:\{\s*(?:\"|\})|\[\s*(?:[\{\[\"\]\d-]|true|false|null))")


class _SafeLoader(yaml.SafeLoader):  # type: ignore[misc,unused-ignore]
    """yaml.SafeLoader (no object construction), with YAML 1.2 booleans: only true/false.
    YAML 1.1 also reads yes/no/on/off as booleans, so a country code `no` or a column
    named `on` would turn into False/True."""


_SafeLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_SafeLoader.add_implicit_resolver("tag:yaml.org,2002:bool",
                                  re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                  list("tTfF"))


def _too_big() -> ExtractionError:
    return ExtractionError("corrupted_file", f"the document expands to more than {MAX_VALUES:,} "
                           "values (recursive or exploding aliases)")


def _scalar(value: Any) -> Any:
    """A JSON-safe scalar: dates as ISO strings, non-finite floats as text."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value is None or isinstance(value, str | int | float):
        return value
    return str(value)


_CONTAINERS = (dict, list, tuple, set, frozenset)


def _children(node: Any) -> Any:
    return node.values() if isinstance(node, dict) else node


def expanded_size(value: Any) -> int:
    """How many values `value` has once aliases are expanded, counted without expanding:
    a shared node is sized once. Raises on a cycle or past `MAX_VALUES` (alias bombs)."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        node, children_done = stack.pop()
        if not isinstance(node, _CONTAINERS):
            continue
        key = id(node)
        if children_done:
            size = 1 + sum(sizes[id(c)] if isinstance(c, _CONTAINERS) else 1
                           for c in _children(node))
            if size > MAX_VALUES:
                raise _too_big()
            sizes[key] = size
            open_nodes.discard(key)
        elif key in open_nodes:
            raise _too_big()  # reached again below itself: a cycle
        elif key not in sizes:
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((c, False) for c in _children(node) if isinstance(c, _CONTAINERS))
    return sizes.get(id(value), 1)


def plain(value: Any) -> Any:
    """`value` (parsed YAML) as JSON-safe data: str keys, lists, ISO dates. Iterative and
    budgeted, so neither deep nesting nor alias bombs can exhaust the stack or memory."""
    expanded_size(value)
    budget = MAX_VALUES
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    while stack:
        node, parent, slot = stack.pop()
        budget -= 1
        if budget < 0:
            raise _too_big()
        if isinstance(node, dict):
            out: Any = {}
            for k, v in node.items():
                key = str(_scalar(k))
                out[key] = None
                stack.append((v, out, key))
        elif isinstance(node, list | tuple | set | frozenset):
            out = [None] * len(node)
            stack.extend((v, out, i) for i, v in enumerate(node))
        else:
            out = _scalar(node)
        parent[slot] = out
    return root[0]


def _text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def outline(value: Any) -> str:
    """Readable text for nested data (already `plain`)."""
    lines: list[str] = []
    budget = MAX_VALUES
    stack: list[tuple[int, str, Any]] = [(0, "", value)]
    while stack:
        depth, label, node = stack.pop()
        budget -= 1
        if budget < 0:
            raise _too_big()
        indent = "  " * min(max(depth - 1, 0), 20)
        if depth == 1 and lines and isinstance(value, dict):
            lines.append("")
        children: list[tuple[str, Any]] = []
        if isinstance(node, dict):
            children = [(f"{k}:", v) for k, v in node.items()]
        elif isinstance(node, list):
            children = [("-", v) for v in node]
        if not isinstance(node, dict | list):
            text = _text(node).replace("\n", "\n" + indent + "  ")
            lines.append(f"{indent}{label} {text}" if label else indent + text)
            continue
        if not children:
            lines.append(f"{indent}{label} {'{}' if isinstance(node, dict) else '[]'}".rstrip())
            continue
        if label:
            lines.append(indent + label)
        inner = depth + 1 if label or depth else 1
        stack.extend((inner, lab, v) for lab, v in reversed(children))
    return "\n".join(lines).strip("\n")


def _table(name: str) -> str:
    return PurePosixPath(name).stem or "table"


def _is_records(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _loads(text: str) -> Any:
    # NaN/Infinity are not JSON; read them as the strings they are.
    return json.loads(text, parse_constant=str)


def sniff_json(head: str) -> Confidence | None:
    return "likely" if _JSON_START.match(head) else None


def sniff_jsonl(head: str) -> Confidence | None:
    lines = [line.strip() for line in head.split("\n")[:-1] if line.strip()][:5]
    if len(lines) >= 2 and all(line.startswith("{") and line.endswith("}") for line in lines):
        return "likely"
    return None


@register("jsonl", (".jsonl", ".ndjson", ".jsonlines"),
          ("application/jsonl", "application/x-ndjson", "application/x-jsonlines",
           "application/jsonlines"), sniff=sniff_jsonl)
def extract_jsonl(data: bytes, name: str) -> Extracted:
    records: list[dict[str, Any]] = []
    others: list[Section] = []
    for n, line in enumerate(decode_text(data).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = _loads(line)
        except (ValueError, RecursionError) as exc:
            raise ExtractionError("corrupted_file", f"invalid JSON on line {n}: {exc}") from exc
        if isinstance(value, dict):
            records.append(value)
        else:
            others.append(Section(outline(value), {"line": n}))
    yield from rows_from_mappings(records, {"table": _table(name)})
    yield from others


@register("json", (".json", ".geojson", ".webmanifest"), ("application/json", "text/json"),
          sniff=sniff_json)
def extract_json(data: bytes, name: str) -> Extracted:
    try:
        value = _loads(decode_text(data))
    except (ValueError, RecursionError) as exc:
        raise ExtractionError("corrupted_file", f"invalid JSON: {exc}") from exc
    yield from _records_or_outline(value, name)


def _records_or_outline(value: Any, name: str) -> Iterator[Section | Row]:
    if _is_records(value):
        yield from rows_from_mappings(value, {"table": _table(name)})
    elif value is not None:
        yield Section(outline(value))


@register("yaml", (".yaml", ".yml"),
          ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"))
def extract_yaml(data: bytes, name: str) -> Extracted:
    try:
        documents = [plain(doc) for doc in yaml.load_all(decode_text(data), _SafeLoader)]
    except yaml.YAMLError as exc:
        raise ExtractionError("corrupted_file", f"invalid YAML: {exc}") from exc
    documents = [doc for doc in documents if doc is not None]
    if len(documents) == 1:
        yield from _records_or_outline(documents[0], name)
        return
    for n, doc in enumerate(documents, 1):
        yield Section(outline(doc), {"document": n})
