"""Typed answers of the dataloft API, as the client returns them. Field names follow the
wire (camelCase aliases); unknown fields are kept, so a newer server never breaks an older
client."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SyncState = Literal["queued", "in_progress", "completed", "failed"]


class Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class SyncError(Model):
    code: str
    message: str = ""


class Attachment(Model):
    """A file's attachment to one dataset and its latest sync, as the server derives it."""

    dataset_id: str = Field(alias="datasetId")
    type: str = "source"
    status: SyncState | None = None  # None: no sync was ever asked for
    last_error: SyncError | None = Field(default=None, alias="lastError")
    synced_at: int | None = Field(default=None, alias="syncedAt")
    synced_version: int | None = Field(default=None, alias="syncedVersion")
    record_count: int = Field(default=0, alias="recordCount")

    @property
    def label(self) -> str:
        """queued / in progress / completed / failed / not synced, for people."""
        if self.status is None:
            return "not synced"
        return "in progress" if self.status == "in_progress" else self.status

    @property
    def ended(self) -> bool:
        return self.status not in ("queued", "in_progress")

    @property
    def error_code(self) -> str | None:
        return self.last_error.code if self.last_error else None

    @property
    def error_message(self) -> str | None:
        return self.last_error.message if self.last_error else None


SyncStatus = Attachment  # the name the first client used


class Dataset(Model):
    id: str
    name: str | None = None
    description: str | None = None
    visibility: str | None = None
    meta: dict[str, Any] | None = None
    created_at: int | None = Field(default=None, alias="createdAt")


class File(Model):
    id: str
    name: str | None = None
    type: str | None = None
    size: int | None = None
    version: int = 0
    created_at: int | None = Field(default=None, alias="createdAt")
    attachment: Attachment | None = None  # in a dataset's file list
    attachments: list[Attachment] = Field(default_factory=list)  # in a file's fetch


class SyncResult(Model):
    """The answer of a sync request: `queued`, or with `wait` whether it ended and the
    attachment's state."""

    id: str
    status: SyncState = "queued"
    done: bool = False
    attachment: Attachment | None = None


class SearchHit(Model):
    id: str
    text: str
    score: float
    source: str | None = None
    meta: dict[str, Any] | None = None
    highlights: list[str] = Field(default_factory=list)


class SearchResult(Model):
    id: str
    records: list[SearchHit]


class Column(Model):
    name: str
    type: str


class QueryResult(Model):
    """`format="rows"`: columns and rows. `format="chart"` answers a Vega-Lite spec instead,
    returned by `query(..., format="chart")` as a plain dict."""

    columns: list[Column]
    rows: list[list[Any]]
    truncated: bool = False


class Event(Model):
    id: str
    type: str
    dataset_id: str | None = Field(default=None, alias="datasetId")
    file_id: str | None = Field(default=None, alias="fileId")
    data: dict[str, Any] = Field(default_factory=dict)
    created_at: int = Field(alias="createdAt")


class Reply(Model):
    """An answer in a conversation (Inconvo's wire shape)."""

    id: str
    conversation_id: str = Field(alias="conversationId")
    message: str
    type: str
    table: dict[str, Any] | None = None
    chart: dict[str, Any] | None = None
