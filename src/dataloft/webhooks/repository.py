"""SQL of webhooks and their deliveries."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from dataloft.models import Webhook, WebhookDelivery


def get(session: Session, org_id: str, webhook_id: str) -> Webhook | None:
    return session.scalar(select(Webhook).where(Webhook.id == webhook_id,
                                                Webhook.org_id == org_id))


def by_id(session: Session, webhook_id: str) -> Webhook | None:
    return session.get(Webhook, webhook_id)


def listing(org_id: str) -> Select[Any]:
    return select(Webhook).where(Webhook.org_id == org_id)


def endpoints(session: Session, org_ids: Iterable[str]) -> list[Webhook]:
    """Every webhook of these organisations (the candidates for new events)."""
    return list(session.scalars(select(Webhook).where(Webhook.org_id.in_(sorted(set(org_ids))))
                                .order_by(Webhook.id)))


def add(session: Session, row: Webhook | WebhookDelivery, *, flush: bool = False) -> None:
    session.add(row)
    if flush:
        session.flush()


def remove(session: Session, webhook: Webhook) -> None:
    session.delete(webhook)
    session.flush()


def deliveries(webhook_id: str) -> Select[Any]:
    return select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)


def delivery(session: Session, delivery_id: str) -> WebhookDelivery | None:
    return session.get(WebhookDelivery, delivery_id, populate_existing=True)


def prune_delivered(session: Session, before_ms: int, limit: int) -> int:
    """Delete up to `limit` delivered deliveries last changed before `before_ms` (retention:
    pending and failed ones stay, they are still work or still news)."""
    ids = list(session.scalars(select(WebhookDelivery.id).where(
        WebhookDelivery.status == "delivered", WebhookDelivery.updated_at < before_ms)
        .limit(limit)))
    if ids:
        session.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(ids)))
    return len(ids)
