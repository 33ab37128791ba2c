"""The sync job: extract -> chunk -> embed -> write records and tables, atomically per file.

Three steps, so that no transaction is open while the slow part runs:
- `prepare`: one read-write transaction reads what the sync needs and logs its start;
- `produce`: extraction (in a confined child), records, table snapshots and embeddings,
  with no transaction open;
- `commit`: one transaction swaps the file's old records and tables for the new ones.
A crash anywhere leaves the old records or the new ones, never both, never neither.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.orm import Session

from dataloft.datasets import repository as dataset_rows
from dataloft.datasets import service as datasets
from dataloft.errors import QuotaExceeded
from dataloft.events import service as events
from dataloft.files import repository as file_rows
from dataloft.ingest import confined
from dataloft.ingest.chunk import DEFAULT_MAX_TOKENS
from dataloft.ingest.embed.base import Embedder
from dataloft.ingest.extract import ExtractionError, Row, Section, content_type_for
from dataloft.jobs import queue
from dataloft.jobs.queue import Lease
from dataloft.jobs.worker import JobFailed
from dataloft.kit.db import Database
from dataloft.kit.ids import now_ms
from dataloft.kit.vectors import to_blob
from dataloft.records import repository as records
from dataloft.records.repository import NewRecord
from dataloft.storage.blobs.base import BlobStore
from dataloft.storage.index.base import Index
from dataloft.sync.build import build_records, file_meta
from dataloft.tables import catalog, snapshot

EMBED_BATCH = 512
log = logging.getLogger("dataloft.sync")


@dataclass(frozen=True)
class ExtractLimits:
    memory_bytes: int = confined.DEFAULT_MEMORY_BYTES
    timeout_s: float = confined.DEFAULT_TIMEOUT_S


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
    max_tokens: int
    overlap: int | None


@dataclass
class Product:
    records: list[NewRecord]
    tables: list[snapshot.TableSnapshot]


@dataclass
class SyncHandler:
    db: Database
    blobs: BlobStore
    index: Index
    embedder: Embedder
    limits: ExtractLimits = ExtractLimits()

    def failed(self, session: Session, job_id: str, payload: dict[str, object], code: str,
               message: str) -> None:
        dataset = dataset_rows.dataset_by_id(session, str(payload["datasetId"]))
        if dataset is not None:
            events.emit(session, dataset.org_id, "sync.failed", dataset_id=dataset.id,
                        file_id=str(payload["fileId"]), jobId=job_id, reason=code,
                        message=message)

    def run(self, lease: Lease, alive: Callable[[], bool]) -> None:
        started = time.monotonic()
        plan = self.prepare(lease)
        if plan is None:
            return
        product = self.produce(plan, alive) if plan.source else Product([], [])
        if product is None or not alive():
            return
        self.commit(lease, plan, product, started)

    def prepare(self, lease: Lease) -> Plan | None:
        """Read the attachment and file; None when either is gone (nothing to undo)."""
        dataset_id, file_id = str(lease.payload["datasetId"]), str(lease.payload["fileId"])
        with self.db.write() as session:
            link = datasets.attachment(session, dataset_id, file_id)
            file = file_rows.file_by_id(session, file_id)
            if link is None or file is None:
                queue.finish(session, lease)
                return None
            _log_start(session, lease, file.org_id, dataset_id, file_id)
            dataset = dataset_rows.dataset_by_id(session, dataset_id)
            # A file's own chunking (set through the OpenAI surface) wins over its dataset's.
            settings = {**(dataset.settings if dataset else {}), **(link.chunking or {})}
            overlap = settings.get("recordOverlapTokens")  # None: 12% of max_tokens
            return Plan(dataset_id=dataset_id, file_id=file_id, org_id=file.org_id,
                        version=file.version, blob_key=file.blob_key,
                        source=link.type == "source", name=file.name,
                        content_type=file.content_type,
                        max_tokens=int(settings.get("recordMaxTokens") or DEFAULT_MAX_TOKENS),
                        overlap=None if overlap is None else int(overlap))

    def produce(self, plan: Plan, alive: Callable[[], bool]) -> Product | None:
        """Records with vectors and table snapshots; None if the lease was lost."""
        fmt, items = self._extract(plan)
        new, tables = self._build(plan, fmt, items)
        del items  # the extracted rows are the bulk of the memory: free them before embedding
        tables = self._write_tables(plan.file_id, tables)
        if not self._embed(new, plan.dataset_id, plan.file_id, alive):
            return None
        return Product(new, tables)

    def commit(self, lease: Lease, plan: Plan, product: Product, started: float) -> None:
        with self.db.write() as session:
            # The file's row lock orders this commit and a deletion of the file (which takes
            # it first too): else, on PostgreSQL, a deletion could pass between this check
            # and the insert below and leave records without their file.
            file_row = file_rows.locked_file(session, plan.file_id)
            link = datasets.attachment(session, plan.dataset_id, plan.file_id)
            if link is None or file_row is None:
                queue.finish(session, lease)
                return
            new = product.records
            removed = records.delete_where(session, self.index, org_id=plan.org_id,
                                           dataset_id=plan.dataset_id, file_id=plan.file_id)
            try:
                records.insert_records(session, self.index, plan.org_id, plan.dataset_id, new,
                                       file_id=plan.file_id)
            except QuotaExceeded as exc:  # rolls back: the old records stay
                raise JobFailed("storage_limit", exc.message) from exc
            catalog.replace(session, plan.org_id, plan.dataset_id, plan.file_id, plan.version,
                            product.tables)
            dataset = dataset_rows.dataset_by_id(session, plan.dataset_id)
            if dataset is not None:
                datasets.adopt_embedder(dataset, self.embedder.name, self.embedder.dimension)
            link.synced_version, link.synced_at = plan.version, now_ms()
            events.emit(session, plan.org_id, "sync.completed", dataset_id=plan.dataset_id,
                        file_id=plan.file_id, jobId=lease.job_id, recordCount=len(new),
                        replacedRecords=removed, fileVersion=plan.version,
                        reusedEmbeddings=sum(1 for r in new if r.reused),
                        durationMs=int((time.monotonic() - started) * 1000))
            queue.finish(session, lease)

    def _extract(self, plan: Plan) -> tuple[str, list[Section | Row]]:
        if not plan.blob_key:
            raise JobFailed("empty_content", "the file has no content; upload it first")
        try:
            # In a child process under memory and time limits: a hostile file fails
            # this sync (typed), never the server.
            with self._readable_path(plan.blob_key) as path:
                return confined.run_extract(plan.name, plan.content_type, path,
                                            memory_bytes=self.limits.memory_bytes,
                                            timeout_s=self.limits.timeout_s)
        except ExtractionError as exc:
            raise JobFailed(exc.code, exc.message) from exc

    def _build(self, plan: Plan, fmt: str, items: list[Section | Row]
               ) -> tuple[list[NewRecord], list[snapshot.TableSnapshot]]:
        file_type = content_type_for(fmt, plan.content_type)
        with self.db.read() as session:
            file = file_rows.file_by_id(session, plan.file_id)
            if file is None:
                raise JobFailed("file_deleted", "the file was deleted during the sync")
            new = list(build_records(file, items, plan.max_tokens,
                                     overlap_tokens=plan.overlap, file_type=file_type))
            tables = snapshot.plan(file.name, items, file_meta(file, file_type))
        if not new:
            raise JobFailed("empty_content", "the file contains no extractable text")
        return new, tables

    def _write_tables(self, file_id: str, tables: list[snapshot.TableSnapshot]
                      ) -> list[snapshot.TableSnapshot]:
        """Columnar snapshots for governed SQL, committed with the records. A failure here
        must not cost the file its search records: no tables, logged."""
        try:
            snapshot.write(self.blobs, tables)
        except Exception:
            log.exception("table snapshot of file %s failed; it syncs without tables", file_id)
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

    def _embed(self, new: list[NewRecord], dataset_id: str, file_id: str,
               alive: Callable[[], bool]) -> bool:
        """Give every record a vector: unchanged chunks (same content hash) keep the one they
        had, the rest are embedded in batches. False if the lease was lost meanwhile."""
        with self.db.read() as session:
            known = records.vectors_by_hash(session, self.index, dataset_id, file_id)
        todo = []
        for record in new:
            reuse = known.get(record.content_hash or "")
            if reuse is not None and len(reuse) == 4 * self.embedder.dimension:
                record.vector, record.reused = reuse, True
            else:
                todo.append(record)
        for i in range(0, len(todo), EMBED_BATCH):
            if not alive():
                return False
            batch = todo[i : i + EMBED_BATCH]
            for record, vector in zip(batch, self.embedder.embed([r.text for r in batch]),
                                      strict=True):
                record.vector = to_blob(vector)
        return True


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
