"""BM25 over one dataset's records, held in memory as term-sorted postings.

Why not FTS5's `bm25()`: FTS5 scores every posting of every query term before it can sort,
so a query holding a common word costs a pass over nearly the whole dataset (300-700 ms at
100k records). Here each term's postings are a slice of two NumPy arrays with the BM25
term weight precomputed; a query is a handful of vectorised adds and one partial sort.

Text analysis (shared with highlights): lower case, accents folded, `\\w+` words, Lucene's
English stop words dropped, Snowball English stems.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import Stemmer

from dataloft.storage.index.vocab import EMPTY, Growing, Vocab

K1, B = 1.2, 0.75
MAX_QUERY_TERMS = 64
# Documents analysed and sorted at a time by a build (their postings are merged after).
ANALYSE_BATCH = 16_384
# Terms with at least this many postings keep their tf part of BM25 once a query has
# computed it (TermIndex.scores), in at most PART_SHARE of the index's postings and at most
# PART_MAX floats (32 MiB) per index: at 100k rows ~25 MiB, beside 100 MiB of postings.
PART_MIN = 4096
PART_SHARE = 0.5
PART_MAX = 8_000_000
_WORD = re.compile(r"\w+")
# Lucene's English stop set: words that say nothing about a passage's topic.
STOP_WORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is",
    "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there",
    "these", "they", "this", "to", "was", "will", "with"))


# Distinct words whose stems are kept, process-wide: English text has well under this many
# (SciFact ~50k); past it a word is stemmed each time it is met (~1 us).
STEM_CACHE = 262_144


class _Stems(dict[str, str]):
    """word -> stem ('' for a stop word); the stemmer runs once per distinct word."""

    def __init__(self) -> None:
        super().__init__()
        self._stemmer = Stemmer.Stemmer("english")
        self._lock = threading.Lock()

    def __missing__(self, word: str) -> str:
        if word.isdigit() and word.isascii():
            # A number is its own stem; not cached: a table's ids and amounts are mostly
            # numbers seen once, and filled this cache with millions of them (section 26).
            return word
        with self._lock:  # PyStemmer objects are not thread-safe
            stem = "" if word in STOP_WORDS else self._stemmer.stemWord(word)
        if len(self) < STEM_CACHE:
            self[word] = stem
        return stem


_stems = _Stems()
# A word's stem ('' for a stop word): highlights map a record's distinct words through it.
stem_of = _stems.__getitem__


# The combining-mark blocks: what NFKD splits accents into.
_MARKS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")


def fold(text: str) -> str:
    """Lower-cased, accents removed: how the index compares words."""
    text = text.lower()
    if text.isascii():
        return text
    return _MARKS.sub("", unicodedata.normalize("NFKD", text))


# `\w` on ASCII text is [A-Za-z0-9_]: every other byte becomes a space, and str.split
# finds the words in about half the time of the regex (highlights analyse whole records
# per request; index builds every record).
_NON_WORD = bytes(c if chr(c).isalnum() or chr(c) == "_" else 32 for c in range(128)) \
    + bytes([32]) * 128


def words(folded: str) -> list[str]:
    r"""The `\w+` runs of `folded`, in order."""
    if folded.isascii():
        return folded.encode("ascii").translate(_NON_WORD).decode("ascii").split()
    return _WORD.findall(folded)


def stems(text: str) -> Iterator[str]:
    """The stem of every word of `text`, in order; '' for stop words. (map keeps the per-word
    loop in C: highlights run this over every returned record.)"""
    return map(_stems.__getitem__, words(fold(text)))


def terms(text: str) -> list[str]:
    """The index terms of `text`, in order, with repeats."""
    return list(filter(None, stems(text)))


def query_terms(query: str) -> list[str]:
    return list(dict.fromkeys(terms(query)))[:MAX_QUERY_TERMS]


class _TermIds(dict[str, int]):
    """word -> term id in `vocab` (-1 for a stop word), for one index build."""

    def __init__(self, vocab: Growing) -> None:
        super().__init__()
        self._vocab = vocab

    def __missing__(self, word: str) -> int:
        stem = _stems[word]
        tid = self._vocab.id(stem) if stem else -1
        if len(word) < 5 or not word.isdigit():
            # Long numbers are mostly identifiers, met once: not worth a cache entry.
            self[word] = tid
        return tid


@dataclass(frozen=True)
class TermIndex:
    """Postings sorted by term; each query term is weighed at query time from the stored
    term frequencies (only that term's postings), so a delta never re-weighs the whole
    index: what moves with every commit (N, the average length, df) is in `idf` and
    `norm`, O(terms + documents) to recompute."""

    pks: np.ndarray  # int64, one per document
    vocab: Vocab
    starts: np.ndarray  # int64, postings of term t are [starts[t], starts[t + 1])
    docs: np.ndarray  # int32 document numbers
    tf: np.ndarray  # int32 per posting
    length: np.ndarray  # float32 per document: its number of index terms
    idf: np.ndarray  # float32 per term
    norm: np.ndarray  # float32 per document: K1 x (1 - B + B x length / average length)
    parts: _Parts = field(default_factory=lambda: _Parts(), compare=False, repr=False)

    @classmethod
    def build(cls, rows: Iterable[tuple[int, str]]) -> TermIndex:
        growing = Growing(EMPTY)
        pks, df, doc, tf, length = _analyse(rows, growing)
        vocab = growing.finish()
        return make(pks, vocab, np.concatenate([[0], np.cumsum(df)]).astype(np.int64), doc,
                    tf, length)

    def update(self, keep: np.ndarray, rows: Iterable[tuple[int, str]]) -> TermIndex:
        """This index without the documents where `keep` is false, plus `rows`: equal, score
        for score, to `build` over the same documents (only document numbers differ). Only
        the new rows are analysed; the kept postings are filtered and merged by term."""
        growing = Growing(self.vocab)
        pks, new_df, doc, tf, length = _analyse(rows, growing)
        vocab = growing.finish()
        term = np.repeat(np.arange(len(vocab), dtype=np.int32), new_df)
        # int32 throughout: at 100k documents there are ~10M postings, and every int64
        # copy of them is 80 MB more at the peak of an update.
        counts = np.diff(self.starts)
        old_docs, old_tf = self.docs, self.tf
        if not keep.all():
            alive = keep[self.docs]
            dead = np.flatnonzero(~alive)  # few: the postings of the documents dropped
            counts = counts - np.bincount(
                np.searchsorted(self.starts, dead, side="right") - 1, minlength=len(counts))
            renumber = (np.cumsum(keep, dtype=np.int32) - 1).astype(np.int32)
            old_docs, old_tf = renumber[self.docs[alive]], self.tf[alive]
        # Each new posting goes after the kept postings of its term: both parts are sorted
        # by term, and within a term the old documents come first, as their numbers do.
        ends = np.concatenate([np.cumsum(counts), np.full(len(vocab) - len(counts),
                                                          len(old_docs))])
        at = ends[term]
        df = np.concatenate([counts, np.zeros(len(vocab) - len(counts), dtype=counts.dtype)]) \
            + new_df
        return make(np.concatenate([self.pks[keep], pks]), vocab,
                    np.concatenate([[0], np.cumsum(df)]).astype(np.int64),
                    np.insert(old_docs, at, doc + np.int32(int(keep.sum()))),
                    np.insert(old_tf, at, tf),
                    np.concatenate([self.length[keep], length]))

    def scores(self, query: str) -> np.ndarray | None:
        """BM25 of every document (0 where no term matches); None if no term is known."""
        ids = [t for t in map(self.vocab.get, query_terms(query)) if t is not None]
        if not ids:
            return None
        out = np.zeros(len(self.pks), dtype=np.float32)
        for t in ids:
            lo, hi = int(self.starts[t]), int(self.starts[t + 1])
            # The same float32 operations in the same order as ever, so the same bits: a
            # term lists each document once, `add.at` adds in term order.
            np.add.at(out, self.docs[lo:hi], self._part(t, lo, hi)
                      * (self.idf[t] * np.float32(K1 + 1)))
        return out

    def _part(self, t: int, lo: int, hi: int) -> np.ndarray:
        """tf / (tf + norm) per posting of term t. Computing it is ~2 of the ~3.7 ns a
        posting costs (the tf cast, the norm gather, the add and divide), and a long list is
        most of a query's postings, so long lists keep theirs: 0.50 -> 0.29 ms per query at
        100k rows (docs/benchmarks.md section 24). `norm` moves with every commit, but a
        commit makes a new index, with an empty cache."""
        kept = self.parts.get(t)
        if kept is not None:
            return kept
        # Native-width indices for `take` (numpy >= 1.25's fast path).
        docs = self.docs[lo:hi].astype(np.intp)
        tf = self.tf[lo:hi].astype(np.float32)
        part: np.ndarray = tf / (tf + self.norm.take(docs))
        if hi - lo >= PART_MIN:
            self.parts.keep(t, part, min(PART_SHARE * len(self.docs), PART_MAX))
        return part


class _Parts(dict[int, np.ndarray]):
    """term id -> its postings' tf part, up to a number of floats. Threads may race to add
    one term twice: both computed the same values, and `kept` may overshoot by a term."""

    kept = 0

    def keep(self, t: int, part: np.ndarray, limit: float) -> None:
        if t not in self and self.kept + len(part) <= limit:
            self[t] = part
            self.kept += len(part)


def _analyse(rows: Iterable[tuple[int, str]], vocab: Growing
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(pks, df, doc, tf, length) of `rows`: df per term id, and one posting per (term,
    document), sorted by term then document; new terms are added to `vocab`. Analysed
    `ANALYSE_BATCH` documents at a time, each batch's postings sorted on their own, then
    placed into the final arrays by term (a counting sort: a batch's documents all follow
    the previous batch's). Sorting all of a 1M-row build's ~14M words at once held int64
    keys, positions and their differences together: ~0.7 GiB at the peak, against ~0.37
    GiB this way (docs/benchmarks.md section 26)."""
    ids_of = _TermIds(vocab).__getitem__
    pks = array("q")
    lengths: list[np.ndarray] = []
    parts: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
    batch: list[tuple[int, str]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == ANALYSE_BATCH:
            parts.append(_batch(batch, ids_of, pks, lengths))
            batch = []
    if batch or not parts:
        parts.append(_batch(batch, ids_of, pks, lengths))
    del batch
    df = np.zeros(len(vocab), dtype=np.int64)
    for _, term, _, _ in parts:
        df += np.bincount(term, minlength=len(vocab))
    total = int(df.sum())
    doc, tf = np.empty(total, dtype=np.int32), np.empty(total, dtype=np.int32)
    cursor = np.cumsum(df) - df  # where each term's next posting goes
    while parts:
        start, term, part_doc, part_tf = parts.pop(0)
        counts = np.bincount(term, minlength=len(vocab))
        # A posting's place: its term's cursor plus its rank among the term's postings in
        # this batch (they are consecutive, in document order).
        at = cursor[term] + np.arange(len(term)) - (np.cumsum(counts) - counts)[term]
        doc[at], tf[at] = part_doc + np.int32(start), part_tf
        cursor += counts
    return np.array(pks, dtype=np.int64), df, doc, tf, np.concatenate(lengths)


def _batch(rows: list[tuple[int, str]], ids_of: Callable[[str], int], pks: array[int],
           lengths: list[np.ndarray]) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """(first document number, term, doc, tf) of `rows`, sorted by term then document,
    documents numbered within the batch (uint16 while they fit, as does tf: a batch's
    postings wait for the merge); appends their pks and lengths. Flat C arrays: no Python
    object per word."""
    offset = len(pks)
    per_doc = array("q")  # words of each document
    flat = array("i")  # every word's term id (-1 = stop word)
    for pk, text in rows:
        before = len(flat)
        flat.extend(map(ids_of, words(fold(text))))
        pks.append(pk)
        per_doc.append(len(flat) - before)
    n = len(rows)
    ids = np.array(flat, dtype=np.int32)
    kept = ids >= 0
    doc_of = np.repeat(np.arange(n, dtype=np.int32), np.array(per_doc, dtype=np.int64))[kept]
    # One key per (term, doc) occurrence, sorted: by term, then document.
    keys = ids[kept].astype(np.int64)
    lengths.append(np.bincount(doc_of, minlength=n).astype(np.float32))
    keys *= max(n, 1)
    keys += doc_of
    keys.sort()
    first = np.empty(len(keys), dtype=bool)
    first[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    tf = np.diff(np.append(starts, len(keys))).astype(np.int32)
    keys = keys[starts]
    small = np.uint16 if n <= 65_536 else np.int32
    return (offset, (keys // max(n, 1)).astype(np.int32), (keys % max(n, 1)).astype(small),
            tf if len(tf) and int(tf.max()) >= 65_536 else tf.astype(np.uint16))


def make(pks: np.ndarray, vocab: Vocab, starts: np.ndarray, docs: np.ndarray,
         tf: np.ndarray, length: np.ndarray) -> TermIndex:
    """The index over postings sorted by term. N, the average length and df are those of
    exactly these documents, so an updated index scores as a fresh build does; the average
    is summed in float64 (exact for integer lengths), so it does not depend on their order."""
    n = len(pks)
    df = np.diff(starts)
    idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
    total = float(length.sum(dtype=np.float64))
    avg = total / n if n and total else 1.0
    norm = (K1 * (1 - B + B * length.astype(np.float64) / avg)).astype(np.float32)
    return TermIndex(pks, vocab, starts, docs.astype(np.int32, copy=False),
                     tf.astype(np.int32, copy=False), length, idf, norm)


def top(scores: np.ndarray, pks: np.ndarray, k: int,
        allowed: Callable[[Sequence[int]], set[int]] | None = None,
        positive: bool = False) -> list[tuple[int, float]]:
    """The `k` best (pk, score), best first. `allowed(pks)` keeps the permitted ones: asked
    about the best few first and about more only when too many fail, so a restriction costs
    no recall and, when most rows pass, almost no time. `positive` skips zero scores."""
    pool_scores, pool_pks = scores, pks
    if positive:
        nonzero = np.flatnonzero(scores > 0)
        pool_scores, pool_pks = scores[nonzero], pks[nonzero]
    want = k if allowed is None else max(4 * k, 64)
    taken: list[tuple[int, float]] = []
    checked: set[int] = set()
    while True:
        m = min(want, len(pool_scores))
        if m <= 0:
            return taken
        part = np.argpartition(-pool_scores, m - 1)[:m] if m < len(pool_scores) \
            else np.arange(len(pool_scores))
        part = part[np.lexsort((pool_pks[part], -pool_scores[part]))]
        if allowed is None:
            return [(int(pool_pks[i]), float(pool_scores[i])) for i in part[:k]]
        fresh = [int(i) for i in part if int(pool_pks[i]) not in checked]
        ok = allowed([int(pool_pks[i]) for i in fresh])
        checked.update(int(pool_pks[i]) for i in fresh)
        taken += [(int(pool_pks[i]), float(pool_scores[i])) for i in fresh
                  if int(pool_pks[i]) in ok]
        if len(taken) >= k or m == len(pool_scores):
            taken.sort(key=lambda h: (-h[1], h[0]))
            return taken[:k]
        want *= 8
