"""The sync status of files in a dataset, derived from what is already recorded: the file's
latest sync job and its attachment's synced version. Nothing stores a status, so nothing
can leave one stuck: a job that ends, fails or is abandoned changes what this returns.

- the latest sync job is queued (a retry included) or running -> in_progress
- it failed -> failed, with the job's typed error (`cancelled` when it was cancelled
  before it ran -> cancelled)
- otherwise, once a sync committed (synced_version set) -> completed
- a file attached but never asked to sync -> cancelled (processing was never requested;
  the OpenAI surface always asks, so it never shows there for its own attachments)

The attachment view of the native API (`attachments` on a file, `attachment` in a dataset's
file list) splits in_progress: a job not yet taken is `queued`, one running or waiting to
retry is `in_progress`; cancelled is `failed` with the code `cancelled`; never asked is null.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.orm import Session

from dataloft.datasets import repository
from dataloft.kit import policy
from dataloft.kit.principal import Principal
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
    type: str = "source"
    synced_at: int | None = None
    job_state: str | None = None  # of the latest sync job; None: none was ever queued
    job_attempts: int = 0


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
                                  link.type, link.synced_at, job.state if job else None,
                                  job.attempts if job else 0)
    return out


def attachment_state(status: SyncStatus) -> str | None:
    if status.job_state == "queued":
        return "queued" if status.job_attempts == 0 else "in_progress"
    if status.job_state == "running":
        return "in_progress"
    if status.state in ("failed", "cancelled") and status.job_state is not None:
        return "failed"
    return "completed" if status.state == "completed" else None


def render_attachment(dataset_id: str, status: SyncStatus, records: int) -> dict[str, Any]:
    state = attachment_state(status)
    error = ({"code": status.error_code or "internal_error", "message": status.error_message
              or ""} if state == "failed" else None)
    return {"datasetId": dataset_id, "type": status.type, "status": state, "lastError": error,
            "syncedAt": status.synced_at, "syncedVersion": status.synced_version,
            "recordCount": records}


def attachment(session: Session, dataset_id: str, file_id: str) -> dict[str, Any] | None:
    """The attachment of `file_id` to `dataset_id` as the dataset's file list shows it."""
    status = sync_status(session, dataset_id, [file_id]).get(file_id)
    if status is None:
        return None
    counts = repository.record_counts(session, dataset_id, [file_id])
    return render_attachment(dataset_id, status, counts.get(file_id, 0))


def file_attachments(session: Session, principal: Principal, file_id: str
                     ) -> list[dict[str, Any]]:
    """Every attachment of the file to a dataset the principal may see, with its state."""
    out = []
    for dataset_id in repository.datasets_of_file(session, file_id, policy.datasets(principal)):
        shown = attachment(session, dataset_id, file_id)
        if shown is not None:
            out.append(shown)
    return out
