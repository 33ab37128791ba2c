"""The agent's automatic scope: what a conversation reaches, with no manual association.

- the assistant's associated datasets (Informer), each under its association filter;
- the assistant's per-scope datasets (Inconvo uploads) of the principal's own user scope
  and of every context pair it holds.
All of it is read under the one access policy for the principal: a dataset the principal
may not read is simply not part of the scope.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import ColumnElement, false
from sqlalchemy.orm import Session

from dataloft.agent import repository
from dataloft.config import Settings
from dataloft.ingest.embed.base import Embedder
from dataloft.kit.db import Database
from dataloft.kit.principal import Principal
from dataloft.knowledge import service as knowledge
from dataloft.knowledge.search import knowledge_scope
from dataloft.knowledge.service import Source
from dataloft.models import Record
from dataloft.query.service import QueryService
from dataloft.storage.index.base import Index


class Deps(Protocol):
    """What the agent needs of the running app (dataloft.context.Context has it)."""

    settings: Settings
    db: Database
    index: Index
    embedder: Embedder
    query: QueryService

    @property
    def dialect(self) -> str: ...


@dataclass(frozen=True)
class Scope:
    """Who asks, through which assistant."""

    principal: Principal
    assistant_id: str

    def sources(self, session: Session) -> list[Source]:
        linked = knowledge.sources(session, self.principal, self.assistant_id)
        seen = {s.dataset.id for s in linked}
        owners = [self.principal.own_scope] if self.principal.is_end_user else []
        owners += self.principal.context_scopes()
        uploads = [Source(d, None) for d in repository.scope_datasets(
            session, self.principal, self.assistant_id, owners) if d.id not in seen]
        return linked + uploads


def within(sources: list[Source], dialect: str) -> ColumnElement[bool]:
    """Records of the sources, each under its filter."""
    if not sources:
        return false()
    narrowed = knowledge_scope(sources, dialect)
    if narrowed is not None:
        return narrowed
    return Record.dataset_id.in_([s.dataset.id for s in sources])
