"""/v1/files and /v1/vector_stores: OpenAI's Files and Vector Stores API (dataloft/openai).

Errors on these routes leave in OpenAI's body (api/errors.py asks openai/errors.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from dataloft.api import lean
from dataloft.api.deps import (
    CredentialsDep,
    CtxDep,
    PrincipalDep,
    SessionDep,
    principal_in,
)
from dataloft.api.openapi import OPENAI_ERRORS
from dataloft.errors import Conflict
from dataloft.openai import files, search, service, stores
from dataloft.openai.common import check_limit
from dataloft.openai.schemas import (
    FileBatch,
    FileBatchCreate,
    FileContentPage,
    FileDeleted,
    FileList,
    FileObject,
    FileStatus,
    SearchBody,
    SearchPage,
    VectorStore,
    VectorStoreCreate,
    VectorStoreDeleted,
    VectorStoreFile,
    VectorStoreFileCreate,
    VectorStoreFileDeleted,
    VectorStoreFileList,
    VectorStoreFileUpdate,
    VectorStoreList,
    VectorStoreUpdate,
)


def _router() -> APIRouter:
    return APIRouter(prefix="/v1", tags=["openai"], responses=OPENAI_ERRORS)


router = _router()

Order = Annotated[Literal["asc", "desc"], Query()]
Limit = Annotated[int, Query()]
Cursor = Annotated[str | None, Query(max_length=100)]
StatusFilter = Annotated[FileStatus | None, Query(alias="filter")]
POLL = {"openai-poll-after-ms": str(service.POLL_AFTER_MS)}


def _poll_hint(response: Response) -> None:
    response.headers.update(POLL)


# --- files -----------------------------------------------------------------------------

@router.post("/files", response_model=FileObject, openapi_extra={"requestBody": {"content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file", "purpose"],
                                       "properties": {
                                           "file": {"type": "string", "format": "binary"},
                                           "purpose": {"type": "string"}}}}}}})
async def create_file(request: Request, ctx: CtxDep, principal: PrincipalDep) -> FileObject:
    return await files.create(ctx, request, principal)


@router.get("/files", response_model=FileList)
def list_files(session: SessionDep, principal: PrincipalDep, after: Cursor = None,
               limit: Limit = 10_000, order: Order = "desc",
               purpose: Annotated[str | None, Query(max_length=32)] = None) -> FileList:
    return files.listing(session, principal, purpose, after, order, limit)


@router.get("/files/{file_id}", response_model=FileObject)
def retrieve_file(file_id: str, session: SessionDep, principal: PrincipalDep) -> FileObject:
    return files.render(files.get(session, principal, file_id))


@router.delete("/files/{file_id}", response_model=FileDeleted)
def delete_file(file_id: str, ctx: CtxDep, session: SessionDep,
                principal: PrincipalDep) -> FileDeleted:
    return files.delete(session, ctx, principal, file_id)


@router.get("/files/{file_id}/content", response_class=StreamingResponse, responses={200: {
    "description": "The file's bytes.",
    "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}})
def file_content(file_id: str, ctx: CtxDep, principal: PrincipalDep) -> Response:
    found = files.content(ctx, principal, file_id)
    if not found.blob_key:
        return Response(b"", media_type=found.content_type)
    try:
        chunks = ctx.blobs.open(found.blob_key)
    except FileNotFoundError:
        raise Conflict("the file's content changed while it was being read; retry") from None
    return StreamingResponse(_iterate(chunks), media_type=found.content_type,
                             headers={"Content-Length": str(found.size),
                                      "X-Content-Type-Options": "nosniff"})


async def _iterate(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    while True:
        chunk = await run_in_threadpool(next, chunks, None)
        if chunk is None:
            return
        yield chunk


# --- vector stores ---------------------------------------------------------------------

@router.post("/vector_stores", response_model=VectorStore)
def create_vector_store(body: VectorStoreCreate, ctx: CtxDep, session: SessionDep,
                        principal: PrincipalDep) -> VectorStore:
    return service.create_store(session, ctx, principal, body)


@router.get("/vector_stores", response_model=VectorStoreList)
def list_vector_stores(session: SessionDep, principal: PrincipalDep, after: Cursor = None,
                       before: Cursor = None, limit: Limit = 20,
                       order: Order = "desc") -> VectorStoreList:
    return stores.listing(session, principal, after, before, order, limit)


@router.get("/vector_stores/{store_id}", response_model=VectorStore)
def retrieve_vector_store(store_id: str, session: SessionDep,
                          principal: PrincipalDep) -> VectorStore:
    return service.get_store(session, principal, store_id)


@router.post("/vector_stores/{store_id}", response_model=VectorStore)
def update_vector_store(store_id: str, body: VectorStoreUpdate, session: SessionDep,
                        principal: PrincipalDep) -> VectorStore:
    return service.update_store(session, principal, store_id, body)


@router.delete("/vector_stores/{store_id}", response_model=VectorStoreDeleted)
def delete_vector_store(store_id: str, ctx: CtxDep, session: SessionDep,
                        principal: PrincipalDep) -> VectorStoreDeleted:
    return service.delete_store(session, ctx, principal, store_id)


def search_vector_store(store_id: str, body: SearchBody, ctx: CtxDep,
                        credentials: CredentialsDep) -> SearchPage:
    return search.run(ctx, lambda session: principal_in(session, ctx, credentials), store_id,
                      body)


searching = lean.searching(_router(), "/vector_stores/{store_id}/search",
                           search_vector_store, SearchPage)


# --- vector-store files ----------------------------------------------------------------

@router.post("/vector_stores/{store_id}/files", response_model=VectorStoreFile)
def create_vector_store_file(store_id: str, body: VectorStoreFileCreate, response: Response,
                             ctx: CtxDep, session: SessionDep,
                             principal: PrincipalDep) -> VectorStoreFile:
    _poll_hint(response)
    return service.add_file(session, ctx, principal, store_id, body)


@router.get("/vector_stores/{store_id}/files", response_model=VectorStoreFileList)
def list_vector_store_files(store_id: str, session: SessionDep, principal: PrincipalDep,
                            status: StatusFilter = None, after: Cursor = None,
                            before: Cursor = None, limit: Limit = 20,
                            order: Order = "desc") -> VectorStoreFileList:
    return service.list_files(session, principal, store_id, status, after, before, order,
                              check_limit(limit))


@router.get("/vector_stores/{store_id}/files/{file_id}", response_model=VectorStoreFile)
def retrieve_vector_store_file(store_id: str, file_id: str, response: Response,
                               session: SessionDep,
                               principal: PrincipalDep) -> VectorStoreFile:
    _poll_hint(response)
    return service.get_file(session, principal, store_id, file_id)


@router.post("/vector_stores/{store_id}/files/{file_id}", response_model=VectorStoreFile)
def update_vector_store_file(store_id: str, file_id: str, body: VectorStoreFileUpdate,
                             session: SessionDep, principal: PrincipalDep) -> VectorStoreFile:
    return service.update_file(session, principal, store_id, file_id, body)


@router.delete("/vector_stores/{store_id}/files/{file_id}",
               response_model=VectorStoreFileDeleted)
def delete_vector_store_file(store_id: str, file_id: str, ctx: CtxDep, session: SessionDep,
                             principal: PrincipalDep) -> VectorStoreFileDeleted:
    return service.delete_file(session, ctx, principal, store_id, file_id)


@router.get("/vector_stores/{store_id}/files/{file_id}/content",
            response_model=FileContentPage)
def vector_store_file_content(store_id: str, file_id: str, session: SessionDep,
                              principal: PrincipalDep) -> FileContentPage:
    return service.file_content(session, principal, store_id, file_id)


# --- file batches ----------------------------------------------------------------------

@router.post("/vector_stores/{store_id}/file_batches", response_model=FileBatch)
def create_file_batch(store_id: str, body: FileBatchCreate, response: Response, ctx: CtxDep,
                      session: SessionDep, principal: PrincipalDep) -> FileBatch:
    _poll_hint(response)
    return service.create_batch(session, ctx, principal, store_id, body)


@router.get("/vector_stores/{store_id}/file_batches/{batch_id}", response_model=FileBatch)
def retrieve_file_batch(store_id: str, batch_id: str, response: Response,
                        session: SessionDep, principal: PrincipalDep) -> FileBatch:
    _poll_hint(response)
    return service.get_batch(session, principal, store_id, batch_id)


@router.post("/vector_stores/{store_id}/file_batches/{batch_id}/cancel",
             response_model=FileBatch)
def cancel_file_batch(store_id: str, batch_id: str, session: SessionDep,
                      principal: PrincipalDep) -> FileBatch:
    return service.cancel_batch(session, principal, store_id, batch_id)


@router.get("/vector_stores/{store_id}/file_batches/{batch_id}/files",
            response_model=VectorStoreFileList)
def list_file_batch_files(store_id: str, batch_id: str, session: SessionDep,
                          principal: PrincipalDep, status: StatusFilter = None,
                          after: Cursor = None, before: Cursor = None, limit: Limit = 20,
                          order: Order = "desc") -> VectorStoreFileList:
    return service.list_batch_files(session, principal, store_id, batch_id, status, after,
                                    before, order, check_limit(limit))
