"""The sync job: extract -> chunk -> embed -> write records and tables, atomically per file.

Three steps, so that no transaction is open while the slow part runs:
- `prepare`: one read-write transaction reads what the sync needs and logs its start;
- `produce`: extraction (in a confined child), records, table snapshots and embeddings,
  with no transaction open, a batch at a time through disk spools (bounded memory);
- `commit`: one transaction swaps the file's old records and tables for the new ones,
  reading the spooled records back a batch at a time.
A crash anywhere leaves the old records or the new ones, never both, never neither. The
whole sync runs under a deadline (`ExtractLimits.sync_timeout_s`): past it the file fails
with `processing_timeout`, which is final (not retried).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from itertools import islice

from sqlalchemy.orm import Session

from dataloft.datasets import repository as dataset_rows
from dataloft.datasets import service as datasets
from dataloft.errors import QuotaExceeded
from dataloft.events import service as events
from dataloft.files import repository as file_rows
from dataloft.ingest import confined
from dataloft.ingest.chunk import DEFAULT_MAX_TOKENS
from dataloft.ingest.embed.base import Embedder
from dataloft.ingest.extract import ExtractionError, content_type_for
from dataloft.jobs import queue
from dataloft.jobs.queue import Lease, LeaseLost
from dataloft.jobs.worker import JobFailed
from dataloft.kit.db import Database
from dataloft.kit.ids import now_ms
from dataloft.kit.spool import Spool
from dataloft.kit.vectors import to_blob
from dataloft.models import File
from dataloft.records import repository as records
from dataloft.records.repository import NewRecord
from dataloft.storage.blobs.base import BlobStore
from dataloft.storage.index.base import Index
from dataloft.sync.ahead import PrepareAhead
from dataloft.sync.build import build_records, file_meta
from dataloft.sync.service import SYNC_JOB, serial_key
from dataloft.tables import catalog, snapshot

EMBED_BATCH = 512
DEFAULT_SYNC_TIMEOUT_S = 600.0
log = logging.getLogger("dataloft.sync")


@dataclass(frozen=True)
class ExtractLimits:
    memory_bytes: int = confined.DEFAULT_MEMORY_BYTES
    timeout_s: float = confined.DEFAULT_TIMEOUT_S
    # The whole sync: extraction, building, embedding, writing (DATALOFT_SYNC_TIMEOUT_SECONDS).
    sync_timeout_s: float = DEFAULT_SYNC_TIMEOUT_S


@dataclass(frozen=True)
class Plan:
    """What `prepare` read, for the steps that run without a transaction."""

    dataset_id: str
    file_id: str
    org_id: str
    version: int
    blob_key: str | None
    source: bool
    name: str | None
    content_type: str | None
    created_at: int
    max_tokens: int
    overlap: int | None


@dataclass
class Product:
    """What `produce` made: the records (with vectors) spooled on disk, and the tables."""

    records: Spool | None
    count: int
    reused: int
    tables: list[snapshot.TableSnapshot]


class Deadline:
    """The whole-sync time limit; `check` fails the sync with `processing_timeout`."""

    def __init__(self, seconds: float, started: float) -> None:
        self.seconds, self.at = seconds, started + seconds

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def check(self) -> None:
        if time.monotonic() > self.at:
            raise JobFailed("processing_timeout",
                            f"the sync took longer than {self.seconds:g} s and was stopped")


@dataclass
class SyncHandler:
    db: Database
    blobs: BlobStore
    index: Index
    embedder: Embedder
    limits: ExtractLimits = ExtractLimits()
    lease_seconds: float = 30.0  # DATALOFT_JOB_LEASE_SECONDS: a commit renews it
    # Files of one dataset prepared at once, the running sync included
    # (DATALOFT_SYNC_PREPARE_PARALLEL; 1: one after another, as the queue hands them out).
    prepare_parallel: int = 1

    def __post_init__(self) -> None:
        self.ahead = PrepareAhead(self.db, self.prepare_parallel - 1, SYNC_JOB, self.plan_of,
                                  self._produce_ahead, self._discard)

    def close(self) -> None:
        """Stop the preparations running ahead (the pool stops)."""
        self.ahead.close()

    def failed(self, session: Session, job_id: str, payload: dict[str, object], code: str,
               message: str) -> None:
        dataset = dataset_rows.dataset_by_id(session, str(payload["datasetId"]))
        if dataset is not None:
            events.emit(session, dataset.org_id, "sync.failed", dataset_id=dataset.id,
                        file_id=str(payload["fileId"]), jobId=job_id, reason=code,
                        message=message)

    def run(self, lease: Lease, alive: Callable[[], bool]) -> None:
        started = time.monotonic()
        deadline = Deadline(self.limits.sync_timeout_s, started)
        plan = self.prepare(lease)
        if plan is None:
            self.ahead.forget(lease.job_id)
            return
        with ExitStack() as stack:
            product = self._product(lease, plan, alive, deadline, stack)
            if product is None or not alive():
                return
            deadline.check()
            with self.ahead.committing():
                self.commit(lease, plan, product, started, deadline)

    def _product(self, lease: Lease, plan: Plan, alive: Callable[[], bool],
                 deadline: Deadline, stack: ExitStack) -> Product | None:
        """What the commit writes: prepared ahead of this sync if it still fits (ahead.py),
        else made now; meanwhile the next queued files of the dataset start ahead."""
        if not plan.source:
            return Product(None, 0, 0, [])
        entry = self.ahead.take(lease.job_id, plan)
        self.ahead.look_ahead(serial_key(plan.dataset_id), plan.file_id)
        if entry is not None:
            product = self.ahead.wait(entry, alive, deadline.check)
            if product is not None:
                stack.enter_context(entry.stack)  # its spools close with this sync
                return product
            if not alive():
                return None
        return self.produce(plan, alive, deadline, stack)

    def _produce_ahead(self, plan: Plan, alive: Callable[[], bool], stack: ExitStack
                       ) -> Product | None:
        # Its own deadline: the sync's starts when the queue hands the job out. No vector
        # reuse: `take` hands the product over only while the file has no records.
        return self.produce(plan, alive, Deadline(self.limits.sync_timeout_s,
                                                  time.monotonic()), stack, reuse=False)

    def _discard(self, product: Product) -> None:
        """A product no sync will commit: its table snapshots are named by no row."""
        self._discard_tables(product.tables)

    def _discard_tables(self, tables: list[snapshot.TableSnapshot]) -> None:
        for table in tables:
            if table.blob_key:
                self.blobs.delete(table.blob_key)

    def prepare(self, lease: Lease) -> Plan | None:
        """Read the attachment and file; None when either is gone (nothing to undo)."""
        dataset_id, file_id = str(lease.payload["datasetId"]), str(lease.payload["fileId"])
        with self.db.write() as session:
            plan = _read_plan(session, dataset_id, file_id)
            if plan is None:
                queue.finish(session, lease)
                return None
            _log_start(session, lease, plan.org_id, dataset_id, file_id)
            return plan

    def plan_of(self, dataset_id: str, file_id: str) -> Plan | None:
        """What `prepare` would read now, read only (a sync prepared ahead)."""
        with self.db.read() as session:
            return _read_plan(session, dataset_id, file_id)

    def produce(self, plan: Plan, alive: Callable[[], bool], deadline: Deadline,
                stack: ExitStack, reuse: bool | None = None) -> Product | None:
        """Records with vectors and table snapshots; None if the lease was lost.

        Nothing here holds a whole file: the extracted items and the built records live
        in disk spools (closed by `stack`), read back a batch at a time."""
        items = stack.enter_context(Spool("dataloft-items-", header=True))
        # Extraction streams into the items spool while the records are built and embedded
        # from it and, once the child has typed every row, the tables are written from it:
        # the child, the tokenizer and DuckDB run outside the GIL, so both cores work.
        pool = stack.enter_context(ThreadPoolExecutor(3, thread_name_prefix="dataloft-sync"))
        items.writing()
        extraction = pool.submit(self._extract, plan, items, deadline)
        fmt = items.header()
        if fmt is None:  # the child ended before it knew the format: its error says why
            extraction.result()
            raise JobFailed("corrupted_file", "the file could not be read")
        file_type = content_type_for(fmt, plan.content_type)
        tables = pool.submit(self._write_tables, plan, file_type, items, extraction, deadline)
        out = stack.enter_context(Spool("dataloft-records-"))
        product: Product | None = None
        try:
            built = self._build(plan, file_type, items, out, alive, deadline, pool, extraction,
                                reuse)
            if built is None:
                return None
            extraction.result()  # its failure, if any, is the sync's
            count, reused = built
            if not count:
                raise JobFailed("empty_content", "the file contains no extractable text")
            product = Product(out, count, reused, tables.result())
            return product
        finally:
            wait([extraction])
            wait([tables])
            if product is None and not tables.exception():
                # Stopped or failed: the snapshots written meanwhile are named by no row.
                self._discard_tables(tables.result())

    def commit(self, lease: Lease, plan: Plan, product: Product, started: float,
               deadline: Deadline | None = None) -> None:
        """Swap the file's records and tables, then announce `sync.completed` and end the
        job: in the same transaction, or, where the index keeps in-process structures (the
        embedded default), in a second one once they are current, so the first search
        after the announcement does not wait for their build (docs/decisions.md)."""
        settle = self.index.settles
        if settle and product.records is not None:
            self.index.ahead(plan.dataset_id, product.records, product.count,
                             self.embedder.dimension)
        removed: int | None = None
        try:
            removed = self._swap(lease, plan, product, started, settle)
        except QuotaExceeded as exc:  # refused at the charge or the commit: the old records stay
            raise JobFailed("storage_limit", exc.message) from exc
        finally:
            if removed is None and settle:  # nothing committed: `ahead`'s work is of no use
                self.index.abandon(plan.dataset_id)
        if removed is None or not settle:
            return
        # The job still runs, so the file's status says in_progress until the announcement;
        # a crash in between retries the sync, which replaces these records with the same.
        self.index.settle(plan.dataset_id, max(0.0, deadline.remaining()) if deadline
                          else self.limits.sync_timeout_s)
        with self.db.write() as session:
            self._announce(session, lease, plan, product, removed, started)

    def _swap(self, lease: Lease, plan: Plan, product: Product, started: float,
              settle: bool) -> int | None:
        """The commit's first transaction: the file's records and tables replaced (and,
        unless the index `settle`s, the announcement); the records replaced, None if the
        file or its attachment went meanwhile."""
        began = time.monotonic()
        with self.db.write() as session:
            # The file's row lock orders this commit and a deletion of the file (which takes
            # it first too): else, on PostgreSQL, a deletion could pass between this check
            # and the insert below and leave records without their file.
            file_row = file_rows.locked_file(session, plan.file_id)
            link = datasets.attachment(session, plan.dataset_id, plan.file_id)
            if link is None or file_row is None:
                queue.finish(session, lease)
                return None
            removed = records.delete_where(session, self.index, org_id=plan.org_id,
                                           dataset_id=plan.dataset_id, file_id=plan.file_id)
            inserted = records.insert_batches(
                session, self.index, plan.org_id, plan.dataset_id,
                product.records.batches() if product.records else (), product.count,
                file_id=plan.file_id)
            if inserted:
                self.index.landed(session, plan.dataset_id, inserted[0][0], len(inserted))
            catalog.replace(session, plan.org_id, plan.dataset_id, plan.file_id, plan.version,
                            product.tables)
            dataset = dataset_rows.dataset_by_id(session, plan.dataset_id)
            if dataset is not None:
                datasets.adopt_embedder(dataset, self.embedder.name, self.embedder.dimension)
            link.synced_version, link.synced_at = plan.version, now_ms()
            if not settle:
                self._announce(session, lease, plan, product, removed, started)
                return removed
            # Still ours (else this rolls back, as `finish` would), and renewed: a long
            # commit keeps the heartbeat from the writer, and the lease must outlast it.
            if not queue.heartbeat(session, lease, int(self.lease_seconds * 1000),
                                   held_ms=int((time.monotonic() - began) * 1000)):
                raise LeaseLost(lease.job_id)
        return removed

    def _announce(self, session: Session, lease: Lease, plan: Plan, product: Product,
                  removed: int, started: float) -> None:
        events.emit(session, plan.org_id, "sync.completed", dataset_id=plan.dataset_id,
                    file_id=plan.file_id, jobId=lease.job_id, recordCount=product.count,
                    replacedRecords=removed, fileVersion=plan.version,
                    reusedEmbeddings=product.reused,
                    durationMs=int((time.monotonic() - started) * 1000))
        queue.finish(session, lease)

    def _extract(self, plan: Plan, spool: Spool, deadline: Deadline) -> confined.Spooled:
        """Extract into `spool` (then marked finished, whatever happens)."""
        try:
            if not plan.blob_key:
                raise JobFailed("empty_content", "the file has no content; upload it first")
            budget = min(self.limits.timeout_s, deadline.remaining())
            if budget <= 0:
                deadline.check()
            # In a child process under memory and time limits: a hostile file fails
            # this sync (typed), never the server.
            with self._readable_path(plan.blob_key) as path:
                spooled = confined.run_extract_spooled(
                    plan.name, plan.content_type, path, spool,
                    memory_bytes=self.limits.memory_bytes, timeout_s=budget,
                    limit_s=deadline.remaining())
        except ExtractionError as exc:
            raise JobFailed(exc.code, exc.message) from exc
        finally:
            spool.finished()
        deadline.check()
        return spooled

    def _file(self, plan: Plan) -> File:
        """The file as the record builder sees it (detached: no session stays open)."""
        return File(id=plan.file_id, name=plan.name, content_type=plan.content_type,
                    created_at=plan.created_at)

    def _build(self, plan: Plan, file_type: str | None, items: Spool, out: Spool,
               alive: Callable[[], bool], deadline: Deadline, pool: ThreadPoolExecutor,
               extraction: Future[confined.Spooled], reuse: bool | None = None
               ) -> tuple[int, int] | None:
        """Build, embed and spool the records a batch at a time, following the extraction:
        (count, reused vectors); None if the lease was lost meanwhile. One batch embeds in
        `pool` while the next is built, so at most two batches are held. A failed
        extraction stops it at the next batch (its error is the sync's)."""
        built = build_records(self._file(plan), items.items(), plan.max_tokens,
                              overlap_tokens=plan.overlap, file_type=file_type)
        if reuse is None:
            with self.db.read() as session:  # else no vector to reuse: no lookup per batch
                reuse = records.file_has_records(session, plan.dataset_id, plan.file_id)
        count = reused = 0
        pending: tuple[list[NewRecord], Future[int]] | None = None
        while True:
            batch = list(islice(built, EMBED_BATCH))
            deadline.check()
            if extraction.done() and extraction.exception() is not None:
                extraction.result()
            if not alive():
                return None
            if batch:
                embedding = pool.submit(self._embed, batch, plan.dataset_id, plan.file_id,
                                        reuse)
            if pending is not None:
                reused += pending[1].result()
                if self.db.dialect == "sqlite":
                    records.prepare(pending[0])
                out.append(pending[0])
                count += len(pending[0])
            if not batch:
                return count, reused
            pending = batch, embedding

    def _write_tables(self, plan: Plan, file_type: str | None, items: Spool,
                      extraction: Future[confined.Spooled], deadline: Deadline
                      ) -> list[snapshot.TableSnapshot]:
        """Columnar snapshots for governed SQL, committed with the records, written once
        the extraction child has typed every row. A failure here must not cost the file
        its search records: no tables, logged."""
        _fmt, _count, shapes = extraction.result()
        shared = file_meta(self._file(plan), file_type)
        try:
            tables = snapshot.plan_shapes(plan.name, shapes, shared)
            snapshot.write(self.blobs, tables, items.items(), deadline.check)
        except JobFailed:
            raise
        except Exception:
            log.exception("table snapshot of file %s failed; it syncs without tables",
                          plan.file_id)
            return []
        return tables

    @contextmanager
    def _readable_path(self, key: str) -> Iterator[str]:
        """The blob as a local file: the local store's own, or a temporary copy."""
        local = self.blobs.local_path(key)
        if local is not None:
            yield str(local)
            return
        with tempfile.NamedTemporaryFile(prefix="dataloft-extract-") as tmp:
            for chunk in self.blobs.open(key):
                tmp.write(chunk)
            tmp.flush()
            yield tmp.name

    def _embed(self, batch: list[NewRecord], dataset_id: str, file_id: str,
               reuse: bool = True) -> int:
        """Give every record of `batch` a vector: unchanged chunks (same content hash) keep
        the one they had (looked up when `reuse`), the rest are embedded. Returns how many
        were reused."""
        known: dict[str, bytes] = {}
        if reuse:
            hashes = {r.content_hash for r in batch if r.content_hash}
            with self.db.read() as session:
                known = records.vectors_for_hashes(session, self.index, dataset_id, file_id,
                                                   hashes)
        todo = []
        for record in batch:
            kept = known.get(record.content_hash or "")
            if kept is not None and len(kept) == 4 * self.embedder.dimension:
                record.vector, record.reused = kept, True
            else:
                todo.append(record)
        if todo:
            # Identical texts (repeated rows, boilerplate chunks) are embedded once.
            unique = list(dict.fromkeys(r.text for r in todo))
            blobs = dict(zip(unique, map(to_blob, self.embedder.embed(unique)), strict=True))
            for record in todo:
                record.vector = blobs[record.text]
        return len(batch) - len(todo)


def _read_plan(session: Session, dataset_id: str, file_id: str) -> Plan | None:
    link = datasets.attachment(session, dataset_id, file_id)
    file = file_rows.file_by_id(session, file_id)
    if link is None or file is None:
        return None
    dataset = dataset_rows.dataset_by_id(session, dataset_id)
    # A file's own chunking (set through the OpenAI surface) wins over its dataset's.
    settings = {**(dataset.settings if dataset else {}), **(link.chunking or {})}
    overlap = settings.get("recordOverlapTokens")  # None: 12% of max_tokens
    return Plan(dataset_id=dataset_id, file_id=file_id, org_id=file.org_id,
                version=file.version, blob_key=file.blob_key,
                source=link.type == "source", name=file.name,
                content_type=file.content_type, created_at=file.created_at,
                max_tokens=int(settings.get("recordMaxTokens") or DEFAULT_MAX_TOKENS),
                overlap=None if overlap is None else int(overlap))


def _log_start(session: Session, lease: Lease, org_id: str, dataset_id: str,
               file_id: str) -> None:
    if lease.attempt > 1:
        interrupted = lease.previous_error in (None, "lease_expired")
        events.emit(session, org_id, "sync.retrying", dataset_id=dataset_id,
                    file_id=file_id, jobId=lease.job_id, attempt=lease.attempt,
                    previousError="lease_expired" if interrupted else "internal_error",
                    reason="the previous attempt was interrupted" if interrupted
                    else f"the previous attempt failed: {lease.previous_message}")
    events.emit(session, org_id, "sync.started", dataset_id=dataset_id,
                file_id=file_id, jobId=lease.job_id, attempt=lease.attempt)
