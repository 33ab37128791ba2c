"""All SQL over assistant-dataset associations (an assistant's dataset knowledge)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from dataloft.kit import policy
from dataloft.kit.principal import Principal
from dataloft.models import AssistantDataset, Dataset


def dataset_by_ref(session: Session, principal: Principal, ref: str) -> Dataset | None:
    """A dataset the principal may read whose id or alias is ref; the id wins."""
    return session.scalars(
        select(Dataset)
        .where(or_(Dataset.id == ref, Dataset.alias == ref), policy.datasets(principal))
        .order_by((Dataset.id == ref).desc())
        .limit(1)
    ).first()


def _visible_links(stmt: Any, assistant_id: str, principal: Principal) -> Any:
    return (stmt.join(Dataset, Dataset.id == AssistantDataset.dataset_id)
            .where(AssistantDataset.assistant_id == assistant_id, policy.datasets(principal)))


def count_visible_links(session: Session, principal: Principal, assistant_id: str) -> int:
    """How many of the assistant's associations reach a dataset the principal may read."""
    return int(session.scalar(_visible_links(
        select(func.count()).select_from(AssistantDataset), assistant_id, principal)) or 0)


def visible_links(session: Session, principal: Principal, assistant_id: str, *,
                  start: int | None = None, limit: int | None = None
                  ) -> list[tuple[AssistantDataset, Dataset]]:
    """The assistant's associations with datasets the principal may read, oldest first
    (one page of them when start and limit are given)."""
    stmt = (_visible_links(select(AssistantDataset, Dataset), assistant_id, principal)
            .order_by(AssistantDataset.created_at, AssistantDataset.id))
    if start is not None:
        stmt = stmt.offset(start)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [(link, dataset) for link, dataset in session.execute(stmt).all()]


def association(session: Session, assistant_id: str, dataset_id: str
                ) -> AssistantDataset | None:
    return session.scalar(select(AssistantDataset).where(
        AssistantDataset.assistant_id == assistant_id,
        AssistantDataset.dataset_id == dataset_id))


def association_exists(session: Session, assistant_id: str, dataset_id: str) -> bool:
    return session.scalar(select(AssistantDataset.id).where(
        AssistantDataset.assistant_id == assistant_id,
        AssistantDataset.dataset_id == dataset_id)) is not None


def save_association(session: Session, link: AssistantDataset) -> None:
    """Write a new or changed link now; IntegrityError if a new pair was associated
    meanwhile."""
    session.add(link)
    session.flush()


def delete_association(session: Session, link: AssistantDataset) -> None:
    session.delete(link)
    session.flush()
