"""What happens to records created by hand (records from files come from sync)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select
from sqlalchemy.orm import Session

from dataloft.datasets import repository as rows
from dataloft.datasets import service as datasets
from dataloft.errors import not_found
from dataloft.ingest.embed.base import Embedder
from dataloft.kit.ids import now_ms
from dataloft.kit.principal import Principal
from dataloft.kit.vectors import to_blob
from dataloft.models import Record
from dataloft.records import repository
from dataloft.records.repository import NewRecord
from dataloft.storage.index.base import Index


class RecordCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    text: str = Field(min_length=1, max_length=1_000_000)
    source: str | None = Field(default=None, max_length=2048)
    meta: dict[str, Any] | None = None


class RecordUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    text: str | None = Field(default=None, min_length=1, max_length=1_000_000)
    source: str | None = Field(default=None, max_length=2048)
    meta: dict[str, Any] | None = None


def embed(embedder: Embedder, text: str) -> bytes:
    """The vector of a record's text. Callers compute it before their write transaction:
    an embedding endpoint may take tens of seconds, and SQLite has a single writer."""
    return to_blob(embedder.embed([text])[0])


def check_writable(session: Session, principal: Principal, dataset_id: str,
                   record_id: str | None = None) -> str | None:
    """Raise as `create`/`update` would, before anything is embedded; the record's text."""
    principal.require("datasets:write")
    datasets.get_owned(session, principal, dataset_id)
    return get(session, principal, dataset_id, record_id).text if record_id else None


def create(session: Session, index: Index, embedder: Embedder, principal: Principal,
           dataset_id: str, body: RecordCreate, vector: bytes | None = None) -> Record:
    principal.require("datasets:write")
    dataset = datasets.get_owned(session, principal, dataset_id)
    datasets.adopt_embedder(dataset, embedder.name, embedder.dimension)
    ((pk, _),) = repository.insert_records(
        session, index, dataset.org_id, dataset.id,
        [NewRecord(text=body.text, meta=body.meta or {}, source=body.source,
                   vector=vector if vector is not None else embed(embedder, body.text))])
    record = rows.record_by_pk(session, pk)
    assert record is not None
    return record


def get(session: Session, principal: Principal, dataset_id: str, record_id: str) -> Record:
    dataset = datasets.get(session, principal, dataset_id)
    record = rows.visible_record(session, principal, dataset.id, record_id)
    if record is None:
        raise not_found("record", record_id)
    return record


def listing(session: Session, principal: Principal, dataset_id: str) -> Select[Any]:
    dataset = datasets.get(session, principal, dataset_id)
    return rows.records_listing(principal, dataset.id)


def update(session: Session, index: Index, embedder: Embedder, principal: Principal,
           dataset_id: str, record_id: str, body: RecordUpdate,
           vector: bytes | None = None) -> Record:
    """`vector`: the embedding of `body.text`, when the caller computed it beforehand."""
    principal.require("datasets:write")
    datasets.get_owned(session, principal, dataset_id)
    record = get(session, principal, dataset_id, record_id)
    fields = body.model_dump(exclude_unset=True)
    if "meta" in fields:
        record.meta = fields["meta"] or {}
    if "source" in fields:
        record.source = fields["source"]
    if fields.get("text") is not None and fields["text"] != record.text:
        rows.write_record_text(session, record, fields["text"])
        repository.reindex(session, index, record,
                           vector if vector is not None else embed(embedder, record.text))
    # Never backwards: a re-index above may have moved it past the clock (records.advance).
    record.updated_at = max(now_ms(), record.updated_at)
    return record


def delete(session: Session, index: Index, principal: Principal, dataset_id: str,
           record_id: str) -> Record:
    principal.require("datasets:write")
    datasets.get_owned(session, principal, dataset_id)
    record = get(session, principal, dataset_id, record_id)
    repository.delete_where(session, index, org_id=record.org_id, pks=[record.pk])
    return record


def render(record: Record) -> dict[str, Any]:
    return {
        "id": record.id,
        "text": record.text,
        "source": record.source,
        "meta": record.meta,
        "fileId": record.file_id,
        "position": record.position,
        "createdAt": record.created_at,
        "updatedAt": record.updated_at,
    }
