"""Searching everything an assistant knows at once.

One ranking over all associated datasets the caller may read, where each dataset's records
are narrowed by its association filter, AND the caller's filter, AND the access policy,
all inside the index's restriction predicate (applied before the cut, so a filter never
costs recall and nothing outside it can influence the results).

Embedders: the query is embedded once, by the configured embedder. A dataset whose vectors
come from another embedder (a re-index after an embedder change is pending) cannot answer
that vector. In hybrid mode it takes part through its lexical side, fused with the rest;
semantic mode refuses with 409 and names it, rather than silently leaving it out.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.orm import Session

from dataloft.errors import Conflict
from dataloft.ingest.embed.base import Embedder
from dataloft.kit import filters
from dataloft.kit.principal import Principal
from dataloft.knowledge.service import Source, sources
from dataloft.models import Dataset, Record
from dataloft.search import service as search
from dataloft.search.repository import Found
from dataloft.search.service import SearchBody
from dataloft.storage.index.base import Index

DEFAULT_TAKE = 10


def knowledge_scope(srcs: list[Source], dialect: str) -> ColumnElement[bool] | None:
    """Records of the sources, each within its association filter; None when no source
    has a filter (the dataset ids passed to the index already say which datasets)."""
    if all(s.filter is None for s in srcs):
        return None
    return or_(*(and_(Record.dataset_id == s.dataset.id,
                      filters.to_sql(s.filter, Record.meta, search.record_columns(), dialect))
                 for s in srcs))


def _stale(datasets: list[Dataset], embedder: Embedder) -> list[Dataset]:
    return [d for d in datasets if d.embedding_model is not None
            and (d.embedding_model, d.embedding_dimension) != (embedder.name, embedder.dimension)]


def search_knowledge(session: Session, index: Index, embedder: Embedder, principal: Principal,
                     assistant_id: str, body: SearchBody, dialect: str
                     ) -> list[tuple[Found, float]]:
    return search_sources(session, index, embedder, principal,
                          sources(session, principal, assistant_id), body, dialect)


def search_sources(session: Session, index: Index, embedder: Embedder, principal: Principal,
                   srcs: list[Source], body: SearchBody, dialect: str
                   ) -> list[tuple[Found, float]]:
    """One ranking over the sources (each within its filter), as the principal may see."""
    caller = search.restriction(principal, body.filter, dialect)  # validates the filter too
    if not srcs:
        return []
    datasets = [s.dataset for s in srcs]
    stale = _stale(datasets, embedder)
    if body.mode == "semantic" and stale:
        names = ", ".join(f"{d.id} ({d.embedding_model})" for d in stale)
        raise Conflict(f"semantic search cannot reach datasets whose vectors come from another "
                       f"embedder than {embedder.name!r}: {names}; they are re-indexed in the "
                       f"background; use mode 'hybrid' or 'lexical' meanwhile")
    parts = [p for p in (knowledge_scope(srcs, dialect), caller) if p is not None]
    restrict = and_(*parts) if parts else None
    take = body.take or DEFAULT_TAKE
    weights = {float(d.settings.get("hybridLexicalWeight", search.DEFAULT_LEXICAL_WEIGHT))
               for d in datasets}
    # Several datasets share one ranking: their own weights apply only when they agree.
    weight = weights.pop() if len(weights) == 1 else search.DEFAULT_LEXICAL_WEIGHT
    floor = {d.id: float(d.settings["searchMinScore"]) for d in datasets
             if d.settings.get("searchMinScore") is not None}

    def ranked(depth: int) -> list[tuple[int, float]]:
        return search.rank(session, index, embedder, datasets, body.search, body.mode, depth,
                           restrict, weight)

    return [(r, s) for r, s in search.page(session, ranked, body.mode, take)
            if s >= floor.get(r.dataset_id, s)]


def render(record: Found, score: float, query: str) -> dict[str, Any]:
    return {**search.render(record, score, query), "datasetId": record.dataset_id}
