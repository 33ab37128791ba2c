"""The in-memory BM25 index and the restricted top-k it feeds, against plain-Python oracles."""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dataloft.storage.index.rows import RowTerms
from dataloft.storage.index.terms import K1, B, TermIndex, query_terms, terms, top, words

WORDS = ["cell", "cells", "protein", "the", "of", "mouse", "mice", "gene", "Café", "cafe",
         "running", "runs", "x1", "growth"]
texts = st.lists(st.lists(st.sampled_from(WORDS), max_size=12).map(" ".join),
                 min_size=1, max_size=25)


def bm25_oracle(docs: list[str], query: str) -> list[float]:
    tokenized = [terms(d) for d in docs]
    n = len(docs)
    avg = sum(map(len, tokenized)) / n or 1.0
    out = []
    for toks in tokenized:
        tf = Counter(toks)
        score = 0.0
        for t in query_terms(query):
            df = sum(1 for d in tokenized if t in d)
            if tf[t]:
                idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
                score += idf * tf[t] * (K1 + 1) / (tf[t] + K1 * (1 - B + B * len(toks) / avg))
        out.append(score)
    return out


def test_analysis_stems_folds_accents_and_drops_stop_words() -> None:
    assert terms("The cells of running Mice") == ["cell", "run", "mice"]
    assert terms("Café") == terms("cafe")
    assert query_terms("cell cells CELL") == ["cell"]


@settings(max_examples=60, deadline=None)
@given(texts, st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join))
def test_scores_equal_textbook_bm25(docs: list[str], query: str) -> None:
    index = TermIndex.build(enumerate(docs))
    expected = bm25_oracle(docs, query)
    scores = index.scores(query)
    if scores is None:
        assert not any(expected)
        return
    assert np.allclose(scores, expected, rtol=1e-4, atol=1e-5)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=0, max_size=60), st.integers(1, 10),
       st.sets(st.integers(0, 59)) | st.none(), st.booleans())
def test_top_is_the_best_allowed_in_order(raw: list[int], k: int, allowed: set[int] | None,
                                          positive: bool) -> None:
    scores = np.array(raw, dtype=np.float32)
    pks = np.arange(100, 100 + len(raw), dtype=np.int64)
    asked: list[int] = []

    def check(batch: list[int]) -> set[int]:
        assert not set(batch) & set(asked), "a pk was checked twice"
        asked.extend(batch)
        return {p for p in batch if p - 100 in allowed}  # type: ignore[operator]

    got = top(scores, pks, k, None if allowed is None else check, positive=positive)
    oracle = sorted(((int(p), float(s)) for p, s in zip(pks, scores, strict=True)
                     if (allowed is None or p - 100 in allowed) and (s > 0 or not positive)),
                    key=lambda h: (-h[1], h[0]))[:k]
    assert [s for _, s in got] == [s for _, s in oracle]
    assert all(allowed is None or p - 100 in allowed for p, _ in got)
    assert len({p for p, _ in got}) == len(got)


@settings(max_examples=200, deadline=None)
@given(docs=texts, data=st.data())
def test_an_updated_index_scores_as_a_fresh_build(docs: list[str], data: st.DataObject) -> None:
    """update(keep, new rows) == build over the kept rows plus the new ones, score for score
    (bit for bit: N, average length and df are recomputed over exactly those documents),
    through several rounds of deletes and inserts."""
    index = TermIndex.build(enumerate(docs))
    live = dict(enumerate(docs))
    next_pk = len(docs)
    for _ in range(data.draw(st.integers(1, 3))):
        keep = np.array(data.draw(st.lists(st.booleans(), min_size=len(index.pks),
                                           max_size=len(index.pks))), dtype=bool)
        added = data.draw(st.lists(st.lists(st.sampled_from(WORDS), max_size=12)
                                   .map(" ".join), max_size=8))
        for pk in index.pks[~keep]:
            del live[int(pk)]
        new = list(enumerate(added, start=next_pk))
        next_pk += len(added)
        live.update(new)
        index = index.update(keep, new)
        fresh = TermIndex.build(sorted(live.items()))
        assert sorted(index.pks.tolist()) == fresh.pks.tolist()
        order = np.argsort(index.pks)
        for query in ["cell", "protein mouse", "gene growth cafe", "the"]:
            got, want = index.scores(query), fresh.scores(query)
            if want is None:
                assert got is None or not got.any()
                continue
            assert got is not None
            np.testing.assert_array_equal(got[order], want)


# --- a split table row is one document (storage/index/rows.py) ----------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), texts.map(lambda t: t[:3])), min_size=1,
                max_size=8),
       st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join))
def test_a_rows_parts_score_as_the_row(rows: list[tuple[int, list[str]]], query: str) -> None:
    """Each record's score is textbook BM25 of its row (its parts' texts together), where
    consecutive records with one key are one row, and a record with a key of its own (a
    document chunk, an unsplit row) is scored alone."""
    records, row_texts, row_of = [], [], []
    for n, (key, parts) in enumerate(rows):
        row_texts.append("\n".join(parts))
        for part in parts:
            records.append((len(records) + 100, part, f"{key}:{n}"))
            row_of.append(n)
    index = RowTerms.build(records)
    assert index.pks.tolist() == [pk for pk, _, _ in records]
    expected = bm25_oracle(row_texts, query)
    scores = index.scores(query)
    if scores is None:
        assert not any(expected)
        return
    assert np.allclose(scores, [expected[n] for n in row_of], rtol=1e-4, atol=1e-5)


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127)) | st.text())
def test_words_are_the_regex_words(text: str) -> None:
    assert words(text) == re.findall(r"\w+", text)
