"""/v1/vector_stores: a vector store is a dataset. `metadata` is the dataset's meta, a
static `chunking_strategy` its recordMaxTokens/recordOverlapTokens; `expires_after` counts
days from `last_active_at` (creation, a file added, a search)."""

from __future__ import annotations

from typing import Literal

from sqlalchemy.orm import Session

from dataloft.datasets import repository as dataset_rows
from dataloft.datasets import service as datasets
from dataloft.datasets.schemas import DatasetCreate
from dataloft.errors import BadRequest, NotFound
from dataloft.kit.ids import now_ms
from dataloft.kit.principal import Principal
from dataloft.models import Dataset
from dataloft.openai import repository
from dataloft.openai.common import check_limit, chunking_settings, missing, page, seconds
from dataloft.openai.schemas import (
    ExpiresAfter,
    FileCounts,
    VectorStore,
    VectorStoreCreate,
    VectorStoreDeleted,
    VectorStoreList,
    VectorStoreUpdate,
)
from dataloft.storage.index.base import Index
from dataloft.sync.status import sync_status

DAY_MS = 24 * 3600 * 1000
# last_active_at is written at most once a minute per store: searches stay read-only.
TOUCH_EVERY_MS = 60_000


def expires_at(dataset: Dataset) -> int | None:
    if dataset.expires_after_days is None:
        return None
    anchor = dataset.last_active_at or dataset.created_at
    return anchor + dataset.expires_after_days * DAY_MS


def is_expired(dataset: Dataset) -> bool:
    deadline = expires_at(dataset)
    return deadline is not None and deadline <= now_ms()


def get(session: Session, principal: Principal, store_id: str) -> Dataset:
    try:
        return datasets.get(session, principal, store_id)
    except NotFound as exc:
        raise missing("vector store", store_id) from exc


def get_owned(session: Session, principal: Principal, store_id: str) -> Dataset:
    try:
        return datasets.get_owned(session, principal, store_id)
    except NotFound as exc:
        raise missing("vector store", store_id) from exc


def get_live(session: Session, principal: Principal, store_id: str,
             owned: bool = False) -> Dataset:
    """A store that may be searched or added to: an expired one may only be read or deleted."""
    dataset = get_owned(session, principal, store_id) if owned else get(
        session, principal, store_id)
    if is_expired(dataset):
        raise BadRequest(f"vector store '{store_id}' has expired")
    return dataset


def counts(session: Session, principal: Principal, dataset_id: str) -> FileCounts:
    visible = {link.file_id for link in repository.attachments(session, principal, dataset_id)}
    out = FileCounts()
    for status in sync_status(session, dataset_id, sorted(visible)).values():
        setattr(out, status.state, getattr(out, status.state) + 1)
        out.total += 1
    return out


def render(session: Session, principal: Principal, dataset: Dataset) -> VectorStore:
    file_counts = counts(session, principal, dataset.id)
    status: Literal["expired", "in_progress", "completed"] = (
        "expired" if is_expired(dataset)
        else "in_progress" if file_counts.in_progress else "completed")
    usage = sum(dataset_rows.text_bytes(session, dataset.id).values())
    days = dataset.expires_after_days
    return VectorStore(
        id=dataset.id, created_at=dataset.created_at // 1000, file_counts=file_counts,
        last_active_at=seconds(dataset.last_active_at or dataset.created_at),
        metadata={str(k): str(v) for k, v in (dataset.meta or {}).items()},
        name=dataset.name or "", status=status, usage_bytes=usage,
        expires_after=ExpiresAfter(anchor="last_active_at", days=days) if days else None,
        expires_at=seconds(expires_at(dataset)), description=dataset.description)


def create(session: Session, principal: Principal, body: VectorStoreCreate) -> Dataset:
    fields: dict[str, object] = {"name": body.name, "description": body.description,
                                 "meta": body.metadata or {}}
    fields.update(chunking_settings(body.chunking_strategy) or {})
    dataset = datasets.create(session, principal, DatasetCreate.model_validate(fields))
    dataset.last_active_at = now_ms()
    if body.expires_after is not None:
        dataset.expires_after_days = body.expires_after.days
    dataset_rows.save_dataset(session, dataset)
    return dataset


def update(session: Session, principal: Principal, store_id: str,
           body: VectorStoreUpdate) -> Dataset:
    principal.require("datasets:write")
    dataset = get_owned(session, principal, store_id)
    sent = body.model_fields_set
    if "name" in sent:
        dataset.name = body.name
    if "metadata" in sent:
        dataset.meta = body.metadata or {}
    if "expires_after" in sent:
        dataset.expires_after_days = body.expires_after.days if body.expires_after else None
    dataset.updated_at = now_ms()
    dataset_rows.save_dataset(session, dataset)
    return dataset


def delete(session: Session, index: Index, principal: Principal,
           store_id: str) -> VectorStoreDeleted:
    get_owned(session, principal, store_id)
    datasets.delete(session, index, principal, store_id)
    return VectorStoreDeleted(id=store_id)


def listing(session: Session, principal: Principal, after: str | None, before: str | None,
            order: str, limit: int) -> VectorStoreList:
    check_limit(limit)
    rows = repository.list_datasets(session, principal, after, before, order, limit)
    data, first, last, more = page(rows, limit, lambda d: d.id)
    return VectorStoreList(data=[render(session, principal, d) for d in data],
                           first_id=first, last_id=last, has_more=more)


def needs_touch(dataset: Dataset) -> bool:
    return (dataset.last_active_at or 0) < now_ms() - TOUCH_EVERY_MS


def touch(session: Session, dataset_id: str) -> None:
    now = now_ms()
    repository.touch_dataset(session, dataset_id, now, now - TOUCH_EVERY_MS)
