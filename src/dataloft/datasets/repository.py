"""All SQL over datasets, their attachments and hand-made records, and their derived views
(sync status of attached files)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, func, select
from sqlalchemy.orm import Session

from dataloft.kit import policy
from dataloft.kit.db import Lookup
from dataloft.kit.principal import Principal
from dataloft.models import Attachment, Dataset, File, Job, Record
from dataloft.records import repository as records_repository


@dataclass(frozen=True)
class LinkRow:
    file_id: str
    synced_version: int | None
    file_version: int
    type: str = "source"
    synced_at: int | None = None


@dataclass(frozen=True)
class JobRow:
    file_id: str
    state: str
    error_code: str | None
    error_message: str | None
    attempts: int = 0


def links(session: Session, dataset_id: str, file_ids: Sequence[str] | None) -> list[LinkRow]:
    stmt = (select(Attachment.file_id, Attachment.synced_version, File.version, Attachment.type,
                   Attachment.synced_at)
            .join(File, File.id == Attachment.file_id)
            .where(Attachment.dataset_id == dataset_id))
    if file_ids is not None:
        stmt = stmt.where(Attachment.file_id.in_(list(file_ids)))
    return [LinkRow(*row) for row in session.execute(stmt)]


def datasets_of_file(session: Session, file_id: str, visible: ColumnElement[bool]) -> list[str]:
    """The datasets `file_id` is attached to, among those `visible` admits, oldest first."""
    return list(session.scalars(
        select(Attachment.dataset_id).join(Dataset, Dataset.id == Attachment.dataset_id)
        .where(Attachment.file_id == file_id, visible).order_by(Attachment.dataset_id)))


def record_counts(session: Session, dataset_id: str, file_ids: Sequence[str]) -> dict[str, int]:
    stmt = (select(Record.file_id, func.count()).where(
        Record.dataset_id == dataset_id, Record.file_id.in_(list(file_ids)))
        .group_by(Record.file_id))
    return {str(f): int(n) for f, n in session.execute(stmt)}


def sync_jobs(session: Session, kind: str, dataset_id: str,
              file_ids: Sequence[str] | None) -> list[JobRow]:
    """Sync jobs of the dataset (of these files), oldest first."""
    file_id = Job.payload["fileId"].as_string()
    stmt = (select(file_id, Job.state, Job.error_code, Job.error_message, Job.attempts)
            .where(Job.kind == kind, Job.serial_key == f"dataset:{dataset_id}")
            .order_by(Job.created_at, Job.id))
    if file_ids is not None:
        stmt = stmt.where(file_id.in_(list(file_ids)))
    return [JobRow(*row) for row in session.execute(stmt)]


def text_bytes(session: Session, dataset_id: str,
               file_ids: Sequence[str] | None = None) -> dict[str | None, int]:
    """Characters of record text per file of the dataset (None: records without a file)."""
    stmt = (select(Record.file_id, func.coalesce(func.sum(func.length(Record.text)), 0))
            .where(Record.dataset_id == dataset_id).group_by(Record.file_id))
    if file_ids is not None:
        stmt = stmt.where(Record.file_id.in_(list(file_ids)))
    return {f: int(n) for f, n in session.execute(stmt)}


# --- datasets ----------------------------------------------------------------------------------

def save_dataset(session: Session, dataset: Dataset) -> None:
    """Write a new or changed dataset now."""
    session.add(dataset)
    session.flush()


def dataset_by_id(session: Session, dataset_id: str) -> Dataset | None:
    return session.get(Dataset, dataset_id)


def visible_dataset(session: Session, principal: Principal, dataset_id: str) -> Dataset | None:
    return session.scalar(select(Dataset).where(Dataset.id == dataset_id,
                                                policy.datasets(principal)))


@dataclass(frozen=True, slots=True)
class Searched:
    """What a search needs of its dataset, read through a Core select (no ORM load)."""

    id: str
    org_id: str
    owner_scope: str
    visibility: str
    settings: dict[str, Any]
    embedding_model: str | None
    embedding_dimension: int | None


# Built once: per search, building a statement and its cache key cost more than the read.
_SEARCHED = Lookup(select(Dataset.id, Dataset.org_id, Dataset.owner_scope, Dataset.visibility,
                          Dataset.settings, Dataset.embedding_model, Dataset.embedding_dimension
                          ).where(Dataset.id == bindparam("dataset_id")))


def searched_dataset(session: Session, principal: Principal, dataset_id: str
                     ) -> Searched | None:
    """The dataset if the principal may see it: the policy's rule for a single object."""
    row = _SEARCHED.first(session, {"dataset_id": dataset_id})
    found = Searched(*row) if row is not None else None
    return found if found is not None and policy.dataset_allowed(principal, found) else None


def datasets_listing(principal: Principal) -> Select[Any]:
    return select(Dataset).where(policy.datasets(principal))


def delete_dataset(session: Session, dataset: Dataset) -> None:
    session.delete(dataset)
    session.flush()


# --- attachments -------------------------------------------------------------------------------

def attachment(session: Session, dataset_id: str, file_id: str) -> Attachment | None:
    return session.scalar(select(Attachment).where(Attachment.dataset_id == dataset_id,
                                                   Attachment.file_id == file_id))


def attached_files_listing(principal: Principal, dataset_id: str) -> Select[Any]:
    """The files attached to the dataset that the principal may see."""
    return (select(File).join(Attachment, Attachment.file_id == File.id)
            .where(Attachment.dataset_id == dataset_id, policy.files(principal)))


def save_attachment(session: Session, link: Attachment) -> None:
    """Write a new or changed attachment now."""
    session.add(link)
    session.flush()


def delete_attachment(session: Session, link: Attachment) -> None:
    session.delete(link)


def source_links(session: Session, file_id: str) -> list[Attachment]:
    """The attachments that make `file_id` a source of a dataset."""
    return list(session.scalars(select(Attachment).where(Attachment.file_id == file_id,
                                                         Attachment.type == "source")))


# --- records made by hand ----------------------------------------------------------------------

def record_by_pk(session: Session, pk: int) -> Record | None:
    return session.get(Record, pk)


def visible_record(session: Session, principal: Principal, dataset_id: str,
                   record_id: str) -> Record | None:
    return session.scalar(select(Record).where(Record.id == record_id,
                                               Record.dataset_id == dataset_id,
                                               policy.records(principal)))


def records_listing(principal: Principal, dataset_id: str) -> Select[Any]:
    return select(Record).where(Record.dataset_id == dataset_id, policy.records(principal))


def write_record_text(session: Session, record: Record, text: str) -> None:
    """Change the record's text in the database now (its index entry is the caller's)."""
    record.text = text
    records_repository.advance(record)
    session.flush()


def alias_holder(session: Session, principal: Principal, owner_scope: str, alias: str
                 ) -> str | None:
    """The dataset of `owner_scope` holding `alias`, among those the principal sees: an
    alias held by a dataset it cannot see is free for it (unique per owner scope)."""
    return session.scalar(select(Dataset.id).where(
        Dataset.org_id == principal.org_id, Dataset.owner_scope == owner_scope,
        Dataset.alias == alias, policy.datasets(principal)).limit(1))


def visible_ids(session: Session, principal: Principal, dataset_ids: Sequence[str]
                ) -> set[str]:
    """Those of `dataset_ids` the principal may see."""
    if not dataset_ids:
        return set()
    return set(session.scalars(select(Dataset.id).where(Dataset.id.in_(list(dataset_ids)),
                                                        policy.datasets(principal))))
