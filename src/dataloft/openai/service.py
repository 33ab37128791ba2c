"""One entry point per /v1 route: the router parses and authenticates, then calls one of
these, which apply the rules of files.py, stores.py, store_files.py, batches.py, search.py."""

from __future__ import annotations

from sqlalchemy.orm import Session

from dataloft.kit.ids import now_ms
from dataloft.kit.principal import Principal
from dataloft.openai import batches, store_files, stores
from dataloft.openai.common import Wiring
from dataloft.openai.schemas import (
    FileBatch,
    FileBatchCreate,
    FileContentPage,
    FileStatus,
    VectorStore,
    VectorStoreCreate,
    VectorStoreDeleted,
    VectorStoreFile,
    VectorStoreFileCreate,
    VectorStoreFileDeleted,
    VectorStoreFileList,
    VectorStoreFileUpdate,
    VectorStoreUpdate,
)

# How long the SDK's pollers wait between looks (`openai-poll-after-ms`): a small file
# syncs in about a second here.
POLL_AFTER_MS = 500


def create_store(session: Session, ctx: Wiring, principal: Principal,
                 body: VectorStoreCreate) -> VectorStore:
    dataset = stores.create(session, principal, body)
    for file_id in dict.fromkeys(body.file_ids or []):
        store_files.attach(session, principal, dataset, file_id, None, body.chunking_strategy,
                           ctx.settings.job_max_attempts)
    return stores.render(session, principal, dataset)


def get_store(session: Session, principal: Principal, store_id: str) -> VectorStore:
    return stores.render(session, principal, stores.get(session, principal, store_id))


def update_store(session: Session, principal: Principal, store_id: str,
                 body: VectorStoreUpdate) -> VectorStore:
    return stores.render(session, principal, stores.update(session, principal, store_id, body))


def delete_store(session: Session, ctx: Wiring, principal: Principal,
                 store_id: str) -> VectorStoreDeleted:
    return stores.delete(session, ctx.index, principal, store_id)


def add_file(session: Session, ctx: Wiring, principal: Principal, store_id: str,
             body: VectorStoreFileCreate) -> VectorStoreFile:
    principal.require("datasets:write")
    dataset = stores.get_live(session, principal, store_id, owned=True)
    store_files.attach(session, principal, dataset, body.file_id, body.attributes,
                       body.chunking_strategy, ctx.settings.job_max_attempts)
    dataset.last_active_at = now_ms()  # the expiry counts from now
    return store_files.get(session, principal, dataset, body.file_id)


def get_file(session: Session, principal: Principal, store_id: str,
             file_id: str) -> VectorStoreFile:
    dataset = stores.get(session, principal, store_id)
    return store_files.get(session, principal, dataset, file_id)


def list_files(session: Session, principal: Principal, store_id: str,
               status: FileStatus | None, after: str | None, before: str | None,
               order: str, limit: int) -> VectorStoreFileList:
    dataset = stores.get(session, principal, store_id)
    return store_files.listing(session, principal, dataset, status=status, after=after,
                               before=before, order=order, limit=limit)


def update_file(session: Session, principal: Principal, store_id: str, file_id: str,
                body: VectorStoreFileUpdate) -> VectorStoreFile:
    dataset = stores.get_owned(session, principal, store_id)
    return store_files.update(session, principal, dataset, file_id, body.attributes)


def delete_file(session: Session, ctx: Wiring, principal: Principal, store_id: str,
                file_id: str) -> VectorStoreFileDeleted:
    dataset = stores.get_owned(session, principal, store_id)
    return store_files.delete(session, ctx.index, principal, dataset, file_id)


def file_content(session: Session, principal: Principal, store_id: str,
                 file_id: str) -> FileContentPage:
    dataset = stores.get(session, principal, store_id)
    return store_files.content(session, principal, dataset, file_id)


def create_batch(session: Session, ctx: Wiring, principal: Principal, store_id: str,
                 body: FileBatchCreate) -> FileBatch:
    dataset = stores.get_live(session, principal, store_id, owned=True)
    batch = batches.create(session, principal, dataset, body, ctx.settings.job_max_attempts)
    dataset.last_active_at = now_ms()
    return batches.render(session, principal, batch)


def get_batch(session: Session, principal: Principal, store_id: str,
              batch_id: str) -> FileBatch:
    dataset = stores.get(session, principal, store_id)
    return batches.render(session, principal, batches.get(session, dataset, batch_id))


def cancel_batch(session: Session, principal: Principal, store_id: str,
                 batch_id: str) -> FileBatch:
    dataset = stores.get_owned(session, principal, store_id)
    return batches.render(session, principal,
                          batches.cancel(session, principal, dataset, batch_id))


def list_batch_files(session: Session, principal: Principal, store_id: str, batch_id: str,
                     status: FileStatus | None, after: str | None, before: str | None,
                     order: str, limit: int) -> VectorStoreFileList:
    dataset = stores.get(session, principal, store_id)
    batch = batches.get(session, dataset, batch_id)
    return store_files.listing(session, principal, dataset, file_ids=batch.file_ids,
                               status=status, after=after, before=before, order=order,
                               limit=limit)
