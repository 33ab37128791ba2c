"""Parts of the ingest pipeline (issue 16, item 5): a spool read by two threads at once,
and ids made a batch at a time."""

from __future__ import annotations

import re
import threading

from hypothesis import given
from hypothesis import strategies as st

from dataloft.kit.ids import new_id, new_ids
from dataloft.kit.spool import Spool


def test_two_readers_of_one_spool_each_see_every_batch_in_order() -> None:
    """A sync writes its tables and builds its records from one items spool, in two
    threads: each reader has a cursor of its own."""
    batches = [[(b, i, "x" * (i % 50)) for i in range(300)] for b in range(40)]
    with Spool() as spool:
        for batch in batches:
            spool.append(batch)
        seen: dict[str, list[list[object]]] = {}

        def read(name: str) -> None:
            seen[name] = list(spool.batches())

        readers = [threading.Thread(target=read, args=(f"r{i}",)) for i in range(2)]
        for reader in readers:
            reader.start()
        # The main thread reads too, interleaved with them.
        main = [item for batch in spool.batches() for item in batch]
        for reader in readers:
            reader.join()
        spool.append([("after", 0, "")])  # appends after reads go to the end
        assert list(spool.items())[-1] == ("after", 0, "")
    assert seen == {"r0": batches, "r1": batches}
    assert main == [item for batch in batches for item in batch]


@given(st.integers(min_value=1, max_value=600))
def test_ids_made_in_a_batch_are_like_ids_made_one_by_one(count: int) -> None:
    ids = new_ids("rec", count)
    after = new_id("rec")
    assert len(set(ids)) == count
    assert ids == sorted(ids) and ids[-1] < after
    assert all(re.fullmatch(r"rec_[0-9a-hjkmnp-tv-z]{26}", i) for i in [*ids, after])
