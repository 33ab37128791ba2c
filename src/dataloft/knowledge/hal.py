"""The Informer wire shapes (seed 003): HAL documents with `_links`, `_embedded` and paging.

A dataset is described by its typed `fields`, the `filters` that apply to them (for each
field, the operators of the filter language that make sense for its type: these are the
conditions an association filter or a search filter may use) and its `query`
configuration (how to query it: search always, SQL when it has tabular fields).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from dataloft.models import AssistantDataset, Dataset
from dataloft.tables import catalog

REL = "inf:dataset-knowledge"
SEARCH_MODES = ("hybrid", "lexical", "semantic")
_EQUALITY = ("$eq", "$ne", "$in", "$nin", "$exists")
_ORDERED = (*_EQUALITY, "$gt", "$gte", "$lt", "$lte")
# Strings compare by code point: meaningful for ISO dates, misleading for names and ids.
OPERATORS = {"number": _ORDERED, "integer": _ORDERED, "date": _ORDERED, "datetime": _ORDERED,
             "string": _EQUALITY, "boolean": _EQUALITY}


def href(path: str) -> dict[str, str]:
    return {"href": path}


def dataset_path(dataset_id: str) -> str:
    return f"/api/datasets/{dataset_id}"


def links_path(assistant_id: str) -> str:
    return f"/api/assistants/{assistant_id}/datasets"


def dataset(session: Session, ds: Dataset) -> dict[str, Any]:
    fields = catalog.fields(session, ds)
    query: dict[str, Any] = {"search": {
        "method": "POST", "href": f"/api/v1/dataset/{ds.id}/search",
        "modes": list(SEARCH_MODES), "embeddingModel": ds.embedding_model}}
    if fields:
        query["sql"] = {"method": "POST", "href": f"/api/v1/dataset/{ds.id}/query"}
    return {
        "id": ds.id,
        "name": ds.name,
        "description": ds.description,
        "alias": ds.alias,
        "fields": [{"name": f.name, "label": f.label, "dataType": f.data_type} for f in fields],
        "filters": [{"field": f.name, "label": f.label, "dataType": f.data_type,
                     "operators": list(OPERATORS.get(f.data_type, _EQUALITY))}
                    for f in fields],
        "query": query,
        "_links": {"self": href(dataset_path(ds.id))},
    }


def knowledge(session: Session, link: AssistantDataset, ds: Dataset) -> dict[str, Any]:
    return {
        "assistantId": link.assistant_id,
        "datasetId": ds.id,
        "filter": link.filter,
        "createdAt": link.created_at,
        "updatedAt": link.updated_at,
        "dataset": dataset(session, ds),
        "_links": {"self": href(f"{links_path(link.assistant_id)}/{ds.id}"),
                   "inf:dataset": href(dataset_path(ds.id))},
    }


def _page_href(path: str, start: int, limit: int) -> dict[str, str]:
    return href(f"{path}?{urlencode({'start': start, 'limit': limit})}")


def knowledge_page(session: Session, assistant_id: str,
                   links: list[tuple[AssistantDataset, Dataset]], start: int, limit: int,
                   total: int) -> dict[str, Any]:
    path = links_path(assistant_id)
    nav: dict[str, Any] = {"self": href(path)}
    if start + len(links) < total:
        nav["next"] = _page_href(path, start + limit, limit)
    if start > 0:
        nav["prev"] = _page_href(path, max(0, start - limit), limit)
    return {
        "_links": nav,
        "_embedded": {REL: [knowledge(session, link, ds) for link, ds in links]},
        "start": start,
        "count": len(links),
        "total": total,
    }
