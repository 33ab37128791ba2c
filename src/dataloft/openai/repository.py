"""Every SQL statement of the OpenAI surface."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, exists, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from dataloft.kit import filters, policy
from dataloft.kit.principal import Principal
from dataloft.models import Attachment, Dataset, File, FileBatch, Job, Record


def _paged(stmt: Select[Any], column: InstrumentedAttribute[str], after: str | None,
           before: str | None, order: str, limit: int) -> Select[Any]:
    if after is not None:
        stmt = stmt.where(column > after if order == "asc" else column < after)
    if before is not None:
        stmt = stmt.where(column < before if order == "asc" else column > before)
    return stmt.order_by(column.asc() if order == "asc" else column.desc()).limit(limit + 1)


def list_files(session: Session, principal: Principal, now: int, purpose: str | None,
               after: str | None, order: str, limit: int) -> list[File]:
    stmt = select(File).where(policy.files(principal), live_file(now))
    if purpose is not None:
        # A file made on another surface has no purpose and shows as "assistants".
        stmt = stmt.where(File.purpose == purpose if purpose != "assistants"
                          else or_(File.purpose == purpose, File.purpose.is_(None)))
    return list(session.scalars(_paged(stmt, File.id, after, None, order, limit)))


def live_file(now: int) -> ColumnElement[bool]:
    return or_(File.expires_at.is_(None), File.expires_at > now)


def list_datasets(session: Session, principal: Principal, after: str | None,
                  before: str | None, order: str, limit: int) -> list[Dataset]:
    stmt = select(Dataset).where(policy.datasets(principal))
    return list(session.scalars(_paged(stmt, Dataset.id, after, before, order, limit)))


def attachments(session: Session, principal: Principal, dataset_id: str,
                file_ids: Sequence[str] | None = None) -> list[Attachment]:
    """Attachments of the dataset whose file the principal may see, oldest first."""
    stmt = (select(Attachment).join(File, File.id == Attachment.file_id)
            .where(Attachment.dataset_id == dataset_id, policy.files(principal))
            .order_by(Attachment.created_at, Attachment.file_id))
    if file_ids is not None:
        stmt = stmt.where(Attachment.file_id.in_(list(file_ids)))
    return list(session.scalars(stmt))


def file_texts(session: Session, principal: Principal, dataset_id: str,
               file_id: str) -> list[str]:
    stmt = (select(Record.text).where(Record.dataset_id == dataset_id,
                                      Record.file_id == file_id, policy.records(principal))
            .order_by(Record.position, Record.pk))
    return list(session.scalars(stmt))


def file_names(session: Session, file_ids: Sequence[str]) -> dict[str, str | None]:
    rows = session.execute(select(File.id, File.name).where(File.id.in_(list(file_ids))))
    return {fid: name for fid, name in rows}


def attributes_of(session: Session, dataset_id: str,
                  file_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    rows = session.execute(select(Attachment.file_id, Attachment.attributes).where(
        Attachment.dataset_id == dataset_id, Attachment.file_id.in_(list(file_ids))))
    return {fid: attrs or {} for fid, attrs in rows}


# The attachment a search filter is compiled against; aliased so that it never correlates
# with an Attachment the caller's query may join itself.
_LINK = aliased(Attachment, name="store_file")


def records_with_attributes(parsed: filters.Filter, dialect: str) -> ColumnElement[bool]:
    """Records whose file's attachment to their dataset has attributes matching `parsed`."""
    condition = filters.to_sql(parsed, cast(ColumnElement[Any], _LINK.attributes), {}, dialect)
    return exists(select(_LINK.id).where(_LINK.dataset_id == Record.dataset_id,
                                         _LINK.file_id == Record.file_id, condition))


def save_batch(session: Session, batch: FileBatch) -> None:
    """Write a new or changed batch now."""
    session.add(batch)
    session.flush()


def batch(session: Session, dataset_id: str, batch_id: str) -> FileBatch | None:
    return session.scalar(select(FileBatch).where(FileBatch.id == batch_id,
                                                  FileBatch.dataset_id == dataset_id))


def cancel_queued_syncs(session: Session, kind: str, dataset_id: str,
                        file_ids: Sequence[str], code: str) -> int:
    """Fail the queued (not yet running) sync jobs of these files. A worker claims a job
    only while it is queued, so each job either runs or is cancelled, never both."""
    file_id = Job.payload["fileId"].as_string()
    result = session.execute(
        update(Job).where(Job.kind == kind, Job.serial_key == f"dataset:{dataset_id}",
                          Job.state == "queued", file_id.in_(list(file_ids)))
        .values(state="failed", error_code=code, error_message="cancelled before it ran")
        .execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def touch_dataset(session: Session, dataset_id: str, now: int, older_than: int) -> None:
    session.execute(update(Dataset).where(
        Dataset.id == dataset_id,
        or_(Dataset.last_active_at.is_(None), Dataset.last_active_at < older_than))
        .values(last_active_at=now).execution_options(synchronize_session=False))
