"""All SQL over the SQL catalog (the tables of synced tabular files)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, delete, select
from sqlalchemy.orm import Session

from dataloft.kit import policy
from dataloft.kit.principal import Principal
from dataloft.models import Attachment, File, SqlTable


def add_tables(session: Session, rows: Sequence[SqlTable]) -> None:
    session.add_all(rows)


def _where(org_id: str, dataset_id: str | None, file_id: str | None
           ) -> list[ColumnElement[bool]]:
    where = [SqlTable.org_id == org_id]
    if dataset_id is not None:
        where.append(SqlTable.dataset_id == dataset_id)
    if file_id is not None:
        where.append(SqlTable.file_id == file_id)
    return where


def tables_of(session: Session, org_id: str, *, dataset_id: str | None = None,
              file_id: str | None = None) -> Sequence[SqlTable]:
    """The org's tables of a dataset, a file, or a file in a dataset."""
    return session.scalars(select(SqlTable).where(*_where(org_id, dataset_id, file_id))).all()


def delete_tables(session: Session, org_id: str, *, dataset_id: str | None = None,
                  file_id: str | None = None) -> None:
    session.execute(delete(SqlTable).where(*_where(org_id, dataset_id, file_id)))


def tables_of_dataset(session: Session, dataset_id: str, principal: Principal | None
                      ) -> list[SqlTable]:
    """The tables of the dataset's attached files in attachment order, then table order;
    only those of files the principal may read when one is given."""
    stmt = (select(SqlTable)
            .join(Attachment, and_(Attachment.dataset_id == SqlTable.dataset_id,
                                   Attachment.file_id == SqlTable.file_id))
            .join(File, File.id == SqlTable.file_id)
            .where(SqlTable.dataset_id == dataset_id)
            .order_by(Attachment.created_at, Attachment.id, SqlTable.position))
    if principal is not None:
        stmt = stmt.where(policy.files(principal))
    return list(session.scalars(stmt).all())
