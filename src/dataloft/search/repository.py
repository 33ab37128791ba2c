"""All SQL of search outside the index: loading the records that ranked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
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


# Built once and run on the session's connection: per request, the ORM execute path and
# building the statement cost more than the read itself (docs/decisions.md).
_BY_PK = select(Record.pk, Record.id, Record.dataset_id, Record.file_id, Record.source,
                Record.text, Record.meta).where(Record.pk.in_(bindparam("pks", expanding=True)))


def records_by_pk(session: Session, pks: Sequence[int]) -> dict[int, Found]:
    """The records of these primary keys that still exist."""
    rows = session.connection().execute(_BY_PK, {"pks": list(pks)})
    return {row[0]: Found(*row) for row in rows}
