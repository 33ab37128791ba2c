"""All SQL over API keys, orgs and the instance's secrets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, delete, select
from sqlalchemy.orm import Session

from dataloft.kit import policy
from dataloft.kit.db import Lookup
from dataloft.kit.principal import Principal
from dataloft.models import ApiKey, InstanceSecret, Org


def add_key(session: Session, key: ApiKey) -> None:
    session.add(key)
    session.flush()


@dataclass(frozen=True, slots=True)
class Grant:
    """What a request's key grants: read on every request through a Core select of these
    columns, without the ORM's per-query loading machinery."""

    id: str
    org_id: str
    permissions: list[str]
    datasets: list[str] | None
    revoked_at: int | None


# Built once: on every request, building the statement and running it through the ORM
# session's execute path cost more than the indexed read itself (docs/decisions.md).
_GRANT = Lookup(select(ApiKey.id, ApiKey.org_id, ApiKey.permissions, ApiKey.datasets,
                       ApiKey.revoked_at).where(ApiKey.hash == bindparam("hash")))


def grant_by_hash(session: Session, hash: str) -> Grant | None:
    row = _GRANT.first(session, {"hash": hash})
    return Grant(*row) if row is not None else None


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


def manageable_ids(session: Session, principal: Principal) -> list[str]:
    # Rights are JSON lists: the subset rule reads best in Python, over one org's keys.
    keys = session.scalars(select(ApiKey).where(ApiKey.org_id == principal.org_id))
    return [key.id for key in keys if policy.key_manageable(principal, key)]


def manageable_listing(session: Session, principal: Principal) -> Select[Any]:
    return select(ApiKey).where(ApiKey.id.in_(manageable_ids(session, principal)))


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
