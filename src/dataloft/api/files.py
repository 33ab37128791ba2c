"""/api/v1/file/* (and /api/v1/dataset/file/create, as seed 002 writes it)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from dataloft.api.deps import CtxDep, PrincipalDep, SessionDep, WaitQuery, get_principal
from dataloft.api.listing import LISTING, respond, with_meta_filter
from dataloft.api.openapi import Documented, errors
from dataloft.errors import Conflict, DataloftError
from dataloft.files import direct, service
from dataloft.files.schemas import (
    FileCreate,
    FileFetched,
    FilePage,
    FileUpdate,
    UploadAnswer,
)
from dataloft.files.upload import Uploads
from dataloft.kit.wire import Ref
from dataloft.models import File
from dataloft.sync import service as sync
from dataloft.sync import status
from dataloft.sync import wait as waiting
from dataloft.sync.schemas import SyncAnswer

router = APIRouter(prefix="/api/v1", tags=["files"], route_class=Documented,
                   responses=errors())

SYSTEM_FIELDS = {"createdAt": File.created_at, "name": File.name}


def confirm_uploads(file_id: str, request: Request, ctx: CtxDep) -> None:
    """Before a route reads or uses a file: count its direct-to-bucket uploads that have
    arrived (the SDKs send nothing after their PUT). A no-op on local blobs."""
    if not direct.enabled(ctx):
        return
    try:
        principal = (get_principal(request, ctx) if request.headers.get("authorization")
                     else None)
        direct.confirm(ctx, principal, file_id)
    except DataloftError:
        return  # the route itself answers a missing credential, file or right


Confirmed = [Depends(confirm_uploads)]
_BINARY_BODY = {"requestBody": {"required": True, "content": {
    "*/*": {"schema": {"type": "string", "format": "binary"}}}}}
_DOWNLOAD: dict[int | str, dict[str, Any]] = {
    200: {"description": "The file's bytes, as its content type.",
          "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}},
    204: {"description": "Nothing has been uploaded to the file yet."}}


@router.post("/file/create", response_model=Ref)
@router.post("/dataset/file/create", response_model=Ref)
def create_file(session: SessionDep, principal: PrincipalDep,
                body: FileCreate | None = None) -> dict[str, Any]:
    return {"id": service.create(session, principal, body or FileCreate()).id}


@router.get("/file/list", response_model=FilePage, responses=LISTING)
def list_files(request: Request, ctx: CtxDep, session: SessionDep,
               principal: PrincipalDep) -> Any:
    stmt = with_meta_filter(service.listing(principal), File.meta, SYSTEM_FIELDS,
                            list(request.query_params.multi_items()), ctx.dialect)
    return respond(request, ctx, session, stmt, File.id, service.render)


@router.get("/file/{file_id}/fetch", response_model=FileFetched, dependencies=Confirmed)
def fetch_file(file_id: str, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    file = service.get(session, principal, file_id)
    return {**service.render(file),
            "attachments": status.file_attachments(session, principal, file.id)}


@router.post("/file/{file_id}/update", response_model=Ref)
def update_file(file_id: str, session: SessionDep, principal: PrincipalDep,
                body: FileUpdate | None = None) -> dict[str, Any]:
    return {"id": service.update(session, principal, file_id, body or FileUpdate()).id}


@router.post("/file/{file_id}/delete", response_model=Ref)
def delete_file(file_id: str, ctx: CtxDep, session: SessionDep,
                principal: PrincipalDep) -> dict[str, Any]:
    return {"id": service.delete(session, ctx.index, principal, file_id).id}


@router.post("/file/{file_id}/sync", response_model=SyncAnswer, dependencies=Confirmed,
             responses=errors(429))
async def sync_file(file_id: str, ctx: CtxDep, principal: PrincipalDep,
                    wait: WaitQuery = None) -> dict[str, Any]:
    def ask() -> list[tuple[str, str]]:
        with ctx.db.write() as session:
            pairs = sync.request_file_sync(session, principal, file_id,
                                           ctx.settings.sync_cooldown_seconds,
                                           ctx.settings.job_max_attempts)
        ctx.notify()
        return pairs

    pairs = await run_in_threadpool(ask)
    answer: dict[str, Any] = {"id": file_id, "status": "queued",
                              "datasetIds": [d for d, _ in pairs]}
    if wait is not None:
        found, done = await waiting.wait_for(ctx.db, pairs, wait)
        answer.update(status=waiting.least(found) or "queued", done=done, attachments=found)
    return answer


@router.post("/file/{file_id}/upload", response_model=UploadAnswer,
             openapi_extra={"requestBody": {"content": {
    "application/json": {"schema": {"type": "object"}},
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "file": {"type": "string", "format": "binary"}}}},
    "*/*": {"schema": {"type": "string", "format": "binary"}}}}})
async def upload_file(file_id: str, request: Request, ctx: CtxDep,
                      principal: PrincipalDep) -> dict[str, Any]:
    return await Uploads(ctx).handle(request, principal, file_id)


@router.put("/file/{file_id}/upload/{ticket_id}", response_model=Ref, responses=errors(410),
            openapi_extra=_BINARY_BODY)
async def direct_upload(file_id: str, ticket_id: str, request: Request,
                        ctx: CtxDep) -> dict[str, Any]:
    """The signed, single-use target of a direct-to-source upload. The URL is the credential."""
    return await Uploads(ctx).direct_put(request, file_id, ticket_id)


@router.post("/file/{file_id}/upload/confirm", response_model=Ref)
def confirm_upload(file_id: str, ctx: CtxDep, principal: PrincipalDep) -> dict[str, Any]:
    """Count a direct-to-bucket upload now rather than on the file's next use."""
    direct.confirm(ctx, principal, file_id)
    with ctx.db.read() as session:
        file = service.get(session, principal, file_id)
        if not file.blob_key:
            raise Conflict("no upload has arrived for this file yet")
    return {"id": file_id}


@router.get("/file/{file_id}/download", dependencies=Confirmed, responses=_DOWNLOAD,
            response_class=StreamingResponse,
            openapi_extra={"security": [{"HTTPBearer": []}, {}]})
def download_file(file_id: str, request: Request, ctx: CtxDep) -> Response:
    """With a credential, any file the caller may see; without one, public files only."""
    with ctx.db.read() as session:
        if request.headers.get("authorization"):
            file = service.get(session, get_principal(request, ctx), file_id)
        else:
            file = service.get_public(session, file_id)
        key, name, ctype, size = file.blob_key, file.name, file.content_type, file.size
    if not key:
        return Response(status_code=204)
    safe = (name or file_id).replace('"', "").replace("\r", "").replace("\n", "")
    ascii_name = safe.encode("ascii", "replace").decode().replace("?", "_")
    headers = {
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; "
                               f"filename*=UTF-8''{quote(safe)}",
        "X-Content-Type-Options": "nosniff",
        "Content-Length": str(size or 0),
    }
    try:
        chunks = ctx.blobs.open(key)
    except FileNotFoundError:
        raise Conflict("the file's content changed while it was being read; retry") from None
    return StreamingResponse(_iterate(chunks), media_type=ctype or "application/octet-stream",
                             headers=headers)


async def _iterate(chunks: Any) -> Any:
    while True:
        chunk = await run_in_threadpool(next, chunks, None)
        if chunk is None:
            return
        yield chunk
