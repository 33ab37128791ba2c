"""Splitting text into records: paragraphs first, then sentences, with overlap."""

from __future__ import annotations

import re
from collections.abc import Iterator

_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_NON_SPACE = re.compile(r"\S")


def _pieces(text: str, max_chars: int) -> Iterator[str]:
    for para in _PARAGRAPH.split(text):
        para = para.strip()
        if not para:
            continue
        if len(para) <= max_chars:
            yield para
            continue
        for sentence in _SENTENCE.split(para):
            yield from _cut_long(sentence, max_chars)


def _cut_long(sentence: str, max_chars: int) -> Iterator[str]:
    """Cut a run of text longer than max_chars at a space past its middle, else hard.

    Walks an offset instead of re-slicing the rest after each cut: a long text without
    sentence breaks (logs, unpunctuated dumps) would otherwise copy it once per piece."""
    start, end = 0, len(sentence)
    while end - start > max_chars:
        space = sentence.rfind(" ", start, start + max_chars)
        cut = space - start if space > start + max_chars // 2 else max_chars
        yield sentence[start:start + cut]
        rest = _NON_SPACE.search(sentence, start + cut)
        start = rest.start() if rest else end
    if start < end:
        yield sentence[start:]


def _tail(text: str, overlap_chars: int) -> str:
    if overlap_chars <= 0:
        return ""
    tail = text[-overlap_chars:]
    space = tail.find(" ")
    return tail[space + 1:] if 0 <= space < len(tail) - 1 else tail


def chunk(text: str, max_chars: int = 1200, overlap_chars: int = 150) -> Iterator[str]:
    """Greedy packing of paragraph/sentence pieces up to max_chars; each chunk starts with
    the tail of the previous one (about overlap_chars) so context carries across cuts."""
    current: list[str] = []
    size = 0
    fresh = False  # does `current` hold anything beyond the carried-over tail?
    for piece in _pieces(text, max_chars):
        if fresh and size + len(piece) + 2 > max_chars:
            done = "\n\n".join(current)
            yield done
            tail = _tail(done, overlap_chars)
            current, size, fresh = ([tail] if tail else []), len(tail), False
        current.append(piece)
        size += len(piece) + 2
        fresh = True
    if fresh:
        yield "\n\n".join(current)
