"""SQL of API keys as the access policy sees them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from dataloft.kit import policy
from dataloft.kit.principal import Principal
from dataloft.models import ApiKey, InstanceSecret


def manageable_ids(session: Session, principal: Principal) -> list[str]:
    # Rights are JSON lists: the subset rule reads best in Python, over one org's keys.
    keys = session.scalars(select(ApiKey).where(ApiKey.org_id == principal.org_id))
    return [key.id for key in keys if policy.key_manageable(principal, key)]


def listing(session: Session, principal: Principal) -> Select[Any]:
    return select(ApiKey).where(ApiKey.id.in_(manageable_ids(session, principal)))


def get(session: Session, key_id: str) -> ApiKey | None:
    return session.get(ApiKey, key_id)


# --- instance secrets (the signing keys, encrypted: keys/signing.py) -------------------------

def secrets_named(session: Session, prefix: str) -> dict[str, str]:
    rows = session.scalars(select(InstanceSecret).where(InstanceSecret.name.startswith(prefix)))
    return {row.name: row.value for row in rows}


def secret(session: Session, name: str) -> str | None:
    row = session.get(InstanceSecret, name)
    return None if row is None else row.value


def put_secret(session: Session, name: str, value: str) -> None:
    row = session.get(InstanceSecret, name)
    if row is None:
        session.add(InstanceSecret(name=name, value=value))
    else:
        row.value = value
    session.flush()


def drop_secrets(session: Session, names: list[str]) -> None:
    if names:
        session.execute(delete(InstanceSecret).where(InstanceSecret.name.in_(names)))
