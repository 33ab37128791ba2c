"""Who is asking. Derived per request from the credential; never stored."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dataloft.errors import BadRequest, NotAuthorized

# An instance admin manages organisations (create, list, quota overrides); an org's
# "admin" does not imply it: it is granted only by name (CLI, or another instance admin).
INSTANCE_ADMIN = "instance:admin"
PERMISSIONS = ("files:write", "datasets:write", "assistant:write", "keys:write", "admin",
               INSTANCE_ADMIN)
# Seed 000/001: 1-256 chars of letters, digits and _ - : . @
USER_IDENTIFIER = re.compile(r"^[A-Za-z0-9_\-:.@]{1,256}$")
CONTEXT_PART = re.compile(r"^[A-Za-z0-9_\-:.@]{1,256}$")
# No ':' in a context key: the scope `context:{key}:{value}` must name exactly one pair
# (key 'team:admin' + value 'x' and key 'team' + value 'admin:x' would be one scope).
CONTEXT_KEY = re.compile(r"^[A-Za-z0-9_\-.@]{1,256}$")


def check_user_identifier(value: str) -> str:
    if not USER_IDENTIFIER.match(value):
        raise BadRequest("userIdentifier must be 1-256 characters of letters, digits and _ - : . @")
    return value


def check_context(raw: object) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise BadRequest("userContext must be a JSON object of key/value pairs")
    out: dict[str, str] = {}
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise BadRequest(f"userContext.{key}: values must be strings or numbers")
        text = str(value)
        if not CONTEXT_KEY.match(str(key)) or not CONTEXT_PART.match(text):
            raise BadRequest(f"userContext.{key}: keys must be 1-256 characters of letters, "
                             "digits and _ - . @; values may also hold ':'")
        out[str(key)] = text
    if len(out) > 32:
        raise BadRequest("userContext holds at most 32 entries")
    return out


@dataclass(frozen=True)
class Principal:
    org_id: str
    key_id: str
    permissions: frozenset[str]
    # Acting for an end-user (X-RunAs-User-Id, or an end-user token).
    user_identifier: str | None = None
    user_context: dict[str, str] = field(default_factory=dict)
    # A key limited to some datasets; None = every dataset of the org.
    datasets: frozenset[str] | None = None
    via_token: bool = False

    @property
    def is_end_user(self) -> bool:
        return self.user_identifier is not None

    def can(self, permission: str) -> bool:
        return permission in self.permissions or (
            "admin" in self.permissions and permission != INSTANCE_ADMIN)

    def require(self, permission: str) -> None:
        if not self.can(permission):
            raise NotAuthorized(f"this credential lacks the {permission!r} permission")

    @property
    def own_scope(self) -> str:
        """The owner scope of what this principal creates."""
        return f"user:{self.user_identifier}" if self.user_identifier else "org"

    def context_scopes(self) -> list[str]:
        return [f"context:{k}:{v}" for k, v in sorted(self.user_context.items())]
