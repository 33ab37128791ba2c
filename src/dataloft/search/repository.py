"""All SQL of search outside the index: loading the records that ranked."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from dataloft.models import Record


class Found(NamedTuple):
    """The columns of a ranked record that answers need: read without the ORM, so a result
    page costs no identity map or attribute instrumentation (a tuple: ~2x cheaper to make
    than a frozen dataclass, ~30 per page)."""

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
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        # On the session's own DB-API connection, so in its transaction (the search's
        # snapshot): a result page is ~30 rows, and SQLAlchemy's execution of an expanding
        # IN and its row processing cost about as much again as SQLite's read and the
        # JSON parse together (docs/benchmarks.md §35).
        driver = connection.connection.driver_connection
        assert driver is not None
        rows = driver.execute(_sqlite_by_pk(len(pks)), tuple(pks)).fetchall()
        return {pk: Found(pk, id_, dataset_id, file_id, source, text, _meta(meta))
                for pk, id_, dataset_id, file_id, source, text, meta in rows}
    return {row[0]: Found(*row) for row in connection.execute(_BY_PK, {"pks": list(pks)})}


@lru_cache(maxsize=64)
def _sqlite_by_pk(count: int) -> str:
    """_BY_PK's SQL for `count` pks, as SQLite's driver takes it."""
    marks = ", ".join("?" * count)
    return ("SELECT pk, id, dataset_id, file_id, source, text, meta FROM records "
            f"WHERE pk IN ({marks})")


def _meta(stored: str | None) -> Any:
    """A JSON column's value as SQLAlchemy's SQLite dialect reads it."""
    return json.loads(stored) if stored is not None else None
