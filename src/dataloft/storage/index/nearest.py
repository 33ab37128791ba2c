"""Semantic ranking on the embedded index (sqlite.py) over the matrices it keeps: the graph
walk where a matrix has one, an exact scan otherwise, and for a restricted search an exact
scan of the allowed rows when they are few."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from dataloft.storage.index import ann, mapped, restricted
from dataloft.storage.index.structures import Matrix
from dataloft.storage.index.terms import top


def ranked(matrices: Sequence[tuple[str, Matrix]], vector: np.ndarray, k: int,
           exact_share: float, session: Session | None = None,
           restrict: ColumnElement[bool] | None = None) -> list[tuple[int, float]]:
    """The `k` best (pk, cosine) over the datasets' matrices; `restrict` is asked of
    `session`."""
    query = np.asarray(vector, dtype=np.float32)
    allowed = None
    if restrict is not None:
        assert session is not None
        allowed = restricted.allowed(session, restrict)
    hits: list[tuple[int, float]] = []
    for dataset_id, matrix in matrices:
        few = None
        if restrict is not None and matrix.approx is not None:
            assert session is not None
            few = restricted.rows(session, dataset_id, restrict, matrix,
                                  max(k, int(exact_share * len(matrix.pks))))
        hits += _nearest(matrix, query, k, allowed, few)
    if len(matrices) > 1:  # one dataset's hits come ranked
        hits.sort(key=lambda h: (-h[1], h[0]))
    return hits[:k]


def _nearest(matrix: Matrix, query: np.ndarray, k: int, allowed: ann.Allowed | None,
             few: np.ndarray | None) -> list[tuple[int, float]]:
    """`few`: the rows a restriction allows, when few enough to score them all."""
    if few is not None:
        return top(matrix.vectors[few] @ query, matrix.pks[few], k)
    state = matrix.approx
    if state is not None:
        hits = ann.nearest(state.graph, matrix.vectors, matrix.pks, query, k, allowed,
                           state.remap, state.extra)
        if hits is not None:
            return hits
    return top(mapped.scores(matrix.vectors, query), matrix.pks, k, allowed)
