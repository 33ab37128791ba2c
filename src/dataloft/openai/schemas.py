"""Wire shapes of OpenAI's Files and Vector Stores API, field for field as the `openai`
Python SDK sends and reads them (openai/types/**). Timestamps are epoch seconds."""

from __future__ import annotations

import math
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

MAX_KEYS = 16
AttributeValue = StrictStr | StrictBool | StrictInt | StrictFloat
Attributes = dict[str, AttributeValue]
FileStatus = Literal["in_progress", "completed", "failed", "cancelled"]
Order = Literal["asc", "desc"]
Item = TypeVar("Item")


class CursorPage(BaseModel, Generic[Item]):
    """OpenAI's cursor page: `after`/`before` take `first_id`/`last_id`."""
    object: Literal["list"] = "list"
    data: list[Item]
    first_id: str | None
    last_id: str | None
    has_more: bool


def check_pairs(value: dict[str, Any] | None, what: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if len(value) > MAX_KEYS:
        raise ValueError(f"{what} holds at most {MAX_KEYS} keys")
    for key, item in value.items():
        if len(key) > 64:
            raise ValueError(f"{what} keys are at most 64 characters")
        if isinstance(item, str) and len(item) > 512:
            raise ValueError(f"{what} string values are at most 512 characters")
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"{what} numbers must be finite")
    return value


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


# --- chunking --------------------------------------------------------------------------


class StaticChunking(BaseModel):
    max_chunk_size_tokens: int = Field(ge=100, le=4096)
    chunk_overlap_tokens: int = Field(ge=0)

    @model_validator(mode="after")
    def _overlap(self) -> StaticChunking:
        if self.chunk_overlap_tokens * 2 > self.max_chunk_size_tokens:
            raise ValueError("chunk_overlap_tokens must not exceed half of "
                             "max_chunk_size_tokens")
        return self


class AutoChunkingParam(_In):
    type: Literal["auto"]


class StaticChunkingParam(_In):
    type: Literal["static"]
    static: StaticChunking


ChunkingParam = Annotated[AutoChunkingParam | StaticChunkingParam, Field(discriminator="type")]


class ChunkingObject(BaseModel):
    type: Literal["static"] = "static"
    static: StaticChunking


# --- errors ----------------------------------------------------------------------------


class ErrorObject(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    """OpenAI's error body (openai/errors.py), on every /v1 error."""
    error: ErrorObject


# --- files -----------------------------------------------------------------------------


class FileObject(BaseModel):
    id: str
    bytes: int
    created_at: int
    filename: str
    object: Literal["file"] = "file"
    purpose: str
    status: Literal["uploaded", "processed", "error"] = "processed"
    expires_at: int | None = None
    status_details: str | None = None


class FileDeleted(BaseModel):
    id: str
    deleted: bool = True
    object: Literal["file"] = "file"


class FileList(CursorPage[FileObject]):
    pass


# --- vector stores ---------------------------------------------------------------------


class ExpiresAfter(BaseModel):
    anchor: Literal["last_active_at"]
    days: int = Field(ge=1, le=365)


class FileCounts(BaseModel):
    in_progress: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    total: int = 0


class VectorStoreCreate(_In):
    name: str | None = Field(default=None, max_length=1024)
    description: str | None = Field(default=None, max_length=100_000)
    file_ids: list[str] | None = Field(default=None, max_length=500)
    chunking_strategy: ChunkingParam | None = None
    expires_after: ExpiresAfter | None = None
    metadata: dict[str, StrictStr] | None = None

    _pairs = field_validator("metadata")(lambda v: check_pairs(v, "metadata"))


class VectorStoreUpdate(_In):
    name: str | None = Field(default=None, max_length=1024)
    expires_after: ExpiresAfter | None = None
    metadata: dict[str, StrictStr] | None = None

    _pairs = field_validator("metadata")(lambda v: check_pairs(v, "metadata"))


class VectorStore(BaseModel):
    id: str
    created_at: int
    file_counts: FileCounts
    last_active_at: int | None
    metadata: dict[str, str] | None
    name: str
    object: Literal["vector_store"] = "vector_store"
    status: Literal["expired", "in_progress", "completed"]
    usage_bytes: int
    expires_after: ExpiresAfter | None = None
    expires_at: int | None = None
    # Ours: the dataset's description (OpenAI takes it on create but does not return it).
    description: str | None = None


class VectorStoreDeleted(BaseModel):
    id: str
    deleted: bool = True
    object: Literal["vector_store.deleted"] = "vector_store.deleted"


class VectorStoreList(CursorPage[VectorStore]):
    pass


# --- vector-store files and batches ----------------------------------------------------


class VectorStoreFileCreate(_In):
    file_id: str = Field(min_length=1, max_length=100)
    attributes: Attributes | None = None
    chunking_strategy: ChunkingParam | None = None

    _pairs = field_validator("attributes")(lambda v: check_pairs(v, "attributes"))


class VectorStoreFileUpdate(_In):
    attributes: Attributes | None

    _pairs = field_validator("attributes")(lambda v: check_pairs(v, "attributes"))


class LastError(BaseModel):
    code: Literal["server_error", "unsupported_file", "invalid_file"]
    message: str


class VectorStoreFile(BaseModel):
    id: str
    created_at: int
    last_error: LastError | None
    object: Literal["vector_store.file"] = "vector_store.file"
    status: FileStatus
    usage_bytes: int
    vector_store_id: str
    attributes: dict[str, str | bool | int | float] | None = None
    chunking_strategy: ChunkingObject | None = None


class VectorStoreFileDeleted(BaseModel):
    id: str
    deleted: bool = True
    object: Literal["vector_store.file.deleted"] = "vector_store.file.deleted"


class VectorStoreFileList(CursorPage[VectorStoreFile]):
    pass


class ContentPart(BaseModel):
    type: Literal["text"] = "text"
    text: str


class FileContentPage(BaseModel):
    object: Literal["vector_store.file_content.page"] = "vector_store.file_content.page"
    data: list[ContentPart]
    has_more: bool = False
    next_page: str | None = None


class BatchFile(VectorStoreFileCreate):
    pass


class FileBatchCreate(_In):
    file_ids: list[str] | None = Field(default=None, max_length=2000)
    files: list[BatchFile] | None = Field(default=None, max_length=2000)
    attributes: Attributes | None = None
    chunking_strategy: ChunkingParam | None = None

    _pairs = field_validator("attributes")(lambda v: check_pairs(v, "attributes"))

    @model_validator(mode="after")
    def _one_list(self) -> FileBatchCreate:
        if (self.file_ids is None) == (self.files is None):
            raise ValueError("send exactly one of file_ids and files")
        return self


class FileBatch(BaseModel):
    id: str
    created_at: int
    file_counts: FileCounts
    object: Literal["vector_store.files_batch"] = "vector_store.files_batch"
    status: FileStatus
    vector_store_id: str


# --- search ----------------------------------------------------------------------------


class HybridSearch(_In):
    embedding_weight: float = Field(ge=0)
    text_weight: float = Field(ge=0)


class RankingOptions(_In):
    ranker: Literal["none", "auto", "default-2024-11-15"] | None = None
    score_threshold: float | None = Field(default=None, ge=0, le=1)
    # Ours, as the Responses API's file_search spells it: the two sides' weights.
    hybrid_search: HybridSearch | None = None


class SearchBody(_In):
    query: str | list[str] = Field(max_length=10_000)
    filters: dict[str, Any] | None = None
    max_num_results: int = Field(default=10, ge=1, le=50)
    ranking_options: RankingOptions | None = None
    rewrite_query: bool = False


class SearchResult(BaseModel):
    file_id: str
    filename: str
    score: float
    attributes: dict[str, str | bool | int | float] | None
    content: list[ContentPart]


class SearchPage(BaseModel):
    object: Literal["vector_store.search_results.page"] = "vector_store.search_results.page"
    search_query: list[str]
    data: list[SearchResult]
    has_more: bool = False
    next_page: str | None = None
