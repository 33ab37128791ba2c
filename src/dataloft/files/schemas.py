"""Wire shapes of the file resource, as @chatbotkit/sdk sends and expects them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dataloft.kit.wire import JsonObject, Out, Page, absent

Visibility = Literal["private", "protected", "public"]


class FileCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str | None = Field(default=None, max_length=1024)
    description: str | None = Field(default=None, max_length=100_000)
    meta: dict[str, Any] | None = None
    visibility: Visibility | None = None
    alias: str | None = Field(default=None, max_length=200)
    blueprintId: str | None = None


def visibility_not_null(value: str | None) -> str:
    """On update, omitted means unchanged; an explicit null would reach a NOT NULL column.
    (On create, null is the default.)"""
    if value is None:
        raise ValueError("visibility cannot be null; omit it to leave it unchanged")
    return value


class FileUpdate(FileCreate):
    _visibility_not_null = field_validator("visibility")(visibility_not_null)


class DirectUpload(BaseModel):
    type: str = Field(min_length=1, max_length=255)
    size: int = Field(ge=0)
    name: str | None = Field(default=None, max_length=1024)


# --- responses ---------------------------------------------------------------------------
# Documentation of service.render() and the upload answers, key for key (kit/wire.py).


class FileOut(Out):
    id: str
    name: str | None
    description: str | None
    meta: JsonObject
    visibility: Visibility
    alias: str | None
    type: str | None = Field(description="The content's media type, once uploaded.")
    size: int | None
    sha256: str | None
    version: int = Field(description="Bumped by every upload; a sync records the version "
                                     "it read.")
    createdAt: int = Field(description="Milliseconds since the epoch, as every timestamp.")
    updatedAt: int


class FilePage(Page[FileOut]):
    pass


class SyncError(Out):
    code: str = Field(description="The typed error of the failed sync, e.g. "
                                  "`unsupported_format`, `processing_timeout`, `cancelled`.")
    message: str


class AttachmentOut(Out):
    """A file's attachment to one dataset and the state of its latest sync (sync/status.py)."""
    datasetId: str
    type: Literal["source", "reference"]
    status: Literal["queued", "in_progress", "completed", "failed"] | None = Field(
        description="null: no sync was ever asked for.")
    lastError: SyncError | None
    syncedAt: int | None
    syncedVersion: int | None = Field(description="The file version the last completed sync "
                                                  "read.")
    recordCount: int = Field(ge=0)


class FileFetched(FileOut):
    attachments: list[AttachmentOut] = Field(
        description="Its attachments to the datasets the caller may see.")


class SyncQueued(Out):
    id: str
    status: Literal["queued"]
    datasetIds: list[str] = absent("For a file's sync: the datasets it was queued into.")


class UploadRequest(Out):
    """Where to PUT the bytes of a direct upload, with exactly these headers."""
    method: Literal["PUT"]
    url: str
    headers: dict[str, str]


class UploadAnswer(Out):
    id: str
    uploadRequest: UploadRequest = absent("Present when the JSON body asked for a direct "
                                          "upload.")
