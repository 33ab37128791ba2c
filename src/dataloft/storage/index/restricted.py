"""Restricted searches on the embedded index (sqlite.py): which records a restriction (the
access policy, a filter) allows, asked of the database."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from dataloft.models import Record
from dataloft.storage.index.structures import Matrix

_BATCH = 500


def allowed(session: Session, restrict: ColumnElement[bool] | None
            ) -> Callable[[Sequence[int]], set[int]] | None:
    if restrict is None:
        return None

    def passed(pks: Sequence[int]) -> set[int]:
        out: set[int] = set()
        for i in range(0, len(pks), _BATCH):
            out.update(session.scalars(select(Record.pk).where(
                Record.pk.in_(list(pks[i : i + _BATCH])), restrict)))
        return out

    return passed


def rows(session: Session, dataset_id: str, restrict: ColumnElement[bool],
         matrix: Matrix, limit: int) -> np.ndarray | None:
    """The matrix rows of the records `restrict` allows, if there are at most `limit`."""
    pks = np.fromiter(session.scalars(
        select(Record.pk).where(Record.dataset_id == dataset_id, restrict).limit(limit + 1)),
        dtype=np.int64)
    if len(pks) > limit:
        return None
    # Allowed records without a vector have no row: drop them.
    at = np.searchsorted(matrix.pks, pks)
    inside = at < len(matrix.pks)
    at, pks = at[inside], pks[inside]
    kept: np.ndarray = at[matrix.pks[at] == pks]
    return kept
