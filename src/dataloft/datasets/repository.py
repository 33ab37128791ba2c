"""SQL of datasets' derived views (sync status of attached files)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from dataloft.models import Attachment, Dataset, File, Job, Record


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
