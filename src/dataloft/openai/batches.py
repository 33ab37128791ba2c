"""/v1/vector_stores/{id}/file_batches: files added together. A batch stores only its file
ids; its counts and status are derived from each file's sync status on every read, so
`in_progress` reaches 0 exactly when the last sync ends (the SDK's poll stops there)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from dataloft.kit.ids import new_id, now_ms
from dataloft.kit.principal import Principal
from dataloft.models import Dataset, FileBatch
from dataloft.openai import repository, store_files
from dataloft.openai.common import missing
from dataloft.openai.schemas import FileBatch as FileBatchObject
from dataloft.openai.schemas import FileBatchCreate, FileCounts, FileStatus
from dataloft.sync.service import SYNC_JOB
from dataloft.sync.status import CANCELLED, sync_status


def create(session: Session, principal: Principal, dataset: Dataset, body: FileBatchCreate,
           max_attempts: int) -> FileBatch:
    principal.require("datasets:write")
    if body.files is not None:
        specs = [(f.file_id, f.attributes, f.chunking_strategy) for f in body.files]
    else:
        specs = [(fid, body.attributes, body.chunking_strategy) for fid in body.file_ids or []]
    seen: list[str] = []
    for file_id, attributes, chunking in specs:
        store_files.attach(session, principal, dataset, file_id, attributes, chunking,
                           max_attempts)
        if file_id not in seen:
            seen.append(file_id)
    batch = FileBatch(id=new_id("vsfb"), org_id=dataset.org_id, dataset_id=dataset.id,
                      file_ids=seen)
    repository.save_batch(session, batch)
    return batch


def get(session: Session, dataset: Dataset, batch_id: str) -> FileBatch:
    batch = repository.batch(session, dataset.id, batch_id)
    if batch is None:
        raise missing("file batch", batch_id)
    return batch


def render(session: Session, principal: Principal, batch: FileBatch) -> FileBatchObject:
    visible = {link.file_id for link in repository.attachments(
        session, principal, batch.dataset_id, batch.file_ids)}
    counts = FileCounts()
    for status in sync_status(session, batch.dataset_id, sorted(visible)).values():
        setattr(counts, status.state, getattr(counts, status.state) + 1)
        counts.total += 1
    state: FileStatus
    if counts.in_progress:
        state = "in_progress"
    elif batch.cancelled_at is not None:
        state = "cancelled"
    elif counts.failed and counts.failed == counts.total:
        state = "failed"
    else:
        state = "completed"
    return FileBatchObject(id=batch.id, created_at=batch.created_at // 1000,
                           file_counts=counts, status=state,
                           vector_store_id=batch.dataset_id)


def cancel(session: Session, principal: Principal, dataset: Dataset,
           batch_id: str) -> FileBatch:
    """Syncs not started yet are cancelled; those running finish (they end in_progress)."""
    principal.require("datasets:write")
    batch = get(session, dataset, batch_id)
    if batch.cancelled_at is None:
        batch.cancelled_at = now_ms()
        repository.cancel_queued_syncs(session, SYNC_JOB, dataset.id, batch.file_ids,
                                       CANCELLED)
        repository.save_batch(session, batch)
    return batch
