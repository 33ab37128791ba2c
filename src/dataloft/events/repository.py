"""SQL of the event log's upkeep."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dataloft.models import Event


def prune(session: Session, before_ms: int, limit: int) -> int:
    """Delete up to `limit` events created before `before_ms`, oldest first."""
    ids = list(session.scalars(select(Event.id).where(Event.created_at < before_ms)
                               .order_by(Event.id).limit(limit)))
    if ids:
        session.execute(delete(Event).where(Event.id.in_(ids)))
    return len(ids)
