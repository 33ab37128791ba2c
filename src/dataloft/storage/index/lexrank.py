"""Lexical top-k over a RowTerms: the best rows first, then only their records.

BM25 scores rows (rows.py), and a search answers with records: the first `k` records by
(score desc, pk asc), every part of a row carrying the row's score. Expanding the row
scores to every record and partitioning those (the exhaustive way, kept in the tests as the
oracle: terms.top over `RowTerms.scores`) touched every record of the dataset twice per
query: 1.8 of 2.8 ms at 100k rows / 270k records. Here the rows are cut first: the rows
whose score is at least that of the row holding the k-th best record (counting each row's
parts, ties included) are the only ones whose records can be in the answer, and only those
are expanded and sorted. Same pks, same scores, same order as the exhaustive cut.

Why not MaxScore / block-max WAND (skipping postings that cannot reach the k-th score):
measured in NumPy on SciFact synthesised to 100k rows, a MaxScore that scores only the
essential terms' postings (16% of them) and looks the candidates up in the rest by binary
search took twice the exhaustive scorer's time in every band of query length: a lookup by
`searchsorted` costs ~10 times a posting scored in a vectorised pass, and block bounds over
doc-id ranges prune nothing when documents are not clustered by topic (docs/benchmarks.md
section 19).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from dataloft.storage.index.rows import RowTerms

Allowed = Callable[[Sequence[int]], set[int]]
# Rows sampled to guess a bound under the cut (_pool).
SAMPLE = 2048


def ranked(index: RowTerms, by_row: np.ndarray, m: int) -> list[tuple[int, float]]:
    """The first `m` records with a positive score, (pk, score) by score desc then pk: the
    first m of every positive record sorted that way."""
    if m <= 0 or not len(by_row):
        return []
    first, count, members = index.groups
    pool = _pool(by_row, count, m)
    if not len(pool):
        return []
    # The m best rows of the pool hold at least m records (a row has one or more), so the
    # row holding the m-th best record is among them, and its score is the cut.
    best = pool if len(pool) <= m else pool[np.argpartition(by_row[pool], len(pool) - m)[-m:]]
    best = best[np.argsort(-by_row[best], kind="stable")]
    reach = int(np.searchsorted(np.cumsum(count[best]), m))
    # Every row at the cut or above: rows tied with the cut row outside `best` included,
    # as a tied row's records may have lower pks. Fewer than m records: the whole pool.
    rows = pool if reach >= len(best) else pool[by_row[pool] >= by_row[best[reach]]]
    sizes = count[rows]
    at = np.repeat(first[rows] - np.cumsum(sizes) + sizes, sizes) + np.arange(int(sizes.sum()))
    records = at if members is None else members[at]
    pks, scores = index.pks[records], np.repeat(by_row[rows], sizes)
    order = np.lexsort((pks, -scores))[:m]
    return list(zip(pks[order].tolist(), scores[order].tolist(), strict=True))


def _pool(by_row: np.ndarray, count: np.ndarray, m: int) -> np.ndarray:
    """Positive rows that include every row scoring at least as well as the row of the m-th
    best record. A partition of every row cost as much as scoring them (0.7 of 1.3 ms at
    100k rows), so a bound is guessed from a sample of ~SAMPLE rows, at about 4 m rows
    above it, and kept when the rows above it hold m records or more: the m-th record
    then scores at least the bound, whatever the sample was. Else every positive row."""
    n = len(by_row)
    step = n // SAMPLE
    if step > 1:
        sample = by_row[::step]
        j = 4 * m * len(sample) // n + 1
        if j < len(sample):
            low = np.partition(sample, len(sample) - j)[len(sample) - j]
            if low > 0:
                rows = np.flatnonzero(by_row >= low)
                if int(count[rows].sum()) >= m:
                    return rows
    return np.flatnonzero(by_row > 0)


def top(index: RowTerms, query: str, k: int, allowed: Allowed | None = None
        ) -> list[tuple[int, float]]:
    """The `k` best records for `query` with a positive score, best first; with `allowed`,
    only the records it keeps: it is asked about the best few first, and about more (8
    times as many each round) only when too many fail, as terms.top asks it."""
    by_row = index.rows.scores(query)
    if by_row is None:
        return []
    if allowed is None:
        return ranked(index, by_row, k)
    want, checked = max(4 * k, 64), 0
    taken: list[tuple[int, float]] = []
    while True:
        batch = ranked(index, by_row, want + 1)  # one more: are there records left?
        more, batch = len(batch) > want, batch[:want]
        fresh = batch[checked:]  # each round's list extends the last one's
        checked = len(batch)
        if fresh:
            ok = allowed([pk for pk, _ in fresh])
            taken += [hit for hit in fresh if hit[0] in ok]
        if len(taken) >= k or not more:
            return taken[:k]
        want *= 8
