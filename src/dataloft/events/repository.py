"""SQL of the event log's readers: the tail followed by streams, and the latest events."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from dataloft.kit import policy
from dataloft.kit.principal import Principal
from dataloft.models import Event


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
