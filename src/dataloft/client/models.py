"""Typed answers of the dataloft API, as the client returns them. Field names follow the
wire (camelCase aliases); unknown fields are kept, so a newer server never breaks an older
client."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SyncState = Literal["in_progress", "completed", "failed", "cancelled"]


class Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class SyncStatus(Model):
    """A file's sync in one dataset, derived by the server from its jobs."""

    state: SyncState
    job_state: str | None = Field(default=None, alias="jobState")
    error_code: str | None = Field(default=None, alias="errorCode")
    error_message: str | None = Field(default=None, alias="errorMessage")
    synced_version: int | None = Field(default=None, alias="syncedVersion")
    file_version: int = Field(default=0, alias="fileVersion")

    @property
    def label(self) -> str:
        """queued / in progress / completed / failed / not synced, for people."""
        if self.state == "in_progress":
            return "queued" if self.job_state == "queued" else "in progress"
        if self.state == "cancelled":
            return "not synced"
        return self.state

    @property
    def ended(self) -> bool:
        return self.state != "in_progress"


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
    sync: SyncStatus | None = None  # present in a dataset's file list


class SyncResult(Model):
    """The answer of a sync asked for with `wait`: whether it ended, and its status."""

    id: str
    done: bool = False
    sync: SyncStatus | None = None


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
