"""Wire shapes of a file's sync status: in a dataset's file list, and in the answer of a
sync asked for with `?wait=SECONDS`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dataloft.files.schemas import FileOut
from dataloft.kit.wire import Out, Page, absent


class SyncStatusOut(Out):
    """Derived from the file's latest sync job and its attachment (sync/status.py)."""
    state: Literal["in_progress", "completed", "failed", "cancelled"] = Field(
        description="`cancelled`: never asked to sync, or cancelled before it ran.")
    jobState: str | None = Field(description="The latest sync job's state: `queued`, "
                                             "`running`, `done`, `failed`.")
    errorCode: str | None = Field(description="The typed reason of a failure.")
    errorMessage: str | None
    syncedVersion: int | None = Field(description="The file version the records are from.")
    fileVersion: int


class DatasetSyncOut(SyncStatusOut):
    datasetId: str


class SyncAnswer(Out):
    id: str
    done: bool = absent("With `?wait`: whether the sync ended before the answer.")
    sync: SyncStatusOut | None = absent("With `?wait`: the sync's status.")


class FileSyncAnswer(Out):
    id: str
    done: bool = absent("With `?wait`: whether every sync ended before the answer.")
    syncs: list[DatasetSyncOut] = absent("With `?wait`: each dataset's sync status.")


class DatasetFileOut(FileOut):
    sync: SyncStatusOut | None = Field(description="The file's sync in this dataset.")


class DatasetFilePage(Page[DatasetFileOut]):
    pass
