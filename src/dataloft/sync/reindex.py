"""Re-embedding a dataset whose vectors come from another embedder than the configured one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from dataloft.ingest.embed.base import Embedder
from dataloft.jobs import queue
from dataloft.jobs.queue import Lease
from dataloft.kit.db import Database
from dataloft.kit.vectors import to_blob
from dataloft.models import Dataset, Job, Record
from dataloft.records import repository as records
from dataloft.storage.index.base import Index

REINDEX_JOB = "dataset.reindex"


def enqueue_stale(session: Session, embedder_name: str, dimension: int) -> int:
    """Queue a re-index of every dataset embedded with another model, or with vectors of
    another length under the same model name (once)."""
    stale = session.scalars(select(Dataset.id).where(
        Dataset.embedding_model.is_not(None),
        or_(Dataset.embedding_model != embedder_name,
            Dataset.embedding_dimension != dimension)))
    pending = set(session.scalars(select(Job.serial_key).where(
        Job.kind == REINDEX_JOB, Job.state.in_(("queued", "running")))))
    count = 0
    for dataset_id in stale:
        if f"dataset:{dataset_id}" not in pending:
            queue.enqueue(session, REINDEX_JOB, {"datasetId": dataset_id},
                          serial_key=f"dataset:{dataset_id}")
            count += 1
    return count


@dataclass
class ReindexHandler:
    db: Database
    index: Index
    embedder: Embedder

    def failed(self, session: Session, job_id: str, payload: dict[str, object], code: str,
               message: str) -> None:
        return None

    def run(self, lease: Lease, alive: Callable[[], bool]) -> None:
        dataset_id = str(lease.payload["datasetId"])
        with self.db.read() as session:
            rows = session.execute(select(Record.pk, Record.text)
                                   .where(Record.dataset_id == dataset_id)).all()
        vectors = {}
        for i in range(0, len(rows), 256):
            if not alive():
                return
            batch = rows[i : i + 256]
            for (pk, _), vec in zip(batch, self.embedder.embed([t for _, t in batch]),
                                    strict=True):
                vectors[pk] = to_blob(vec)
        with self.db.write() as session:
            dataset = session.get(Dataset, dataset_id)
            if dataset is not None:
                for record in session.scalars(select(Record).where(
                        Record.dataset_id == dataset_id, Record.pk.in_(list(vectors)))):
                    records.reindex(session, self.index, record, vectors[record.pk])
                dataset.embedding_model = self.embedder.name
                dataset.embedding_dimension = self.embedder.dimension
            queue.finish(session, lease)
