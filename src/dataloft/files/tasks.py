"""The files' background job: deleting a blob once nothing refers to it any more."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from dataloft.jobs import queue
from dataloft.jobs.queue import Lease
from dataloft.kit.db import Database
from dataloft.storage.blobs.base import BlobStore


@dataclass
class BlobDeleteHandler:
    db: Database
    blobs: BlobStore

    def failed(self, session: Session, job_id: str, payload: dict[str, object], code: str,
               message: str) -> None:
        return None

    def run(self, lease: Lease, alive: Callable[[], bool]) -> None:
        self.blobs.delete(str(lease.payload["key"]))
        with self.db.write() as session:
            queue.finish(session, lease)
