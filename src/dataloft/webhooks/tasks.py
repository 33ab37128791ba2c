"""The delivery job: POST one signed event to one endpoint, retried with backoff.

An attempt sends outside any transaction, then records its outcome and finishes (or
re-queues) its job in one transaction. A crash between the two sends the event again:
delivery is at-least-once, and the `webhook-id` (the delivery's id) stays the same on every
attempt so receivers can drop duplicates."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from dataloft.errors import BadRequest
from dataloft.files.url_fetch import post_url
from dataloft.jobs import queue
from dataloft.jobs.queue import Lease
from dataloft.kit.db import Database
from dataloft.kit.ids import now_ms
from dataloft.models import WebhookDelivery
from dataloft.webhooks import repository, signing


@dataclass(frozen=True)
class DeliveryConfig:
    allow: frozenset[str] = frozenset()
    timeout_s: float = 10.0
    retry_base_s: float = 5.0
    retry_max_s: float = 3600.0
    retry_window_s: float = 86400.0


def backoff_ms(attempts: int, config: DeliveryConfig) -> int:
    """Exponential, capped, with jitter in its upper half, so endpoints that come back do not
    receive every pending delivery in the same instant."""
    full = min(config.retry_max_s, config.retry_base_s * 2 ** max(0, attempts - 1))
    return int(1000 * (full / 2 + random.uniform(0, full / 2)))


@dataclass
class WebhookDeliveryHandler:
    db: Database
    config: DeliveryConfig

    def failed(self, session: Session, job_id: str, payload: dict[str, object], code: str,
               message: str) -> None:
        row = repository.delivery(session, str(payload.get("deliveryId")))
        if row is not None and row.status == "pending":
            row.status, row.last_error, row.next_attempt_at = "failed", message, None

    def run(self, lease: Lease, alive: Callable[[], bool]) -> None:
        delivery_id = str(lease.payload["deliveryId"])
        with self.db.read() as session:
            row = repository.delivery(session, delivery_id)
            hook = repository.by_id(session, row.webhook_id) if row is not None else None
            if row is None or hook is None or row.status != "pending":
                target = None
            else:
                target = (hook.url, hook.secret, json.dumps(row.payload).encode())
        if target is None:  # the endpoint was deleted, or the delivery already ended
            with self.db.write() as session:
                queue.finish(session, lease)
            return
        code, error = self._send(delivery_id, *target)
        with self.db.write() as session:
            row = repository.delivery(session, delivery_id)
            if row is None:
                queue.finish(session, lease)
                return
            self._record(session, lease, row, code, error)

    def _send(self, delivery_id: str, url: str, secret: str, body: bytes
              ) -> tuple[int | None, str | None]:
        headers = signing.headers(secret, delivery_id, int(time.time()), body)
        try:
            code = asyncio.run(post_url(url, body, headers, allow=self.config.allow,
                                        timeout=self.config.timeout_s))
        except BadRequest as exc:
            return None, exc.message
        return code, None if 200 <= code < 300 else f"the endpoint answered HTTP {code}"

    def _record(self, session: Session, lease: Lease, row: WebhookDelivery, code: int | None,
                error: str | None) -> None:
        now = now_ms()
        row.attempts += 1
        row.response_code, row.last_error = code, error
        row.log = [*row.log, {"attempt": row.attempts, "at": now, "statusCode": code,
                              "error": error}]
        if error is None:
            row.status, row.next_attempt_at = "delivered", None
            queue.finish(session, lease)
        elif now - row.created_at >= self.config.retry_window_s * 1000:
            row.status, row.next_attempt_at = "failed", None
            queue.finish(session, lease, error_code="webhook_failed", error_message=error)
        else:
            delay = backoff_ms(row.attempts, self.config)
            row.next_attempt_at = now + delay
            queue.finish(session, lease, error_code="retrying", error_message=error,
                         retry_in_ms=delay)
