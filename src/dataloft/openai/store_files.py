"""/v1/vector_stores/{id}/files: a vector-store file is an attachment, its id the file's.

Adding a file queues its sync at once (no cooldown on this path: OpenAI's clients add and
poll). Its status is derived from the sync (sync/status.py); our typed sync failures
become OpenAI's last_error codes below.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy.orm import Session

from dataloft.datasets import repository as dataset_rows
from dataloft.datasets import service as datasets
from dataloft.datasets.schemas import AttachBody, DetachBody
from dataloft.errors import NotFound
from dataloft.kit.principal import Principal
from dataloft.models import Attachment, Dataset
from dataloft.openai import files as openai_files
from dataloft.openai import repository
from dataloft.openai.common import chunking_object, chunking_settings, missing, page_in_memory
from dataloft.openai.schemas import (
    Attributes,
    ChunkingParam,
    ContentPart,
    FileContentPage,
    FileStatus,
    LastError,
    VectorStoreFile,
    VectorStoreFileDeleted,
    VectorStoreFileList,
)
from dataloft.storage.index.base import Index
from dataloft.sync import service as sync
from dataloft.sync.status import SyncStatus, sync_status

# Our sync failure codes (ExtractionError, JobFailed, the queue's) -> OpenAI's three.
UNSUPPORTED = {"unsupported_format", "encrypted"}
INVALID = {"corrupted_file", "empty_content"}


def last_error(status: SyncStatus) -> LastError | None:
    if status.state != "failed":
        return None
    code = status.error_code or ""
    kind: Literal["server_error", "unsupported_file", "invalid_file"] = (
        "unsupported_file" if code in UNSUPPORTED
        else "invalid_file" if code in INVALID else "server_error")
    return LastError(code=kind, message=status.error_message or code or "the sync failed")


def render(link: Attachment, status: SyncStatus, usage: int,
           dataset: Dataset) -> VectorStoreFile:
    return VectorStoreFile(
        id=link.file_id, created_at=link.created_at // 1000, last_error=last_error(status),
        status=status.state, usage_bytes=usage, vector_store_id=link.dataset_id,
        attributes=link.attributes or {},
        chunking_strategy=chunking_object(link.chunking, dataset.settings))


def render_many(session: Session, dataset: Dataset,
                links: Sequence[Attachment]) -> list[VectorStoreFile]:
    ids = [link.file_id for link in links]
    statuses = sync_status(session, dataset.id, ids)
    usage = dataset_rows.text_bytes(session, dataset.id, ids)
    return [render(link, statuses[link.file_id], usage.get(link.file_id, 0), dataset)
            for link in links if link.file_id in statuses]


def attach(session: Session, principal: Principal, dataset: Dataset, file_id: str,
           attributes: Attributes | None, chunking: ChunkingParam | None,
           max_attempts: int) -> Attachment:
    openai_files.get(session, principal, file_id)  # visible and not expired
    link = datasets.attach(session, principal, dataset.id, file_id, AttachBody())
    if attributes is not None:
        link.attributes = dict(attributes)
    link.chunking = chunking_settings(chunking)
    sync.queue_sync(session, dataset, link, max_attempts)
    dataset_rows.save_attachment(session, link)
    return link


def link_of(session: Session, principal: Principal, dataset: Dataset,
            file_id: str) -> Attachment:
    links = repository.attachments(session, principal, dataset.id, [file_id])
    if not links:
        raise missing("vector store file", file_id)
    return links[0]


def get(session: Session, principal: Principal, dataset: Dataset,
        file_id: str) -> VectorStoreFile:
    return render_many(session, dataset, [link_of(session, principal, dataset, file_id)])[0]


def listing(session: Session, principal: Principal, dataset: Dataset, *,
            file_ids: Sequence[str] | None = None, status: FileStatus | None,
            after: str | None, before: str | None, order: str,
            limit: int) -> VectorStoreFileList:
    links = repository.attachments(session, principal, dataset.id, file_ids)
    rendered = render_many(session, dataset, links)
    if status is not None:
        rendered = [f for f in rendered if f.status == status]
    items = page_in_memory(rendered, lambda f: f.id, after, before, order, limit)
    data = items[:limit]
    return VectorStoreFileList(data=data, first_id=data[0].id if data else None,
                               last_id=data[-1].id if data else None,
                               has_more=len(items) > limit)


def update(session: Session, principal: Principal, dataset: Dataset, file_id: str,
           attributes: dict[str, Any] | None) -> VectorStoreFile:
    principal.require("datasets:write")
    link = link_of(session, principal, dataset, file_id)
    link.attributes = dict(attributes or {})
    dataset_rows.save_attachment(session, link)
    return get(session, principal, dataset, file_id)


def delete(session: Session, index: Index, principal: Principal, dataset: Dataset,
           file_id: str) -> VectorStoreFileDeleted:
    """Detach the file and remove its records; the file itself stays (OpenAI's rule)."""
    try:
        datasets.detach(session, index, principal, dataset.id, file_id,
                        DetachBody(deleteRecords=True))
    except NotFound as exc:
        raise missing("vector store file", file_id) from exc
    return VectorStoreFileDeleted(id=file_id)


def content(session: Session, principal: Principal, dataset: Dataset,
            file_id: str) -> FileContentPage:
    link_of(session, principal, dataset, file_id)
    texts = repository.file_texts(session, principal, dataset.id, file_id)
    return FileContentPage(data=[ContentPart(text=t) for t in texts])
