"""The agent's SQL: its scope's datasets, files and records, and the stored conversations,
responses and feedback."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from dataloft.kit import policy
from dataloft.kit.principal import Principal
from dataloft.models import (
    AgentFeedback,
    AgentResponse,
    Attachment,
    Conversation,
    Dataset,
    File,
    Record,
)

# --- scope ------------------------------------------------------------------------------------


def scope_datasets(session: Session, principal: Principal, assistant_id: str,
                   owner_scopes: list[str]) -> list[Dataset]:
    """The agent's per-scope (Inconvo upload) datasets of these scopes the principal reads."""
    if not owner_scopes:
        return []
    return list(session.scalars(
        select(Dataset).where(Dataset.assistant_id == assistant_id,
                              Dataset.owner_scope.in_(owner_scopes), policy.datasets(principal))
        .order_by(Dataset.created_at, Dataset.id)).all())


def files(session: Session, principal: Principal, dataset_ids: list[str],
          limit: int) -> list[tuple[File, str]]:
    rows = session.execute(
        select(File, Attachment.dataset_id).join(Attachment, Attachment.file_id == File.id)
        .where(Attachment.dataset_id.in_(dataset_ids), policy.files(principal))
        .order_by(File.created_at, File.id).limit(limit)).all()
    return [(f, d) for f, d in rows]


def file_names(session: Session, file_ids: list[str]) -> dict[str, str]:
    if not file_ids:
        return {}
    return {i: n or "" for i, n in session.execute(
        select(File.id, File.name).where(File.id.in_(file_ids))).all()}


def record(session: Session, principal: Principal, record_id: str,
           within: ColumnElement[bool]) -> Record | None:
    found: Record | None = session.scalar(select(Record).where(
        Record.id == record_id, policy.records(principal), within))
    return found


def dataset_counts(session: Session, dataset_ids: list[str]) -> dict[str, int]:
    if not dataset_ids:
        return {}
    return {d: int(n) for d, n in session.execute(
        select(Record.dataset_id, func.count()).where(Record.dataset_id.in_(dataset_ids))
        .group_by(Record.dataset_id)).all()}


# --- conversations ----------------------------------------------------------------------------


def add(session: Session, row: Any) -> None:
    session.add(row)
    session.flush()


def conversation(session: Session, org_id: str, assistant_id: str,
                 conversation_id: str) -> Conversation | None:
    found: Conversation | None = session.scalar(select(Conversation).where(
        Conversation.id == conversation_id, Conversation.org_id == org_id,
        Conversation.assistant_id == assistant_id))
    return found


def conversations(session: Session, org_id: str, assistant_id: str, user: str | None,
                  before: str | None, limit: int) -> Sequence[Conversation]:
    """Newest first; the context filter is applied by the caller (JSON equality differs
    between the backends)."""
    where = [Conversation.org_id == org_id, Conversation.assistant_id == assistant_id]
    if user is not None:
        where.append(Conversation.user_identifier == user)
    if before is not None:
        where.append(Conversation.id < before)
    return session.scalars(select(Conversation).where(and_(*where))
                           .order_by(Conversation.id.desc()).limit(limit)).all()


def delete(session: Session, row: Any) -> None:
    session.delete(row)
    session.flush()


def responses(session: Session, conversation_id: str) -> Sequence[AgentResponse]:
    return session.scalars(select(AgentResponse).where(
        AgentResponse.conversation_id == conversation_id)
        .order_by(AgentResponse.created_at, AgentResponse.id)).all()


def response(session: Session, conversation_id: str, response_id: str) -> AgentResponse | None:
    found: AgentResponse | None = session.scalar(select(AgentResponse).where(
        AgentResponse.id == response_id, AgentResponse.conversation_id == conversation_id))
    return found


def feedback(session: Session, response_id: str, feedback_id: str) -> AgentFeedback | None:
    found: AgentFeedback | None = session.scalar(select(AgentFeedback).where(
        AgentFeedback.id == feedback_id, AgentFeedback.response_id == response_id))
    return found
