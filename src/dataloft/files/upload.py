"""The five upload forms of seed 002, each streamed into the blob store under the size cap.

multipart | raw body | JSON data URL | JSON http(s) URL (fetched SSRF-safely) | JSON file
descriptor -> a signed, expiring, single-use PUT URL on this server (direct-to-source),
or, where the blob store takes uploads itself (S3), a presigned PUT to the bucket that the
server confirms before the file counts as uploaded (files/direct.py).
Bytes are committed to the blob store first; only then is the file row pointed at them, so
a failed or cancelled upload changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, unquote_to_bytes

from fastapi import Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from dataloft.errors import BadRequest, ContentTooLarge, EmptyFile, Gone, NotAuthorized, not_found
from dataloft.files import direct, multipart, repository, service
from dataloft.files.deps import UploadDeps
from dataloft.files.schemas import DirectUpload
from dataloft.files.streams import blob_writer, pump
from dataloft.kit.ids import new_id, now_ms
from dataloft.kit.principal import Principal
from dataloft.models import UploadTicket
from dataloft.quotas import service as quotas
from dataloft.storage.blobs.base import BlobInfo

# RFC 2397: data:[<mediatype>][;base64],<data> where <mediatype> is type/subtype followed by
# ;attribute=value parameters, and ";base64" (if present) is the very last parameter.
_TOKEN = r"[A-Za-z0-9!#$&^_.+-]+"
_DATA_URL = re.compile(
    rf"^data:(?P<type>{_TOKEN}/{_TOKEN})?(?P<params>(?:;{_TOKEN}=[^;,]*)*)(?P<b64>;base64)?,",
    re.I)
_MEDIA_TYPE = re.compile(
    rf"{_TOKEN}/{_TOKEN}(?:[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|\"[^\"\\\x00-\x1f\x7f]*\"))*"
    r"(?:[ \t]*;)?")
_MAX_EXPIRES_DIGITS = 16


def _media_type(value: str | None) -> str | None:
    """`value` when it is a well-formed media type (safe to echo in a response header),
    else None (the file is then served as application/octet-stream)."""
    if not value:
        return None
    value = value.strip()
    return value if len(value) <= 255 and _MEDIA_TYPE.fullmatch(value) else None


def _ascii_digits(value: str | None, max_digits: int = 20) -> int | None:
    """A non-negative integer spelled with ASCII digits only (str.isdigit() also accepts
    '²' and other digits int() refuses), else None."""
    if not value or len(value) > max_digits or not value.isascii() or not value.isdigit():
        return None
    return int(value)


def _attachment_header(name: str) -> str:
    """Content-Disposition for a client to replay verbatim: ASCII only, no quotes or
    control characters; a non-ASCII name travels as RFC 5987 filename*."""
    safe = "".join(ch for ch in name if ch.isprintable() and ch not in '"\\')
    fallback = safe.encode("ascii", "replace").decode().replace("?", "_") or "file"
    if fallback == safe:
        return f'attachment; filename="{safe}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(safe)}"


def _command(raw: bytes) -> tuple[bool, object]:
    """(True, what `file` holds) when a JSON body is the command form: an object whose only
    key is `file`. (False, None) for any other JSON: the file's content (a JSON file). A body
    declared JSON that is not JSON is a client's mistake, refused as before."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise BadRequest(f"the request body is not valid JSON: {exc}") from exc
    if isinstance(body, dict) and list(body) == ["file"]:
        return True, body["file"]
    return False, None


@dataclass(frozen=True)
class Received:
    blob: BlobInfo
    content_type: str | None
    filename: str | None


async def capped_body(request: Request, max_bytes: int) -> AsyncIterator[bytes]:
    """The request body, refused with 413 as soon as it passes max_bytes, whatever
    Content-Length claims."""
    declared = _ascii_digits(request.headers.get("content-length"), 30)
    if declared is not None and declared > max_bytes:
        raise ContentTooLarge(f"request body exceeds the limit of {max_bytes} bytes")
    seen = 0
    try:
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > max_bytes:
                raise ContentTooLarge(f"request body exceeds the limit of {max_bytes} bytes")
            yield chunk
    except ClientDisconnect as exc:
        raise BadRequest("the client disconnected before the body was complete") from exc


def _filename_from_disposition(value: str | None) -> str | None:
    if not value:
        return None
    match = re.search(r"filename\*=UTF-8''([^;]+)", value, re.I) or re.search(
        r'filename="?([^";]+)"?', value, re.I)
    return unquote(match.group(1)).replace("\\", "/").rsplit("/", 1)[-1] if match else None


def _decode_data_url(url: str, max_bytes: int) -> tuple[bytes, str | None]:
    match = _DATA_URL.match(url[:1024])
    if not match:
        raise BadRequest("the data URL is malformed; expected data:<type>;base64,<data>")
    payload = url[match.end():]
    is_base64 = match.group("b64") is not None
    # Check the size the payload would decode to before decoding anything.
    approx = len(payload) * 3 // 4 if is_base64 else len(payload)
    if approx > max_bytes + 2:
        raise ContentTooLarge(f"data URL content exceeds the limit of {max_bytes} bytes")
    try:
        data = (base64.b64decode(payload, validate=True) if is_base64
                else unquote_to_bytes(payload))
    except (binascii.Error, ValueError) as exc:
        raise BadRequest("the data URL's base64 payload is invalid") from exc
    if len(data) > max_bytes:
        raise ContentTooLarge(f"data URL content exceeds the limit of {max_bytes} bytes")
    return data, match.group("type")


class Uploads:
    def __init__(self, ctx: UploadDeps):
        self.ctx = ctx

    @property
    def max_bytes(self) -> int:
        return int(self.ctx.settings.max_upload_bytes)

    async def handle(self, request: Request, principal: Principal, file_id: str) -> dict[str, Any]:
        principal.require("files:write")
        await run_in_threadpool(self._check_file, principal, file_id)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "application/json":
            raw = b"".join([c async for c in capped_body(request, self._json_limit)])
            if not raw:
                raise EmptyFile()
            is_command, value = _command(raw)
            if is_command:
                return await self._json(request, principal, file_id, value)
            # Any other JSON (an array, an object with other keys) is the file itself.
            received = await self._bytes(raw, request.headers.get("content-type"), request)
        elif ctype == "multipart/form-data":
            received = await self._multipart(request)
        else:
            received = await self._raw(request, request.headers.get("content-type"))
        await self._commit(principal, file_id, received)
        return {"id": file_id}

    @property
    def _json_limit(self) -> int:
        # A data URL of the largest file is base64 (4/3) plus a little JSON around it.
        return self.max_bytes * 4 // 3 + 64 * 1024

    def _check_file(self, principal: Principal, file_id: str) -> None:
        with self.ctx.db.read() as session:
            service.get_owned(session, principal, file_id)

    async def _raw(self, request: Request, content_type: str | None) -> Received:
        async with blob_writer(self.ctx.blobs, self.max_bytes) as writer:
            await pump(capped_body(request, self.max_bytes), writer.write)
            if writer.size == 0:
                raise EmptyFile()
            blob = await run_in_threadpool(writer.commit)
        name = _filename_from_disposition(request.headers.get("content-disposition"))
        return Received(blob, content_type, name)

    async def _bytes(self, data: bytes, content_type: str | None, request: Request | None
                     ) -> Received:
        """Bytes already in memory (a raw JSON body, a data URL), as an upload."""
        if not data:
            raise EmptyFile()
        if len(data) > self.max_bytes:
            raise ContentTooLarge(f"request body exceeds the limit of {self.max_bytes} bytes")
        async with blob_writer(self.ctx.blobs, self.max_bytes) as writer:
            await run_in_threadpool(writer.write, data)
            blob = await run_in_threadpool(writer.commit)
        name = (_filename_from_disposition(request.headers.get("content-disposition"))
                if request is not None else None)
        return Received(blob, content_type, name)

    async def _multipart(self, request: Request) -> Received:
        received, _fields = await self.receive_form(request)
        return received

    async def receive_form(self, request: Request) -> tuple[Received, dict[str, str]]:
        """A multipart body's `file` part, committed to the blob store (the caller points a
        file at it or deletes it), and its other, small text fields."""
        # Multipart framing adds a little; the file part itself is capped by the writer.
        body = capped_body(request, self.max_bytes + 64 * 1024)
        async with blob_writer(self.ctx.blobs, self.max_bytes) as writer:
            form = await multipart.parse(request.headers.get("content-type", ""), body, "file",
                                         writer.write)
            if form.file is None:
                raise BadRequest("the multipart body has no 'file' part")
            if writer.size == 0:
                raise EmptyFile()
            blob = await run_in_threadpool(writer.commit)
        received = Received(blob, _media_type(form.file.content_type), form.file.filename)
        return received, form.fields

    async def _json(self, request: Request, principal: Principal, file_id: str,
                    value: object) -> dict[str, Any]:
        """The command form: {"file": <http(s) URL | data URL | {type, size, name}>}."""
        if isinstance(value, dict):
            return await run_in_threadpool(self._direct_ticket, principal, file_id, value)
        if not isinstance(value, str) or not value:
            raise BadRequest('expected {"file": "<http(s) or data URL>"} or '
                             '{"file": {"type", "size", "name"}}')
        if value[:5].lower() == "data:":
            data, ctype = _decode_data_url(value, self.max_bytes)
            del value
            received = await self._bytes(data, ctype, None)
        elif re.match(r"^https?://", value, re.I):
            received = await self._fetch(value)
        else:
            raise BadRequest("the file URL must use http, https or data")
        await self._commit(principal, file_id, received)
        return {"id": file_id}

    async def _fetch(self, url: str) -> Received:
        from dataloft.files.url_fetch import fetch_url

        s = self.ctx.settings
        async with blob_writer(self.ctx.blobs, self.max_bytes) as writer:
            fetched = await fetch_url(url, writer.write, max_bytes=self.max_bytes,
                                      allow=s.url_fetch_allowlist, timeout=s.url_fetch_timeout,
                                      max_redirects=s.url_fetch_max_redirects)
            if writer.size == 0:
                raise EmptyFile("the URL answered with an empty body; the file would be empty")
            blob = await run_in_threadpool(writer.commit)
        return Received(blob, fetched.content_type, fetched.filename)

    async def _commit(self, principal: Principal, file_id: str, received: Received) -> None:
        received = Received(received.blob, _media_type(received.content_type),
                            received.filename)
        try:
            await run_in_threadpool(self._point_file_at, principal, file_id, received)
        except BaseException:
            await run_in_threadpool(self.ctx.blobs.delete, received.blob.key)
            raise

    def _point_file_at(self, principal: Principal, file_id: str, received: Received) -> None:
        with self.ctx.db.write() as session:
            file = service.get_owned(session, principal, file_id)
            service.set_content(session, file, received.blob, received.content_type,
                                received.filename)
        self.ctx.notify()

    # --- direct-to-source ----------------------------------------------------------------

    def _sign(self, file_id: str, ticket_id: str, expires: int, key: bytes | None = None
              ) -> str:
        msg = f"{file_id}.{ticket_id}.{expires}".encode()
        return hmac.new(key or self.ctx.signing_key, msg, hashlib.sha256).hexdigest()

    def _signed(self, file_id: str, ticket_id: str, expires: int, given: str) -> bool:
        # Any key still in use: a rotation keeps the URLs already out valid until expiry.
        return given.isascii() and any(
            hmac.compare_digest(self._sign(file_id, ticket_id, expires, key), given)
            for key in self.ctx.verify_keys)

    def _direct_ticket(self, principal: Principal, file_id: str,
                       raw: dict[str, Any]) -> dict[str, Any]:
        try:
            spec = DirectUpload.model_validate(raw)
        except ValidationError as exc:
            raise BadRequest(f"invalid file descriptor: {exc.errors()[0]['msg']}") from exc
        if not _media_type(spec.type):
            raise BadRequest("invalid file descriptor: type must be a media type "
                             "such as text/csv")
        if spec.size == 0:
            raise EmptyFile("the file descriptor announces 0 bytes; the file would be empty")
        if spec.size > self.max_bytes:
            raise ContentTooLarge(f"file size {spec.size} exceeds the limit of "
                                  f"{self.max_bytes} bytes")
        with self.ctx.db.read() as session:
            file = service.get_owned(session, principal, file_id)
            grows = spec.size - ((file.size or 0) if file.blob_key else 0)
            quotas.precheck(session, principal.org_id, storage_bytes=grows)
        disposition = _attachment_header(spec.name) if spec.name else None
        bucket = self.ctx.blobs.direct_uploads()
        if bucket is not None:
            return {"id": file_id, "uploadRequest": direct.issue(
                self.ctx, bucket, principal, file_id, spec, disposition)}
        now = now_ms()
        ttl_ms = int(self.ctx.settings.direct_upload_ttl * 1000)
        expires = now + ttl_ms
        ticket = UploadTicket(id=new_id("upl"), file_id=file_id, size=spec.size,
                              content_type=spec.type, name=spec.name, expires_at=expires,
                              created_at=now)
        with self.ctx.db.write() as session:
            service.get_owned(session, principal, file_id)
            direct.sweep(session, now, ttl_ms)  # expired tickets are dead weight
            repository.add_ticket(session, ticket)
        base = self.ctx.settings.own_url
        url = (f"{base}/api/v1/file/{file_id}/upload/{ticket.id}"
               f"?expires={expires}&signature={self._sign(file_id, ticket.id, expires)}")
        headers = {"Content-Type": spec.type, "Content-Length": str(spec.size)}
        if disposition:
            headers["Content-Disposition"] = disposition
        return {"id": file_id, "uploadRequest": {"method": "PUT", "url": url, "headers": headers}}

    async def direct_put(self, request: Request, file_id: str, ticket_id: str) -> dict[str, Any]:
        q = request.query_params
        expires = _ascii_digits(q.get("expires"), _MAX_EXPIRES_DIGITS)
        given = q.get("signature", "")
        # compare_digest raises TypeError on non-ASCII str: check that first.
        if expires is None or not self._signed(file_id, ticket_id, expires, given):
            raise NotAuthorized("the upload URL's signature is not valid")
        if expires < now_ms():
            raise Gone("the upload URL has expired")
        ticket = await run_in_threadpool(self._ticket, ticket_id, file_id)
        async with blob_writer(self.ctx.blobs, ticket.size) as writer:
            await pump(capped_body(request, ticket.size), writer.write)
            if writer.size != ticket.size:
                raise BadRequest(f"expected {ticket.size} bytes, received {writer.size}")
            blob = await run_in_threadpool(writer.commit)
        try:
            await run_in_threadpool(self._consume, ticket, blob)
        except BaseException:
            await run_in_threadpool(self.ctx.blobs.delete, blob.key)
            raise
        self.ctx.notify()
        return {"id": file_id}

    def _ticket(self, ticket_id: str, file_id: str) -> UploadTicket:
        with self.ctx.db.read() as session:
            ticket = repository.ticket_by_id(session, ticket_id)
            # A bucket ticket (blob_key set) is uploaded to the bucket, never here.
            if ticket is None or ticket.file_id != file_id or ticket.blob_key is not None:
                raise Gone("the upload URL was already used or is no longer valid")
            if ticket.expires_at < now_ms():
                raise Gone("the upload URL has expired")
            return ticket

    def _consume(self, ticket: UploadTicket, blob: BlobInfo) -> None:
        with self.ctx.db.write() as session:
            live = repository.ticket_by_id(session, ticket.id)
            if live is None:
                raise Gone("the upload URL was already used")
            file = repository.file_by_id(session, ticket.file_id)
            if file is None:
                raise not_found("file", ticket.file_id)
            repository.delete_ticket(session, live)
            service.set_content(session, file, blob, ticket.content_type, ticket.name)
