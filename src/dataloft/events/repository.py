"""All SQL over the event log: writing, the listing, and the tail streams follow."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from dataloft.kit import policy
from dataloft.kit.principal import Principal
from dataloft.models import Event


def add_event(session: Session, event: Event) -> None:
    session.add(event)


def events_listing(principal: Principal, dataset_id: str | None) -> Select[Any]:
    """The events the principal may read, of one dataset when one is given."""
    stmt = select(Event).where(policy.events(principal))
    if dataset_id is not None:
        stmt = stmt.where(Event.dataset_id == dataset_id)
    return stmt


def after(session: Session, principal: Principal, after_id: str, limit: int) -> list[Event]:
    """Visible events with ids above `after_id`, oldest first."""
    return list(session.scalars(select(Event).where(policy.events(principal), Event.id > after_id)
                                .order_by(Event.id).limit(limit)))


def latest(session: Session, principal: Principal, n: int) -> list[Event]:
    """The last `n` visible events, oldest first."""
    if n <= 0:
        return []
    rows = list(session.scalars(select(Event).where(policy.events(principal))
                                .order_by(Event.id.desc()).limit(n)))
    return rows[::-1]


def prune(session: Session, before_ms: int, limit: int) -> int:
    """Delete up to `limit` events created before `before_ms`, oldest first (retention)."""
    ids = list(session.scalars(select(Event.id).where(Event.created_at < before_ms)
                               .order_by(Event.id).limit(limit)))
    if ids:
        session.execute(delete(Event).where(Event.id.in_(ids)))
    return len(ids)
