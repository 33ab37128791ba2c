"""Direct-to-bucket uploads: a presigned PUT straight to the blob store (S3), confirmed by
the server before the file counts as uploaded.

The ticket names a fresh key in the bucket and signs a PUT of exactly the announced size to
it (If-None-Match: * where the endpoint supports it), so the bytes never pass through an
API replica. The file row is untouched until a confirmation finds the object,
checks its size and type against the ticket and hashes it; only then is the file pointed at
it, in the same transaction that consumes the ticket.

The official SDKs send nothing after their PUT, so confirmation is lazy: every request that
reads or uses a file (fetch, download, attach, sync) confirms its pending uploads first, and
`POST /api/v1/file/{id}/upload/confirm` does so explicitly. Two confirmations racing consume
the ticket once (a conditional DELETE decides), so a file moves to an upload exactly once.

A ticket stays confirmable for one TTL after its URL expires (an object can only have been
PUT while the URL was valid); after that it is swept and its object, if any, deleted.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from dataloft.errors import QuotaExceeded
from dataloft.events import service as events
from dataloft.files import repository, service
from dataloft.files.deps import UploadDeps
from dataloft.files.schemas import DirectUpload
from dataloft.jobs import queue
from dataloft.kit.ids import new_id, now_ms
from dataloft.kit.principal import Principal
from dataloft.models import UploadTicket
from dataloft.storage.blobs.base import BlobInfo, DirectUploads


def enabled(ctx: UploadDeps) -> bool:
    return ctx.blobs.direct_uploads() is not None


def issue(ctx: UploadDeps, blobs: DirectUploads, principal: Principal, file_id: str,
          spec: DirectUpload, content_disposition: str | None) -> dict[str, Any]:
    """A ticket and the presigned PUT a client sends the bytes with."""
    ttl = int(ctx.settings.direct_upload_ttl)
    now = now_ms()
    ticket = UploadTicket(id=new_id("upl"), file_id=file_id, size=spec.size,
                          content_type=spec.type, name=spec.name, expires_at=now + ttl * 1000,
                          blob_key=blobs.new_key(), created_at=now)
    url, headers = blobs.presigned_put(str(ticket.blob_key), spec.type, spec.size, ttl,
                                       content_disposition)
    with ctx.db.write() as session:
        service.get_owned(session, principal, file_id)
        sweep(session, now, ttl * 1000)
        repository.add_ticket(session, ticket)
    return {"method": "PUT", "url": url, "headers": headers}


def sweep(session: Session, now: int, grace_ms: int) -> None:
    """Drop expired tickets: a URL on this server at once (its PUT refuses it anyway), a
    bucket ticket `grace_ms` later. A swept ticket's bucket object was never confirmed, so
    it goes too (by the blob.delete job, once this commits)."""
    for ticket_id, key, org_id in repository.expired_tickets(session, now, grace_ms):
        if repository.consume_ticket(session, ticket_id) and key:
            queue.delete_blob_later(session, key, org_id)


def confirm(ctx: UploadDeps, principal: Principal | None, file_id: str) -> int:
    """Confirm the file's pending direct uploads that have arrived, oldest first; returns
    how many were confirmed. Raises like a fetch if the principal (None: anonymous, public
    files only) cannot see the file."""
    if not enabled(ctx):
        return 0
    with ctx.db.read() as session:
        if principal is None:
            service.get_public(session, file_id)
        else:
            service.get(session, principal, file_id)
        tickets = repository.bucket_tickets(session, file_id)
    confirmed = 0
    for ticket in tickets:
        confirmed += _confirm_one(ctx, ticket)
    if confirmed:
        ctx.notify()
    return confirmed


def _confirm_one(ctx: UploadDeps, ticket: UploadTicket) -> bool:
    key = str(ticket.blob_key)
    stat = ctx.blobs.stat(key)
    if stat is None:
        return False  # not uploaded (yet)
    blob: BlobInfo | None = None
    if stat.size == ticket.size and _same_type(stat.content_type, ticket.content_type):
        blob = ctx.blobs.describe(key)
    with ctx.db.write() as session:
        if not repository.consume_ticket(session, ticket.id):
            return False  # another request confirmed or swept it meanwhile
        file = repository.file_by_id(session, ticket.file_id)
        if file is None:
            return False  # the ticket went with its file (ON DELETE CASCADE)
        if blob is None or blob.size != ticket.size:
            # Not what the ticket signed (S3 itself refuses such a PUT; an endpoint that
            # does not check signatures may not): the upload does not count.
            queue.delete_blob_later(session, key, file.org_id)
            return False
        try:
            with session.begin_nested():  # a refusal undoes the file's change, not the rest
                service.set_content(session, file, blob, ticket.content_type, ticket.name)
        except QuotaExceeded as exc:
            # A read that confirms must not fail for it: the upload is dropped and the
            # refusal logged for the uploader to see.
            queue.delete_blob_later(session, key, file.org_id)
            events.emit(session, file.org_id, "file.upload_refused", file_id=file.id,
                        reason=exc.code, message=exc.message)
            return False
    return True


def _same_type(stored: str | None, announced: str) -> bool:
    """The ticket's type is the stored one, or one of the values a client joined with a
    comma (@chatbotkit/sdk sends its default `application/octet-stream` beside ours)."""
    if stored is None:
        return True  # the store keeps no type: the size and hash decide

    def bare(value: str) -> str:
        return value.split(";")[0].strip().lower()

    return bare(announced) in {bare(v) for v in stored.split(",")}
