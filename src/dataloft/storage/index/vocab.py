"""A term index's vocabulary (term -> term id) held in a few flat arrays, not Python objects.

Why: a table's id and amount columns make every row's values terms of their own, so a
1M-row table has ~1M terms; as a `dict[str, int]` that is ~150 MiB of str objects and hash
table kept for as long as the index lives (docs/benchmarks.md section 26). Here the terms
are one UTF-8 blob in id order, joined by "\\n" (a term is a `\\w+` run, so it never holds
one; this is also the saved copy's `vocab.txt`), with their offsets, and a lookup table of
the terms' hashes, sorted, with the id of each. A lookup hashes the term, finds the equal
hashes by binary search and compares the term's bytes with each candidate's: exact, and
~30 bytes a term in all. Python's str hash is salted per process, so the hashes are
recomputed on load, never saved.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np

_NL = ord("\n")


class Vocab(Mapping[str, int]):
    """Terms in id order (ids 0..n-1); immutable. `grow` makes an extended copy."""

    __slots__ = ("_blob", "_ends", "_hashes", "_ids", "_views")

    def __init__(self, blob: bytes, hashes: np.ndarray | None = None) -> None:
        """`hashes`: each term's hash in id order, when the caller has them (else computed)."""
        self._blob = blob
        raw = np.frombuffer(blob, dtype=np.uint8)
        # Each term's end; a "\n" follows all but the last.
        self._ends = np.append(np.flatnonzero(raw == _NL), len(blob)).astype(np.int64) \
            if blob else np.zeros(0, dtype=np.int64)
        if hashes is None:
            hashes = np.fromiter((hash(t) for t in self._decoded()), dtype=np.int64,
                                 count=len(self._ends))
        self._ids = np.argsort(hashes, kind="stable").astype(np.int32)
        self._hashes = hashes[self._ids]
        self._views = (self._hashes.data.cast("B").cast("q"),
                       self._ids.data.cast("B").cast("i"),
                       self._ends.data.cast("B").cast("q"))

    @classmethod
    def of(cls, terms: Iterable[str]) -> Vocab:
        """The vocabulary of `terms`, given in id order, without repeats."""
        return cls("\n".join(terms).encode("utf-8"))

    @property
    def blob(self) -> bytes:
        """The terms in id order, joined by "\\n" (UTF-8)."""
        return self._blob

    def grow(self, new: Sequence[str]) -> Vocab:
        """This vocabulary plus `new` (terms not in it), numbered from len(self) on."""
        if not new:
            return self
        extra = "\n".join(new).encode("utf-8")
        blob = self._blob + b"\n" + extra if self._blob else extra
        # A str caches its hash: the new terms' cost nothing to read here.
        hashes = np.empty(len(self) + len(new), dtype=np.int64)
        hashes[self._ids] = self._hashes
        hashes[len(self):] = np.fromiter(map(hash, new), dtype=np.int64, count=len(new))
        return Vocab(blob, hashes)

    def _span(self, tid: int) -> tuple[int, int]:
        ends = self._views[2]
        return (ends[tid - 1] + 1 if tid else 0), ends[tid]

    def _decoded(self) -> Iterator[str]:
        start = 0
        for end in self._ends.tolist():
            yield self._blob[start:end].decode("utf-8")
            start = end + 1

    def get(self, term: str, default: int | None = None) -> int | None:  # type: ignore[override]
        # Memoryviews and bisect, not NumPy: a lookup is a few C calls (~1 us), where
        # NumPy's per-call and scalar overheads made it ~10x that.
        hashes, ids, _ = self._views
        h = hash(term)
        at = bisect_left(hashes, h)
        raw = None
        while at < len(hashes) and hashes[at] == h:
            tid = ids[at]
            start, end = self._span(tid)
            raw = term.encode("utf-8") if raw is None else raw
            if self._blob[start:end] == raw:
                return tid
            at += 1
        return default

    def __getitem__(self, term: str) -> int:
        tid = self.get(term)
        if tid is None:
            raise KeyError(term)
        return tid

    def __contains__(self, term: object) -> bool:
        return isinstance(term, str) and self.get(term) is not None

    def __len__(self) -> int:
        return len(self._ends)

    def __iter__(self) -> Iterator[str]:
        return self._decoded()

    def term(self, tid: int) -> str:
        start, end = self._span(tid)
        return self._blob[start:end].decode("utf-8")

    def sound(self) -> bool:
        """Whether every term is non-empty and here once. What `of` and `grow` make always
        is; a saved copy whose writer erred need not be, and its checksums cannot tell: a
        repeated term's second id would never be looked up, so its postings would be lost."""
        starts = np.concatenate(([0], self._ends[:-1] + 1))
        if (self._ends <= starts).any():
            return False
        # Equal terms have equal hashes: only those need their bytes compared.
        tie = np.flatnonzero(self._hashes[1:] == self._hashes[:-1])
        at = np.union1d(tie, tie + 1).tolist()
        pairs = {(int(self._hashes[i]), self.term(int(self._ids[i]))) for i in at}
        return len(pairs) == len(at)

    @property
    def nbytes(self) -> int:
        return len(self._blob) + self._ends.nbytes + self._hashes.nbytes + self._ids.nbytes


class Growing:
    """Term ids for a build or update: those of `base`, then new terms numbered on from
    len(base) in a small dict (only the terms `base` lacks)."""

    def __init__(self, base: Vocab) -> None:
        self._base = base
        self._new: dict[str, int] = {}

    def id(self, term: str) -> int:
        tid = self._new.get(term)
        if tid is None:
            tid = self._base.get(term) if len(self._base) else None
            if tid is None:
                tid = self._new[term] = len(self._base) + len(self._new)
        return tid

    def __len__(self) -> int:
        return len(self._base) + len(self._new)

    def finish(self) -> Vocab:
        new, self._new = self._new, {}
        return self._base.grow(list(new))


EMPTY = Vocab(b"")
