"""Following the event log as it grows, from any process, by polling the events table.

Ids sort by creation time, but an event becomes visible when its transaction commits, which
can be after a later event's: a reader that only asked for ids above the last one it saw
would skip it. So a tail re-reads a short window behind the present (`LATE_COMMIT_MS`) and
remembers what it already sent in it: an event committed up to that long after it was made
is still delivered, and once."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from dataloft.events import repository
from dataloft.events.service import render
from dataloft.kit.ids import floor_id, now_ms
from dataloft.kit.principal import Principal
from dataloft.models import Event

LATE_COMMIT_MS = 30_000
BATCH = 500


class Tail:
    def __init__(self, principal: Principal, after_id: str | None = None):
        """From `after_id` on (exclusive); None starts now (call `prime` first)."""
        self.principal = principal
        self.floor = after_id if after_id is not None else floor_id("evt", now_ms()
                                                                    - LATE_COMMIT_MS)
        self.seen: set[str] = set()

    def prime(self, session: Session) -> None:
        """Take what is already committed as seen, so only what follows is new."""
        self._read(session)

    def poll(self, session: Session) -> list[dict[str, Any]]:
        """Events committed since the last poll, rendered, oldest id first."""
        return [render(e) for e in self._read(session)]

    def _read(self, session: Session) -> list[Event]:
        fresh: list[Event] = []
        cursor = self.floor
        while True:
            rows = repository.after(session, self.principal, cursor, BATCH)
            fresh.extend(r for r in rows if r.id not in self.seen)
            if len(rows) < BATCH:
                break
            cursor = rows[-1].id
        self.seen.update(e.id for e in fresh)
        # Forget what falls out of the window: nothing below it can still appear.
        self.floor = max(self.floor, floor_id("evt", now_ms() - LATE_COMMIT_MS))
        self.seen = {i for i in self.seen if i > self.floor}
        return fresh


def history(session: Session, principal: Principal, n: int) -> list[dict[str, Any]]:
    return [render(e) for e in repository.latest(session, principal, n)]
