"""Associating datasets with assistants (Informer's dataset knowledge), each link under an
optional filter that every record and row the assistant reaches must match.

Reads need the assistant to be visible to the caller and show only the datasets the caller
may read; a dataset the caller may not read answers 404, exactly like one that never
existed. Writes need `assistant:write`, checked before anything is looked up.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dataloft.assistants import service as assistants
from dataloft.errors import BadRequest, Conflict, NotFound, not_found
from dataloft.kit.filters import parse_filter
from dataloft.kit.ids import new_id, now_ms
from dataloft.kit.principal import Principal
from dataloft.knowledge import repository
from dataloft.models import Assistant, AssistantDataset, Dataset

Link = tuple[AssistantDataset, Dataset]


def find_dataset(session: Session, principal: Principal, ref: str) -> Dataset:
    """A dataset the caller may read, by id or by alias (Informer's natural id, such as
    `sales-data`); an id wins over an alias that happens to spell it."""
    found = repository.dataset_by_ref(session, principal, ref)
    if found is None:
        raise not_found("dataset", ref)
    return found


def checked_filter(raw: object) -> dict[str, Any] | None:
    """The filter as stored: validated with the one filter language; {} means none."""
    parse_filter(raw)
    return raw if isinstance(raw, dict) and raw else None


def page(session: Session, principal: Principal, assistant_id: str, start: int, limit: int
         ) -> tuple[Assistant, list[Link], int]:
    """One page of the links the caller may see, oldest first, and how many there are."""
    assistant = assistants.get(session, principal, assistant_id)
    total = repository.count_visible_links(session, principal, assistant.id)
    links = repository.visible_links(session, principal, assistant.id, start=start, limit=limit)
    return assistant, links, total


def get(session: Session, principal: Principal, assistant_id: str, dataset_ref: str) -> Link:
    assistant = assistants.get(session, principal, assistant_id)
    dataset = find_dataset(session, principal, dataset_ref)
    link = repository.association(session, assistant.id, dataset.id)
    if link is None:
        raise NotFound(f"dataset {dataset_ref!r} is not associated with assistant "
                       f"{assistant_id!r}")
    return link, dataset


def associate(session: Session, principal: Principal, assistant_id: str, dataset_ref: object,
              raw_filter: object) -> Link:
    principal.require("assistant:write")
    if not isinstance(dataset_ref, str) or not dataset_ref:
        raise BadRequest("datasetId is required: the id of the dataset to associate")
    stored = checked_filter(raw_filter)
    assistant = assistants.get(session, principal, assistant_id)
    dataset = find_dataset(session, principal, dataset_ref)
    taken = repository.association_exists(session, assistant.id, dataset.id)
    conflict = Conflict(f"dataset {dataset_ref!r} is already associated with assistant "
                        f"{assistant_id!r}; change its filter with PUT")
    if taken:
        raise conflict
    link = AssistantDataset(id=new_id("asd"), org_id=assistant.org_id,
                            assistant_id=assistant.id, dataset_id=dataset.id, filter=stored)
    try:
        repository.save_association(session, link)
    except IntegrityError as exc:  # a concurrent POST of the same pair won the race
        raise conflict from exc
    return link, dataset


def update_filter(session: Session, principal: Principal, assistant_id: str, dataset_ref: str,
                  raw_filter: object) -> Link:
    principal.require("assistant:write")
    stored = checked_filter(raw_filter)
    link, dataset = get(session, principal, assistant_id, dataset_ref)
    link.filter = stored
    link.updated_at = now_ms()
    repository.save_association(session, link)
    return link, dataset


def dissociate(session: Session, principal: Principal, assistant_id: str,
               dataset_ref: str) -> None:
    principal.require("assistant:write")
    link, _ = get(session, principal, assistant_id, dataset_ref)
    repository.delete_association(session, link)
