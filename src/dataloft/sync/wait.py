"""Waiting for syncs to end, for `?wait=SECONDS` on the sync routes.

The status is derived (sync/status.py), so waiting is polling it: each look is one short
read transaction run on a worker thread, and between looks the request only sleeps on the
event loop. A waiting request holds no database connection and no thread, so many clients
waiting cannot starve the pool the workers and other requests need.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from dataloft.kit.db import Database
from dataloft.sync.status import SyncStatus, sync_status

MAX_WAIT_SECONDS = 60.0
POLL_SECONDS = 0.2

Pair = tuple[str, str]  # (dataset id, file id)


def clamp(seconds: float | None) -> float:
    """The wait actually granted: never negative, never over MAX_WAIT_SECONDS."""
    return 0.0 if seconds is None else max(0.0, min(float(seconds), MAX_WAIT_SECONDS))


def look(db: Database, pairs: Sequence[Pair]) -> dict[Pair, SyncStatus]:
    by_dataset: dict[str, list[str]] = {}
    for dataset_id, file_id in pairs:
        by_dataset.setdefault(dataset_id, []).append(file_id)
    out: dict[Pair, SyncStatus] = {}
    with db.read() as session:
        for dataset_id, file_ids in by_dataset.items():
            for file_id, status in sync_status(session, dataset_id, file_ids).items():
                out[(dataset_id, file_id)] = status
    return out


async def wait_for(db: Database, pairs: Sequence[Pair], seconds: float
                   ) -> tuple[dict[Pair, SyncStatus], bool]:
    """The statuses once no sync of these pairs is in progress, or when the wait runs out;
    and whether they all ended."""
    deadline = time.monotonic() + clamp(seconds)
    while True:
        statuses = await asyncio.to_thread(look, db, pairs)
        done = all(s.state != "in_progress" for s in statuses.values())
        if done or time.monotonic() >= deadline:
            return statuses, done
        await asyncio.sleep(POLL_SECONDS)
