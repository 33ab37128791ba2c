"""All SQL of search outside the index: loading the records that ranked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dataloft.models import Record


@dataclass(frozen=True, slots=True)
class Found:
    """The columns of a ranked record that answers need: read through a Core select, so a
    result page costs no ORM identity map or attribute instrumentation."""

    pk: int
    id: str
    dataset_id: str
    file_id: str | None
    source: str | None
    text: str
    meta: dict[str, Any]


_COLUMNS = (Record.pk, Record.id, Record.dataset_id, Record.file_id, Record.source,
            Record.text, Record.meta)


def records_by_pk(session: Session, pks: Sequence[int]) -> dict[int, Found]:
    """The records of these primary keys that still exist."""
    rows = session.execute(select(*_COLUMNS).where(Record.pk.in_(list(pks))))
    return {row[0]: Found(*row) for row in rows}
