"""SQL of API keys as the access policy sees them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from dataloft.kit import policy
from dataloft.kit.principal import Principal
from dataloft.models import ApiKey


def manageable_ids(session: Session, principal: Principal) -> list[str]:
    # Rights are JSON lists: the subset rule reads best in Python, over one org's keys.
    keys = session.scalars(select(ApiKey).where(ApiKey.org_id == principal.org_id))
    return [key.id for key in keys if policy.key_manageable(principal, key)]


def listing(session: Session, principal: Principal) -> Select[Any]:
    return select(ApiKey).where(ApiKey.id.in_(manageable_ids(session, principal)))


def get(session: Session, key_id: str) -> ApiKey | None:
    return session.get(ApiKey, key_id)
