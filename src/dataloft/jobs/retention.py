"""Retention: finished jobs and old events are deleted by a periodic job on the queue.

One `retention.prune` job is queued at start-up (one interval ahead) when none is pending;
each run deletes what
is older than the retention window, in short transactions (the SQLite writer is shared),
then queues the next run. The event log keeps every event of the window: a client that
polls at least once per window misses nothing. Pruners of other parts (the event log) are
handed in by the wiring, so this module needs no part above the queue.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from dataloft.jobs import queue
from dataloft.jobs.queue import Lease
from dataloft.kit.db import Database
from dataloft.kit.ids import now_ms

RETENTION_JOB = "retention.prune"
SERIAL_KEY = "retention"
BATCH = 2000

# (session, delete what is older than this instant in ms, at most this many) -> deleted
Pruner = Callable[[Session, int, int], int]


def ensure_scheduled(session: Session, interval_ms: int) -> None:
    """Queue the first run one interval from now, unless a run is already pending (a
    restart keeps the schedule; nothing runs ahead of the work a start-up has queued)."""
    if not queue.pending(session, RETENTION_JOB):
        queue.enqueue(session, RETENTION_JOB, {}, serial_key=SERIAL_KEY, delay_ms=interval_ms)


@dataclass
class RetentionHandler:
    db: Database
    retention_ms: int
    interval_ms: int
    pruners: Sequence[Pruner] = ()

    def failed(self, session: Session, job_id: str, payload: dict[str, object], code: str,
               message: str) -> None:
        self._next(session)  # a failed run must not end the chain

    def _next(self, session: Session) -> None:
        queue.enqueue(session, RETENTION_JOB, {}, serial_key=SERIAL_KEY,
                      delay_ms=self.interval_ms)

    def run(self, lease: Lease, alive: Callable[[], bool]) -> None:
        cutoff = now_ms() - self.retention_ms
        for prune in (queue.prune, *self.pruners):
            while alive():
                with self.db.write() as session:
                    if prune(session, cutoff, BATCH) < BATCH:
                        break
        with self.db.write() as session:
            self._next(session)
            queue.finish(session, lease)
