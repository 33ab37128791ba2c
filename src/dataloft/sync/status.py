"""The sync status of files in a dataset, derived from what is already recorded: the file's
latest sync job and its attachment's synced version. Nothing stores a status, so nothing
can leave one stuck: a job that ends, fails or is abandoned changes what this returns.

- the latest sync job is queued (a retry included) or running -> in_progress
- it failed -> failed, with the job's typed error (`cancelled` when it was cancelled
  before it ran -> cancelled)
- otherwise, once a sync committed (synced_version set) -> completed
- a file attached but never asked to sync -> cancelled (processing was never requested;
  the OpenAI surface always asks, so it never shows there for its own attachments)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.orm import Session

from dataloft.datasets import repository
from dataloft.sync.service import SYNC_JOB

State = Literal["in_progress", "completed", "failed", "cancelled"]
CANCELLED = "cancelled"  # the error code of a sync job cancelled before it ran


@dataclass(frozen=True)
class SyncStatus:
    state: State
    error_code: str | None = None
    error_message: str | None = None
    synced_version: int | None = None
    file_version: int = 0
    job_state: str | None = None  # the latest sync job's own state: queued/running/...

    def render(self) -> dict[str, object]:
        """The wire form, shared by `?wait` answers and the dataset's file list."""
        return {"state": self.state, "jobState": self.job_state, "errorCode": self.error_code,
                "errorMessage": self.error_message, "syncedVersion": self.synced_version,
                "fileVersion": self.file_version}


def sync_status(session: Session, dataset_id: str,
                file_ids: Sequence[str] | None = None) -> dict[str, SyncStatus]:
    """Status of each attached file (all of the dataset's when file_ids is None); files
    not attached are absent from the result."""
    links = {row.file_id: row for row in repository.links(session, dataset_id, file_ids)}
    latest = {row.file_id: row
              for row in repository.sync_jobs(session, SYNC_JOB, dataset_id, file_ids)}
    out: dict[str, SyncStatus] = {}
    for file_id, link in links.items():
        job = latest.get(file_id)
        state: State
        code = message = None
        if job is not None and job.state in ("queued", "running"):
            state = "in_progress"
        elif job is not None and job.state == "failed":
            state = "cancelled" if job.error_code == CANCELLED else "failed"
            code, message = job.error_code, job.error_message
        elif link.synced_version is not None:
            state = "completed"
        else:
            state = "cancelled"
        out[file_id] = SyncStatus(state, code, message, link.synced_version, link.file_version,
                                  job.state if job is not None else None)
    return out
