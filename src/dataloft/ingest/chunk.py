"""Splitting text into records: paragraphs first, then sentences, with overlap."""

from __future__ import annotations

import re
from collections.abc import Iterator

_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _pieces(text: str, max_chars: int) -> Iterator[str]:
    for para in _PARAGRAPH.split(text):
        para = para.strip()
        if not para:
            continue
        if len(para) <= max_chars:
            yield para
            continue
        for sentence in _SENTENCE.split(para):
            while len(sentence) > max_chars:
                cut = sentence.rfind(" ", 0, max_chars)
                cut = cut if cut > max_chars // 2 else max_chars
                yield sentence[:cut]
                sentence = sentence[cut:].lstrip()
            if sentence:
                yield sentence


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
