"""Assistants (Inconvo's agents): configured agents that read datasets."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select
from sqlalchemy.orm import Session

from dataloft.assistants import repository
from dataloft.errors import BadRequest, Conflict, not_found
from dataloft.kit import policy
from dataloft.kit.ids import new_id, now_ms
from dataloft.kit.principal import Principal
from dataloft.models import Assistant

ALIAS = re.compile(r"^[A-Za-z0-9_\-.:@]{1,200}$")


class ContextField(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(pattern=r"^[A-Za-z0-9_\-.@]{1,256}$")
    type: Literal["string", "number", "boolean"] = "string"


class UserContextConfig(BaseModel):
    """Inconvo's user-context configuration of an agent."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["unset", "enabled", "disabled"] = "unset"
    fields: list[ContextField] = Field(default_factory=list, max_length=32)


class AssistantCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str | None = Field(default=None, max_length=1024)
    alias: str | None = Field(default=None, pattern=ALIAS.pattern)
    userContext: UserContextConfig | None = None
    description: str | None = Field(default=None, max_length=100_000)
    instructions: str | None = Field(default=None, max_length=100_000)
    model: str | None = Field(default=None, max_length=200)
    meta: dict[str, Any] | None = None


def create(session: Session, principal: Principal, body: AssistantCreate) -> Assistant:
    principal.require("assistant:write")
    assistant = Assistant(id=new_id("agt"), org_id=principal.org_id, meta={})
    _apply(session, assistant, body.model_dump(exclude_unset=True))
    repository.add_assistants(session, assistant)
    return assistant


def _apply(session: Session, assistant: Assistant, fields: dict[str, Any]) -> None:
    for key, value in fields.items():
        if key == "userContext":
            assistant.user_context_config = value
        elif key == "alias":
            _check_alias(session, assistant, value)
            assistant.alias = value
        else:
            setattr(assistant, key, (value or {}) if key == "meta" else value)


def _check_alias(session: Session, assistant: Assistant, alias: str | None) -> None:
    if alias is None:
        return
    if alias.startswith("agt_"):
        raise BadRequest("alias must not look like an assistant id (agt_...)")
    taken = repository.alias_holder(session, assistant.org_id, alias, assistant.id)
    if taken is not None:
        raise Conflict(f"the alias {alias!r} is taken by {taken}")


def get(session: Session, principal: Principal, assistant_id: str) -> Assistant:
    """By id or alias. Assistants are org-wide: every principal of the org, end-users
    included, may read them."""
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
    _apply(session, assistant, body.model_dump(exclude_unset=True))
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
        "alias": assistant.alias,
        "name": assistant.name,
        "description": assistant.description,
        "instructions": assistant.instructions if shown else None,
        "model": assistant.model,
        "meta": assistant.meta,
        "default": assistant.is_default,
        "userContext": assistant.user_context_config or {"status": "unset", "fields": []},
        "createdAt": assistant.created_at,
        "updatedAt": assistant.updated_at,
    }


# --- user context (Inconvo) -----------------------------------------------------------------

_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "number": (int, float),
                                       "boolean": (bool,)}


def _fields(assistant: Assistant) -> dict[str, str] | None:
    """The configured {key: type} when the user context is enabled, else None."""
    config = assistant.user_context_config or {}
    if config.get("status") != "enabled":
        return None
    return {f["key"]: f.get("type", "string") for f in config.get("fields", [])}


def check_user_context(assistant: Assistant, raw: object) -> None:
    """A conversation's userContext against the agent's configuration (when it has one)."""
    status = (assistant.user_context_config or {}).get("status", "unset")
    if status == "disabled" and raw:
        raise BadRequest("this agent's user context is disabled: omit userContext")
    fields = _fields(assistant)
    if fields is None or not isinstance(raw, dict):
        if fields and raw is None:
            raise BadRequest(f"userContext is required by this agent; keys: {sorted(fields)}")
        return
    for key, value in raw.items():
        if key not in fields:
            raise BadRequest(f"userContext.{key} is not configured for this agent; allowed "
                             f"keys: {', '.join(sorted(fields))}")
        kind = fields[key]
        if not isinstance(value, _TYPES[kind]) or (kind == "number" and isinstance(value, bool)):
            raise BadRequest(f"userContext.{key} must be a {kind}")


def check_context_key(assistant: Assistant, key: str) -> None:
    """A context-scoped upload's contextKey must be a configured key (seed 001)."""
    fields = _fields(assistant)
    if fields is not None and key not in fields:
        raise BadRequest(f"contextKey {key!r} is not in this agent's userContext "
                         f"configuration; allowed keys: {', '.join(sorted(fields)) or 'none'}")
