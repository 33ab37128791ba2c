"""Wire shapes of Inconvo's datasets API (service.store/names/remove), key for key
(kit/wire.py)."""

from __future__ import annotations

from pydantic import Field

from dataloft.kit.wire import Out


class StoredFile(Out):
    name: str
    path: str = Field(description="<org>/<agent>/<scope>/<filename>.")
    size: int


class Stored(Out):
    file: StoredFile


class Names(Out):
    files: list[str] = Field(description="The scope's file names, sorted.")


class Removed(Out):
    file: str
    success: bool
