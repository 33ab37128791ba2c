"""The append-only event log. Events are written in the transaction of what they report."""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from dataloft.events import repository
from dataloft.kit.filters import Filter
from dataloft.kit.ids import new_id
from dataloft.kit.principal import Principal
from dataloft.models import Event

TYPES = (
    "file.attached",
    "file.detached",
    "sync.queued",
    "sync.started",
    "sync.retrying",
    "sync.completed",
    "sync.failed",
)


def emit(session: Session, org_id: str, type: str, *, dataset_id: str | None = None,
         file_id: str | None = None, **data: Any) -> Event:
    payload = {"fileId": file_id, "datasetId": dataset_id, **data}
    event = Event(id=new_id("evt"), org_id=org_id, dataset_id=dataset_id, file_id=file_id,
                  type=type, data={k: v for k, v in payload.items() if v is not None})
    repository.add_event(session, event)
    return event


def listing(principal: Principal, dataset_id: str | None = None) -> Select[Any]:
    return repository.events_listing(principal, dataset_id)


def render(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.type,
        "datasetId": event.dataset_id,
        "fileId": event.file_id,
        "data": event.data,
        "createdAt": event.created_at,
        "updatedAt": event.created_at,
    }


# The columns an event listing filters on, by their wire names.
FIELDS = {"type": Event.type, "fileId": Event.file_id, "datasetId": Event.dataset_id,
          "createdAt": Event.created_at}


def promote(node: Filter) -> Filter:
    """`meta.type=` (as documented) means the event's type, a column: the query string names
    every field `meta.*`, and the event's data holds no `type` key."""
    if node.children:
        return dataclasses.replace(node, children=tuple(promote(c) for c in node.children))
    name = node.field.removeprefix("meta.")
    if node.field.startswith("meta.") and name in FIELDS:
        return dataclasses.replace(node, field=name)
    return node
