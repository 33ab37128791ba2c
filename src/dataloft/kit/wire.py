"""Pieces every slice's response models share.

Response models document what the render() functions return; they never re-serialise it
(api/openapi.py `Documented`), so they may be strict: `extra="forbid"` makes the OpenAPI
schema say `additionalProperties: false`, and the API's schema tests then catch a key that
a render() adds without its model.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")
JsonObject = dict[str, Any]


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def absent(description: str | None = None) -> Any:
    """A key that is sometimes left out but never null: not required, and its schema
    carries no `default: null` that would say otherwise."""
    return Field(default=None, description=description, json_schema_extra=_no_default)


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Ref(Out):
    """What a create, update, delete or action answers: the id it acted on."""
    id: str


class Page(Out, Generic[T]):
    """A ChatBotKit-style list: one page of items and, unless it is the last, a cursor.
    With `Accept: application/jsonl` the same items stream as `{"type":"item","data":…}`
    lines instead."""
    items: list[T]
    cursor: str = absent("Pass as `cursor` for the next page; absent on the last page.")
