"""API keys: created once, shown once, stored as a sha256 hash.

Keys carry 256 bits of randomness, so a fast hash is enough: there is nothing to brute-force,
and lookups by hash stay one indexed query per request.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from dataloft.errors import BadRequest, NotAuthenticated, not_found
from dataloft.keys import repository
from dataloft.kit import policy
from dataloft.kit.ids import new_id, now_ms
from dataloft.kit.principal import PERMISSIONS, Principal, check_user_identifier
from dataloft.models import ApiKey, Org

KEY_PREFIX = "dlk_"


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def generate_raw_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def create_key(
    session: Session,
    org_id: str,
    *,
    name: str = "",
    permissions: Sequence[str] = ("admin",),
    raw: str | None = None,
    datasets: Sequence[str] | None = None,
) -> tuple[ApiKey, str]:
    unknown = set(permissions) - set(PERMISSIONS)
    if unknown:
        raise BadRequest(f"unknown permissions: {sorted(unknown)}; known: {list(PERMISSIONS)}")
    raw = raw or generate_raw_key()
    if len(raw) < 16:
        raise BadRequest("an API key must be at least 16 characters long")
    key = ApiKey(
        id=new_id("key"),
        org_id=org_id,
        name=name,
        prefix=raw[:12],
        hash=hash_key(raw),
        permissions=list(permissions),
        datasets=list(datasets) if datasets is not None else None,
    )
    repository.add_key(session, key)
    return key, raw


def _principal(key: ApiKey | repository.Grant) -> Principal:
    return Principal(org_id=key.org_id, key_id=key.id, permissions=frozenset(key.permissions),
                     datasets=frozenset(key.datasets) if key.datasets is not None else None)


def authenticate(session: Session, raw: str) -> Principal:
    key = repository.grant_by_hash(session, hash_key(raw))
    if key is None or key.revoked_at is not None:
        raise NotAuthenticated("the API key is invalid or revoked")
    return _principal(key)


def acting_for(principal: Principal, user_identifier: str, context: dict[str, str]) -> Principal:
    """A backend key acting for one of its end-users (X-RunAs-User-Id, X-User-Context)."""
    return replace(principal, user_identifier=check_user_identifier(user_identifier),
                   user_context=context)


def from_token(session: Session, claims: dict[str, Any]) -> Principal:
    """The principal of a verified end-user token; its minting key must still be live."""
    key = repository.key_by_id(session, str(claims.get("k")))
    if key is None or key.revoked_at is not None:
        raise NotAuthenticated("the end-user token is invalid or expired")
    base = _principal(key)
    granted = frozenset(p for p in claims.get("p", []) if base.can(p))
    return replace(base, permissions=granted, user_identifier=str(claims["u"]),
                   user_context=dict(claims.get("c") or {}), via_token=True)


def list_keys(session: Session, org_id: str | None = None) -> Sequence[ApiKey]:
    return repository.keys_of(session, org_id)


def revoke_key(session: Session, key_id: str, org_id: str | None = None) -> ApiKey:
    key = repository.key_by_id(session, key_id)
    if key is None or (org_id is not None and key.org_id != org_id):
        raise not_found("key", key_id)
    key.revoked_at = key.revoked_at or now_ms()
    return key


def listing(session: Session, principal: Principal) -> Select[Any]:
    """The keys the principal may manage (kit/policy.py `key_manageable`)."""
    return repository.manageable_listing(session, principal)


def revoke_managed(session: Session, principal: Principal, key_id: str) -> ApiKey:
    """Revoke a key the principal may manage; one it may not answers like a missing one
    (a limited or lesser key does not learn what else exists)."""
    key = repository.key_by_id(session, key_id)
    if key is None or not policy.key_manageable(principal, key):
        raise not_found("key", key_id)
    key.revoked_at = key.revoked_at or now_ms()
    return key


def render(key: ApiKey) -> dict[str, Any]:
    return {"id": key.id, "name": key.name, "prefix": key.prefix,
            "permissions": key.permissions, "datasets": key.datasets,
            "revokedAt": key.revoked_at, "createdAt": key.created_at,
            "updatedAt": key.updated_at}


def bootstrap(session: Session, raw: str | None = None) -> str | None:
    """On first start create the first org and an admin key; return the raw key once."""
    if repository.any_org_exists(session):
        return None
    org = Org(id=new_id("org"), name="default")
    repository.add_org(session, org)
    _, raw_key = create_key(session, org.id, name="bootstrap admin", raw=raw or None)
    return raw_key


def default_org_id(session: Session) -> str:
    org_id = repository.first_org_id(session)
    if org_id is None:
        raise BadRequest("no organisation exists yet; start the server once to bootstrap")
    return org_id
