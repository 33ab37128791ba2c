"""Wire shapes of assistants (service.render()), key for key (kit/wire.py)."""

from __future__ import annotations

from pydantic import Field

from dataloft.kit.wire import JsonObject, Out, Page


class ContextFieldOut(Out):
    key: str
    type: str


class UserContextOut(Out):
    status: str
    fields: list[ContextFieldOut]


class AssistantOut(Out):
    id: str
    alias: str | None
    name: str | None
    description: str | None
    instructions: str | None
    model: str | None
    meta: JsonObject
    default: bool = Field(description="The organisation's default agent (Inconvo's "
                                      "agent-less paths act on it).")
    userContext: UserContextOut
    createdAt: int
    updatedAt: int


class AssistantPage(Page[AssistantOut]):
    pass
