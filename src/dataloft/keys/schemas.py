"""Wire shapes of API keys and end-user tokens (service.render()), key for key
(kit/wire.py)."""

from __future__ import annotations

from pydantic import Field

from dataloft.kit.wire import Out, Page


class KeyOut(Out):
    id: str
    name: str
    prefix: str = Field(description="The key's first characters, to recognise it by.")
    permissions: list[str]
    datasets: list[str] | None = Field(description="The datasets it is limited to; null "
                                                   "for all.")
    revokedAt: int | None
    createdAt: int
    updatedAt: int


class KeyPage(Page[KeyOut]):
    pass


class KeyCreated(Out):
    id: str
    key: str = Field(description="The secret, shown this once.")


class TokenCreated(Out):
    token: str
    expiresAt: int
