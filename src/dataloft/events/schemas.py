"""Wire shapes of events (service.render()), key for key (kit/wire.py)."""

from __future__ import annotations

from dataloft.kit.wire import JsonObject, Out, Page


class EventOut(Out):
    id: str
    type: str
    datasetId: str | None
    fileId: str | None
    data: JsonObject
    createdAt: int
    updatedAt: int


class EventPage(Page[EventOut]):
    pass
