"""A term index whose documents are table rows split into parts (rows.py), brought up to
date by a delta instead of rebuilt (issue 16, item 3; docs/benchmarks.md section 25).

A build makes one document of each run of consecutive records (pk order) that share a row
key. A dataset loading file after file got no delta before this: every sync commit re-read
and re-analysed every record, and at 775k records that build outlasted the time between
commits, so no search was answered while the load went on (section 22b). The delta:
- a base row with a record gone or changed is broken, and so is one whose records are no
  longer consecutive (a record now lies between them): its surviving records are read again;
- the records read (new ones and those survivors) lie in segments of consecutive
  positions of the new pk order; each segment is split into runs of one key, as a build
  splits the whole;
- an untouched row next to a segment, or next to another untouched row that was not its
  neighbour before, would join it in a build if their keys were equal: the keys at those
  boundaries are read, and if any pair is equal the caller rebuilds (a row's parts are
  written in one commit, so this does not happen in practice).
Only the records read are analysed; the untouched rows' postings are carried
(TermIndex.update), so the result scores as a fresh build does.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from dataloft.models import Record
from dataloft.storage.index import delta
from dataloft.storage.index.delta import Catalog
from dataloft.storage.index.rows import RowTerms, row_key

_BATCH = 500


def update(session: Session, index: RowTerms, keep: np.ndarray, known: np.ndarray,
           now: Catalog) -> RowTerms | None:
    """`index` brought to the records of `now` (keep/known: delta.unchanged of its records
    against `now`), or None when a build must decide (a row would join another)."""
    rows = len(index.rows.pks)
    # Each kept old record's new position, and each new position's old record (-1: new).
    at = np.searchsorted(now.pks, index.pks)
    old_of = np.full(len(now.pks), -1, dtype=np.int64)
    old_of[at[keep]] = np.flatnonzero(keep)
    broken = np.bincount(index.row_of[~keep], minlength=rows) > 0
    # Kept rows whose records are no longer consecutive in the new order.
    kept_at, kept_row = at[keep], index.row_of[keep]
    low = np.full(rows, len(now.pks), dtype=np.int64)
    high = np.full(rows, -1, dtype=np.int64)
    np.minimum.at(low, kept_row, kept_at)
    np.maximum.at(high, kept_row, kept_at)
    count = np.bincount(kept_row, minlength=rows)
    broken |= (count > 0) & (high - low + 1 != count)
    row_at = np.full(len(now.pks), -1, dtype=np.int64)
    row_at[old_of >= 0] = index.row_of[old_of[old_of >= 0]]
    dirty = old_of < 0
    dirty[~dirty] = broken[row_at[~dirty]]
    read = now.pks[dirty]
    got = list(delta.texts(session, read.tolist()))
    keys = {pk: key for pk, _, key in got}
    if _joins(session, now.pks, old_of, row_at, dirty, keys):
        return None
    # New documents: runs of one key within each segment of consecutive dirty positions.
    positions = np.flatnonzero(dirty)
    new_run = np.ones(len(positions), dtype=bool)
    new_run[1:] = (np.diff(positions) > 1) | np.array(
        [a[2] != b[2] for a, b in pairwise(got)], dtype=bool)
    run_of = np.cumsum(new_run) - 1
    texts: list[list[str]] = [[] for _ in range(int(run_of[-1]) + 1 if len(run_of) else 0)]
    for run, (_, text, _) in zip(run_of.tolist(), got, strict=True):
        texts[run].append(text)
    row_keep = ~broken
    kept_rows = int(row_keep.sum())
    renumber = np.cumsum(row_keep) - 1
    row_of = np.full(len(now.pks), -1, dtype=np.int64)
    row_of[~dirty] = renumber[row_at[~dirty]]
    row_of[positions] = kept_rows + run_of
    by_row = index.rows.update(row_keep, ((kept_rows + i, "\n".join(parts))
                                          for i, parts in enumerate(texts)))
    return RowTerms(now.pks.copy(), by_row, row_of.astype(np.int64))


def _joins(session: Session, pks: np.ndarray, old_of: np.ndarray, row_at: np.ndarray,
           dirty: np.ndarray, keys: dict[int, str]) -> bool:
    """Whether two neighbours in the new order, at least one of them an untouched row's
    record, share a key although a build would not have kept them apart before."""
    if len(pks) < 2:
        return False
    left, right = np.arange(len(pks) - 1), np.arange(1, len(pks))
    one_dirty = dirty[left] != dirty[right]
    # Both untouched, of different rows that were not neighbours in the old order.
    regrouped = ~dirty[left] & ~dirty[right] & (row_at[left] != row_at[right]) \
        & (old_of[right] != old_of[left] + 1)
    pairs = np.flatnonzero(one_dirty | regrouped)
    if not len(pairs):
        return False
    wanted = sorted({int(pks[i]) for p in pairs for i in (p, p + 1)
                     if not dirty[i]})
    keys = keys | _keys(session, wanted)
    return any(keys[int(pks[p])] == keys[int(pks[p + 1])] for p in pairs.tolist())


def _keys(session: Session, pks: Sequence[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for i in range(0, len(pks), _BATCH):
        out.update((int(pk), str(key)) for pk, key in session.execute(
            select(Record.pk, row_key()).where(Record.pk.in_(list(pks[i : i + _BATCH])))))
    return out
