"""All SQL of search outside the index: loading the records that ranked."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from dataloft.models import Record


def records_by_pk(session: Session, pks: Sequence[int]) -> dict[int, Record]:
    """The records of these primary keys that still exist."""
    return {r.pk: r for r in session.scalars(select(Record).where(Record.pk.in_(list(pks))))}
