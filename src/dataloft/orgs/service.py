"""Organisations: made by an instance operator (the CLI) or an instance-admin key (HTTP).

A new organisation gets its first admin key (shown once) and its default assistant in the
transaction that makes it, so it is usable at once, by a running server too."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from dataloft.assistants import service as assistants
from dataloft.errors import BadRequest, NotAuthorized, not_found
from dataloft.keys import service as keys
from dataloft.kit.ids import new_id
from dataloft.kit.principal import INSTANCE_ADMIN, Principal
from dataloft.models import Org
from dataloft.orgs import repository


def require_instance_admin(principal: Principal) -> None:
    if principal.is_end_user or INSTANCE_ADMIN not in principal.permissions:
        raise NotAuthorized(f"this needs an instance-admin key (permission {INSTANCE_ADMIN!r})")


def create(session: Session, name: str, *, key_name: str = "first admin") -> tuple[Org, str]:
    """A new organisation and the raw value of its first admin key."""
    name = name.strip()
    if not name or len(name) > 200:
        raise BadRequest("an organisation needs a name of 1-200 characters")
    org = repository.add(session, Org(id=new_id("org"), name=name))
    _, raw = keys.create_key(session, org.id, name=key_name)
    assistants.ensure_defaults(session)
    return org, raw


def resolve(session: Session, id_or_name: str) -> Org:
    """The one org with this id or name."""
    found = repository.find(session, id_or_name)
    if not found:
        raise not_found("organisation", id_or_name)
    if len(found) > 1:
        raise BadRequest(f"{len(found)} organisations are named {id_or_name!r}; use an id")
    return found[0]


def get(session: Session, org_id: str) -> Org:
    org = repository.get(session, org_id)
    if org is None:
        raise not_found("organisation", org_id)
    return org


def listing(session: Session) -> list[Org]:
    return list(repository.all_orgs(session))


def render(org: Org) -> dict[str, Any]:
    return {"id": org.id, "name": org.name, "createdAt": org.created_at,
            "updatedAt": org.updated_at}
