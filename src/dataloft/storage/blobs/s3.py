"""S3-compatible blob store (cluster mode), on boto3.

Objects live at `{prefix}{key}` in one bucket; keys have the local adapter's shape
(`ab/cd/<32 hex>`, a fresh uuid4 each time), so the store never writes a name twice. As a
second guard every write is conditional (`If-None-Match: *` on PutObject and
CompleteMultipartUpload) where botocore and the endpoint support it: an endpoint that answers
501/NotImplemented is remembered and written to unconditionally from then on.

Writers stream: bytes are hashed and counted as they arrive (the cap raises ContentTooLarge
on the write that passes it), buffered up to `part_size`, and once the buffer fills the
writer switches to a multipart upload, one part per full buffer; a blob smaller than one
part is a single PutObject at commit. Nothing is visible until commit: a multipart upload is
invisible until completed, and abort(), a passed cap or an exception inside the `with`
block aborts it. An upload left behind by a process that died mid-write is invisible too
but costs storage: give the bucket a lifecycle rule `AbortIncompleteMultipartUpload`.

Direct-to-source: `new_key()` + `presigned_put()` give a client a URL to PUT the bytes to the
bucket itself (size and If-None-Match signed, so S3 refuses other sizes and a second PUT);
`stat()`/`describe()` let the server confirm the upload before the file counts.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from typing import Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from dataloft.storage.blobs.base import BlobInfo, BlobStat, Hashing, describe_by_reading

log = logging.getLogger(__name__)

MIB = 1 << 20
MIN_PART_SIZE = 5 * MIB  # S3: every part but the last is at least 5 MiB
MAX_PARTS = 10_000
MAX_PUT_SIZE = 5 * 1024 * MIB  # S3: one PutObject carries at most 5 GiB
_KEY = re.compile(r"[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{32}")
_MISSING = {"404", "NoSuchKey", "NotFound"}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _unsupported(exc: ClientError) -> bool:
    """The endpoint does not implement conditional writes (If-None-Match)."""
    return _code(exc) == "NotImplemented" or _status(exc) == 501


class S3Writer:
    def __init__(self, store: S3BlobStore, max_bytes: int):
        self._store = store
        self._hash = Hashing(max_bytes)
        self._buf = bytearray()
        self.key = store.new_key()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._done = False

    @property
    def size(self) -> int:
        return self._hash.size

    def write(self, chunk: bytes) -> None:
        if self._done:
            raise RuntimeError("this blob writer is already committed or aborted")
        try:
            self._hash.account(chunk)
            self._buf += chunk
            part = self._store.part_size
            while len(self._buf) >= part:
                self._upload_part(bytes(self._buf[:part]))
                del self._buf[:part]
        except BaseException:
            self.abort()
            raise

    def _upload_part(self, data: bytes) -> None:
        s = self._store
        if self._upload_id is None:
            self._upload_id = s.client.create_multipart_upload(
                Bucket=s.bucket, Key=s.object_name(self.key))["UploadId"]
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            raise ValueError(f"blob needs more than {MAX_PARTS} parts of {s.part_size} bytes")
        etag = s.client.upload_part(Bucket=s.bucket, Key=s.object_name(self.key),
                                    UploadId=self._upload_id, PartNumber=number,
                                    Body=data)["ETag"]
        self._parts.append({"ETag": etag, "PartNumber": number})

    def commit(self) -> BlobInfo:
        if self._done:
            raise RuntimeError("this blob writer is already committed or aborted")
        s = self._store
        try:
            if self._upload_id is None:
                s.conditional(s.client.put_object, Bucket=s.bucket,
                              Key=s.object_name(self.key), Body=bytes(self._buf))
            else:
                if self._buf:
                    self._upload_part(bytes(self._buf))
                s.conditional(s.client.complete_multipart_upload, Bucket=s.bucket,
                              Key=s.object_name(self.key), UploadId=self._upload_id,
                              MultipartUpload={"Parts": self._parts})
        except BaseException:
            self.abort()
            raise
        self._done = True
        self._buf = bytearray()
        return BlobInfo(key=self.key, size=self._hash.size, sha256=self._hash.sha256)

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._buf = bytearray()
        if self._upload_id is not None:
            self._store.abort_upload(self.key, self._upload_id)

    def __enter__(self) -> S3Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()


class S3BlobStore:
    def __init__(self, bucket: str, *, endpoint_url: str | None = None,
                 region: str | None = None, prefix: str = "blobs/", part_size: int = 8 * MIB,
                 addressing_style: Literal["path", "virtual"] | None = None, client: Any = None):
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum)")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        self.bucket = bucket
        self.prefix = prefix.lstrip("/")
        self.part_size = part_size
        if client is None:
            style: Literal["auto", "virtual", "path"] = (
                addressing_style or ("path" if endpoint_url else "auto"))
            client = boto3.session.Session().client(
                "s3", endpoint_url=endpoint_url or None, region_name=region or None,
                config=Config(signature_version="s3v4", s3={"addressing_style": style},
                              retries={"mode": "standard"}, max_pool_connections=32))
        self.client = client
        # Conditional writes: botocore must know the parameter (>= 1.35.x) and the endpoint
        # must not refuse it; either failing, the uuid keys alone keep writes from colliding.
        put = client.meta.service_model.operation_model("PutObject").input_shape.members
        self._if_none_match = "IfNoneMatch" in put

    # --- keys ------------------------------------------------------------------------------

    def new_key(self) -> str:
        h = uuid.uuid4().hex
        return f"{h[:2]}/{h[2:4]}/{h}"

    def object_name(self, key: str) -> str:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError(f"not a key of this store: {key!r}")
        return self.prefix + key

    # --- port ------------------------------------------------------------------------------

    def local_path(self, key: str) -> None:
        return None

    def direct_uploads(self) -> S3BlobStore:
        return self

    def purge_partials(self) -> int:
        return 0  # a bucket lifecycle rule aborts stale multipart uploads

    def writer(self, max_bytes: int) -> S3Writer:
        return S3Writer(self, max_bytes)

    def open(self, key: str, chunk_size: int = 1 << 16) -> Iterator[bytes]:
        # GET now, not on first iteration: a response under way keeps streaming the object
        # it started with even if the key is deleted meanwhile.
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.object_name(key))["Body"]
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise FileNotFoundError(key) from exc
            raise

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(chunk_size)
            finally:
                body.close()

        return chunks()

    def delete(self, key: str) -> None:
        # DeleteObject answers 204 for a missing key as well: idempotent by nature.
        self.client.delete_object(Bucket=self.bucket, Key=self.object_name(key))

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    def keys(self) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix)
        for page in pages:
            for obj in page.get("Contents", ()):
                key = obj["Key"][len(self.prefix):]
                if _KEY.fullmatch(key):
                    yield key

    # --- direct-to-source ------------------------------------------------------------------

    def presigned_put(self, key: str, content_type: str, size: int, expires_s: int,
                      content_disposition: str | None = None) -> tuple[str, dict[str, str]]:
        """A URL and the headers a client must send with its PUT of exactly `size` bytes.

        Content-Length (and If-None-Match, Content-Disposition when used) are signed
        headers: S3 refuses a PUT whose headers differ, so the body must be exactly `size`
        bytes and a second PUT to the same URL cannot replace the first. Content-Type is
        asked for but not signed: @chatbotkit/sdk adds its own `content-type:
        application/octet-stream` beside ours, so what it sends is both joined by a comma,
        and a signed type would make S3 refuse the official SDK's upload. The server checks
        the stored type when it confirms the upload with stat()/describe()."""
        if not 0 <= size <= MAX_PUT_SIZE:
            raise ValueError(f"a presigned PUT carries 0 to {MAX_PUT_SIZE} bytes, not {size}")
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self.object_name(key),
                                  "ContentLength": size}
        headers = {"Content-Type": content_type, "Content-Length": str(size)}
        if content_disposition:
            params["ContentDisposition"] = content_disposition
            headers["Content-Disposition"] = content_disposition
        if self._if_none_match:
            params["IfNoneMatch"] = "*"
            headers["If-None-Match"] = "*"
        url = self.client.generate_presigned_url("put_object", Params=params,
                                                 ExpiresIn=int(expires_s), HttpMethod="PUT")
        return url, headers

    def stat(self, key: str) -> BlobStat | None:
        """The object's size and content type, or None while nothing is stored under the key."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.object_name(key))
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            raise
        return BlobStat(size=int(head["ContentLength"]), content_type=head.get("ContentType"))

    def describe(self, key: str) -> BlobInfo:
        """Size and sha256 of a stored object, read through once (to confirm a direct
        upload, whose bytes never passed through the server). FileNotFoundError if absent."""
        return describe_by_reading(self, key)

    # --- internals -------------------------------------------------------------------------

    def conditional(self, call: Any, **params: Any) -> Any:
        """`call(**params)` with If-None-Match: * where supported; refused by the endpoint as
        not implemented, remember that and write unconditionally (keys are unique anyway)."""
        if self._if_none_match:
            try:
                return call(IfNoneMatch="*", **params)
            except ClientError as exc:
                if not _unsupported(exc):
                    raise
                log.warning("the S3 endpoint refuses If-None-Match; writing unconditionally")
                self._if_none_match = False
        return call(**params)

    def abort_upload(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.object_name(key),
                                               UploadId=upload_id)
        except ClientError as exc:
            if _code(exc) != "NoSuchUpload":
                log.warning("could not abort multipart upload %s of %s: %s", upload_id, key, exc)
        except Exception as exc:  # network down: the bucket's lifecycle rule cleans up
            log.warning("could not abort multipart upload %s of %s: %s", upload_id, key, exc)
