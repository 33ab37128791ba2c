"""Asking for syncs: one attachment (under a cooldown), or every source of a file."""

from __future__ import annotations

import math

from sqlalchemy.orm import Session

from dataloft.datasets import repository as dataset_rows
from dataloft.datasets import service as datasets
from dataloft.errors import NotAuthorized, NotFound, TooManyRequests
from dataloft.events import service as events
from dataloft.files import service as files
from dataloft.jobs import queue
from dataloft.kit.ids import now_ms
from dataloft.kit.principal import Principal
from dataloft.models import Attachment, Dataset

SYNC_JOB = "dataset.sync"


def serial_key(dataset_id: str) -> str:
    """The queue key of a dataset's syncs: one runs at a time, in the order queued."""
    return f"dataset:{dataset_id}"


def request_sync(session: Session, principal: Principal, dataset_id: str, file_id: str,
                 cooldown_s: float, max_attempts: int = 3) -> Attachment:
    """Queue a sync of one attachment; refused while the last request is under cooldown."""
    principal.require("datasets:write")
    dataset = datasets.get_owned(session, principal, dataset_id)
    files.get(session, principal, file_id)  # an invisible file answers like a missing one
    link = datasets.attachment(session, dataset.id, file_id)
    if link is None:
        raise NotFound(f"file {file_id!r} is not attached to dataset {dataset_id!r}")
    now = now_ms()
    if link.sync_requested_at is not None:
        wait_ms = link.sync_requested_at + cooldown_s * 1000 - now
        if wait_ms > 0:
            retry = str(math.ceil(wait_ms / 1000))
            raise TooManyRequests(
                f"this attachment was synced recently; retry in {retry} s",
                headers={"Retry-After": retry},
            )
    queue_sync(session, dataset, link, max_attempts)
    return link


def queue_sync(session: Session, dataset: Dataset, link: Attachment, max_attempts: int = 3
               ) -> None:
    """Enqueue the sync job and its event, in the caller's transaction."""
    link.sync_requested_at = now_ms()
    job = queue.enqueue(session, SYNC_JOB, {"datasetId": dataset.id, "fileId": link.file_id},
                        org_id=dataset.org_id, serial_key=serial_key(dataset.id),
                        max_attempts=max_attempts)
    events.emit(session, dataset.org_id, "sync.queued", dataset_id=dataset.id,
                file_id=link.file_id, jobId=job.id)


def request_file_sync(session: Session, principal: Principal, file_id: str,
                      cooldown_s: float, max_attempts: int = 3) -> list[tuple[str, str]]:
    """Sync a file to every dataset it is a source of that the principal may change; the
    others are neither synced nor named (the caller may not know they exist). Returns the
    (dataset id, file id) pairs asked for."""
    file = files.get(session, principal, file_id)
    links = datasets.source_links(session, file.id)
    visible = dataset_rows.visible_ids(session, principal, [link.dataset_id for link in links])
    mine = [link for link in links if link.dataset_id in visible]
    if mine:
        principal.require("datasets:write")
    synced = []
    for link in mine:
        try:
            request_sync(session, principal, link.dataset_id, file.id, cooldown_s,
                         max_attempts)
        except NotAuthorized:
            continue  # visible, not the end-user's own: not this caller's to sync
        synced.append((link.dataset_id, file.id))
    return synced
