"""An assistant's dataset knowledge: which datasets it reads, each under an optional filter.

Everything an assistant reaches (search records, SQL rows) goes through `sources`, so the
association filter is applied in one place, on top of the caller's access policy.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from dataloft.assistants import service as assistants
from dataloft.kit.filters import Filter, parse_filter
from dataloft.kit.principal import Principal
from dataloft.knowledge import repository
from dataloft.models import Dataset


@dataclass(frozen=True)
class Source:
    """One dataset as an assistant sees it: the rows matching `filter` (None = all)."""

    dataset: Dataset
    filter: Filter | None


def sources(session: Session, principal: Principal, assistant_id: str) -> list[Source]:
    """The datasets associated with the assistant that the caller may read, oldest first."""
    assistant = assistants.get(session, principal, assistant_id)
    rows = repository.visible_links(session, principal, assistant.id)
    return [Source(dataset, parse_filter(link.filter)) for link, dataset in rows]
