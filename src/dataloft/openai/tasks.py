"""The job that deletes a file when its `expires_after` (set through /v1/files) passes.

Queued with the file, to run at its expiry instant; deleting the file deletes its records
in every store, so an expired file is never a search result. A file deleted earlier, or
whose expiry changed, is left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from dataloft.files import repository as file_rows
from dataloft.files import service as files
from dataloft.jobs import queue
from dataloft.jobs.queue import Lease
from dataloft.kit.db import Database
from dataloft.kit.ids import now_ms
from dataloft.models import File
from dataloft.storage.index.base import Index

EXPIRE_JOB = "file.expire"


def schedule(session: Session, file: File) -> None:
    if file.expires_at is not None:
        queue.enqueue(session, EXPIRE_JOB, {"fileId": file.id}, org_id=file.org_id,
                      delay_ms=max(0, file.expires_at - now_ms()))


@dataclass
class FileExpireHandler:
    db: Database
    index: Index

    def failed(self, session: Session, job_id: str, payload: dict[str, object], code: str,
               message: str) -> None:
        return None

    def run(self, lease: Lease, alive: Callable[[], bool]) -> None:
        with self.db.write() as session:
            file = file_rows.file_by_id(session, str(lease.payload["fileId"]))
            if file is not None and file.expires_at is not None \
                    and file.expires_at <= now_ms():
                files.delete_unchecked(session, self.index, file)
            queue.finish(session, lease)
