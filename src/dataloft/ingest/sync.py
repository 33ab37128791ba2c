"""The sync job: extract -> chunk -> write records and index, atomically per file."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from dataloft.datasets import service as datasets
from dataloft.events import service as events
from dataloft.ingest import sandbox
from dataloft.ingest.build import build_records, file_meta
from dataloft.ingest.chunk import DEFAULT_MAX_TOKENS
from dataloft.ingest.embed.base import Embedder, to_blob
from dataloft.ingest.extract import ExtractionError, content_type_for
from dataloft.jobs import queue
from dataloft.jobs.queue import Lease
from dataloft.jobs.worker import JobFailed
from dataloft.kit.ids import now_ms
from dataloft.models import Dataset, File
from dataloft.records import repository as records
from dataloft.records.repository import NewRecord
from dataloft.sql import catalog, snapshot
from dataloft.storage.blobs.base import BlobStore
from dataloft.storage.index.base import Index

EMBED_BATCH = 512
log = logging.getLogger("dataloft.sync")


@dataclass
class SyncHandler:
    db: Any
    blobs: BlobStore
    index: Index
    embedder: Embedder
    extract_memory_bytes: int = sandbox.DEFAULT_MEMORY_BYTES
    extract_timeout_s: float = sandbox.DEFAULT_TIMEOUT_S

    def failed(self, session: Session, job_id: str, payload: dict[str, Any], code: str,
               message: str) -> None:
        org_id = self._org_of(session, payload)
        if org_id:
            events.emit(session, org_id, "sync.failed", dataset_id=str(payload["datasetId"]),
                        file_id=str(payload["fileId"]), jobId=job_id, reason=code,
                        message=message)

    def _org_of(self, session: Session, payload: dict[str, Any]) -> str | None:
        ds = session.get(Dataset, str(payload["datasetId"]))
        return ds.org_id if ds else None

    def run(self, lease: Lease, alive: Callable[[], bool]) -> None:
        dataset_id, file_id = lease.payload["datasetId"], lease.payload["fileId"]
        started = time.monotonic()
        with self.db.write() as session:
            link = datasets.attachment(session, dataset_id, file_id)
            file = session.get(File, file_id)
            if link is None or file is None:
                # Detached or deleted since the request: nothing to do, and nothing to undo.
                queue.finish(session, lease)
                return
            if lease.attempt > 1:
                interrupted = lease.previous_error in (None, "lease_expired")
                events.emit(session, file.org_id, "sync.retrying", dataset_id=dataset_id,
                            file_id=file_id, jobId=lease.job_id, attempt=lease.attempt,
                            previousError="lease_expired" if interrupted else "internal_error",
                            reason="the previous attempt was interrupted" if interrupted
                            else f"the previous attempt failed: {lease.previous_message}")
            events.emit(session, file.org_id, "sync.started", dataset_id=dataset_id,
                        file_id=file_id, jobId=lease.job_id, attempt=lease.attempt)
            org_id, version, blob_key = file.org_id, file.version, file.blob_key
            link_type = link.type
            dataset = session.get(Dataset, dataset_id)
            settings = dataset.settings if dataset else {}
            max_tokens = int(settings.get("recordMaxTokens") or DEFAULT_MAX_TOKENS)
            overlap = settings.get("recordOverlapTokens")  # None: 12% of max_tokens
            name, ctype = file.name, file.content_type
        new: list[NewRecord] = []
        tables: list[snapshot.TableSnapshot] = []
        if link_type == "source":
            if not blob_key:
                raise JobFailed("empty_content", "the file has no content; upload it first")
            try:
                # In a child process under memory and time limits: a hostile file fails
                # this sync (typed), never the server.
                with self._readable_path(blob_key) as path:
                    fmt, items = sandbox.run_extract(name, ctype, path,
                                                     memory_bytes=self.extract_memory_bytes,
                                                     timeout_s=self.extract_timeout_s)
            except ExtractionError as exc:
                raise JobFailed(exc.code, exc.message) from exc
            with self.db.read() as session:
                file = session.get(File, file_id)
                if file is None:
                    raise JobFailed("file_deleted", "the file was deleted during the sync")
                new = list(build_records(
                    file, items, max_tokens,
                    overlap_tokens=None if overlap is None else int(overlap),
                    file_type=content_type_for(fmt, ctype)))
                tables = snapshot.plan(file.name, items,
                                       file_meta(file, content_type_for(fmt, ctype)))
            if not new:
                raise JobFailed("empty_content", "the file contains no extractable text")
            del items
            # Columnar snapshots for governed SQL, committed below with the records; written
            # before embedding so the extracted rows are freed early. A failure here must
            # not cost the file its search records: no tables, logged.
            try:
                snapshot.write(self.blobs, tables)
            except Exception:
                log.exception("table snapshot of file %s failed; it syncs without tables",
                              file_id)
                tables = []
            if not self._embed(new, dataset_id, file_id, alive):
                return
        if not alive():
            return
        with self.db.write() as session:
            # The file's row lock orders this commit and a deletion of the file (which takes
            # it first too): else, on PostgreSQL, a deletion could pass between this check
            # and the insert below and leave records without their file.
            file_row = session.get(File, file_id, with_for_update=True)
            link = datasets.attachment(session, dataset_id, file_id)
            if link is None or file_row is None:
                queue.finish(session, lease)
                return
            removed = records.delete_where(session, self.index, org_id=org_id,
                                           dataset_id=dataset_id, file_id=file_id)
            records.insert_records(session, self.index, org_id, dataset_id, new, file_id=file_id)
            catalog.replace(session, org_id, dataset_id, file_id, version, tables)
            dataset = session.get(Dataset, dataset_id)
            if dataset is not None:
                datasets.adopt_embedder(dataset, self.embedder.name, self.embedder.dimension)
            link.synced_version, link.synced_at = version, now_ms()
            events.emit(session, org_id, "sync.completed", dataset_id=dataset_id,
                        file_id=file_id, jobId=lease.job_id, recordCount=len(new),
                        replacedRecords=removed, fileVersion=version,
                        reusedEmbeddings=sum(1 for r in new if r.reused),
                        durationMs=int((time.monotonic() - started) * 1000))
            queue.finish(session, lease)


    @contextmanager
    def _readable_path(self, key: str) -> Iterator[str]:
        """The blob as a local file: the local store's own, or a temporary copy."""
        local_path = getattr(self.blobs, "path", None)
        if callable(local_path):
            yield str(local_path(key))
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


@dataclass
class BlobDeleteHandler:
    db: Any
    blobs: BlobStore

    def failed(self, session: Session, job_id: str, payload: dict[str, Any], code: str,
               message: str) -> None:
        return None

    def run(self, lease: Lease, alive: Callable[[], bool]) -> None:
        self.blobs.delete(str(lease.payload["key"]))
        with self.db.write() as session:
            queue.finish(session, lease)
