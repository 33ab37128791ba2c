"""Local-directory blob store: temp file, fsync, atomic rename, fsync of the directory."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from dataloft.storage.blobs.base import BlobInfo, BlobStat, Hashing, describe_by_reading


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalWriter:
    def __init__(self, store: LocalBlobStore, max_bytes: int):
        self._store = store
        self._hash = Hashing(max_bytes)
        self._tmp = store.root / "tmp" / f"{uuid.uuid4().hex}.part"
        self._fh = open(self._tmp, "xb")  # noqa: SIM115 - closed in commit/abort
        self._done = False

    @property
    def size(self) -> int:
        return self._hash.size

    def write(self, chunk: bytes) -> None:
        try:
            self._hash.account(chunk)
        except Exception:
            self.abort()
            raise
        self._fh.write(chunk)

    def commit(self) -> BlobInfo:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        key = self._store.new_key()
        final = self._store.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._tmp, final)
        _fsync_dir(final.parent)
        self._done = True
        return BlobInfo(key=key, size=self._hash.size, sha256=self._hash.sha256)

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._fh.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> LocalWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()


class LocalBlobStore:
    def __init__(self, root: Path):
        self.root = root
        (root / "tmp").mkdir(parents=True, exist_ok=True)
        (root / "objects").mkdir(parents=True, exist_ok=True)

    def new_key(self) -> str:
        h = uuid.uuid4().hex
        return f"{h[:2]}/{h[2:4]}/{h}"

    def path(self, key: str) -> Path:
        parts = key.split("/")
        if len(parts) != 3 or not all(p.isalnum() for p in parts):
            raise ValueError(f"not a key of this store: {key!r}")
        return self.root / "objects" / key

    def local_path(self, key: str) -> Path:
        return self.path(key)

    def direct_uploads(self) -> None:
        return None

    def purge_partials(self) -> int:
        """Embedded start-up: every tmp/*.part belongs to a writer of a process that died."""
        parts = list((self.root / "tmp").glob("*.part"))
        for part in parts:
            part.unlink(missing_ok=True)
        return len(parts)

    def writer(self, max_bytes: int) -> LocalWriter:
        return LocalWriter(self, max_bytes)

    def open(self, key: str, chunk_size: int = 1 << 16) -> Iterator[bytes]:
        # Open now, not on first iteration: once open, the bytes stay readable even if a
        # newer version's commit deletes this blob while a download is streaming.
        fh = open(self.path(key), "rb")  # noqa: SIM115 - closed by the generator

        def chunks() -> Iterator[bytes]:
            with fh:
                while chunk := fh.read(chunk_size):
                    yield chunk

        return chunks()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def stat(self, key: str) -> BlobStat | None:
        path = self.path(key)
        return BlobStat(size=path.stat().st_size) if path.is_file() else None

    def describe(self, key: str) -> BlobInfo:
        return describe_by_reading(self, key)

    def keys(self) -> Iterator[str]:
        objects = self.root / "objects"
        for p in objects.glob("*/*/*"):
            yield p.relative_to(objects).as_posix()
