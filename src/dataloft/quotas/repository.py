"""All SQL over org_quotas: one row per organisation, made on first use.

A charge is one conditional UPDATE (`used + n <= limit`), so it is atomic on both backends:
SQLite has one writer at a time, and PostgreSQL re-evaluates the WHERE clause against the
row a concurrent transaction just committed before it updates it (READ COMMITTED)."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from dataloft.models import File, OrgQuota, Record

Kind = Literal["storage_bytes", "records", "files"]
# A stored override of -1 is "unlimited", whatever the instance default says.
UNLIMITED = -1


def _ensure(session: Session, org_id: str) -> None:
    dialect = session.get_bind().dialect.name
    maker: Any = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(maker(OrgQuota).values(org_id=org_id, storage_bytes=0, records=0, files=0)
                    .on_conflict_do_nothing(index_elements=["org_id"]))


def add(session: Session, org_id: str, kind: Kind, n: int, default_limit: int | None) -> bool:
    """Move the `kind` counter by `n`; a positive `n` only while it stays within the limit
    (the org's override, else `default_limit`, None = unlimited). False when refused."""
    used = getattr(OrgQuota, kind)
    stmt = (update(OrgQuota).where(OrgQuota.org_id == org_id).values({kind: used + n})
            .execution_options(synchronize_session=False))
    if n > 0:
        override = getattr(OrgQuota, f"max_{kind}")
        limit = override if default_limit is None else func.coalesce(override, default_limit)
        stmt = stmt.where(or_(limit.is_(None), limit == UNLIMITED, used + n <= limit))
    if session.execute(stmt).rowcount == 1:  # type: ignore[attr-defined]
        return True
    # No row matched: the limit refused it, or the org's row did not exist when the UPDATE
    # began. Looking for the row now cannot tell which (on PostgreSQL another transaction may
    # have made it since), so make sure it exists and ask again: a fresh statement sees it.
    _ensure(session, org_id)
    return bool(session.execute(stmt).rowcount == 1)  # type: ignore[attr-defined]


def get(session: Session, org_id: str) -> OrgQuota | None:
    """The org's row as committed or written in this transaction; None before first use."""
    return session.get(OrgQuota, org_id, populate_existing=True)


def set_overrides(session: Session, org_id: str, values: dict[Kind, int | None]) -> OrgQuota:
    _ensure(session, org_id)
    row = get(session, org_id)
    assert row is not None
    for kind, value in values.items():
        setattr(row, f"max_{kind}", value)
    session.flush()
    return row


def counted(session: Session, org_id: str) -> dict[Kind, int]:
    """The org's usage counted from the data itself (what the counters must equal)."""
    storage = session.scalar(select(func.coalesce(func.sum(File.size), 0)).where(
        File.org_id == org_id, File.blob_key.is_not(None)))
    files = session.scalar(select(func.count()).select_from(File).where(File.org_id == org_id))
    records = session.scalar(select(func.count()).select_from(Record).where(
        Record.org_id == org_id))
    return {"storage_bytes": int(storage or 0), "records": int(records or 0),
            "files": int(files or 0)}
