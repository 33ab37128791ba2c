"""Highlights stem each record's distinct words once and find only the words that hit: the
quotes are exactly what analysing every sentence of the text quoted (the oracle)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from dataloft.search import highlight
from dataloft.search.highlight import highlights
from dataloft.storage.index.terms import query_terms, stems

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def uncached(text: str, query: str, limit: int = 1) -> list[str]:
    """The per-sentence analysis highlights did before (the oracle)."""
    wanted = set(query_terms(query))
    sentences = [s.strip() for s in _SENTENCE.split(text) if s.strip()]
    if not sentences:
        return []
    scores = [len(wanted.intersection(stems(s))) if wanted else 0 for s in sentences]
    ranked = sorted(range(len(sentences)), key=lambda i: (-scores[i], i))
    picked = [i for i in ranked[:limit] if scores[i] > 0] or ranked[:1]
    return [s if len(s) <= highlight.MAX_CHARS else s[: highlight.MAX_CHARS - 1].rstrip() + "…"
            for s in (sentences[i] for i in sorted(picked))]


WORDS = ["owl", "owls", "hunting", "hunts", "the", "a", "lighthouse", "Lighthouses", "café",
         "cafe", "bread", "baked", "x" * 40, "night", "of", "Ship", "ships", "12", "β-cells",
         "beta", "ΣΟΦΟΣ", "σοφος", "cafe\u0301", "½", "2", "x²", "µg", "μg", "İstanbul",
         "istanbul", "owl’s", "owl—ship", "±3", "ﬁsh", "fish", "naïve", "naive", "_x_"]
word = st.sampled_from(WORDS)
# Words joined by spaces and by characters that fold to non-words, or to nothing.
glue = st.sampled_from([" ", " ", "–", "’", "\u00a0", "\u0301", "“", "\u2028", "×"])
sentence = st.lists(st.tuples(word, glue), min_size=0, max_size=12).map(
    lambda ws: "".join(w + g for w, g in ws))
stop = st.sampled_from([".", "!", "?", "\n", ". ", "!\n", "  ", ""])
texts = st.lists(st.tuples(sentence, stop), max_size=12).map(
    lambda parts: "".join(s + p for s, p in parts))
queries = st.lists(word, max_size=5).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(texts, queries, st.integers(min_value=1, max_value=3))
def test_highlights_equal_the_per_sentence_analysis(text: str, query: str,
                                                    limit: int) -> None:
    expected = uncached(text, query, limit)
    assert highlights(text, query, limit) == expected


def test_a_changed_text_is_analysed_anew() -> None:
    before = "Owls hunt at night. The lighthouse guides ships."
    after = "Owls hunt at night. The bakery sells bread."
    assert highlights(before, "lighthouse") == ["The lighthouse guides ships."]
    assert highlights(after, "bread") == ["The bakery sells bread."]
    # The old text's entry stays valid for the old text only.
    assert highlights(before, "bread") == ["Owls hunt at night."]
    assert highlights(after, "lighthouse") == ["Owls hunt at night."]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80), st.text(max_size=20), st.integers(min_value=1, max_value=3))
def test_any_text_is_quoted_as_the_per_sentence_analysis(text: str, query: str,
                                                         limit: int) -> None:
    assert highlights(text, query, limit) == uncached(text, query, limit)


# Characters where the two splits could part ways: every end mark, whitespace of several
# kinds (Unicode's too), word characters, accents and other punctuation.
_TRICKY = st.text(alphabet=st.sampled_from(list(".!?\n \t\r\x0b\x0c\u00a0\u2028\u3000aZé_9,;-…")),
                  max_size=60)


@settings(max_examples=1000, deadline=None)
@given(_TRICKY | st.text(max_size=40))
def test_spans_split_as_the_regex(text: str) -> None:
    assert [text[s:e] for s, e in highlight.spans(text)] == _SENTENCE.split(text)


def test_a_word_is_counted_in_each_sentence_it_occurs_in() -> None:
    # Sentences a newline apart are one space apart in the mapped text: the search for the
    # next occurrence must start at the space that ends the previous one.
    assert highlights("Owl\nowl ship", "owl ship") == ["owl ship"]
    assert highlights("Owl.\nShip owl", "ship owls", limit=1) == ["Ship owl"]
