"""What the upload paths need from the running service, typed without importing it (the
service's Context sits above files in the layers and satisfies this structurally)."""

from __future__ import annotations

from typing import Protocol

from dataloft.config import Settings
from dataloft.kit.db import Database
from dataloft.storage.blobs.base import BlobStore


class UploadDeps(Protocol):
    @property
    def settings(self) -> Settings: ...
    @property
    def db(self) -> Database: ...
    @property
    def blobs(self) -> BlobStore: ...
    @property
    def signing_key(self) -> bytes: ...
    @property
    def verify_keys(self) -> tuple[bytes, ...]: ...

    def notify(self) -> None:
        """Wake the workers: a committed upload may have queued work."""
