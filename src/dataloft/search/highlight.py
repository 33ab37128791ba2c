"""A quote of the passage that best matches the query, for people reading search results.

A record's sentences and their stems depend on its text alone, so they are analysed once
and kept in a bounded LRU keyed by the text itself: a re-synced record with new text is a
new key (nothing to invalidate), and an unchanged one costs a hash and a lookup. Only the
intersection with the query's terms is per request.
"""

from __future__ import annotations

import re
from functools import lru_cache

from dataloft.storage.index.terms import query_terms, stems

_ENDS = re.compile(r"[.!?\n]")
MAX_CHARS = 300
# Records analysed and kept: a few result pages of the popular records of a busy server.
CACHE_RECORDS = 4096

Analysed = tuple[tuple[str, frozenset[str]], ...]


def sentences(text: str) -> list[str]:
    """`re.split(r"(?<=[.!?])\\s+|\\n+", text)`: a sentence ends at whitespace after . ! or ?,
    or at a run of newlines. Found from the few characters where one can end: the regex
    tries its look-behind at every character, a few times slower on a long record."""
    out: list[str] = []
    start = 0
    n = len(text)
    for m in _ENDS.finditer(text):
        at = m.start() + 1 if m.group() != "\n" else m.start()
        if at < start or at >= n:
            continue
        end = at
        if at > 0 and text[at - 1] in ".!?" and text[at].isspace():
            while end < n and text[end].isspace():
                end += 1
        elif text[at] == "\n":
            while end < n and text[end] == "\n":
                end += 1
        else:
            continue
        out.append(text[start:at])
        start = end
    out.append(text[start:])
    return out


@lru_cache(maxsize=CACHE_RECORDS)
def analysed(text: str) -> Analysed:
    """Each non-blank sentence of `text` (stripped, clipped to MAX_CHARS as quoted) with
    its distinct stems."""
    out = []
    for raw in sentences(text):
        sentence = raw.strip()
        if sentence:
            quote = (sentence if len(sentence) <= MAX_CHARS
                     else sentence[: MAX_CHARS - 1].rstrip() + "…")
            out.append((quote, frozenset(stems(sentence))))
    return tuple(out)


@lru_cache(maxsize=256)
def _wanted(query: str) -> frozenset[str]:
    return frozenset(query_terms(query))


def highlights(text: str, query: str, limit: int = 1) -> list[str]:
    """The `limit` sentences sharing the most distinct terms (stems, as the lexical index
    sees them) with the query, in text order; the first sentence when none shares any."""
    sentences = analysed(text)
    if not sentences:
        return []
    wanted = _wanted(query)
    scores = [len(wanted & s) if wanted else 0 for _, s in sentences]
    ranked = sorted(range(len(sentences)), key=lambda i: (-scores[i], i))
    picked = [i for i in ranked[:limit] if scores[i] > 0] or ranked[:1]
    return [sentences[i][0] for i in sorted(picked)]
