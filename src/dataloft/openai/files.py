"""/v1/files: our files, with OpenAI's `purpose` and `expires_after`.

An expired file is gone from this surface (listings, retrieval, content, attaching) from
the instant it expires; its row and records are removed when it is deleted.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from dataloft.errors import BadRequest, NotFound
from dataloft.files import repository as file_rows
from dataloft.files import service as files
from dataloft.files.schemas import FileCreate
from dataloft.files.upload import Received, Uploads
from dataloft.kit.ids import now_ms
from dataloft.kit.principal import Principal
from dataloft.models import File
from dataloft.openai import repository, tasks
from dataloft.openai.common import Wiring, check_limit, missing, page, seconds
from dataloft.openai.schemas import FileDeleted, FileList, FileObject

PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
DEFAULT_PURPOSE = "assistants"
MIN_EXPIRY_S, MAX_EXPIRY_S = 3600, 30 * 24 * 3600


@dataclass(frozen=True)
class Content:
    blob_key: str | None
    name: str
    content_type: str
    size: int


def render(file: File) -> FileObject:
    return FileObject(id=file.id, bytes=file.size or 0, created_at=file.created_at // 1000,
                      filename=file.name or "", purpose=file.purpose or DEFAULT_PURPOSE,
                      expires_at=seconds(file.expires_at))


def _form_rules(fields: dict[str, str], created_ms: int) -> tuple[str, int | None]:
    purpose = fields.get("purpose")
    if purpose not in PURPOSES:
        raise BadRequest(f"purpose must be one of {', '.join(PURPOSES)}")
    anchor = fields.get("expires_after[anchor]")
    raw_seconds = fields.get("expires_after[seconds]")
    if anchor is None and raw_seconds is None:
        return purpose, None
    if anchor != "created_at":
        raise BadRequest("expires_after[anchor] must be 'created_at'")
    if not (raw_seconds or "").isdigit() or not (
            MIN_EXPIRY_S <= int(raw_seconds or 0) <= MAX_EXPIRY_S):
        raise BadRequest(f"expires_after[seconds] must be between {MIN_EXPIRY_S} and "
                         f"{MAX_EXPIRY_S}")
    return purpose, created_ms + int(raw_seconds or 0) * 1000


async def create(ctx: Wiring, request: Request, principal: Principal) -> FileObject:
    """Stream the multipart `file` into the blob store, then make the file row point at it;
    on any failure the stored bytes are removed again."""
    principal.require("files:write")
    received, fields = await Uploads(ctx).receive_form(request)
    try:
        return await run_in_threadpool(_create_row, ctx, principal, received, fields)
    except BaseException:
        await run_in_threadpool(ctx.blobs.delete, received.blob.key)
        raise


def _create_row(ctx: Wiring, principal: Principal, received: Received,
                fields: dict[str, str]) -> FileObject:
    created = now_ms()
    purpose, expires_at = _form_rules(fields, created)
    with ctx.db.write() as session:
        file = files.create(session, principal, FileCreate(name=received.filename))
        file.purpose, file.expires_at, file.created_at = purpose, expires_at, created
        files.set_content(session, file, received.blob, received.content_type,
                          received.filename)
        file_rows.save_file(session, file)
        tasks.schedule(session, file)
        return render(file)


def get(session: Session, principal: Principal, file_id: str) -> File:
    try:
        file = files.get(session, principal, file_id)
    except NotFound as exc:
        raise missing("file", file_id) from exc
    if file.expires_at is not None and file.expires_at <= now_ms():
        raise missing("file", file_id)
    return file


def listing(session: Session, principal: Principal, purpose: str | None, after: str | None,
            order: str, limit: int) -> FileList:
    check_limit(limit, 10_000)
    rows = repository.list_files(session, principal, now_ms(), purpose, after, order, limit)
    data, first, last, more = page(rows, limit, lambda f: f.id)
    return FileList(data=[render(f) for f in data], first_id=first, last_id=last,
                    has_more=more)


def delete(session: Session, ctx: Wiring, principal: Principal, file_id: str) -> FileDeleted:
    get(session, principal, file_id)
    files.delete(session, ctx.index, principal, file_id)
    return FileDeleted(id=file_id)


def content(ctx: Wiring, principal: Principal, file_id: str) -> Content:
    with ctx.db.read() as session:
        file = get(session, principal, file_id)
        return Content(file.blob_key, file.name or file_id,
                       file.content_type or "application/octet-stream", file.size or 0)
