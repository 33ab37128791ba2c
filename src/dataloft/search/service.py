"""Dataset search: policy and filter first, then ranking."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from dataloft.datasets import service as datasets
from dataloft.kit import filters
from dataloft.kit.principal import Principal
from dataloft.models import Record
from dataloft.storage.index.base import Index

MAX_TAKE = 200


class SearchBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    search: str = Field(max_length=10_000)
    filter: dict[str, Any] | None = None
    take: int | None = Field(default=None, ge=1, le=MAX_TAKE)


def record_columns() -> dict[str, Any]:
    return {"source": Record.source, "fileId": Record.file_id, "createdAt": Record.created_at}


def search(session: Session, index: Index, principal: Principal, dataset_id: str,
           body: SearchBody, dialect: str) -> list[tuple[Record, float]]:
    dataset = datasets.get(session, principal, dataset_id)
    parsed = filters.parse_filter(body.filter)
    restrict = filters.to_sql(parsed, Record.meta, record_columns(), dialect) if parsed else None
    take = body.take or int(dataset.settings.get("searchMaxRecords") or 10)
    hits = index.search(session, [dataset.id], body.search, take, restrict)
    if not hits:
        return []
    by_pk = {r.pk: r for r in session.scalars(select(Record).where(
        Record.pk.in_([pk for pk, _ in hits])))}
    return [(by_pk[pk], score) for pk, score in hits if pk in by_pk]


def render(record: Record, score: float) -> dict[str, Any]:
    return {"id": record.id, "text": record.text, "source": record.source,
            "meta": record.meta, "score": round(score, 6)}
