"""A result page loads its records in batches; the index's row numbers only size them.

`pick` must answer the same records, in the same order, whatever row numbers it is given
(right, wrong, or none): they decide how many records are read, never which are kept.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dataloft.search.repository import Found
from dataloft.search.service import pick


def _found(pk: int, row: int | None, gone: bool) -> Found | None:
    meta: dict[str, Any] = {} if row is None else {"part": 1, "row": row, "table": "t"}
    return None if gone else Found(pk, f"rec_{pk}", "ds_1", "file_1", None, f"text {pk}", meta)


@st.composite
def pages(draw: st.DrawFn) -> tuple[list[tuple[int, float]], dict[int, Found], list[int | None]]:
    n = draw(st.integers(0, 60))
    rows = draw(st.lists(st.one_of(st.none(), st.integers(0, 12)), min_size=n, max_size=n))
    gone = draw(st.lists(st.booleans(), min_size=n, max_size=n).map(
        lambda g: g if draw(st.booleans()) else [False] * n))
    order = draw(st.permutations(range(n)))
    hits = [(pk, float(n - i)) for i, pk in enumerate(order)]
    records = {pk: r for pk in range(n) if (r := _found(pk, rows[pk], gone[pk])) is not None}
    return hits, records, rows


def _loader(records: dict[int, Found], log: list[int]) -> Any:
    def load(batch: list[tuple[int, float]]) -> list[tuple[Found, float]]:
        log.extend(pk for pk, _ in batch)
        return [(records[pk], s) for pk, s in batch if pk in records]
    return load


def _true_rows(hits: list[tuple[int, float]], rows: list[int | None]) -> np.ndarray:
    """What the index says: a part's row, a number of its own for any other record."""
    return np.array([rows[pk] if rows[pk] is not None else 1000 + pk for pk, _ in hits],
                    dtype=np.int64)


@settings(max_examples=300, deadline=None)
@given(page=pages(), take=st.integers(1, 15),
       noise=st.lists(st.integers(-3, 3), min_size=60, max_size=60))
def test_row_numbers_change_what_is_loaded_never_the_answer(
        page: tuple[list[tuple[int, float]], dict[int, Found], list[int | None]], take: int,
        noise: list[int]) -> None:
    hits, records, rows = page
    plain: list[int] = []
    expected = pick(hits, take, _loader(records, plain))
    true_rows = _true_rows(hits, rows)
    wrong = np.array(noise[: len(hits)], dtype=np.int64)  # any numbers at all
    for hint in (true_rows, wrong):
        log: list[int] = []
        assert pick(hits, take, _loader(records, log), hint) == expected
        assert log == [pk for pk, _ in hits[: len(log)]]  # in order, each hit once
    assert len({r.pk for r, _ in expected}) == len(expected)


@settings(max_examples=200, deadline=None)
@given(page=pages(), take=st.integers(1, 15))
def test_with_the_right_rows_a_page_is_one_read_up_to_its_last_row(
        page: tuple[list[tuple[int, float]], dict[int, Found], list[int | None]],
        take: int) -> None:
    hits, records, rows = page
    if len(records) < len(hits):
        return  # a record gone since it ranked: a second read may be needed
    log: list[int] = []
    batches: list[int] = []

    def counted(batch: list[tuple[int, float]]) -> list[tuple[Found, float]]:
        batches.append(len(batch))
        return _loader(records, log)(batch)

    answer = pick(hits, take, counted, _true_rows(hits, rows))
    assert len(batches) <= 1
    # The read stops at the hit that opens the page's last row, where the old batches
    # read three hits per missing record.
    last = max((hits.index((r.pk, s)) for r, s in answer), default=-1)
    assert len(log) == (last + 1 if len(answer) == take else len(hits))


def test_unknown_pks_never_share_a_row() -> None:
    from dataloft.storage.index.rows import RowTerms

    index = RowTerms.build([(10, "a b", "r1"), (11, "c", "r1"), (12, "d", "#12"),
                            (14, "e", "#14")])
    got = index.row_numbers([14, 10, 13, 11, 99, 12]).tolist()
    assert got[1] == got[3] and got[5] != got[1]
    assert got[2] < 0 and got[4] < 0 and got[2] != got[4]
    assert len({got[0], got[1], got[5]}) == 3
