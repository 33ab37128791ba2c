"""Who is asking. Derived per request from the credential; never stored."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dataloft.errors import NotAuthorized

PERMISSIONS = ("files:write", "datasets:write", "assistant:write", "keys:write", "admin")


@dataclass(frozen=True)
class Principal:
    org_id: str
    key_id: str
    permissions: frozenset[str]
    user_identifier: str | None = None
    user_context: dict[str, Any] = field(default_factory=dict)

    def can(self, permission: str) -> bool:
        return "admin" in self.permissions or permission in self.permissions

    def require(self, permission: str) -> None:
        if not self.can(permission):
            raise NotAuthorized(f"this key lacks the {permission!r} permission")
