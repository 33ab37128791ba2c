"""All SQL over files and their upload tickets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, and_, delete, or_, select
from sqlalchemy.orm import Session

from dataloft.kit import policy
from dataloft.kit.principal import Principal
from dataloft.models import File, UploadTicket


def changeable(session: Session, principal: Principal, file_id: str) -> bool:
    """Whether the principal may change or delete the file (kit/policy.py)."""
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


def save_file(session: Session, file: File) -> None:
    """Write a new or changed file now."""
    session.add(file)
    session.flush()


def visible_file(session: Session, principal: Principal, file_id: str) -> File | None:
    return session.scalar(select(File).where(File.id == file_id, policy.files(principal)))


def public_file(session: Session, file_id: str) -> File | None:
    return session.scalar(select(File).where(File.id == file_id, File.visibility == "public"))


def file_by_id(session: Session, file_id: str) -> File | None:
    return session.get(File, file_id)


def locked_file(session: Session, file_id: str) -> File | None:
    """The file, its row locked until the transaction ends."""
    return session.get(File, file_id, with_for_update=True)


def files_listing(principal: Principal) -> Select[Any]:
    return select(File).where(policy.files(principal))


def lock_file(session: Session, file: File) -> None:
    """Reload the file's row under a row lock (InvalidRequestError if it is gone)."""
    session.refresh(file, with_for_update=True)


def pending_bucket_keys(session: Session, file_id: str) -> Sequence[str | None]:
    """The bucket keys of the file's unconfirmed direct uploads."""
    return session.scalars(select(UploadTicket.blob_key).where(
        UploadTicket.file_id == file_id, UploadTicket.blob_key.is_not(None))).all()


def delete_file(session: Session, file: File) -> None:
    session.delete(file)
    session.flush()


def add_ticket(session: Session, ticket: UploadTicket) -> None:
    session.add(ticket)


def ticket_by_id(session: Session, ticket_id: str) -> UploadTicket | None:
    return session.get(UploadTicket, ticket_id)


def delete_ticket(session: Session, ticket: UploadTicket) -> None:
    session.delete(ticket)


def expired_tickets(session: Session, now: int, grace_ms: int
                    ) -> Sequence[tuple[str, str | None, str]]:
    """(ticket id, bucket key, org id) of tickets past their life: a URL on this server at
    once, a bucket ticket `grace_ms` later."""
    return [(t, k, o) for t, k, o in session.execute(
        select(UploadTicket.id, UploadTicket.blob_key, File.org_id)
        .join(File, File.id == UploadTicket.file_id)
        .where(or_(and_(UploadTicket.blob_key.is_(None), UploadTicket.expires_at < now),
                   UploadTicket.expires_at < now - grace_ms))).all()]


def bucket_tickets(session: Session, file_id: str) -> Sequence[UploadTicket]:
    """The file's direct-to-bucket tickets, oldest first."""
    return session.scalars(
        select(UploadTicket)
        .where(UploadTicket.file_id == file_id, UploadTicket.blob_key.is_not(None))
        .order_by(UploadTicket.created_at, UploadTicket.id)).all()


def consume_ticket(session: Session, ticket_id: str) -> bool:
    """Delete the ticket; True for exactly one of racing callers."""
    # A conditional DELETE, not session.delete(): of two racing transactions exactly one
    # sees rowcount 1, on SQLite and on PostgreSQL (the loser waits for the row lock).
    result = session.execute(delete(UploadTicket).where(UploadTicket.id == ticket_id))
    return bool(getattr(result, "rowcount", 0) == 1)
