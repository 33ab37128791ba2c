"""A quote of the passage that best matches the query, for people reading search results."""

from __future__ import annotations

import re

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"\w+")
MAX_CHARS = 300


def _stem(word: str) -> str:
    # Crude suffix folding so "painted" matches "paint"; precision matters little here.
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def highlights(text: str, query: str, limit: int = 1) -> list[str]:
    terms = {_stem(t) for t in _WORD.findall(query.lower())}
    sentences = [s.strip() for s in _SENTENCE.split(text) if s.strip()]
    if not sentences:
        return []

    def score(sentence: str) -> int:
        return len(terms & {_stem(w) for w in _WORD.findall(sentence.lower())})

    ranked = sorted(range(len(sentences)), key=lambda i: (-score(sentences[i]), i))
    picked = [i for i in ranked[:limit] if score(sentences[i]) > 0] or ranked[:1]
    return [s if len(s) <= MAX_CHARS else s[: MAX_CHARS - 1].rstrip() + "…"
            for s in (sentences[i] for i in sorted(picked))]
