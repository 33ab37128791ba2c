"""What happens to files: metadata, new content versions, deletion."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from dataloft.errors import Conflict, not_found
from dataloft.files.schemas import FileCreate, FileUpdate
from dataloft.jobs import queue
from dataloft.kit.ids import new_id
from dataloft.kit.principal import Principal
from dataloft.models import File
from dataloft.records import repository as records
from dataloft.storage.blobs.base import BlobInfo
from dataloft.storage.index.base import Index


def _check_alias(session: Session, org_id: str, alias: str | None, file_id: str | None) -> None:
    if alias is None:
        return
    clash = session.scalar(select(File.id).where(File.org_id == org_id, File.alias == alias))
    if clash is not None and clash != file_id:
        raise Conflict(f"alias {alias!r} is already used by another file")


def create(session: Session, principal: Principal, body: FileCreate) -> File:
    principal.require("files:write")
    _check_alias(session, principal.org_id, body.alias, None)
    file = File(
        id=new_id("file"),
        org_id=principal.org_id,
        name=body.name,
        description=body.description,
        alias=body.alias,
        meta=body.meta or {},
        visibility=body.visibility or "private",
    )
    session.add(file)
    session.flush()
    return file


def get(session: Session, principal: Principal, file_id: str, *, for_update: bool = False) -> File:
    stmt = select(File).where(File.id == file_id, File.org_id == principal.org_id)
    file = session.scalar(stmt.with_for_update() if for_update else stmt)
    if file is None:
        raise not_found("file", file_id)
    return file


def listing(principal: Principal) -> Select[Any]:
    return select(File).where(File.org_id == principal.org_id)


def update(session: Session, principal: Principal, file_id: str, body: FileUpdate) -> File:
    principal.require("files:write")
    file = get(session, principal, file_id)
    fields = body.model_dump(exclude_unset=True, exclude={"blueprintId"})
    if "alias" in fields:
        _check_alias(session, principal.org_id, fields["alias"], file.id)
    for key, value in fields.items():
        setattr(file, key, value if key != "meta" else (value or {}))
    return file


def set_content(session: Session, file: File, blob: BlobInfo, content_type: str | None,
                name: str | None) -> None:
    """Point the file at new bytes; the old blob is removed by a job once this commits."""
    if file.blob_key:
        queue.enqueue(session, "blob.delete", {"key": file.blob_key}, org_id=file.org_id)
    file.blob_key = blob.key
    file.size = blob.size
    file.sha256 = blob.sha256
    file.content_type = content_type or "application/octet-stream"
    if name and not file.name:
        file.name = name
    file.version += 1


def delete(session: Session, index: Index, principal: Principal, file_id: str) -> File:
    principal.require("files:write")
    file = get(session, principal, file_id)
    # No record may outlive its file: a record without a file is a ghost search result.
    records.delete_where(session, index, org_id=file.org_id, file_id=file.id)
    if file.blob_key:
        queue.enqueue(session, "blob.delete", {"key": file.blob_key}, org_id=file.org_id)
    session.delete(file)
    session.flush()
    return file


def render(file: File) -> dict[str, Any]:
    return {
        "id": file.id,
        "name": file.name,
        "description": file.description,
        "meta": file.meta,
        "visibility": file.visibility,
        "alias": file.alias,
        "type": file.content_type,
        "size": file.size,
        "sha256": file.sha256,
        "version": file.version,
        "createdAt": file.created_at,
        "updatedAt": file.updated_at,
    }
