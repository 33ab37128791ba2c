"""All SQL over records. Every insert or delete also updates the index, in the same session."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dataloft.kit.ids import new_id
from dataloft.models import Record
from dataloft.storage.index.base import Index


@dataclass
class NewRecord:
    text: str
    meta: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    position: int | None = None
    content_hash: str | None = None


def insert(session: Session, index: Index, org_id: str, dataset_id: str,
           new: Iterable[NewRecord], file_id: str | None = None) -> list[Record]:
    rows = [
        Record(id=new_id("rec"), org_id=org_id, dataset_id=dataset_id, file_id=file_id,
               text=r.text, meta=r.meta, source=r.source, position=r.position,
               content_hash=r.content_hash)
        for r in new
    ]
    session.add_all(rows)
    session.flush()
    index.added(session, [(r.pk, r.text) for r in rows])
    return rows


def delete_where(session: Session, index: Index, *, org_id: str, dataset_id: str | None = None,
                 file_id: str | None = None, pks: Sequence[int] | None = None) -> int:
    conds = [Record.org_id == org_id]
    if dataset_id is not None:
        conds.append(Record.dataset_id == dataset_id)
    if file_id is not None:
        conds.append(Record.file_id == file_id)
    if pks is not None:
        conds.append(Record.pk.in_(list(pks)))
    doomed = list(session.scalars(select(Record.pk).where(*conds)))
    if not doomed:
        return 0
    index.removed(session, doomed)
    for i in range(0, len(doomed), 500):
        session.execute(delete(Record).where(Record.pk.in_(doomed[i : i + 500])))
    return len(doomed)


def reindex(session: Session, index: Index, record: Record) -> None:
    index.removed(session, [record.pk])
    index.added(session, [(record.pk, record.text)])
