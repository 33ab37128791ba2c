"""A filter evaluated in Python, over one object's meta and system fields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dataloft.kit.filters.parse import COMPARISONS, Filter, meta_path, qs_candidates

# --- Python evaluation -------------------------------------------------------------------

_MISSING: Any = object()


def kind_of(v: object) -> str:
    if v is _MISSING or v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    return "string" if isinstance(v, str) else "other"


def _lookup(field: str, meta: object, system: Mapping[str, object] | None) -> Any:
    if system is not None and field in system:
        v = system[field]
        return _MISSING if v is None else v  # a NULL column is an absent field
    cur = meta
    for seg in meta_path(field):
        if not isinstance(cur, dict) or seg not in cur:
            return _MISSING
        cur = cur[seg]
    return cur


def matches(f: Filter | None, meta: dict[str, Any],
            system: dict[str, object] | None = None) -> bool:
    """Evaluate in Python; ``system`` holds the row's values of the caller's system fields."""
    if f is None:
        return True
    if f.op == "$and":
        return all(matches(c, meta, system) for c in f.children)
    if f.op == "$or":
        return any(matches(c, meta, system) for c in f.children)
    if f.op == "$not":
        return not matches(f.children[0], meta, system)
    v = _lookup(f.field, meta, system)
    if f.op == "$exists":
        return v is not _MISSING
    if f.op in COMPARISONS:
        return kind_of(v) == kind_of(f.value) and bool(COMPARISONS[f.op](v, f.value))
    values = qs_candidates(f.value) if f.op == "$qs" else f.value
    return any(kind_of(v) == kind_of(x) and (x is None or v == x) for x in values)


