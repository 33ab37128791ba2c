"""An assistant's dataset knowledge: which datasets it reads, each under an optional filter.

Everything an assistant reaches (search records, SQL rows) goes through `sources`, so the
association filter is applied in one place, on top of the caller's access policy.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from dataloft.assistants import service as assistants
from dataloft.kit import policy
from dataloft.kit.filters import Filter, parse_filter
from dataloft.kit.principal import Principal
from dataloft.models import AssistantDataset, Dataset


@dataclass(frozen=True)
class Source:
    """One dataset as an assistant sees it: the rows matching `filter` (None = all)."""

    dataset: Dataset
    filter: Filter | None


def sources(session: Session, principal: Principal, assistant_id: str) -> list[Source]:
    """The datasets associated with the assistant that the caller may read, oldest first."""
    assistant = assistants.get(session, principal, assistant_id)
    rows = session.execute(
        select(AssistantDataset, Dataset)
        .join(Dataset, Dataset.id == AssistantDataset.dataset_id)
        .where(AssistantDataset.assistant_id == assistant.id, policy.datasets(principal))
        .order_by(AssistantDataset.created_at, AssistantDataset.id)
    ).all()
    return [Source(dataset, parse_filter(link.filter)) for link, dataset in rows]
