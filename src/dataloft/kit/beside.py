"""Work a request can hand to an idle core while it does its own: one helper per core
beyond the first, taken only when idle.

A hybrid search ranks two sides, each mostly in C (numpy, usearch) with the GIL released:
on two cores the semantic side beside the lexical one answers in ~0.75x the time of the
two in turn (docs/benchmarks.md §44). A helper is never waited for: when all are busy
(a loaded server, whose cores are already full), the caller runs the work itself when it
asks for the result, so no request queues behind another's work.
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class Beside:
    def __init__(self, helpers: int | None = None):
        self.helpers = max(0, (os.cpu_count() or 1) - 1) if helpers is None else helpers
        self._idle = threading.BoundedSemaphore(max(1, self.helpers))
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def start(self, work: Callable[[], T]) -> Callable[[], T]:
        """`work`'s result, to collect by calling what this returns: made meanwhile on an
        idle helper (in the caller's context variables), or by the collector itself."""
        if not self.helpers or not self._idle.acquire(blocking=False):
            return work
        context = contextvars.copy_context()

        def run() -> T:
            try:
                return context.run(work)
            finally:
                self._idle.release()

        try:
            future = self._executor().submit(run)
        except BaseException:
            self._idle.release()
            raise
        return future.result

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.helpers, thread_name_prefix="beside")
            return self._pool
