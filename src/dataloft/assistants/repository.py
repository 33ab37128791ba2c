"""All SQL over assistants."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from dataloft.models import Assistant, Org


def add_assistants(session: Session, *assistants: Assistant) -> None:
    session.add_all(assistants)
    session.flush()


def assistant_of_org(session: Session, org_id: str, assistant_id: str) -> Assistant | None:
    """By id or alias."""
    return session.scalar(select(Assistant).where(
        or_(Assistant.id == assistant_id, Assistant.alias == assistant_id),
        Assistant.org_id == org_id))


def default_assistant(session: Session, org_id: str) -> Assistant | None:
    return session.scalar(select(Assistant).where(Assistant.org_id == org_id,
                                                  Assistant.is_default.is_(True)))


def orgs_without_default_assistant(session: Session) -> list[str]:
    have = set(session.scalars(select(Assistant.org_id).where(Assistant.is_default.is_(True))))
    return [org_id for org_id in session.scalars(select(Org.id)) if org_id not in have]


def assistants_listing(org_id: str) -> Select[Any]:
    return select(Assistant).where(Assistant.org_id == org_id)


def delete_assistant(session: Session, assistant: Assistant) -> None:
    session.delete(assistant)
    session.flush()


def alias_holder(session: Session, org_id: str, alias: str, other_than: str) -> str | None:
    """The id of the org's assistant (other than `other_than`) that holds `alias`."""
    return session.scalar(select(Assistant.id).where(
        Assistant.org_id == org_id, Assistant.alias == alias, Assistant.id != other_than))
