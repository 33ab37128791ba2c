"""A quote of the passage that best matches the query, for people reading search results."""

from __future__ import annotations

import re

from dataloft.storage.index.terms import query_terms, stems

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
MAX_CHARS = 300


def highlights(text: str, query: str, limit: int = 1) -> list[str]:
    """The `limit` sentences sharing the most distinct terms (stems, as the lexical index
    sees them) with the query, in text order; the first sentence when none shares any."""
    wanted = set(query_terms(query))
    sentences = [s.strip() for s in _SENTENCE.split(text) if s.strip()]
    if not sentences:
        return []
    scores = [len(wanted.intersection(stems(s))) if wanted else 0 for s in sentences]
    ranked = sorted(range(len(sentences)), key=lambda i: (-scores[i], i))
    picked = [i for i in ranked[:limit] if scores[i] > 0] or ranked[:1]
    return [s if len(s) <= MAX_CHARS else s[: MAX_CHARS - 1].rstrip() + "…"
            for s in (sentences[i] for i in sorted(picked))]
