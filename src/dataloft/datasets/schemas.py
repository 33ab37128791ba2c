"""Wire shapes of datasets and attachments, as @chatbotkit/sdk sends and expects them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dataloft.files.schemas import AttachmentOut, FileOut, Visibility, visibility_not_null
from dataloft.kit.wire import JsonObject, Out, Page, absent

# Settings the SDK sends on create/update and expects back on fetch, stored verbatim.
SETTING_NAMES = (
    "store", "reranker", "recordMaxTokens", "searchMinScore", "searchMaxRecords",
    "searchMaxTokens", "matchInstruction", "mismatchInstruction", "separators", "blueprintId",
    "hybridLexicalWeight", "recordOverlapTokens",
)


class DatasetCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str | None = Field(default=None, max_length=1024)
    description: str | None = Field(default=None, max_length=100_000)
    meta: dict[str, Any] | None = None
    visibility: Visibility | None = None
    alias: str | None = Field(default=None, max_length=200)
    blueprintId: str | None = None
    store: str | None = Field(default=None, max_length=100)
    reranker: str | None = Field(default=None, max_length=100)
    recordMaxTokens: int | None = Field(default=None, ge=16, le=8192)
    searchMinScore: float | None = None
    searchMaxRecords: int | None = Field(default=None, ge=1, le=200)
    searchMaxTokens: int | None = Field(default=None, ge=1)
    matchInstruction: str | None = Field(default=None, max_length=10_000)
    mismatchInstruction: str | None = Field(default=None, max_length=10_000)
    separators: str | None = Field(default=None, max_length=1000)
    # Our extensions: chunk overlap in tokens (default 12% of recordMaxTokens), and the
    # lexical side's weight in hybrid search (0 = semantic only).
    recordOverlapTokens: int | None = Field(default=None, ge=0, le=4096)
    hybridLexicalWeight: float | None = Field(default=None, ge=0, le=1)


class DatasetUpdate(DatasetCreate):
    _visibility_not_null = field_validator("visibility")(visibility_not_null)
    # Edits of the inferred fields: [{name, label?, dataType?}], checked by sql.catalog.
    fields: list[Any] | None = None


class AttachBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["source", "reference"] = "source"


class DetachBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    deleteRecords: bool = False


# --- responses ---------------------------------------------------------------------------
# Documentation of service.render() and records.render(), key for key (kit/wire.py).


class FieldEdit(Out):
    name: str
    label: str = absent()
    dataType: str = absent()


class DatasetOut(Out):
    """The settings the SDK sent are echoed back as they were stored: a key it never set
    (or set to null) is absent."""
    id: str
    name: str | None
    description: str | None
    meta: JsonObject
    visibility: Visibility
    alias: str | None
    store: str = Field(description="'default' unless the client stored another name.")
    embeddingModel: str | None = Field(description="Set by the first sync that embeds.")
    reranker: str = absent()
    recordMaxTokens: int = absent()
    searchMinScore: float = absent()
    searchMaxRecords: int = absent()
    searchMaxTokens: int = absent()
    matchInstruction: str = absent()
    mismatchInstruction: str = absent()
    separators: str = absent()
    blueprintId: str = absent()
    hybridLexicalWeight: float = absent()
    recordOverlapTokens: int = absent()
    fields: list[FieldEdit] = absent("The user's edits of the inferred fields.")
    createdAt: int
    updatedAt: int


class DatasetPage(Page[DatasetOut]):
    pass


class RecordOut(Out):
    id: str
    text: str
    source: str | None
    meta: JsonObject
    fileId: str | None = Field(description="The file a sync made it from; null if created "
                                           "directly.")
    position: int | None
    createdAt: int
    updatedAt: int


class RecordPage(Page[RecordOut]):
    pass


class DatasetFileOut(FileOut):
    attachment: AttachmentOut | None = Field(description="The file's attachment to this "
                                                          "dataset, with its sync state.")


class DatasetFilePage(Page[DatasetFileOut]):
    pass
