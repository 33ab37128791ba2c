"""The index port: search structures derived from the records table.

Contract (tests/contract/test_index.py runs it against every adapter):
- `added` / `removed` are called inside the transaction that inserts or deletes the
  records, so the index and the records commit or roll back together: no ghost results,
  no unsearchable records.
- `search` returns (record pk, score) pairs for records of the given datasets, best first,
  higher score = better, at most `take`; `restrict` is an extra SQL predicate on the
  records table (policy + filter) that the adapter must apply before ranking cuts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session


class Index(Protocol):
    def added(self, session: Session, rows: Sequence[tuple[int, str]]) -> None: ...
    def removed(self, session: Session, pks: Sequence[int]) -> None: ...
    def search(self, session: Session, dataset_ids: Sequence[str], query: str, take: int,
               restrict: ColumnElement[bool] | None = None) -> list[tuple[int, float]]: ...


def tokens(query: str) -> list[str]:
    import re

    return re.findall(r"\w+", query.lower())[:64]


def noop(*_args: Any, **_kwargs: Any) -> None:
    return None
