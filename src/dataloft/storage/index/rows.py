"""A table row split into parts is one document to BM25.

A row over the token budget becomes several records (sync/build.py: each part opens with
the row's short fields, then a piece of the rest), and search answers with the best part of
each row. Scored part by part, BM25 sees only the query terms that fall in one piece of the
row; scored as the row (the parts' texts together), it sees them all, as it did before rows
were split: SciFact nDCG@10 lexical 0.6807 -> 0.6870, hybrid 0.6994 -> 0.7030
(docs/benchmarks.md section 17). Every part of a row gets the row's score; fusion with the
part's own vector score then picks which part answers.

`row_key` is the row's identity in SQL (both adapters use it): file, sheet, table and row
for a part (a record whose meta has `part`), the record's own pk for any other record.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from sqlalchemy import ColumnElement, String, case, cast, func

from dataloft.models import Record
from dataloft.storage.index.terms import TermIndex

_SEP = "\x1f"


def row_key() -> ColumnElement[str]:
    def field(name: str) -> ColumnElement[str]:
        return func.coalesce(Record.meta[name].as_string(), "")

    part = Record.meta["part"].as_string()
    return case(
        (part.is_not(None), func.coalesce(Record.file_id, "") + _SEP + field("sheet") + _SEP
         + field("table") + _SEP + field("row")),
        else_="#" + cast(Record.pk, String))


@dataclass(frozen=True)
class RowTerms:
    """BM25 with one document per row; `scores` answers per record (a row's score for each
    of its parts), so callers use it as they would a TermIndex over the records."""

    pks: np.ndarray  # int64, every record
    rows: TermIndex  # one document per row
    row_of: np.ndarray  # int64, each record's document in `rows`

    @classmethod
    def build(cls, records: Iterable[tuple[int, str, str]]) -> RowTerms:
        """`records` are (pk, text, row key) in pk order. A row's parts are written
        together, so they arrive one after another: the texts are joined as they stream
        and never held all at once (a part apart from its row would be a row of its own)."""
        # C arrays, not lists: a list of 1M ints is 36 MB against 8 MB.
        pks, row_of = array("q"), array("q")
        index = TermIndex.build(_joined(records, pks, row_of))
        return cls(np.array(pks, dtype=np.int64), index, np.array(row_of, dtype=np.int64))

    @cached_property
    def groups(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(first, count, members): the records of row r are members[first[r]:][:count[r]]
        (members None: record numbers themselves, the usual case, as a row's parts are
        consecutive records). Made on first use, for lexrank.ranked."""
        count = np.bincount(self.row_of, minlength=len(self.rows.pks))
        members = None if not len(self.row_of) or bool(np.all(np.diff(self.row_of) >= 0)) \
            else np.argsort(self.row_of, kind="stable")
        first = np.cumsum(count) - count
        return first, count, members

    def scores(self, query: str) -> np.ndarray | None:
        """BM25 of every record's row (0 where no term matches); None if no term is known."""
        by_row = self.rows.scores(query)
        return None if by_row is None else by_row[self.row_of]


def _joined(records: Iterable[tuple[int, str, str]], pks: array[int], row_of: array[int]
            ) -> Iterator[tuple[int, str]]:
    """(row number, the row's texts joined), filling `pks` and `row_of` on the way."""
    number, key = -1, ""
    texts: list[str] = []
    for pk, text, row in records:
        if number < 0 or row != key:
            if texts:
                yield number, "\n".join(texts)
            number, key, texts = number + 1, row, []
        pks.append(pk)
        row_of.append(number)
        texts.append(text)
    if texts:
        yield number, "\n".join(texts)
