"""Dataset search: policy and filter first, then lexical, semantic or hybrid ranking.

Hybrid is a convex combination of min-max normalised scores over the union of both
candidate pools (relative score fusion): unlike rank fusion it keeps how much better the
best hit is, which matters when one side is confident and the other is not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, and_
from sqlalchemy.orm import Session

from dataloft.datasets import service as datasets
from dataloft.ingest.embed.base import Embedder
from dataloft.kit import filters, policy
from dataloft.kit.principal import Principal
from dataloft.models import Record
from dataloft.search import repository
from dataloft.search.highlight import highlights
from dataloft.search.repository import Found
from dataloft.storage.index.base import Index

MAX_TAKE = 200
# Weight of the lexical side in hybrid mode; measured on SciFact (docs/benchmarks.md).
DEFAULT_LEXICAL_WEIGHT = 0.7
# Candidates taken from each side before fusion.
POOL = 200
# Ranked records loaded per record still missing from a result page (top()).
LOAD_AHEAD = 3
# Hits a semantic page asks for first (first_depth).
SEMANTIC_FIRST = 64

Mode = Literal["hybrid", "lexical", "semantic"]


class SearchBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    search: str = Field(max_length=10_000)
    filter: dict[str, Any] | None = None
    take: int | None = Field(default=None, ge=1, le=MAX_TAKE)
    mode: Mode = "hybrid"


def record_columns() -> dict[str, Any]:
    return {"source": Record.source, "fileId": Record.file_id, "createdAt": Record.created_at}


def _side(hits: list[tuple[int, float]]) -> tuple[np.ndarray, np.ndarray]:
    """One side's pks and its min-max normalised scores (all 1.0 when they are equal)."""
    if not hits:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    # Two columns at once: a generator per column costs ~4x for a 200-hit pool.
    pk_column, score_column = zip(*hits, strict=True)
    pks = np.array(pk_column, dtype=np.int64)
    scores = np.array(score_column, dtype=np.float64)
    lo, hi = scores.min(), scores.max()
    span = hi - lo
    return pks, (scores - lo) / span if span > 0 else np.ones(len(hits))


def _union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """np.union1d (the sorted distinct values) by a sort: union1d's hash-based unique costs
    ~6x as much on a few hundred pks."""
    both = np.sort(np.concatenate([a, b]))
    if len(both) < 2:
        return both
    keep = np.empty(len(both), dtype=bool)
    keep[0] = True
    np.not_equal(both[1:], both[:-1], out=keep[1:])
    return both[keep]


def fuse(lexical: list[tuple[int, float]], semantic: list[tuple[int, float]],
         lexical_weight: float, limit: int | None = None) -> list[tuple[int, float]]:
    """The union of both sides ranked by the weighted sum; the first `limit` only, if given
    (a page needs the pool's best, not the up to 2 x POOL tuples of the whole union)."""
    lex_pks, lex = _side(lexical if lexical_weight > 0 else [])
    sem_pks, sem = _side(semantic if lexical_weight < 1 else [])
    pks = _union(lex_pks, sem_pks)
    lex_at, sem_at = np.searchsorted(pks, lex_pks), np.searchsorted(pks, sem_pks)
    lexical_part, semantic_part = np.zeros(len(pks)), np.zeros(len(pks))
    lexical_part[lex_at], semantic_part[sem_at] = lex, sem
    sides = np.zeros(len(pks), dtype=np.int64)
    sides[lex_at] += 1
    sides[sem_at] += 1
    scores = lexical_weight * lexical_part + (1 - lexical_weight) * semantic_part
    # Min-max maps each side's weakest candidate to 0, like "not found by that side": at
    # equal scores, a candidate of more sides ranks first, then the lower pk. (Vectorised:
    # a few hundred candidates per request, each a dict entry and a tuple before.)
    order = np.lexsort((pks, -sides, -scores))[:limit]
    return list(zip(pks[order].tolist(), scores[order].tolist(), strict=True))


class Searchable(Protocol):
    """A dataset as ranking reads it: the ORM row, or datasets.repository.Searched."""

    @property
    def id(self) -> str: ...
    @property
    def embedding_model(self) -> str | None: ...
    @property
    def embedding_dimension(self) -> int | None: ...


def rank(session: Session, index: Index, embedder: Embedder, datasets_: Sequence[Searchable],
         query: str, mode: Mode, take: int, restrict: ColumnElement[bool] | None,
         lexical_weight: float) -> list[tuple[int, float]]:
    ids = [d.id for d in datasets_]
    # Semantic search only over datasets whose vectors come from the current embedder.
    vector_ids = [d.id for d in datasets_ if d.embedding_model == embedder.name
                  and d.embedding_dimension == embedder.dimension]
    pool = max(POOL, take)
    lexical = index.lexical(session, ids, query, pool, restrict) if mode != "semantic" else []
    semantic: list[tuple[int, float]] = []
    if mode != "lexical" and vector_ids and query.strip():
        vector = embedder.embed([query])[0]
        # Alone, the semantic side ranks only what is asked (fusion needs the whole pool).
        semantic = index.semantic(session, vector_ids, vector,
                                  take if mode == "semantic" else pool, restrict)
    if mode == "lexical":
        return lexical[:take]
    if mode == "semantic":
        return semantic[:take]
    return fuse(lexical, semantic, lexical_weight, take)


def restriction(principal: Principal, raw_filter: object, dialect: str
                ) -> ColumnElement[bool] | None:
    """What a principal may find within datasets it may read: the access policy AND the
    caller's filter. None when neither narrows anything (a backend key, no filter), which
    spares the vector search a scan for the allowed rows."""
    parsed = filters.parse_filter(raw_filter)
    narrowing = [filters.to_sql(parsed, Record.meta, record_columns(), dialect)] if parsed else []
    if principal.is_end_user or principal.datasets is not None:
        narrowing.append(policy.records(principal))
    return and_(*narrowing) if narrowing else None


def search(session: Session, index: Index, embedder: Embedder, principal: Principal,
           dataset_id: str, body: SearchBody, dialect: str) -> list[tuple[Found, float]]:
    dataset = datasets.searched(session, principal, dataset_id)
    restrict = restriction(principal, body.filter, dialect)
    take = body.take or int(dataset.settings.get("searchMaxRecords") or 10)
    weight = float(dataset.settings.get("hybridLexicalWeight", DEFAULT_LEXICAL_WEIGHT))
    min_score = dataset.settings.get("searchMinScore")

    def ranked(depth: int) -> list[tuple[int, float]]:
        hits = rank(session, index, embedder, [dataset], body.search, body.mode, depth,
                    restrict, weight)
        if min_score is not None:
            hits = [(pk, s) for pk, s in hits if s >= float(min_score)]
        return hits

    return page(session, ranked, body.mode, take)


def first_depth(mode: Mode, take: int) -> int:
    """How many ranked hits a page of `take` asks for first. Hybrid fuses whole pools
    (min-max over each side's POOL) and lexical's top-k costs the same at any depth, so
    they take the pool at once. A semantic page rarely needs more than the records top()
    loads first. A graph walk is as wide for 64 hits as for 200 (ann.py: EXPANSION_SEARCH,
    the width recall@10 on real vectors asks for), so its first hits are the same; 64
    rescores and orders fewer rows (~0.88x the ranking's CPU at 228k vectors, §31)."""
    full = max(POOL, take)
    return full if mode != "semantic" else min(full, max(SEMANTIC_FIRST, 2 * LOAD_AHEAD * take))


def page(session: Session, ranked: Callable[[int], list[tuple[int, float]]], mode: Mode,
         take: int) -> list[tuple[Found, float]]:
    """The first `take` distinct rows of `ranked(depth)`: a row's parts beyond its best are
    dropped, and the rows after them move up, so a short first list (first_depth) may run
    dry: then the whole candidate list is ranked and the page made again from it."""
    depth, full = first_depth(mode, take), max(POOL, take)
    hits = ranked(depth)
    out = top(session, hits, take)
    if len(out) < take and depth < full and len(hits) >= depth:
        out = top(session, ranked(full), take)
    return out


def load(session: Session, hits: list[tuple[int, float]]) -> list[tuple[Found, float]]:
    if not hits:
        return []
    by_pk = repository.records_by_pk(session, [pk for pk, _ in hits])
    return [(by_pk[pk], score) for pk, score in hits if pk in by_pk]


def top(session: Session, hits: list[tuple[int, float]], take: int
        ) -> list[tuple[Found, float]]:
    """The records of the first `take` hits, in order, one per table row: a row over the
    token budget is several records (`part` 1, 2...), of which only the best ranked is
    kept, as the row was one record before it had to be split (and a result list of one
    row's parts crowds out the other rows)."""
    out: list[tuple[Found, float]] = []
    rows: set[tuple[Any, ...]] = set()
    start = 0
    while len(out) < take and start < len(hits):
        # More than is missing: a split row's parts tend to rank together, and a round
        # trip for each batch costs more than a few spare rows.
        batch = hits[start:start + LOAD_AHEAD * (take - len(out))]
        start += len(batch)
        for record, score in load(session, batch):
            if len(out) == take:
                break
            row = row_of_part(record)
            if row is not None and row in rows:
                continue
            if row is not None:
                rows.add(row)
            out.append((record, score))
    return out


def row_of_part(record: Found) -> tuple[Any, ...] | None:
    """Which row a part of a split row belongs to; None for any other record."""
    meta = record.meta or {}
    if "part" not in meta or "row" not in meta:
        return None
    return (record.file_id, str(meta.get("sheet")), str(meta.get("table")), str(meta["row"]))


def render(record: Found, score: float, query: str) -> dict[str, Any]:
    return {"id": record.id, "text": record.text, "source": record.source,
            "meta": record.meta, "score": round(score, 6),
            "highlights": highlights(record.text, query)}
