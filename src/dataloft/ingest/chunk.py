"""Splitting a section of text into records: headings, then paragraphs, then sentences.

Sizes are in tokens, estimated as characters / 4 (`CHARS_PER_TOKEN`): the average for
English under common subword tokenizers, free to compute (no pass over the text), and
within ~20% for prose; it overestimates code and underestimates CJK text.

How a section is cut:

1. Markdown ATX headings (`#` .. `######`, outside ``` fences) split the text into blocks;
   a chunk never crosses into the next heading's block, and carries the heading path
   (`headings`: titles from the outermost level down). A heading directly followed by
   another heading joins the next block rather than becoming a record of its own.
2. A block that fits in `max_tokens` is one chunk. A longer block is cut at the best
   boundary in the window of text that fits, by preference: a blank line (paragraph), a
   line starting a list item or table row, a sentence end, any line break, whitespace, and
   only as a last resort mid-word. Boundaries in the first quarter of the window are
   skipped, so no chunk is a crumb next to a long neighbour.
3. Each further chunk of a block starts with the last ~`overlap_tokens` of the one before
   (at a word boundary), so a thought cut in two is whole in one of them. The overlap
   counts towards the size: no chunk is over `max_tokens`.

Verbatim text (source code) skips headings and sentence ends: it is cut at blank lines,
then line ends. Chunks are slices of the input (offsets kept), so their concatenation,
minus overlaps, is the input minus whitespace between chunks.

Complexity is linear: each chunk scans only its own window, so megabytes take milliseconds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

CHARS_PER_TOKEN = 4
DEFAULT_MAX_TOKENS = 256  # suits the default embedder (wordllama) and dense retrieval
DEFAULT_OVERLAP_RATIO = 0.12
MIN_MAX_TOKENS = 8

# Searched without ^/MULTILINE: a pattern that opens with a character class lets the regex
# engine skip ahead to candidates, where ^ would try every line start (slow on many lines).
_HEADING_OR_FENCE = re.compile(r"(?P<fence>```|~~~)|(?P<hashes>#{1,6})[ \t]+(?P<title>[^\n]*\S)")
_CLOSING_HASHES = re.compile(r"[ \t]+#+$")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_STRUCTURAL_LINE = re.compile(r"\n(?=[ \t]*(?:\||[-*+>][ \t]|[0-9]{1,3}[.)][ \t]))")
_SENTENCE_END = re.compile(r"[.!?\u2026\u3002\uff01\uff1f][\"'\u201d\u2019)\]]*(?=\s)")
_LINE_BREAK = re.compile(r"\n")
_SPACE = re.compile(r"\s")
_NON_SPACE = re.compile(r"\S")


def estimate_tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def default_overlap(max_tokens: int) -> int:
    return round(max_tokens * DEFAULT_OVERLAP_RATIO)


@dataclass(frozen=True, slots=True)
class Chunk:
    """`text` is `source[start:end]`; `source[fresh:end]` is what no earlier chunk holds."""

    text: str
    start: int
    fresh: int
    end: int
    headings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Block:
    start: int
    end: int
    path: tuple[tuple[int, str], ...]  # (level, title) from the outermost heading


def _blocks(text: str) -> list[_Block]:
    """Heading blocks: each starts at a heading line (the first may start at 0)."""
    cuts: list[tuple[int, tuple[tuple[int, str], ...]]] = [(0, ())]
    path: tuple[tuple[int, str], ...] = ()
    fenced: str | None = None
    for m in _HEADING_OR_FENCE.finditer(text):
        line_start = text.rfind("\n", 0, m.start()) + 1
        if m.start() - line_start > 3 or text[line_start:m.start()].strip(" \t"):
            continue  # not at the start of its line (up to 3 spaces of indent allowed)
        fence = m.group("fence")
        if fence:
            fenced = None if fenced == fence else (fenced or fence)
            continue
        if fenced:
            continue
        level = len(m.group("hashes"))
        title = _CLOSING_HASHES.sub("", m.group("title")).strip()
        path = (*[p for p in path if p[0] < level], (level, title))
        cuts.append((m.start(), path))
    return [_Block(start, cuts[i + 1][0] if i + 1 < len(cuts) else len(text), p)
            for i, (start, p) in enumerate(cuts)]


def _heading_only(text: str, block: _Block) -> bool:
    newline = text.find("\n", block.start, block.end)
    return newline < 0 or _NON_SPACE.search(text, newline, block.end) is None


def _last(pattern: re.Pattern[str], text: str, lo: int, hi: int) -> re.Match[str] | None:
    """The last match in text[lo:hi], scanning back from `hi` in growing steps: where
    boundaries are dense (one every few characters) only the tail of the window is read."""
    span = 128
    while True:
        begin = max(lo, hi - span)
        found = None
        for found in pattern.finditer(text, begin, hi):  # noqa: B007 - the last one is wanted
            pass
        if found is not None or begin == lo:
            return found
        span *= 4


def _cut(text: str, fresh: int, limit: int, verbatim: bool) -> tuple[int, int]:
    """(end of this chunk, start of what follows) for a chunk that must end by `limit`."""
    floor = fresh + max(1, (limit - fresh) // 4)
    patterns = ((_PARAGRAPH_BREAK, _LINE_BREAK) if verbatim else
                (_PARAGRAPH_BREAK, _STRUCTURAL_LINE, _SENTENCE_END, _LINE_BREAK))
    has_newline = text.find("\n", floor, limit) >= 0
    for pattern in patterns:
        if pattern is not _SENTENCE_END and not has_newline:
            continue
        m = _last(pattern, text, floor, limit)
        if m is not None:
            # A sentence end is kept in the chunk; a line break belongs to neither side.
            end = m.end() if pattern is _SENTENCE_END else m.start()
            return end, m.end()
    m = _last(_SPACE, text, fresh + (limit - fresh) // 2, limit)
    if m is not None:
        return m.start(), m.end()
    return limit, limit


def _overlap_start(text: str, fresh: int, floor: int, overlap: int) -> int:
    """Where a chunk starting fresh at `fresh` begins, to carry ~`overlap` chars back."""
    if overlap <= 0 or fresh - floor <= 0:
        return fresh
    begin = max(floor, fresh - overlap)
    if begin > floor and not text[begin - 1].isspace():
        space = _SPACE.search(text, begin, fresh)
        if space is None:
            return fresh  # one long word: no clean place to start
        begin = space.end()
    first = _NON_SPACE.search(text, begin, fresh)
    return first.start() if first else fresh


def _rstrip_end(text: str, lo: int, hi: int) -> int:
    return lo + len(text[lo:hi].rstrip())


def _split(text: str, lo: int, hi: int, max_chars: int, overlap: int, verbatim: bool
           ) -> Iterator[tuple[int, int, int]]:
    """(start, fresh, end) of the chunks of text[lo:hi]."""
    first = _NON_SPACE.search(text, lo, hi)
    if first is None:
        return
    fresh = start = first.start()
    while True:
        if hi - start <= max_chars:
            end = _rstrip_end(text, fresh, hi)
            if end > fresh:
                yield start, fresh, end
            return
        end, after = _cut(text, fresh, start + max_chars, verbatim)
        yield start, fresh, _rstrip_end(text, fresh, end)  # text[fresh] is no space: never empty
        nxt = _NON_SPACE.search(text, after, hi)
        if nxt is None:
            return
        previous_fresh, fresh = fresh, nxt.start()
        start = _overlap_start(text, fresh, previous_fresh, overlap)


def chunk(text: str, max_tokens: int = DEFAULT_MAX_TOKENS, overlap_tokens: int | None = None,
          *, verbatim: bool = False) -> Iterator[Chunk]:
    """The chunks of one section, in order; none empty, none longer than `max_tokens`."""
    max_chars = max(max_tokens, MIN_MAX_TOKENS) * CHARS_PER_TOKEN
    overlap_t = default_overlap(max_tokens) if overlap_tokens is None else overlap_tokens
    # At most half a chunk, so every chunk is at least half new text.
    overlap = min(max(overlap_t, 0) * CHARS_PER_TOKEN, max_chars // 2)
    blocks = [_Block(0, len(text), ())] if verbatim else _blocks(text)
    pending: int | None = None  # start of heading-only blocks waiting for their body
    for i, block in enumerate(blocks):
        # Block 0 is the text before the first heading; every later block opens with one.
        if 0 < i < len(blocks) - 1 and _heading_only(text, block):
            pending = block.start if pending is None else pending
            continue
        lo = block.start if pending is None else pending
        pending = None
        headings = tuple(title for _, title in block.path)
        for start, fresh, end in _split(text, lo, block.end, max_chars, overlap, verbatim):
            yield Chunk(text[start:end], start, fresh, end, headings)
