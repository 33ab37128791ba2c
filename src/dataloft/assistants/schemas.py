"""Wire shapes of assistants (service.render()), key for key (kit/wire.py)."""

from __future__ import annotations

from pydantic import Field

from dataloft.kit.wire import JsonObject, Out, Page


class AssistantOut(Out):
    id: str
    name: str | None
    description: str | None
    instructions: str | None
    model: str | None
    meta: JsonObject
    default: bool = Field(description="The organisation's default agent (Inconvo's "
                                      "agent-less paths act on it).")
    createdAt: int
    updatedAt: int


class AssistantPage(Page[AssistantOut]):
    pass
