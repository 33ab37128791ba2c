"""Lexical top-k (storage/index/lexrank.py) against the exhaustive oracle: every record's
score (its row's BM25, as the plain scorer below computes it), all of them sorted by score
then pk. Same pks, same scores bit for bit, same order, with and without a restriction.
(terms.top is not the oracle for pks: at the cut it keeps whichever tied records
argpartition happens to pick, where lexrank keeps the lowest pks.)"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dataloft.storage.index import lexrank, terms
from dataloft.storage.index.rows import RowTerms
from dataloft.storage.index.terms import K1, TermIndex, query_terms, top

# Few words and short texts: many rows score alike, so ties (and tied rows on both sides
# of the cut) are common.
WORDS = ["cell", "cells", "protein", "the", "mouse", "gene", "growth", "x1", "zebra"]
part_text = st.lists(st.sampled_from(WORDS), max_size=6).map(" ".join)
queries = st.lists(st.sampled_from(WORDS + ["absent"]), min_size=1, max_size=4).map(" ".join)


def plain_scores(index: TermIndex, query: str) -> np.ndarray | None:
    """The scorer as it was before lexrank (fancy indexing with the stored int32 numbers):
    the faster one in terms.py must give the same bits."""
    ids = [index.vocab[t] for t in query_terms(query) if t in index.vocab]
    if not ids:
        return None
    out = np.zeros(len(index.pks), dtype=np.float32)
    for t in ids:
        lo, hi = index.starts[t], index.starts[t + 1]
        docs = index.docs[lo:hi]
        tf = index.tf[lo:hi].astype(np.float32)
        weight = tf / (tf + index.norm[docs])
        weight *= index.idf[t] * np.float32(K1 + 1)
        out[docs] += weight
    return out


def oracle(index: RowTerms, by_row: np.ndarray, k: int, allowed: set[int] | None = None
           ) -> list[tuple[int, float]]:
    hits = [(int(pk), float(by_row[row])) for pk, row in zip(index.pks, index.row_of,
                                                             strict=True)
            if by_row[row] > 0 and (allowed is None or pk in allowed)]
    return sorted(hits, key=lambda h: (-h[1], h[0]))[:k]


@st.composite
def corpora(draw: st.DrawFn) -> RowTerms:
    """Rows of 1-3 parts (consecutive records with one key), pks increasing with gaps,
    some rows repeated word for word (equal scores)."""
    rows = draw(st.lists(st.lists(part_text, min_size=1, max_size=3), min_size=1,
                         max_size=30))
    rows += [rows[i] for i in draw(st.lists(st.integers(0, len(rows) - 1), max_size=6))]
    pk, records = 10, []
    for n, parts in enumerate(rows):
        for text in parts:
            pk += draw(st.integers(1, 3))
            records.append((pk, text, f"row{n}"))
    return RowTerms.build(records)


@settings(max_examples=400, deadline=None)
@given(index=corpora(), query=queries, k=st.integers(1, 40), sample=st.sampled_from([2, 5, 2048]),
       data=st.data())
def test_top_equals_the_exhaustive_cut(index: RowTerms, query: str, k: int, sample: int,
                                       data: st.DataObject) -> None:
    """`sample`: lexrank's sample size, small enough here that its guessed bound is tried
    (too high, too low, or just right) on these small corpora."""
    saved, lexrank.SAMPLE = lexrank.SAMPLE, sample
    try:
        _check_top(index, query, k, data)
    finally:
        lexrank.SAMPLE = saved


def _check_top(index: RowTerms, query: str, k: int, data: st.DataObject) -> None:
    want_rows = plain_scores(index.rows, query)
    got_rows = index.rows.scores(query)
    if want_rows is None:
        assert got_rows is None
        assert lexrank.top(index, query, k) == []
        return
    assert got_rows is not None
    np.testing.assert_array_equal(got_rows, want_rows)  # bit for bit
    got = lexrank.top(index, query, k)
    assert got == oracle(index, want_rows, k)
    # The scores, in order, are those of terms.top over every record (the old path).
    old = top(want_rows[index.row_of], index.pks, k, positive=True)
    assert [s for _, s in got] == [s for _, s in old]

    allowed = set(data.draw(st.lists(st.sampled_from(index.pks.tolist()), max_size=40)))
    asked: list[int] = []

    def check(batch: list[int]) -> set[int]:
        assert not set(batch) & set(asked), "a pk was checked twice"
        asked.extend(batch)
        return {p for p in batch if p in allowed}

    assert lexrank.top(index, query, k, check) == oracle(index, want_rows, k, allowed)


@settings(max_examples=200, deadline=None)
@given(index=corpora(), query=queries, m=st.integers(0, 120))
def test_ranked_is_a_prefix_of_one_order(index: RowTerms, query: str, m: int) -> None:
    """ranked(m) is the first m of the whole positive list: what the restricted loop
    relies on when it asks again for more."""
    by_row = index.rows.scores(query)
    if by_row is None:
        return
    whole = lexrank.ranked(index, by_row, len(index.pks) + 1)
    assert lexrank.ranked(index, by_row, m) == whole[:m]
    assert all(score > 0 for _, score in whole)
    assert len(whole) == int((by_row[index.row_of] > 0).sum())


def test_parts_out_of_record_order_are_grouped() -> None:
    """A row whose parts are not consecutive records (not made by RowTerms.build, but the
    structure allows it) still answers with each part at the row's score."""
    built = RowTerms.build([(1, "cell gene", "a"), (2, "zebra", "b"), (3, "cell", "c")])
    index = RowTerms(np.array([5, 6, 7, 8], dtype=np.int64), built.rows,
                     np.array([1, 0, 2, 0], dtype=np.int64))
    by_row = index.rows.scores("cell zebra")
    assert by_row is not None
    assert index.groups[2] is not None
    want = oracle(index, by_row, 10)
    assert lexrank.ranked(index, by_row, 10) == want
    assert {pk for pk, _ in want} == {5, 6, 7, 8}


@settings(max_examples=500, deadline=None)
@given(scores=st.lists(st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0, 3.0]) | st.floats(0, 5, width=32),
                       min_size=1, max_size=300),
       data=st.data(), m=st.integers(1, 200), sample=st.integers(2, 64))
def test_the_pool_holds_every_row_at_the_cut(scores: list[float], data: st.DataObject, m: int,
                                             sample: int) -> None:
    """Whatever the sampled bound: every positive row scoring at least the row that holds
    the m-th best record is in the pool, and nothing else but positive rows."""
    by_row = np.array(scores, dtype=np.float32)
    count = np.array(data.draw(st.lists(st.integers(1, 3), min_size=len(scores),
                                        max_size=len(scores))), dtype=np.int64)
    step = len(by_row) // sample
    if step > 1 and data.draw(st.booleans()):
        # The rows the sample reads score highest, or tie with the others at a level:
        # a bound from them is too high, or equal to the cut.
        by_row[::step] = data.draw(st.sampled_from([float(by_row.max()) + 1, 1.0]))
    saved, lexrank.SAMPLE = lexrank.SAMPLE, sample
    try:
        pool = lexrank._pool(by_row, count, m)
    finally:
        lexrank.SAMPLE = saved
    assert (by_row[pool] > 0).all()
    assert len(set(pool.tolist())) == len(pool)
    records = sorted((-float(s) for s, c in zip(by_row, count, strict=True) if s > 0
                      for _ in range(c)))
    cut = -records[m - 1] if len(records) >= m else 0.0
    need = np.flatnonzero((by_row >= cut) & (by_row > 0))
    assert set(need.tolist()) <= set(pool.tolist())


def test_a_sampled_bound_too_high_or_tied_is_not_trusted() -> None:
    rng = np.random.default_rng(7)
    count = np.ones(300, dtype=np.int64)
    for top_value, m in ((9.0, 50), (1.0, 50)):
        by_row = rng.uniform(0.1, 0.9, 300).astype(np.float32)
        by_row[::37] = top_value  # what a sample of 8 reads
        by_row[1:100:3] = 1.0  # ties at the sampled level
        saved, lexrank.SAMPLE = lexrank.SAMPLE, 8
        try:
            pool = lexrank._pool(by_row, count, m)
        finally:
            lexrank.SAMPLE = saved
        cut = np.sort(by_row)[::-1][m - 1]
        assert set(np.flatnonzero(by_row >= cut).tolist()) <= set(pool.tolist())


@settings(max_examples=300, deadline=None)
@given(index=corpora(), queries_=st.lists(queries, min_size=1, max_size=4),
       share=st.sampled_from([0.0, 0.3, 1.0]),
       extra=st.lists(st.lists(part_text, min_size=1, max_size=2), max_size=4))
def test_kept_tf_parts_score_as_computed_ones(index: RowTerms, queries_: list[str],
                                              share: float, extra: list[list[str]]) -> None:
    """Every term's tf part kept (or up to a share of the postings, or none), asked again and
    again: the same bits as the plain scorer; and an updated index (new norms) keeps none
    of the old parts: it scores as the plain scorer over its own arrays."""
    saved = terms.PART_MIN, terms.PART_SHARE
    terms.PART_MIN, terms.PART_SHARE = 1, share
    try:
        for query in queries_ * 2:
            want = plain_scores(index.rows, query)
            got = index.rows.scores(query)
            assert (got is None) == (want is None)
            if got is not None:
                np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32))
        assert index.rows.parts.kept <= share * len(index.rows.docs)
        keep = np.ones(len(index.rows.pks), dtype=bool)
        keep[::2] = False
        start = int(index.rows.pks.max()) + 1
        updated = index.rows.update(keep, [(start + i, " ".join(texts))
                                           for i, texts in enumerate(extra)])
        assert not updated.parts
        for query in queries_ * 2:
            want = plain_scores(updated, query)
            got = updated.scores(query)
            assert (got is None) == (want is None)
            if got is not None:
                np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32))
    finally:
        terms.PART_MIN, terms.PART_SHARE = saved
