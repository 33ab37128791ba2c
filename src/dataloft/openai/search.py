"""POST /v1/vector_stores/{id}/search: OpenAI's attribute filters compiled to our one filter
language, then the dataset's hybrid ranking (search/service.py), grouped per file.

Scores are the fused hybrid scores, in [0, 1] by construction (a convex combination of
min-max normalised sides). A document's chunks are grouped into one result per file, best
chunk first; a table row is a result of its own, its fields in `attributes` (ours).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, and_
from sqlalchemy.orm import Session

from dataloft.errors import BadRequest
from dataloft.kit import filters
from dataloft.kit.principal import Principal
from dataloft.openai import repository
from dataloft.openai.common import Wiring
from dataloft.openai.schemas import ContentPart, SearchBody, SearchPage, SearchResult
from dataloft.openai.stores import get_live, needs_touch, touch
from dataloft.search import service as search
from dataloft.search.repository import Found

_COMPARE = {"eq": "$eq", "ne": "$ne", "gt": "$gt", "gte": "$gte", "lt": "$lt", "lte": "$lte",
            "in": "$in", "nin": "$nin"}
# Record meta every chunk of a file carries; not a row's own field.
_FILE_META = {"fileName", "fileType", "fileCreatedAt", "headings"}
# Chunks ranked per result asked for, before grouping by file.
_CHUNKS_PER_RESULT = 5


def compile_filter(raw: object, where: str = "filters") -> dict[str, Any]:
    """OpenAI's ComparisonFilter / CompoundFilter -> our filter over attribute keys."""
    if not isinstance(raw, dict):
        raise BadRequest(f"{where}: expected a comparison or compound filter object")
    kind = raw.get("type")
    if kind in ("and", "or"):
        parts = raw.get("filters")
        if not isinstance(parts, list) or not parts:
            raise BadRequest(f"{where}.filters: expected a non-empty list of filters")
        return {f"${kind}": [compile_filter(p, f"{where}.filters[{i}]")
                             for i, p in enumerate(parts)]}
    if kind not in _COMPARE:
        raise BadRequest(f"{where}.type: expected one of {', '.join([*_COMPARE, 'and', 'or'])}")
    key, value = raw.get("key"), raw.get("value")
    if not isinstance(key, str) or not key or key.startswith("$"):
        raise BadRequest(f"{where}.key: expected an attribute name")
    if value is None:
        raise BadRequest(f"{where}.value: expected a string, number or boolean")
    if (kind in ("in", "nin")) != isinstance(value, list):
        raise BadRequest(f"{where}.value: '{kind}' takes "
                         f"{'a list' if kind in ('in', 'nin') else 'a single value'}")
    # "meta." names the key itself, so an attribute called e.g. "source" stays an attribute.
    return {f"meta.{key}": {_COMPARE[kind]: value}}


def restriction(principal: Principal, raw: dict[str, Any] | None,
                dialect: str) -> ColumnElement[bool] | None:
    narrowing = []
    policy = search.restriction(principal, None, dialect)
    if policy is not None:
        narrowing.append(policy)
    if raw:
        parsed = filters.parse_filter(compile_filter(raw))
        if parsed is not None:
            narrowing.append(repository.records_with_attributes(parsed, dialect))
    return and_(*narrowing) if narrowing else None


def _lexical_weight(body: SearchBody, default: float) -> float:
    hybrid = body.ranking_options.hybrid_search if body.ranking_options else None
    if hybrid is None:
        return default
    total = hybrid.embedding_weight + hybrid.text_weight
    if total <= 0:
        raise BadRequest("ranking_options.hybrid_search: the weights must not both be 0")
    return hybrid.text_weight / total


def _row_fields(meta: dict[str, Any]) -> dict[str, str | bool | int | float]:
    return {k: v for k, v in meta.items()
            if k not in _FILE_META and isinstance(v, str | bool | int | float)}


def _group(session: Session, dataset_id: str, hits: list[tuple[Found, float]],
           most: int) -> list[SearchResult]:
    file_ids = sorted({r.file_id for r, _ in hits if r.file_id})
    attributes = repository.attributes_of(session, dataset_id, file_ids)
    names = repository.file_names(session, file_ids)
    results: dict[object, SearchResult] = {}
    for record, score in hits:
        if not record.file_id:
            continue  # a record made by hand has no file to cite
        is_row = "row" in (record.meta or {})
        # A row is a result of its own; the parts of a row split over the token budget
        # are one result, as a document's chunks are.
        key: object = search.row_of_part(record) or (record.id if is_row else record.file_id)
        if key not in results:
            if len(results) == most:
                continue
            attrs = dict(attributes.get(record.file_id, {}))
            if is_row:
                attrs.update(_row_fields(record.meta))
            results[key] = SearchResult(
                file_id=record.file_id, score=min(1.0, max(0.0, round(score, 6))),
                filename=names.get(record.file_id) or record.meta.get("fileName") or "",
                attributes=attrs, content=[])
        results[key].content.append(ContentPart(text=record.text))
    return list(results.values())


def run(ctx: Wiring, principal_in: Callable[[Session], Principal], store_id: str,
        body: SearchBody) -> SearchPage:
    """`principal_in`: the caller, resolved in the search's read snapshot (one transaction
    per search, and a key revoked before it fails at once)."""
    # One read snapshot, so the ranked ids and the records loaded never straddle a sync.
    with ctx.db.read() as session:
        principal = principal_in(session)
        queries = [body.query] if isinstance(body.query, str) else list(body.query)
        if not queries or not any(q.strip() for q in queries):
            raise BadRequest("query must not be empty")
        text = "\n".join(queries)
        dataset = get_live(session, principal, store_id)
        restrict = restriction(principal, body.filters, ctx.dialect)
        weight = _lexical_weight(body, float(dataset.settings.get(
            "hybridLexicalWeight", search.DEFAULT_LEXICAL_WEIGHT)))
        take = min(search.MAX_TAKE, body.max_num_results * _CHUNKS_PER_RESULT)
        ranked = search.rank(session, ctx.index, ctx.embedder, [dataset], text, "hybrid",
                             take, restrict, weight)
        threshold = body.ranking_options.score_threshold if body.ranking_options else None
        if threshold is not None:
            ranked = [(pk, s) for pk, s in ranked if s >= threshold]
        results = _group(session, dataset.id, search.load(session, ranked),
                         body.max_num_results)
        stale = needs_touch(dataset)
    if stale:
        with ctx.db.write() as session:
            touch(session, dataset.id)
    return SearchPage(search_query=queries, data=results)
