"""The term index's vocabulary in flat arrays, and a build in batches, against plain oracles:
a dict for the vocabulary, a build in one batch for the postings."""

from __future__ import annotations

import numpy as np
import pytest
import Stemmer
from hypothesis import given, settings
from hypothesis import strategies as st

from dataloft.storage.index import terms as terms_module
from dataloft.storage.index import vocab as vocab_module
from dataloft.storage.index.terms import TermIndex, stems
from dataloft.storage.index.vocab import EMPTY, Growing, Vocab

term = st.text(st.characters(categories=("Ll", "Lu", "Nd", "Lo")), min_size=1, max_size=8)
vocabularies = st.lists(term, unique=True, max_size=40)


@settings(max_examples=200, deadline=None)
@given(vocabularies, vocabularies, st.lists(term, max_size=20))
def test_lookups_equal_a_dicts(first: list[str], more: list[str], probes: list[str]) -> None:
    oracle = dict(zip(first, range(len(first)), strict=True))
    vocab = Vocab.of(first)
    assert list(vocab) == first and len(vocab) == len(first)
    grown = Growing(vocab)
    for word in more:
        assert grown.id(word) == oracle.setdefault(word, len(oracle))
    vocab = grown.finish()
    assert list(vocab) == list(oracle)
    for word in [*oracle, *probes]:
        assert vocab.get(word) == oracle.get(word)
        assert (word in vocab) == (word in oracle)
    # What a saved copy holds (vocab.txt) reads back the same.
    again = Vocab(vocab.blob)
    assert all(again[w] == i for w, i in oracle.items())


def test_equal_hashes_are_told_apart_by_their_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every term in one hash bucket: lookups must compare bytes, not trust the hash.
    monkeypatch.setattr(vocab_module, "hash", lambda _: 0, raising=False)
    vocab = Vocab.of(["alpha", "beta", "gamma"])
    assert [vocab.get(w) for w in ("alpha", "beta", "gamma", "delta")] == [0, 1, 2, None]
    grown = Growing(vocab)
    assert [grown.id(w) for w in ("delta", "beta", "delta")] == [3, 1, 3]
    assert list(grown.finish()) == ["alpha", "beta", "gamma", "delta"]
    assert EMPTY.get("alpha") is None and len(EMPTY) == 0


@settings(max_examples=200, deadline=None)
@given(vocabularies, st.data(), st.booleans())
def test_a_repeated_or_empty_term_is_unsound(words: list[str], data: st.DataObject,
                                             collide: bool) -> None:
    # What a saved copy is checked with: whatever the terms' hashes, even all equal.
    with pytest.MonkeyPatch.context() as patch:
        if collide:
            patch.setattr(vocab_module, "hash", lambda _: 0, raising=False)
        assert Vocab.of(words).sound()
        if words:
            bad = data.draw(st.sampled_from([*words, ""]))
            at = data.draw(st.integers(0, len(words)))
            assert not Vocab.of([*words[:at], bad, *words[at:]]).sound()
        else:
            assert not Vocab.of(["", "alpha"]).sound()


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**15), st.integers(0, 3))
def test_numbers_are_their_own_stems(number: int, zeros: int) -> None:
    # The stem caches skip numbers on the grounds that Snowball leaves them as they are.
    word = "0" * zeros + str(number)
    assert Stemmer.Stemmer("english").stemWord(word) == word
    assert list(stems(f"{word} runs")) == [word, "run"]


docs = st.lists(st.lists(st.sampled_from(
    ["cell", "cells", "the", "123456", "77", "Café", "x_y", "running"]), max_size=10)
    .map(" ".join), max_size=40)


@settings(max_examples=100, deadline=None)
@given(docs, st.integers(1, 9))
def test_a_build_in_batches_equals_one_batch(texts: list[str], batch: int) -> None:
    rows = [(3 * i + 1, t) for i, t in enumerate(texts)]
    whole = TermIndex.build(rows)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(terms_module, "ANALYSE_BATCH", batch)
        batched = TermIndex.build(rows)
    assert list(batched.vocab) == list(whole.vocab)
    for name in ("pks", "starts", "docs", "tf", "length", "idf", "norm"):
        assert np.array_equal(getattr(batched, name), getattr(whole, name)), name
