"""All SQL over the event log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
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
