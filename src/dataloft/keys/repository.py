"""All SQL over API keys, orgs and the instance's secrets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from dataloft.models import ApiKey, InstanceSecret, Org


def add_key(session: Session, key: ApiKey) -> None:
    session.add(key)
    session.flush()


def key_by_hash(session: Session, hash: str) -> ApiKey | None:
    return session.scalar(select(ApiKey).where(ApiKey.hash == hash))


def key_by_id(session: Session, key_id: str) -> ApiKey | None:
    return session.get(ApiKey, key_id)


def keys_of(session: Session, org_id: str | None) -> Sequence[ApiKey]:
    """Every key, ordered by id; only the org's when one is given."""
    query = select(ApiKey).order_by(ApiKey.id)
    if org_id:
        query = query.where(ApiKey.org_id == org_id)
    return session.scalars(query).all()


def keys_listing(org_id: str) -> Select[Any]:
    return select(ApiKey).where(ApiKey.org_id == org_id)


def any_org_exists(session: Session) -> bool:
    return session.scalar(select(Org.id).limit(1)) is not None


def add_org(session: Session, org: Org) -> None:
    session.add(org)
    session.flush()


def first_org_id(session: Session) -> str | None:
    return session.scalar(select(Org.id).order_by(Org.id).limit(1))


def secret(session: Session, name: str, make: Callable[[], str]) -> str:
    """The instance secret called name; stored with the value make() on first use."""
    row = session.get(InstanceSecret, name)
    if row is None:
        row = InstanceSecret(name=name, value=make())
        session.add(row)
    return row.value
