"""SQL of datasets' derived views (sync status of attached files) and policy lookups."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dataloft.kit import policy
from dataloft.kit.principal import Principal
from dataloft.models import Attachment, Dataset, File, Job, Record


@dataclass(frozen=True)
class LinkRow:
    file_id: str
    synced_version: int | None
    file_version: int


@dataclass(frozen=True)
class JobRow:
    file_id: str
    state: str
    error_code: str | None
    error_message: str | None


def links(session: Session, dataset_id: str, file_ids: Sequence[str] | None) -> list[LinkRow]:
    stmt = (select(Attachment.file_id, Attachment.synced_version, File.version)
            .join(File, File.id == Attachment.file_id)
            .where(Attachment.dataset_id == dataset_id))
    if file_ids is not None:
        stmt = stmt.where(Attachment.file_id.in_(list(file_ids)))
    return [LinkRow(f, s, v) for f, s, v in session.execute(stmt)]


def sync_jobs(session: Session, kind: str, dataset_id: str,
              file_ids: Sequence[str] | None) -> list[JobRow]:
    """Sync jobs of the dataset (of these files), oldest first."""
    file_id = Job.payload["fileId"].as_string()
    stmt = (select(file_id, Job.state, Job.error_code, Job.error_message)
            .where(Job.kind == kind, Job.serial_key == f"dataset:{dataset_id}")
            .order_by(Job.created_at, Job.id))
    if file_ids is not None:
        stmt = stmt.where(file_id.in_(list(file_ids)))
    return [JobRow(f, s, c, m) for f, s, c, m in session.execute(stmt)]


def text_bytes(session: Session, dataset_id: str,
               file_ids: Sequence[str] | None = None) -> dict[str | None, int]:
    """Characters of record text per file of the dataset (None: records without a file)."""
    stmt = (select(Record.file_id, func.coalesce(func.sum(func.length(Record.text)), 0))
            .where(Record.dataset_id == dataset_id).group_by(Record.file_id))
    if file_ids is not None:
        stmt = stmt.where(Record.file_id.in_(list(file_ids)))
    return {f: int(n) for f, n in session.execute(stmt)}


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
