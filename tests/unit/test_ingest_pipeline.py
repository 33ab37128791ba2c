"""Parts of the ingest pipeline (issue 16, item 5): a spool read by two threads at once
and while it is written, and ids made a batch at a time."""

from __future__ import annotations

import os
import pickle
import re
import struct
import threading

from hypothesis import given
from hypothesis import strategies as st

from dataloft.kit.ids import new_id, new_ids
from dataloft.kit.spool import Spool, SpoolWriter


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


def test_a_reader_follows_a_writer_and_never_reads_a_frame_half_written() -> None:
    """The sync builds records from the items spool while the extraction child still
    appends to it: a reader waits at the end until the writer `finished`, and takes a
    frame only once it is whole (here written in two halves, a pause between them)."""
    batches = [[(b, i, "y" * (i % 70)) for i in range(200)] for b in range(30)]
    with Spool(header=True) as spool:
        spool.writing()
        fd = os.dup(spool.fileno())
        release = threading.Event()

        def write() -> None:
            with os.fdopen(fd, "ab", buffering=0) as fh:
                for n, value in enumerate(["csv", *batches]):
                    data = pickle.dumps(value)
                    frame = struct.pack("<Q", len(data)) + data
                    fh.write(frame[: len(frame) // 2])
                    if n == 10:
                        release.wait(5)  # the reader is stuck on a half frame meanwhile
                    fh.write(frame[len(frame) // 2 :])
            spool.finished()

        writer = threading.Thread(target=write)
        writer.start()
        assert spool.header() == "csv"
        seen = []
        for batch in spool.batches():
            seen.append(batch)
            if len(seen) == 9:
                release.set()
        writer.join()
    assert seen == batches


def test_a_reader_stops_where_a_writer_that_failed_stopped() -> None:
    with Spool(header=True) as spool:
        spool.writing()
        writer = SpoolWriter(os.dup(spool.fileno()), 1 << 30, 2, header="jsonl")
        for i in range(5):
            writer.add(i)
        writer.close()  # four items in two whole batches, one in a last one
        with open(f"/proc/self/fd/{spool.fileno()}", "ab") as fh:
            fh.write(struct.pack("<Q", 1 << 40) + b"partial")  # a frame that never ends
        spool.finished()
        assert spool.header() == "jsonl"
        assert list(spool.batches()) == [[0, 1], [2, 3], [4]]


@given(st.lists(st.lists(st.integers(), max_size=5), max_size=20), st.booleans())
def test_a_spool_gives_back_what_was_appended(batches: list[list[int]], header: bool) -> None:
    with Spool(header=header) as spool:
        writer = SpoolWriter(os.dup(spool.fileno()), 1 << 30, 1 << 20,
                             **({"header": {"h": 1}} if header else {}))
        for batch in batches:
            for item in batch:
                writer.add(item)
            writer.flush()
        writer.close()
        assert list(spool.batches()) == [b for b in batches if b]
        assert spool.header() == ({"h": 1} if header else ([b for b in batches if b] or
                                                             [None])[0])
