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
from typing import Any

from dataloft.kit.db import Database
from dataloft.sync.status import attachment

MAX_WAIT_SECONDS = 60.0
POLL_SECONDS = 0.2
PENDING = ("queued", "in_progress")
# The least advanced first: a file route's answer says how far the slowest sync got.
ORDER = ("queued", "in_progress", "failed", "completed", None)

Pair = tuple[str, str]  # (dataset id, file id)


def clamp(seconds: float | None) -> float:
    """The wait actually granted: never negative, never over MAX_WAIT_SECONDS."""
    return 0.0 if seconds is None else max(0.0, min(float(seconds), MAX_WAIT_SECONDS))


def look(db: Database, pairs: Sequence[Pair]) -> list[dict[str, Any]]:
    """Each pair's attachment as the dataset's file list shows it (absent once detached)."""
    with db.read() as session:
        found = [attachment(session, dataset_id, file_id) for dataset_id, file_id in pairs]
    return [a for a in found if a is not None]


def least(attachments: Sequence[dict[str, Any]]) -> str | None:
    states = [a["status"] for a in attachments]
    return min(states, key=ORDER.index) if states else None


async def wait_for(db: Database, pairs: Sequence[Pair], seconds: float
                   ) -> tuple[list[dict[str, Any]], bool]:
    """The attachments once none of their syncs is pending, or when the wait runs out;
    and whether they all ended."""
    deadline = time.monotonic() + clamp(seconds)
    while True:
        found = await asyncio.to_thread(look, db, pairs)
        done = all(a["status"] not in PENDING for a in found)
        if done or time.monotonic() >= deadline:
            return found, done
        await asyncio.sleep(POLL_SECONDS)
