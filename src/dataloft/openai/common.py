"""Small rules every OpenAI resource shares: seconds, pages, chunking, not-found wording."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from dataloft.errors import BadRequest, NotFound
from dataloft.files.deps import UploadDeps
from dataloft.ingest.chunk import DEFAULT_MAX_TOKENS, default_overlap
from dataloft.ingest.embed.base import Embedder
from dataloft.openai.schemas import ChunkingObject, ChunkingParam, StaticChunking
from dataloft.storage.index.base import Index

T = TypeVar("T")


class Wiring(UploadDeps, Protocol):
    """What this surface uses of the wired application (dataloft.context sits above us)."""

    @property
    def index(self) -> Index: ...
    @property
    def embedder(self) -> Embedder: ...
    @property
    def dialect(self) -> str: ...

MAX_LIMIT = 100


def seconds(ms: int | None) -> int | None:
    return None if ms is None else ms // 1000


def check_limit(limit: int, most: int = MAX_LIMIT) -> int:
    if not 1 <= limit <= most:
        raise BadRequest(f"limit must be between 1 and {most}")
    return limit


def page(items: Sequence[T], limit: int, ident: Callable[[T], str]
         ) -> tuple[list[T], str | None, str | None, bool]:
    """Items (one more than `limit` fetched) -> (data, first_id, last_id, has_more)."""
    data = list(items[:limit])
    return (data, ident(data[0]) if data else None, ident(data[-1]) if data else None,
            len(items) > limit)


def page_in_memory(items: Sequence[T], ident: Callable[[T], str], after: str | None,
                   before: str | None, order: str, limit: int) -> list[T]:
    """A cursor page over items already in ascending order (one more than `limit`)."""
    ordered = list(items) if order == "asc" else list(reversed(items))
    ids = [ident(i) for i in ordered]
    start = ids.index(after) + 1 if after in ids else 0
    end = ids.index(before) if before in ids else len(ordered)
    return ordered[start:end][: limit + 1]


def missing(kind: str, ident: str) -> NotFound:
    return NotFound(f"No {kind} found with id '{ident}'.")


def chunking_settings(strategy: ChunkingParam | None) -> dict[str, int] | None:
    """A chunking strategy as dataset settings; None for `auto` (the dataset's own)."""
    if strategy is None or strategy.type == "auto":
        return None
    static = strategy.static
    return {"recordMaxTokens": static.max_chunk_size_tokens,
            "recordOverlapTokens": static.chunk_overlap_tokens}


def chunking_object(*settings: dict[str, Any] | None) -> ChunkingObject:
    """The chunking in effect: the first of `settings` that sets it, else our defaults."""
    merged: dict[str, Any] = {}
    for layer in reversed(settings):
        merged.update({k: v for k, v in (layer or {}).items() if v is not None})
    size = int(merged.get("recordMaxTokens") or DEFAULT_MAX_TOKENS)
    overlap = merged.get("recordOverlapTokens")
    overlap = default_overlap(size) if overlap is None else int(overlap)
    return ChunkingObject(static=StaticChunking.model_construct(
        max_chunk_size_tokens=size, chunk_overlap_tokens=overlap))
