"""A big sync's term index and vector matrix, made in a child process from the sync's own
records spool while its commit inserts the same records (docs/decisions.md "A big sync's
structures are made from its spool").

After a sync's commit, the settle used to read every record back from SQLite and analyse
it on the warmer thread (at 1M rows ~20 s on the server's one GIL, after the ~30 s of
inserts, and the term build's ~380 MiB peak in the server). The spool already holds the
records in insert order, and on SQLite that is pk order: the insert gives them max(pk) + 1
onwards, under the writer's lock. So the child reads the spool (through its descriptor)
during the commit, on the second core, and writes the term arrays (record numbers 0..n-1
for pks) and the raw vector rows into a directory; `landed`, inside the commit's
transaction, checks that the dataset's records are exactly these (count and a pk range
that matches) and notes the pks, updated_at and the new index_version; the warmer then
maps the files and gives them their pks and fingerprints, instead of building.

Anything else (a dataset with other records, a rolled-back or superseded commit, a child
that fails or is killed) drops the child's work and the warmer builds from the database
as before: this is only ever a shortcut to the same structures (the contract tests compare
them with a full rebuild).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
from array import array
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from dataloft.kit import confine
from dataloft.kit.spool import Spool, read_batches
from dataloft.storage.index.delta import _MIX, Catalog
from dataloft.storage.index.rows import _SEP, RowTerms
from dataloft.storage.index.structures import Matrix, Terms
from dataloft.storage.index.terms import make
from dataloft.storage.index.vocab import Vocab

# Below this many records a build from the database takes well under a second: no child.
MIN_RECORDS = 50_000
# The child's resident limit: the term build of 1M rows peaks at ~380 MiB (section 26a).
MEMORY_BYTES = 2 << 30
TIMEOUT_S = 600.0
PRELOAD = (__name__,)
_MASK = 0xFFFF_FFFF_FFFF_FFFF
_ARRAYS = ("r_pks", "r_starts", "r_docs", "r_tf", "r_length", "t_row_of", "hashes", "m_rows")

log = logging.getLogger(__name__)


@dataclass
class _Job:
    future: Future[tuple[int, int]]
    out: Path
    count: int
    dimension: int
    go: int  # the write end of the child's go-ahead pipe (-1: closed)
    # Set in the commit's transaction: (index_version, first pk, updated_at).
    landed: tuple[int, int, int] | None = None

    def release(self, write: bool) -> None:
        """Let the child write its files (`write`) or end without them."""
        if self.go >= 0:
            try:
                if write:
                    os.write(self.go, b"1")
            except BrokenPipeError:  # the child already ended: its future says how
                pass
            finally:
                os.close(self.go)
                self.go = -1


class Early:
    """The children of one index, one per dataset at a time."""

    def __init__(self, scratch: Path | None) -> None:
        self.scratch = scratch
        self.min_records = MIN_RECORDS
        self.memory_bytes = MEMORY_BYTES
        self.adopted = 0  # syncs whose structures came from their spool
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()

    def start(self, dataset_id: str, records: Spool, count: int, dimension: int) -> None:
        """Begin making the structures of `records` (a finished spool of `count` records
        with ids, in the order they will be inserted) in a child."""
        if count < self.min_records or not dimension:
            return
        if self.scratch is not None:
            self.scratch.mkdir(parents=True, exist_ok=True)
        out = Path(tempfile.mkdtemp(prefix=".early-", dir=self.scratch))
        records.flush()  # the child reads the file, not this process's write buffer
        # Descriptors of our own until the child ends: the child is forked when a pool
        # thread gets to it, and the sync may have closed its spool by then.
        spool, (wait, go) = os.dup(records.fileno()), os.pipe()
        future: Future[tuple[int, int]] = Future()

        def run() -> None:
            try:
                future.set_result(confine.run(
                    made, (confine.Inherited(spool), confine.Inherited(wait), count,
                           dimension, str(out)),
                    preload=PRELOAD, memory_bytes=self.memory_bytes, timeout_s=TIMEOUT_S,
                    niceness=0))  # not batch work: the sync's announcement waits for it
            except BaseException as exc:  # noqa: BLE001 - the warmer reads it
                future.set_exception(exc)
            finally:
                _close(spool, wait)

        # A daemon thread, not a pool's: a child still waiting for its go-ahead (a commit
        # that failed) must not hold the process's exit.
        threading.Thread(target=run, name="dataloft-early", daemon=True).start()
        self._drop(dataset_id, _Job(future, out, count, dimension, go))

    def landed(self, session: Session, dataset_id: str, first: int, count: int) -> None:
        """In the transaction that inserted the records (pks `first` onwards): keep the
        child's work only if the dataset now holds exactly those records."""
        with self._lock:
            job = self._jobs.get(dataset_id)
        if job is None:
            return
        held, low, high = session.connection().exec_driver_sql(
            "SELECT count(*), min(pk), max(pk) FROM records WHERE dataset_id = ?",
            (dataset_id,)).one()
        if not (count == job.count == held and low == first and high == first + count - 1):
            self._drop(dataset_id, None)
            return
        version, updated = session.connection().exec_driver_sql(
            "SELECT d.index_version, r.updated_at FROM datasets d, records r "
            "WHERE d.id = ? AND r.pk = ?", (dataset_id, first)).one()
        job.landed = (int(version), first, int(updated))

    def take(self, dataset_id: str, version: int, dimension: int, map_min_bytes: int
             ) -> tuple[Terms, Matrix] | None:
        """The structures at `version` if the child made them (waiting for it); else None
        and its work is dropped."""
        with self._lock:
            job = self._jobs.pop(dataset_id, None)
        if job is None:
            return None
        if job.landed is None or job.landed[0] != version or job.dimension != dimension:
            _clean(job)
            return None
        job.release(write=True)
        try:
            made = _load(job, *job.future.result(), map_min_bytes)
            self.adopted += 1
            log.info("the index structures of %s were made from its sync's spool", dataset_id)
            return made
        except Exception:  # the warmer builds from the database instead
            log.exception("the spooled index build of %s failed; building from the records",
                          dataset_id)
            return None
        finally:
            shutil.rmtree(job.out, ignore_errors=True)  # the mappings keep the files

    def abandon(self, dataset_id: str) -> None:
        """The commit did not happen: the child ends once its build does, without waiting
        for a go-ahead that would never come (it held its memory until its timeout)."""
        self._drop(dataset_id, None)

    def _drop(self, dataset_id: str, job: _Job | None) -> None:
        with self._lock:
            old = self._jobs.pop(dataset_id, None)
            if job is not None:
                self._jobs[dataset_id] = job
        if old is not None:
            _clean(old)


def _close(*fds: int) -> None:
    for fd in fds:
        os.close(fd)


def _clean(job: _Job) -> None:
    job.release(write=False)
    job.future.add_done_callback(lambda _f: shutil.rmtree(job.out, ignore_errors=True))


def _load(job: _Job, records: int, rows: int, map_min_bytes: int) -> tuple[Terms, Matrix]:
    assert job.landed is not None
    _, first, updated = job.landed
    if records != job.count:
        raise ValueError(f"{records} records made, {job.count} inserted")
    got = {name: np.load(job.out / f"{name}.npy", mmap_mode="r", allow_pickle=False)
           for name in _ARRAYS}
    pks = first + np.arange(records, dtype=np.int64)
    # delta.fingerprint, its id part made by the child: (hash(id) x MIX) xor updated_at.
    fps = (np.asarray(got["hashes"]) ^ np.uint64(updated)).view(np.int64)
    index = make(got["r_pks"], Vocab((job.out / "vocab").read_bytes()), got["r_starts"],
                 got["r_docs"], got["r_tf"], got["r_length"])
    terms = Terms(RowTerms(pks, index, got["t_row_of"]), fps)
    path, shape = job.out / "vectors", (rows, job.dimension)
    vectors = np.memmap(path, dtype="<f4", mode="r", shape=shape) \
        if rows and rows * job.dimension * 4 >= map_min_bytes \
        else np.fromfile(path, dtype=np.float32).reshape(shape)
    at = np.asarray(got["m_rows"])
    return terms, Matrix(pks[at], vectors, fps[at], Catalog(pks, fps))


def made(fd: int, go: int, count: int, dimension: int, out: str) -> tuple[int, int]:
    """In the child: the spool's term index and vector rows written under `out` once `go`
    says so (the commit's end: written during the commit, a GiB of vectors at 1M rows held
    its COMMIT's fsync back by ~17 s, section 38); returns (records, vector rows)."""
    hashes, at = array("Q"), array("q")
    width = 4 * dimension

    def records() -> Any:
        number = 0
        for batch in read_batches(fd):
            for r in batch:
                hashes.append(hash(int.from_bytes(r.id.encode(), "little")) * _MIX & _MASK)
                if r.vector is not None and len(r.vector) == width:
                    at.append(number)
                yield number, r.text, _row(r.meta_json, number)
                number += 1

    index = RowTerms.build(records())
    if os.read(go, 1) != b"1":
        return 0, 0  # dropped: the commit did not land these records alone
    where = Path(out)
    t = index.rows
    for name, value in (("r_pks", t.pks), ("r_starts", t.starts), ("r_docs", t.docs),
                        ("r_tf", t.tf), ("r_length", t.length), ("t_row_of", index.row_of),
                        ("hashes", np.frombuffer(hashes, dtype=np.uint64)),
                        ("m_rows", np.frombuffer(at, dtype=np.int64))):
        np.save(where / f"{name}.npy", value, allow_pickle=False)
    (where / "vocab").write_bytes(t.vocab.blob)
    with open(where / "vectors", "wb") as vectors:
        for batch in read_batches(fd):
            vectors.write(b"".join(r.vector for r in batch
                                   if r.vector is not None and len(r.vector) == width))
    return len(index.pks), len(at)


def _row(meta_json: str | None, number: int) -> str:
    """The record's row as rows.row_key tells rows apart: a part's file (the same for the
    whole spool), sheet, table and row; any other record is a row of its own."""
    if meta_json and '"part"' in meta_json:
        meta = json.loads(meta_json)
        if meta.get("part") is not None:
            return _SEP.join(_sql_text(meta.get(name)) for name in ("sheet", "table", "row"))
    return f"#{number}"


def _sql_text(value: Any) -> str:
    """What SQLite's json_extract then `||` make of a JSON value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
