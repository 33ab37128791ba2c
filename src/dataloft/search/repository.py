"""All SQL of search outside the index: loading the records that ranked."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ARRAY, BigInteger, String, any_, bindparam, func, select
from sqlalchemy.orm import Session

from dataloft.kit.db import Lookup
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


# Built once and run on the session's connection (on SQLite its DB-API connection: a Lookup):
# per request, the ORM execute path, building the statement and SQLAlchemy's result rows
# cost more than the read itself (docs/decisions.md, docs/benchmarks.md section 43). The
# pks go in as one parameter, not an expanding IN: SQLAlchemy renders an expanding list anew
# on every execution, which cost as much as reading the 30 records (section 34).
_COLUMNS = (Record.pk, Record.id, Record.dataset_id, Record.file_id, Record.source,
            Record.text, Record.meta)
_EACH = func.json_each(bindparam("pks", type_=String)).table_valued("value")
_BY_PK_SQLITE = Lookup(select(*_COLUMNS).where(Record.pk.in_(select(_EACH.c.value))))
_BY_PK_POSTGRES = select(*_COLUMNS).where(
    Record.pk == any_(bindparam("pks", type_=ARRAY(BigInteger))))


def records_by_pk(session: Session, pks: Sequence[int]) -> dict[int, Found]:
    """The records of these primary keys that still exist."""
    connection = session.connection()
    listed = [int(pk) for pk in pks]
    if connection.dialect.name == "sqlite":
        rows: Iterable[Sequence[Any]] = _BY_PK_SQLITE.all(session, {"pks": json.dumps(listed)})
    else:
        rows = connection.execute(_BY_PK_POSTGRES, {"pks": listed})
    return {row[0]: Found(*row) for row in rows}
