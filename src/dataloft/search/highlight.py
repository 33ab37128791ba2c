"""A quote of the passage that best matches the query, for people reading search results.

The quote is the sentence sharing the most distinct query stems. Stemming every sentence
of a returned record cost ~75-130 us a record seen for the first time (a sixth of a lexical
request at 100k, §30b), and an LRU of analysed texts helped only records seen before.
Here the whole text is mapped to its words at its own offsets in one C call (ASCII, and
any text whose other characters fold to non-words), each word is stemmed once through the
shared cache (C-level maps), and only the few words that hit a query stem are looked up
(str.find) and counted for their sentence. Other texts (letters beyond ASCII, combining
marks: the fold may move or join words) are analysed sentence by sentence as before. The
quotes equal the per-sentence analysis (tests/unit/test_highlight.py, Hypothesis).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from functools import lru_cache
from itertools import compress

from dataloft.storage.index.terms import fold, query_terms, stem_of, words

_ENDS = re.compile(r"[.!?\n]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_WORD_CHAR = re.compile(r"\w")
MAX_CHARS = 300

# Upper case to lower, every byte that is not [A-Za-z0-9_] to a space, in one pass: the
# words of `fold(text)` at the very offsets of `text` (_mapped says when that holds).
_WORD_BYTES = bytes(
    ord(chr(c).lower()) if chr(c).isalnum() or chr(c) == "_" else 32 for c in range(128)
) + bytes([32]) * 128


def spans(text: str) -> list[tuple[int, int]]:
    """Where `re.split(r"(?<=[.!?])\\s+|\\n+", text)`'s pieces lie: a sentence ends at
    whitespace after . ! or ?, or at a run of newlines. Found from the few characters where
    one can end: the regex tries its look-behind at every character, a few times slower on
    a long record."""
    out: list[tuple[int, int]] = []
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
        out.append((start, at))
        start = end
    out.append((start, n))
    return out


def quote(sentence: str) -> str:
    """A stripped sentence as quoted: clipped to MAX_CHARS."""
    return sentence if len(sentence) <= MAX_CHARS else sentence[: MAX_CHARS - 1].rstrip() + "…"


@lru_cache(maxsize=256)
def _wanted(query: str) -> frozenset[str]:
    return frozenset(query_terms(query))


@lru_cache(maxsize=4096)
def _spacelike(char: str) -> bool:
    """Whether a character folds to non-word characters only, at least one: to the words
    around it, it is a space (punctuation, dashes, quotes, math signs; not letters, digits
    or the combining marks the fold removes)."""
    folded = fold(char)
    return bool(folded) and not _WORD_CHAR.search(folded)


def _mapped(text: str, kept: list[tuple[int, int]]) -> tuple[str, list[int]] | None:
    """The text lower-cased with every non-word character a space, at the text's own
    offsets (so a word is exactly what lies between two spaces), and where each kept
    sentence starts in it; None when folding could move or join words (letters beyond
    ASCII, combining marks): such a text is analysed sentence by sentence."""
    if not text.isascii() and not all(map(_spacelike, _NON_ASCII.findall(text))):
        return None
    # "replace" makes each other character one "?", which the table makes a space.
    raw = text.encode("ascii", "replace").translate(_WORD_BYTES).decode("ascii")
    return raw, [s for s, _ in kept]


def _scores(text: str, kept: list[tuple[int, int]], wanted: frozenset[str]) -> list[int]:
    """Per kept sentence, how many distinct wanted stems it holds. Every word is stemmed
    once (C-level maps: the cost is hashing ~200 fresh strings); only the few words that
    hit are then found in the text (str.find) and counted for their sentence."""
    mapped_starts = _mapped(text, kept)
    if mapped_starts is None:
        split = (words(fold(text[s:e])) for s, e in kept)
        return [len(wanted.intersection(map(stem_of, ws))) for ws in split]
    mapped, starts = mapped_starts
    every = mapped.split()
    hit = set(compress(every, map(wanted.__contains__, map(stem_of, every))))
    if not hit:
        return [0] * len(kept)
    found: list[set[str]] = [set() for _ in kept]
    padded = f" {mapped} "
    for word in hit:
        stem, needle = stem_of(word), f" {word} "
        at = padded.find(needle)
        while at >= 0:
            # padded[at] is the space before the word, which starts at mapped[at].
            found[bisect_right(starts, at) - 1].add(stem)
            at = padded.find(needle, at + len(word) + 1)
    return [len(f) for f in found]


def highlights(text: str, query: str, limit: int = 1) -> list[str]:
    """The `limit` sentences sharing the most distinct terms (stems, as the lexical index
    sees them) with the query, in text order; the first sentence when none shares any."""
    kept = [(s, e) for s, e in spans(text) if not text[s:e].isspace() and e > s]
    if not kept:
        return []
    wanted = _wanted(query)
    scores = _scores(text, kept, wanted) if wanted else [0] * len(kept)
    ranked = sorted(range(len(kept)), key=lambda i: (-scores[i], i))
    picked = [i for i in ranked[:limit] if scores[i] > 0] or ranked[:1]
    return [quote(text[kept[i][0]:kept[i][1]].strip()) for i in sorted(picked)]
