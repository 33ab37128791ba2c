"""Re-embedding a dataset whose vectors come from another embedder than the configured one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from dataloft.datasets import repository as dataset_rows
from dataloft.ingest.embed.base import Embedder
from dataloft.jobs import queue
from dataloft.jobs.queue import Lease
from dataloft.kit.db import Database
from dataloft.kit.vectors import to_blob
from dataloft.records import repository as records
from dataloft.storage.index.base import Index
from dataloft.sync import repository

REINDEX_JOB = "dataset.reindex"


def enqueue_stale(session: Session, embedder_name: str, dimension: int) -> int:
    """Queue a re-index of every dataset embedded with another model, or with vectors of
    another length under the same model name (once)."""
    stale = repository.datasets_of_other_embedders(session, embedder_name, dimension)
    pending = repository.serial_keys_of_live_jobs(session, REINDEX_JOB)
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
            rows = repository.texts_of_dataset(session, dataset_id)
        vectors = {}
        for i in range(0, len(rows), 256):
            if not alive():
                return
            batch = rows[i : i + 256]
            for (pk, _), vec in zip(batch, self.embedder.embed([t for _, t in batch]),
                                    strict=True):
                vectors[pk] = to_blob(vec)
        with self.db.write() as session:
            dataset = dataset_rows.dataset_by_id(session, dataset_id)
            if dataset is not None:
                for record in repository.records_of_dataset(session, dataset_id,
                                                            list(vectors)):
                    records.reindex(session, self.index, record, vectors[record.pk])
                dataset.embedding_model = self.embedder.name
                dataset.embedding_dimension = self.embedder.dimension
            queue.finish(session, lease)
