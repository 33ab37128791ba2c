"""The blob store port contract (storage/blobs/base.py), run against every blob adapter.

local: a directory (embedded mode). s3: S3BlobStore against moto's S3 server on loopback
(cluster mode), with the smallest part size S3 allows (5 MiB) so that a 20 MiB write crosses
several multipart parts. Each test gets a fresh, isolated store; `leftovers()` is what an
adapter may hold of unfinished writes (local: tmp/*.part; s3: incomplete multipart uploads),
and after any abort, failed cap or exception it must be empty.

To add an adapter, add a factory to BACKENDS returning a Backend.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)

from dataloft.errors import ContentTooLarge
from dataloft.storage.blobs.base import BlobStat, BlobStore
from dataloft.storage.blobs.factory import build_blob_store
from dataloft.storage.blobs.local import LocalBlobStore
from tests.support.s3 import MotoS3, moto_s3

MIB = 1 << 20
PART = 5 * MIB


# --- backends ------------------------------------------------------------------------------------


@dataclass
class Backend:
    name: str
    make: Callable[[], BlobStore]  # a fresh, empty, isolated store
    leftovers: Callable[[Any], list[Any]]  # unfinished writes the store still holds
    moto: MotoS3 | None = None


def _local(tmp: Path) -> Iterator[Backend]:
    def make() -> BlobStore:
        return LocalBlobStore(Path(tempfile.mkdtemp(dir=tmp)))

    yield Backend("local", make, lambda s: sorted((s.root / "tmp").glob("*.part")))


def _s3(tmp: Path) -> Iterator[Backend]:
    pytest.importorskip("boto3")
    from dataloft.storage.blobs.s3 import S3BlobStore

    with moto_s3() as s3:
        # Built through the factory, as the app builds it; further stores share its client
        # (a boto3 client takes ~0.3 s to build) and each gets a fresh bucket and prefix.
        first = build_blob_store(s3.url_for(s3.bucket, "blobs/") + f"&part_size={PART}", tmp)
        assert isinstance(first, S3BlobStore)
        client = first.client

        def make() -> BlobStore:
            bucket = f"t-{uuid.uuid4().hex[:20]}"
            client.create_bucket(Bucket=bucket)
            return S3BlobStore(bucket, prefix=f"p{uuid.uuid4().hex[:8]}/", part_size=PART,
                               client=client)

        def leftovers(store: Any) -> list[Any]:
            got = client.list_multipart_uploads(Bucket=store.bucket, Prefix=store.prefix)
            return got.get("Uploads", [])

        yield Backend("s3", make, leftovers, moto=s3)


BACKENDS: dict[str, Callable[[Path], Iterator[Backend]]] = {"local": _local, "s3": _s3}


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    tmp = tmp_path_factory.mktemp(request.param)
    yield from BACKENDS[request.param](tmp)
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def store(backend: Backend) -> BlobStore:
    return backend.make()


# --- helpers -------------------------------------------------------------------------------------


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def pieces(data: bytes, step: int) -> Iterator[bytes]:
    for i in range(0, len(data), step):
        yield data[i:i + step]


def put(store: BlobStore, data: bytes, step: int = 1 << 16, max_bytes: int | None = None):
    with store.writer(len(data) if max_bytes is None else max_bytes) as w:
        for chunk in pieces(data, step):
            w.write(chunk)
        return w.commit()


def read(store: BlobStore, key: str) -> bytes:
    return b"".join(store.open(key))


# --- contract ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 100_000, PART, 20 * MIB + 12_345])
def test_write_commit_open_roundtrip(store: BlobStore, backend: Backend, size: int) -> None:
    data = payload(size, seed=size)
    # An odd chunk size, so chunks straddle part boundaries.
    info = put(store, data, step=999_983)
    assert info.size == size
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert list(store.keys()) == [info.key]
    assert store.exists(info.key)
    assert read(store, info.key) == data
    assert backend.leftovers(store) == []


def test_nothing_is_visible_before_commit(store: BlobStore, backend: Backend) -> None:
    data = payload(PART + MIB, seed=1)  # past one part: the multipart upload has begun
    with store.writer(len(data)) as w:
        for chunk in pieces(data, MIB):
            w.write(chunk)
        assert w.size == len(data)
        assert list(store.keys()) == []
        info = w.commit()
    assert list(store.keys()) == [info.key]
    assert read(store, info.key) == data


def test_writing_exactly_the_cap_is_allowed(store: BlobStore) -> None:
    data = payload(1000, seed=2)
    info = put(store, data, step=7, max_bytes=1000)
    assert read(store, info.key) == data


@pytest.mark.parametrize(("cap", "step", "total"), [
    (10, 4, 40),                     # a small blob (a single PUT on S3)
    (PART + 2 * MIB + 5, MIB, 12 * MIB),  # after a multipart upload has begun
])
def test_passing_the_cap_raises_at_once_and_leaves_nothing(
        store: BlobStore, backend: Backend, cap: int, step: int, total: int) -> None:
    before = put(store, b"already here")
    data = payload(total, seed=3)
    written = 0
    with pytest.raises(ContentTooLarge), store.writer(cap) as w:
        for chunk in pieces(data, step):
            written += len(chunk)
            w.write(chunk)
            # Only reached while under the cap: the raise comes on the write that passes it.
            assert written <= cap
    assert written > cap and written - step <= cap
    assert list(store.keys()) == [before.key]
    assert backend.leftovers(store) == []
    with pytest.raises(Exception):  # noqa: B017 - a finished writer takes no more
        w.write(b"x")
    with pytest.raises(Exception):  # noqa: B017
        w.commit()
    assert list(store.keys()) == [before.key]


@pytest.mark.parametrize("size", [0, 100, PART + 3 * MIB])
def test_an_exception_inside_with_leaves_nothing(
        store: BlobStore, backend: Backend, size: int) -> None:
    with pytest.raises(RuntimeError, match="client went away"), store.writer(1 << 30) as w:
        for chunk in pieces(payload(size), MIB):
            w.write(chunk)
        raise RuntimeError("client went away")
    assert list(store.keys()) == []
    assert backend.leftovers(store) == []


@pytest.mark.parametrize("size", [100, PART + MIB])
def test_abort_leaves_nothing_and_commit_after_abort_fails(
        store: BlobStore, backend: Backend, size: int) -> None:
    w = store.writer(1 << 30)
    for chunk in pieces(payload(size), MIB):
        w.write(chunk)
    w.abort()
    w.abort()  # idempotent
    with pytest.raises(Exception):  # noqa: B017
        w.commit()
    assert list(store.keys()) == []
    assert backend.leftovers(store) == []


def test_keys_are_never_reused(store: BlobStore) -> None:
    seen: set[str] = set()
    for i in range(30):
        info = put(store, b"same bytes")
        assert info.key not in seen
        seen.add(info.key)
        if i % 2:
            store.delete(info.key)  # a freed key is not handed out again either
    assert set(store.keys()) <= seen
    assert len(list(store.keys())) == 15


def test_delete_is_idempotent(store: BlobStore) -> None:
    info = put(store, b"to be deleted")
    keep = put(store, b"to be kept")
    store.delete(info.key)
    store.delete(info.key)
    store.delete(store.new_key())  # type: ignore[attr-defined]  # never written
    assert not store.exists(info.key)
    assert list(store.keys()) == [keep.key]
    with pytest.raises(FileNotFoundError):
        store.open(info.key)


def test_open_fails_at_once_for_a_missing_key(store: BlobStore) -> None:
    key = put(store, b"x").key
    store.delete(key)
    with pytest.raises(FileNotFoundError):
        store.open(key)  # raised by open itself, before any iteration


def test_an_open_blob_reads_fully_after_delete(store: BlobStore) -> None:
    data = payload(3 * MIB + 17, seed=4)
    info = put(store, data)
    stream = store.open(info.key, chunk_size=1 << 16)
    first = next(stream)
    store.delete(info.key)
    assert not store.exists(info.key)
    assert first + b"".join(stream) == data


def test_open_before_delete_without_reading(store: BlobStore) -> None:
    data = payload(70_000, seed=5)
    info = put(store, data)
    stream = store.open(info.key)
    store.delete(info.key)
    assert b"".join(stream) == data


def test_keys_lists_exactly_the_committed_blobs(store: BlobStore) -> None:
    committed = {put(store, payload(50, seed=i)).key for i in range(5)}
    with store.writer(100) as w:
        w.write(b"aborted")
    with pytest.raises(ContentTooLarge), store.writer(3) as w:
        w.write(b"too long")
    gone = put(store, b"deleted")
    store.delete(gone.key)
    assert sorted(store.keys()) == sorted(committed)


@pytest.mark.parametrize("key", ["", "../../etc/passwd", "ab/cd", "/ab/cd/ef", "ab/../cd"])
def test_keys_not_of_the_store_are_refused(store: BlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="not a key"):
        store.open(key)
    with pytest.raises(ValueError, match="not a key"):
        store.delete(key)


def test_stat_and_describe_confirm_what_was_stored(store: BlobStore) -> None:
    """How the server confirms bytes it did not write itself (a direct upload): stat() for
    presence and size, describe() for size and sha256 read back from the store."""
    data = payload(PART + 123, seed=9)
    info = put(store, data, step=MIB)
    stat = store.stat(info.key)
    assert stat is not None and stat.size == len(data)
    assert store.describe(info.key) == info
    empty = put(store, b"")
    assert store.stat(empty.key).size == 0  # type: ignore[union-attr]
    assert store.describe(empty.key).sha256 == hashlib.sha256(b"").hexdigest()
    missing = store.new_key()  # type: ignore[attr-defined]
    assert store.stat(missing) is None
    with pytest.raises(FileNotFoundError):
        store.describe(missing)
    store.delete(info.key)
    assert store.stat(info.key) is None


def test_only_a_store_clients_can_upload_to_offers_presigned_puts(
        store: BlobStore, backend: Backend) -> None:
    # files/direct.py takes the bucket flow exactly when the store has a direct-upload side;
    # the local directory's direct uploads go through a signed URL on our own server instead.
    assert (store.direct_uploads() is not None) == (backend.name == "s3")
    # Extraction and SQL read a local blob in place, and copy a remote one.
    key = store.new_key()
    assert (store.local_path(key) is None) == (backend.name == "s3")


# --- state machine -------------------------------------------------------------------------------


class BlobMachine(RuleBasedStateMachine):
    """Random writes (with random caps and chunkings), deletes and reads against a model."""

    backend: Backend
    blob_keys = Bundle("blob_keys")

    def __init__(self) -> None:
        super().__init__()
        self.store = self.backend.make()
        self.model: dict[str, bytes] = {}
        self.ever: set[str] = set()
        self.deleted: list[str] = []

    @rule(target=blob_keys, data=st.binary(max_size=3000), cap=st.integers(0, 3000),
          step=st.integers(1, 1024))
    def write(self, data: bytes, cap: int, step: int) -> str:
        try:
            with self.store.writer(cap) as w:
                for chunk in pieces(data, step):
                    w.write(chunk)
                info = w.commit()
        except ContentTooLarge:
            assert len(data) > cap
            return self.store.new_key()  # type: ignore[attr-defined]  # a key never written
        assert len(data) <= cap
        assert info.key not in self.ever
        assert (info.size, info.sha256) == (len(data), hashlib.sha256(data).hexdigest())
        self.ever.add(info.key)
        self.model[info.key] = data
        return info.key

    @rule(target=blob_keys, data=st.binary(max_size=500))
    def abandon(self, data: bytes) -> str:
        with self.store.writer(len(data)) as w:
            w.write(data)
        return self.store.new_key()  # type: ignore[attr-defined]

    @rule(key=consumes(blob_keys))
    def delete(self, key: str) -> None:
        self.store.delete(key)
        if self.model.pop(key, None) is not None:
            self.deleted.append(key)

    @rule(key=blob_keys)
    def reopen(self, key: str) -> None:
        if key in self.model:
            assert read(self.store, key) == self.model[key]
        else:
            with pytest.raises(FileNotFoundError):
                self.store.open(key)

    @rule(key=blob_keys)
    def delete_while_reading(self, key: str) -> None:
        if key not in self.model:
            return
        stream = self.store.open(key, chunk_size=256)
        self.store.delete(key)
        self.deleted.append(key)
        assert b"".join(stream) == self.model.pop(key)

    @invariant()
    def keys_match_the_model(self) -> None:
        listed = list(self.store.keys())
        assert len(listed) == len(set(listed))
        assert set(listed) == set(self.model)

    @invariant()
    def contents_match_the_model(self) -> None:
        for key, data in self.model.items():
            assert read(self.store, key) == data

    @invariant()
    def nothing_unfinished(self) -> None:
        assert self.backend.leftovers(self.store) == []


def test_state_machine(backend: Backend) -> None:
    machine = type("Machine", (BlobMachine,), {"backend": backend})
    # Every step checks every blob's bytes, over HTTP on S3: fewer runs there.
    run_state_machine_as_test(machine, settings=settings(
        max_examples=40 if backend.name == "local" else 10, stateful_step_count=15,
        deadline=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow]))


# --- S3 only: direct-to-source uploads -----------------------------------------------------------


@pytest.fixture
def s3_store(backend: Backend, store: Any) -> Any:
    if backend.name != "s3":
        pytest.skip("presigned PUTs are S3's; the local adapter's signed URLs are tested in "
                    "tests/api/test_uploads.py")
    return store


def test_presigned_put_roundtrip(s3_store: Any) -> None:
    data = b"id,name\n1,alpha\n2,beta\n"
    key = s3_store.new_key()
    assert s3_store.stat(key) is None
    url, headers = s3_store.presigned_put(key, "text/csv", len(data), expires_s=300,
                                          content_disposition='attachment; filename="a.csv"')
    # moto does not verify presigned signatures (any signature passes), so the signature is
    # not tested here; what we can check is what the URL signs: S3 refuses a PUT whose
    # signed headers differ, which is what pins the size and forbids overwriting.
    q = parse_qs(urlsplit(url).query)
    assert q["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert q["X-Amz-Expires"] == ["300"]
    signed = set(q["X-Amz-SignedHeaders"][0].split(";"))
    assert {"host", "content-length", "content-disposition"} <= signed
    # Content-Type is sent but not signed (what @chatbotkit/sdk sends is two types joined).
    assert "content-type" not in signed and headers["Content-Type"] == "text/csv"
    assert {h.lower() for h in headers} - {"content-type"} <= signed
    assert headers["Content-Length"] == str(len(data))
    assert key not in set(s3_store.keys())

    r = httpx.put(url, content=data, headers=headers)
    assert r.status_code == 200, r.text
    assert s3_store.stat(key) == BlobStat(size=len(data), content_type="text/csv")
    assert read(s3_store, key) == data
    info = s3_store.describe(key)
    assert (info.key, info.size, info.sha256) == (key, len(data),
                                                  hashlib.sha256(data).hexdigest())
    assert list(s3_store.keys()) == [key]

    if "If-None-Match" in headers:  # the URL cannot replace what was confirmed
        again = httpx.put(url, content=b"X" * len(data), headers=headers)
        assert again.status_code == 412
        assert read(s3_store, key) == data


def test_stat_and_describe_of_missing_keys(s3_store: Any) -> None:
    key = s3_store.new_key()
    assert s3_store.stat(key) is None
    with pytest.raises(FileNotFoundError):
        s3_store.describe(key)
    info = put(s3_store, b"12345")
    assert s3_store.stat(info.key).size == 5


def test_large_writes_use_multipart_and_small_ones_a_single_put(s3_store: Any) -> None:
    big = put(s3_store, payload(3 * PART + 1, seed=6), step=MIB)
    small = put(s3_store, b"small")
    client = s3_store.client
    etag = client.head_object(Bucket=s3_store.bucket, Key=s3_store.object_name(big.key))["ETag"]
    assert etag.strip('"').endswith("-4")  # 3 full parts + 1 byte
    etag = client.head_object(Bucket=s3_store.bucket,
                              Key=s3_store.object_name(small.key))["ETag"]
    assert "-" not in etag


def test_writes_never_overwrite_an_existing_object(s3_store: Any, monkeypatch) -> None:
    if not s3_store._if_none_match:
        pytest.skip("this botocore has no If-None-Match")
    existing = put(s3_store, b"original")
    # Force a colliding key: the conditional write must refuse rather than replace.
    monkeypatch.setattr(s3_store, "new_key", lambda: existing.key)
    for data in (b"small replacement", payload(PART + 10, seed=7)):
        with pytest.raises(Exception, match="PreconditionFailed|pre-condition"):
            put(s3_store, data, step=MIB)
        assert read(s3_store, existing.key) == b"original"
    assert list(s3_store.keys()) == [existing.key]
    assert s3_store.client.list_multipart_uploads(
        Bucket=s3_store.bucket, Prefix=s3_store.prefix).get("Uploads", []) == []


def test_an_endpoint_without_conditional_writes_is_written_to_plainly(
        s3_store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import ClientError

    if not s3_store._if_none_match:
        pytest.skip("this botocore has no If-None-Match")
    client, calls = s3_store.client, []
    real_put, real_complete = client.put_object, client.complete_multipart_upload

    def refusing(real: Callable[..., Any]) -> Callable[..., Any]:
        def call(**params: Any) -> Any:
            calls.append(sorted(params))
            if "IfNoneMatch" in params:  # what an S3-compatible without the feature answers
                raise ClientError({"Error": {"Code": "NotImplemented", "Message": "no"},
                                   "ResponseMetadata": {"HTTPStatusCode": 501}}, "PutObject")
            return real(**params)
        return call

    monkeypatch.setattr(client, "put_object", refusing(real_put))
    monkeypatch.setattr(client, "complete_multipart_upload", refusing(real_complete))
    small = put(s3_store, b"small")
    big = put(s3_store, payload(PART + 1, seed=8), step=MIB)
    assert sorted(s3_store.keys()) == sorted([small.key, big.key])
    assert read(s3_store, big.key) == payload(PART + 1, seed=8)
    # Refused once, then remembered: later writes go unconditionally at the first try.
    assert ["IfNoneMatch" in c for c in calls] == [True, False, False]
    assert "If-None-Match" not in s3_store.presigned_put(s3_store.new_key(), "text/csv", 1, 60)[1]


# --- factory -------------------------------------------------------------------------------------


def test_factory(tmp_path: Path) -> None:
    assert isinstance(build_blob_store("", tmp_path / "d"), LocalBlobStore)
    store = build_blob_store(f"file://{tmp_path}/x", tmp_path / "d")
    assert isinstance(store, LocalBlobStore) and store.root == tmp_path / "x"
    pytest.importorskip("boto3")
    from dataloft.storage.blobs.s3 import S3BlobStore

    s3 = build_blob_store("s3://bkt?endpoint=http://127.0.0.1:9000&region=eu-west-1"
                          "&prefix=p/", tmp_path)
    assert isinstance(s3, S3BlobStore)
    assert (s3.bucket, s3.prefix, s3.part_size) == ("bkt", "p/", 8 * MIB)
    assert s3.client.meta.endpoint_url == "http://127.0.0.1:9000"
    assert s3.client.meta.region_name == "eu-west-1"
    assert build_blob_store("s3://bkt/some/where", tmp_path).prefix == "some/where/"
    assert build_blob_store("s3://bkt", tmp_path).prefix == "blobs/"


@pytest.mark.parametrize("url", [
    "http://example.com/x", "gs://bkt", "file://host/x", "file:relative", "/abs/path",
    "s3://", "s3://key:secret@bkt", "s3://bkt?endpoint=ftp://x", "s3://bkt?colour=red",
    "s3://bkt?part_size=1024", "s3://bkt?part_size=big", "s3://bkt/p?prefix=q/",
    "s3://bkt?region=a&region=b", "s3://bkt?addressing=sideways",
])
def test_factory_refuses_what_it_does_not_know(tmp_path: Path, url: str) -> None:
    if url.startswith("s3://"):
        pytest.importorskip("boto3")
    with pytest.raises(ValueError):
        build_blob_store(url, tmp_path)


def test_moto_helper_buckets_are_isolated(backend: Backend) -> None:
    if backend.moto is None:
        pytest.skip("S3 only")
    s3 = backend.moto
    a, b = (build_blob_store(s3.new_bucket_url(prefix), Path("/nonexistent"))
            for prefix in (None, "elsewhere/"))
    info = put(a, b"only in a")
    assert list(a.keys()) == [info.key] and list(b.keys()) == []
    assert [o["Key"] for o in s3.client().list_objects_v2(Bucket=a.bucket)["Contents"]] == [
        "blobs/" + info.key]
