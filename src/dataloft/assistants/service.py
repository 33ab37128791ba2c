"""Assistants (Inconvo's agents): configured agents that read datasets."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select
from sqlalchemy.orm import Session

from dataloft.assistants import repository
from dataloft.errors import Conflict, not_found
from dataloft.kit import policy
from dataloft.kit.ids import new_id, now_ms
from dataloft.kit.principal import Principal
from dataloft.models import Assistant


class AssistantCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str | None = Field(default=None, max_length=1024)
    description: str | None = Field(default=None, max_length=100_000)
    instructions: str | None = Field(default=None, max_length=100_000)
    model: str | None = Field(default=None, max_length=200)
    meta: dict[str, Any] | None = None


def create(session: Session, principal: Principal, body: AssistantCreate) -> Assistant:
    principal.require("assistant:write")
    assistant = Assistant(id=new_id("agt"), org_id=principal.org_id, meta={})
    _apply(assistant, body.model_dump(exclude_unset=True))
    repository.add_assistants(session, assistant)
    return assistant


def _apply(assistant: Assistant, fields: dict[str, Any]) -> None:
    for key, value in fields.items():
        setattr(assistant, key, (value or {}) if key == "meta" else value)


def get(session: Session, principal: Principal, assistant_id: str) -> Assistant:
    # Assistants are org-wide: every principal of the org, end-users included, may read them.
    assistant = repository.assistant_of_org(session, principal.org_id, assistant_id)
    if assistant is None:
        raise not_found("assistant", assistant_id)
    return assistant


def default(session: Session, org_id: str) -> Assistant:
    """The org's default assistant (every org has one from start-up on)."""
    found = repository.default_assistant(session, org_id)
    if found is None:
        raise not_found("default assistant of org", org_id)
    return found


def ensure_defaults(session: Session) -> None:
    """Give every org its default assistant. Runs at start-up, in the bootstrap transaction."""
    repository.add_assistants(session, *(
        Assistant(id=new_id("agt"), org_id=org_id, name="Default assistant", meta={},
                  is_default=True)
        for org_id in repository.orgs_without_default_assistant(session)))


def listing(principal: Principal) -> Select[Any]:
    return repository.assistants_listing(principal.org_id)


def update(session: Session, principal: Principal, assistant_id: str,
           body: AssistantCreate) -> Assistant:
    principal.require("assistant:write")
    assistant = get(session, principal, assistant_id)
    _apply(assistant, body.model_dump(exclude_unset=True))
    assistant.updated_at = now_ms()
    return assistant


def delete(session: Session, principal: Principal, assistant_id: str) -> Assistant:
    principal.require("assistant:write")
    assistant = get(session, principal, assistant_id)
    if assistant.is_default:
        raise Conflict("the default assistant cannot be deleted")
    repository.delete_assistant(session, assistant)
    return assistant


def render(assistant: Assistant, principal: Principal) -> dict[str, Any]:
    shown = policy.sees_instructions(principal)
    return {
        "id": assistant.id,
        "name": assistant.name,
        "description": assistant.description,
        "instructions": assistant.instructions if shown else None,
        "model": assistant.model,
        "meta": assistant.meta,
        "default": assistant.is_default,
        "createdAt": assistant.created_at,
        "updatedAt": assistant.updated_at,
    }
