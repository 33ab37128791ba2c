"""The index port: search structures derived from the records table.

Contract (tests/contract/test_index.py runs it against every adapter):
- `added` / `removed` are called inside the transaction that inserts or deletes the
  records, so the index and the records commit or roll back together: no ghost results,
  no unsearchable records.
- `lexical` and `semantic` return (record pk, score) pairs for records of the given
  datasets, best first, higher = better, at most `k`; `restrict` is an extra SQL predicate
  on the records table (access policy + filter) applied before the cut, so a restriction
  never costs recall. `semantic` scores are cosine similarities.
- Both read from the session's snapshot: a search during a re-sync sees the old records
  or the new ones, never a mix.
- `vectors(pks)` returns the stored embeddings of those records (for reuse on re-sync).
- `settle(dataset_id, timeout_s)`, called by a sync after its records committed and before
  it announces completion, brings whatever in-process structures the adapter keeps up to
  the dataset's committed records, waiting at most `timeout_s` (never failing: past it the
  structures are still made in the background). `settles` says whether it does anything:
  an adapter without such structures (PostgreSQL) answers False, and a sync then commits
  and announces in one transaction.
- `ahead(dataset_id, records, count, dimension)`, called by a sync before its commit with
  its finished records spool (records in insert order, with ids), may begin making the
  dataset's structures from it; `landed(session, dataset_id, first, count)`, called in the
  commit's transaction once they are inserted (pks `first` onwards on SQLite), says which
  records those are; `abandon(dataset_id)`, called when the commit did not happen (refused,
  failed, the file gone), drops what `ahead` began. Only a shortcut: an adapter may ignore
  all three, and a settle's result is the same either way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from dataloft.kit.spool import Spool


@dataclass(frozen=True)
class IndexRow:
    pk: int
    dataset_id: str
    text: str
    vector: bytes | None = None


class Index(Protocol):
    def added(self, session: Session, rows: Sequence[IndexRow]) -> None: ...
    def removed(self, session: Session, pks: Sequence[int]) -> None: ...
    def lexical(self, session: Session, dataset_ids: Sequence[str], query: str, k: int,
                restrict: ColumnElement[bool] | None = None) -> list[tuple[int, float]]: ...
    def semantic(self, session: Session, dataset_ids: Sequence[str], vector: np.ndarray, k: int,
                 restrict: ColumnElement[bool] | None = None) -> list[tuple[int, float]]: ...
    def vectors(self, session: Session, pks: Sequence[int]) -> dict[int, bytes]: ...
    @property
    def settles(self) -> bool: ...
    def settle(self, dataset_id: str, timeout_s: float) -> None: ...
    def ahead(self, dataset_id: str, records: Spool, count: int, dimension: int) -> None: ...
    def landed(self, session: Session, dataset_id: str, first: int, count: int) -> None: ...
    def abandon(self, dataset_id: str) -> None: ...


_WORD = re.compile(r"\w+")


def tokens(query: str) -> list[str]:
    return _WORD.findall(query.lower())[:64]
