"""Wire shapes of webhooks: request bodies, and service.render*() key for key (kit/wire.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from dataloft.events.service import TYPES
from dataloft.kit.wire import Out, Page


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    url: str = Field(max_length=8192, description="http(s) URL on a public address.")
    events: list[str] | None = Field(default=None, max_length=len(TYPES),
                                     description="Event types wanted; null or absent: all.")
    description: str | None = Field(default=None, max_length=10_000)


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    url: str | None = Field(default=None, max_length=8192)
    events: list[str] | None = Field(default=None, max_length=len(TYPES))
    description: str | None = Field(default=None, max_length=10_000)


class WebhookSecret(Out):
    """The only answers that show the signing secret: create and rotate."""
    id: str
    secret: str = Field(description="`whsec_` + base64 of the HMAC key (Standard Webhooks).")


class WebhookOut(Out):
    id: str
    url: str
    description: str | None
    events: list[str] | None
    createdAt: int
    updatedAt: int


class WebhookPage(Page[WebhookOut]):
    pass


class AttemptOut(Out):
    attempt: int
    at: int
    statusCode: int | None
    error: str | None


class DeliveryOut(Out):
    id: str = Field(description="The `webhook-id` header of every attempt.")
    webhookId: str
    eventId: str
    type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    responseCode: int | None
    lastError: str | None
    nextRetryAt: int | None
    log: list[AttemptOut]
    createdAt: int
    updatedAt: int


class DeliveryPage(Page[DeliveryOut]):
    pass
