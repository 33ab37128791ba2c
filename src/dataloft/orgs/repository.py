"""All SQL over organisations."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from dataloft.models import Org


def add(session: Session, org: Org) -> Org:
    session.add(org)
    session.flush()
    return org


def all_orgs(session: Session) -> Sequence[Org]:
    return session.scalars(select(Org).order_by(Org.created_at, Org.id)).all()


def find(session: Session, id_or_name: str) -> list[Org]:
    """Orgs whose id or name is `id_or_name` (names are not unique)."""
    return list(session.scalars(select(Org).where(
        or_(Org.id == id_or_name, Org.name == id_or_name)).order_by(Org.id)))


def get(session: Session, org_id: str) -> Org | None:
    return session.get(Org, org_id)
