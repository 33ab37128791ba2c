"""What happens to files: metadata, new content versions, deletion."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import Session

from dataloft.errors import BadRequest, Conflict, NotAuthenticated, NotAuthorized, not_found
from dataloft.files import repository
from dataloft.files.schemas import FileCreate, FileUpdate
from dataloft.jobs import queue
from dataloft.kit.ids import new_id
from dataloft.kit.principal import Principal
from dataloft.models import File
from dataloft.quotas import service as quotas
from dataloft.records import repository as records
from dataloft.storage.blobs.base import BlobInfo
from dataloft.storage.index.base import Index
from dataloft.tables import catalog


def _check_alias(session: Session, principal: Principal, owner_scope: str, alias: str | None,
                 file_id: str | None) -> None:
    if alias is None:
        return
    clash = repository.alias_holder(session, principal, owner_scope, alias)
    if clash is not None and clash != file_id:
        raise Conflict(f"alias {alias!r} is already used by another file")


def create(session: Session, principal: Principal, body: FileCreate) -> File:
    principal.require("files:write")
    _check_alias(session, principal, principal.own_scope, body.alias, None)
    quotas.charge(session, principal.org_id, files=1)
    file = File(
        id=new_id("file"),
        org_id=principal.org_id,
        name=body.name,
        description=body.description,
        alias=body.alias,
        meta=body.meta or {},
        visibility=body.visibility or "private",
        owner_scope=principal.own_scope,
    )
    repository.save_file(session, file)
    return file


def get(session: Session, principal: Principal, file_id: str) -> File:
    file = repository.visible_file(session, principal, file_id)
    if file is None:
        raise not_found("file", file_id)
    return file


def get_public(session: Session, file_id: str) -> File:
    """The one read without a credential: a file marked public (not its listing). Anything
    else answers as any request without a key does, so no id is confirmed or denied."""
    file = repository.public_file(session, file_id)
    if file is None:
        raise NotAuthenticated("missing API key: send 'Authorization: Bearer <key>'")
    return file


def get_owned(session: Session, principal: Principal, file_id: str) -> File:
    """A file the principal may change (kit/policy.py `files_changeable`); one it cannot
    see answers like a missing one."""
    file = get(session, principal, file_id)
    check_changeable(session, principal, file)
    return file


def check_changeable(session: Session, principal: Principal, file: File) -> None:
    if repository.changeable(session, principal, file.id):
        return
    if principal.is_end_user and file.owner_scope != principal.own_scope:
        raise NotAuthorized("end-users may only change their own files")
    raise NotAuthorized("this key is limited to some datasets and the file is used by a "
                        "dataset outside them: it may read the file, not change or delete it")


def listing(principal: Principal) -> Select[Any]:
    return repository.files_listing(principal)


def update(session: Session, principal: Principal, file_id: str, body: FileUpdate) -> File:
    principal.require("files:write")
    file = get_owned(session, principal, file_id)
    fields = body.model_dump(exclude_unset=True, exclude={"blueprintId"})
    refuse_null_visibility(fields)
    if "alias" in fields:
        _check_alias(session, principal, file.owner_scope, fields["alias"], file.id)
    for key, value in fields.items():
        setattr(file, key, value if key != "meta" else (value or {}))
    return file


def refuse_null_visibility(fields: dict[str, Any]) -> None:
    # Every item has a visibility; null on update would unset it (the column is NOT NULL).
    if "visibility" in fields and fields["visibility"] is None:
        raise BadRequest("visibility: expected one of private, protected, public, not null")


def set_content(session: Session, file: File, blob: BlobInfo, content_type: str | None,
                name: str | None) -> None:
    """Point the file at new bytes; the old blob is removed by a job once this commits.
    Charged to the org's storage quota (the new size less the old), QuotaExceeded past it."""
    old_size = (file.size or 0) if file.blob_key else 0
    if file.blob_key:
        queue.delete_blob_later(session, file.blob_key, file.org_id)
    file.blob_key = blob.key
    file.size = blob.size
    file.sha256 = blob.sha256
    file.content_type = content_type or "application/octet-stream"
    if name and not file.name:
        file.name = name
    file.version += 1
    # Charged last: the charge's UPDATE flushes the file's first, so this transaction takes
    # the file's row lock before the org's usage row, in the order a sync's commit and a
    # deletion take them (the opposite order could deadlock with them on PostgreSQL).
    quotas.charge(session, file.org_id, storage_bytes=blob.size - old_size)


def delete(session: Session, index: Index, principal: Principal, file_id: str) -> File:
    principal.require("files:write")
    file = get_owned(session, principal, file_id)
    delete_unchecked(session, index, file)
    return file


def delete_unchecked(session: Session, index: Index, file: File) -> None:
    """Delete a file the caller was already allowed to delete."""
    # Lock the row before reading its records: a sync committing records for this file
    # holds the same lock (ingest/sync.py), so its records are seen here and deleted.
    file_id = file.id
    try:
        repository.lock_file(session, file)
    except InvalidRequestError as exc:  # deleted meanwhile by a concurrent request
        raise not_found("file", file_id) from exc
    # No record may outlive its file: a record without a file is a ghost search result.
    records.delete_where(session, index, org_id=file.org_id, file_id=file.id)
    catalog.drop(session, file.org_id, file_id=file.id)
    # Unconfirmed direct uploads die with the file (their tickets go by ON DELETE CASCADE).
    pending = repository.pending_bucket_keys(session, file.id)
    quotas.release(session, file.org_id, files=1,
                   storage_bytes=(file.size or 0) if file.blob_key else 0)
    for key in [file.blob_key, *pending]:
        if key:
            queue.delete_blob_later(session, key, file.org_id)
    repository.delete_file(session, file)


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
