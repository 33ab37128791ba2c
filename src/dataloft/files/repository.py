"""SQL of the file rules that the access policy compiles (write checks, alias clashes)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from dataloft.kit import policy
from dataloft.kit.principal import Principal
from dataloft.models import File


def changeable(session: Session, principal: Principal, file_id: str) -> bool:
    found = session.scalar(select(File.id).where(File.id == file_id,
                                                 policy.files_changeable(principal)))
    return found is not None


def alias_holder(session: Session, principal: Principal, owner_scope: str, alias: str
                 ) -> str | None:
    """The file of `owner_scope` holding `alias`, among those the principal sees: an alias
    held by a file it cannot see is free for it (aliases are unique per owner scope)."""
    return session.scalar(select(File.id).where(
        File.org_id == principal.org_id, File.owner_scope == owner_scope, File.alias == alias,
        policy.files(principal)).limit(1))
