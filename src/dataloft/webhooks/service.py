"""Webhook endpoints and the fan-out of events to them.

Fan-out runs in the transaction that writes the event (a `before_flush` hook on every
session, installed once by the context): the event, its deliveries and their jobs commit
together or not at all, so no event is lost between the log and the queue, and none is
delivered that rolled back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from dataloft.errors import BadRequest, NotAuthorized, not_found
from dataloft.events.service import TYPES
from dataloft.files.url_fetch import check_url
from dataloft.jobs import queue
from dataloft.kit.ids import new_id, now_ms
from dataloft.kit.principal import Principal
from dataloft.models import Event, Webhook, WebhookDelivery
from dataloft.webhooks import repository, signing
from dataloft.webhooks.schemas import WebhookCreate, WebhookUpdate

DELIVERY_JOB = "webhook.deliver"
# Retries are bounded by time (the retry window), not by count; this only stops a delivery
# whose worker dies on every attempt from being retried forever.
MAX_JOB_ATTEMPTS = 10_000


def _require(principal: Principal) -> None:
    # An endpoint receives every event of the organisation, so only a credential that may
    # see all of them manages endpoints.
    if principal.is_end_user or principal.datasets is not None:
        raise NotAuthorized("webhooks need an unrestricted key (they see every event)")
    principal.require("admin")


def _check_events(types: list[str] | None) -> list[str] | None:
    if types is None:
        return None
    unknown = sorted(set(types) - set(TYPES))
    if unknown:
        raise BadRequest(f"events: unknown event types {unknown}; known: {list(TYPES)}")
    return sorted(set(types))


def _check_url(url: str, allow: frozenset[str]) -> str:
    asyncio.run(check_url(url, allow))
    return url


def create(session: Session, principal: Principal, body: WebhookCreate,
           allow: frozenset[str]) -> Webhook:
    _require(principal)
    hook = Webhook(id=new_id("wh"), org_id=principal.org_id, url=_check_url(body.url, allow),
                   description=body.description, events=_check_events(body.events),
                   secret=signing.new_secret())
    repository.add(session, hook, flush=True)
    return hook


def get(session: Session, principal: Principal, webhook_id: str) -> Webhook:
    _require(principal)
    hook = repository.get(session, principal.org_id, webhook_id)
    if hook is None:
        raise not_found("webhook", webhook_id)
    return hook


def listing(principal: Principal) -> Any:
    _require(principal)
    return repository.listing(principal.org_id)


def update(session: Session, principal: Principal, webhook_id: str, body: WebhookUpdate,
           allow: frozenset[str]) -> Webhook:
    hook = get(session, principal, webhook_id)
    fields = body.model_dump(exclude_unset=True)
    if fields.get("url") is not None:
        hook.url = _check_url(fields["url"], allow)
    if "events" in fields:
        hook.events = _check_events(fields["events"])
    if "description" in fields:
        hook.description = fields["description"]
    hook.updated_at = now_ms()
    return hook


def rotate(session: Session, principal: Principal, webhook_id: str) -> Webhook:
    """A new secret; deliveries not yet sent are signed with it."""
    hook = get(session, principal, webhook_id)
    hook.secret = signing.new_secret()
    hook.updated_at = now_ms()
    return hook


def delete(session: Session, principal: Principal, webhook_id: str) -> Webhook:
    hook = get(session, principal, webhook_id)
    repository.remove(session, hook)
    return hook


def render(hook: Webhook) -> dict[str, Any]:
    return {"id": hook.id, "url": hook.url, "description": hook.description,
            "events": hook.events, "createdAt": hook.created_at, "updatedAt": hook.updated_at}


def render_delivery(row: WebhookDelivery) -> dict[str, Any]:
    return {"id": row.id, "webhookId": row.webhook_id, "eventId": row.event_id,
            "type": row.event_type, "status": row.status, "attempts": row.attempts,
            "responseCode": row.response_code, "lastError": row.last_error,
            "nextRetryAt": row.next_attempt_at, "log": row.log,
            "createdAt": row.created_at, "updatedAt": row.updated_at}


# --- fan-out ----------------------------------------------------------------------------------

def payload(event: Event) -> dict[str, Any]:
    return {"id": event.id, "type": event.type, "createdAt": event.created_at,
            "data": dict(event.data)}


def fan_out(session: Session, events: Iterable[Event]) -> int:
    """A delivery and its job for each (event, endpoint that wants it)."""
    pending = list(events)
    made = 0
    with session.no_autoflush:
        hooks = repository.endpoints(session, (e.org_id for e in pending))
    for event in pending:
        for hook in hooks:
            if hook.org_id != event.org_id or (hook.events is not None
                                               and event.type not in hook.events):
                continue
            row = WebhookDelivery(id=new_id("msg"), webhook_id=hook.id, org_id=event.org_id,
                                  event_id=event.id, event_type=event.type,
                                  payload=payload(event), status="pending", attempts=0,
                                  log=[], next_attempt_at=now_ms())
            repository.add(session, row)
            queue.enqueue(session, DELIVERY_JOB, {"deliveryId": row.id}, org_id=event.org_id,
                          max_attempts=MAX_JOB_ATTEMPTS)
            made += 1
    return made


def _before_flush(session: Session, _context: object, _instances: object) -> None:
    new = [obj for obj in session.new if isinstance(obj, Event)]
    if new:
        fan_out(session, new)


def install() -> None:
    """Hook fan-out into every session's flush (once per process)."""
    if not sa_event.contains(Session, "before_flush", _before_flush):
        sa_event.listen(Session, "before_flush", _before_flush)
