"""Parsing and validating a filter (see the package docstring for the language)."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dataloft.errors import BadRequest

Scalar = str | int | float | bool | None

MAX_DEPTH = 16
MAX_NODES = 256
MAX_LIST = 1000
MAX_FIELD = 200
MAX_NUMBER = 2**53 - 1

COMPARISONS = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}
_OPERATORS = ("$eq", "$ne", *COMPARISONS, "$in", "$nin", "$exists")
_NUMBER_TEXT = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_QS_KEY = re.compile(r"meta(?:\.(.*)|((?:\[[^\[\]]*\])+))")


@dataclass(frozen=True, slots=True)
class Filter:
    """A validated node. ``op`` is ``$and``/``$or``/``$not`` (over ``children``) or a condition
    on ``field``: ``$in`` (a tuple of scalars; $eq is a one-value $in, $ne/$nin are $not),
    ``$gt``/``$gte``/``$lt``/``$lte`` (a str or number), ``$exists`` or ``$qs`` (query text)."""

    op: str
    field: str = ""
    value: Any = None
    children: tuple[Filter, ...] = ()


# --- parsing -----------------------------------------------------------------------------


def _bad(where: str, message: str) -> BadRequest:
    return BadRequest(f"{where}: {message}")


def meta_path(field: str) -> list[str]:
    return field.split(".")[1:] if field.startswith("meta.") else field.split(".")


def _check_field(field: str, where: str) -> None:
    if not field:
        raise _bad(where, "empty field name")
    if len(field) > MAX_FIELD:
        raise _bad(where, f"field name longer than {MAX_FIELD} characters")
    for seg in meta_path(field):
        if not seg:
            raise _bad(where, f"field {field!r} has an empty path segment")
        if any(not (" " <= ch <= "~") or ch in '"\\' for ch in seg):
            raise _bad(where, f'field {field!r}: use printable ASCII without " or \\')


def _value(v: object, where: str, *, orderable: bool = False) -> Scalar:
    if isinstance(v, str):
        if "\x00" in v:
            raise _bad(where, "strings must not contain NUL characters")
        return v
    if isinstance(v, int | float) and not isinstance(v, bool):
        if not math.isfinite(v) or abs(v) > MAX_NUMBER:
            raise _bad(where, f"numbers must be finite and within +-{MAX_NUMBER}")
        return v
    if orderable:
        raise _bad(where, "expected a number or a string")
    if v is None or isinstance(v, bool):
        return v
    raise _bad(where, "expected a string, number, boolean or null")


class _Parser:
    def __init__(self) -> None:
        self.nodes = 0

    def count(self, where: str) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _bad(where, f"filter has more than {MAX_NODES} conditions")

    def node(self, raw: object, where: str, depth: int) -> Filter:
        if depth > MAX_DEPTH:
            raise _bad(where, f"filter nested deeper than {MAX_DEPTH} levels")
        if not isinstance(raw, dict):
            raise _bad(where, "expected an object")
        return _join("$and", [self.entry(k, v, f"{where}.{k}", depth) for k, v in raw.items()])

    def entry(self, key: object, value: object, where: str, depth: int) -> Filter:
        if not isinstance(key, str):
            raise _bad(where, "keys must be strings")
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise _bad(where, "expected a non-empty list of filters")
            self.count(where)
            kids = [self.node(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
            return Filter(key, children=tuple(kids))
        if key == "$not":
            self.count(where)
            return Filter("$not", children=(self.node(value, where, depth + 1),))
        if key.startswith("$"):
            raise _bad(where, f"unknown operator {key!r}; expected a field name, $and, $or or $not")
        _check_field(key, where)
        if not isinstance(value, dict):
            return self.condition(key, "$eq", value, where)
        if not value:
            raise _bad(where, f"expected at least one operator of {', '.join(_OPERATORS)}")
        conds = [self.condition(key, op, v, f"{where}.{op}") for op, v in value.items()]
        return _join("$and", conds)

    def condition(self, field: str, op: str, v: object, where: str) -> Filter:
        self.count(where)
        if op in ("$eq", "$ne"):
            node = Filter("$in", field, (_value(v, where),))
        elif op in ("$in", "$nin"):
            if not isinstance(v, list):
                raise _bad(where, "expected a list")
            if len(v) > MAX_LIST:
                raise _bad(where, f"more than {MAX_LIST} values")
            node = Filter("$in", field, tuple(_value(x, f"{where}[{i}]") for i, x in enumerate(v)))
        elif op in COMPARISONS:
            node = Filter(op, field, _value(v, where, orderable=True))
        elif op == "$exists":
            if not isinstance(v, bool):
                raise _bad(where, "expected true or false")
            node = Filter("$exists", field, True)
        else:
            raise _bad(where, f"unknown operator {op!r}; expected one of {', '.join(_OPERATORS)}")
        negated = op in ("$ne", "$nin") or (op == "$exists" and v is False)
        return Filter("$not", children=(node,)) if negated else node


def _join(op: str, parts: list[Filter]) -> Filter:
    return parts[0] if len(parts) == 1 else Filter(op, children=tuple(parts))


def parse_filter(raw: object) -> Filter | None:
    """Validate a JSON filter; None or {} means no restriction. Raises BadRequest."""
    if raw is None or raw == {}:
        return None
    return _Parser().node(raw, "filter", 1)


def from_query_params(params: Mapping[str, str] | Sequence[tuple[str, str]]) -> Filter | None:
    """Equality on meta from ``meta[key]=v`` / ``meta[a][b]=v`` / ``meta.key=v``; other keys
    are ignored. A key given several times matches any of its values."""
    pairs = params.items() if isinstance(params, Mapping) else params
    by_field: dict[str, list[Filter]] = {}  # field -> its $qs conditions
    parser = _Parser()
    for key, text in pairs:
        m = _QS_KEY.fullmatch(key)
        if not m:
            continue
        dotted, brackets = m.groups()
        field = "meta." + (dotted if brackets is None else ".".join(brackets[1:-1].split("][")))
        where = f"query.{key}"
        _check_field(field, where)
        parser.count(where)
        by_field.setdefault(field, []).append(Filter("$qs", field, _value(str(text), where)))
    if not by_field:
        return None
    return _join("$and", [_join("$or", qs) for qs in by_field.values()])


def qs_candidates(text: str) -> tuple[Scalar, ...]:
    """The values a query-string text stands for; both evaluators match any of them."""
    out: list[Scalar] = [text]
    if len(text) <= 40 and _NUMBER_TEXT.fullmatch(text):
        n = int(text) if text.lstrip("-").isdigit() else float(text)
        if math.isfinite(n) and abs(n) <= MAX_NUMBER:
            out.append(n)
    if text in ("true", "false"):
        out.append(text == "true")
    return tuple(out)


