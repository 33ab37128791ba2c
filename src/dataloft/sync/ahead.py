"""Preparing the next syncs of a dataset while one runs (issue 16, Build item 5).

A dataset's syncs keep their serial key: the queue hands them out one at a time, in the
order they were queued, and each commits (records, tables, events, version) under its own
lease exactly as before. What runs ahead is only the side-effect-free part of the next
queued syncs of *other* files (extraction, records, embeddings, into disk spools), in
threads of this process, at most `slots` files at a time. When the queue hands such a job
to a worker here, the sync reads its plan again and takes the prepared product only if
nothing it depends on moved: the same plan (file version, blob, chunking) and still no
record of the file in the dataset (a first sync reuses no vector, so the product is what
the serial sync would make). Else the product is dropped and the sync prepares as before.

A prepared product waits on disk (its spools), never in memory; its work stops at the next
batch once its job is no longer waiting here (cancelled, deleted, taken by another process)
or its file left the dataset.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dataloft.datasets import service as datasets
from dataloft.jobs import queue
from dataloft.jobs.worker import process_owner
from dataloft.kit.db import Database
from dataloft.records import repository as records

if TYPE_CHECKING:
    from dataloft.sync.tasks import Plan, Product

log = logging.getLogger("dataloft.sync")

# How often a preparation running ahead asks whether its job still waits (a read of one
# job row and one attachment; a batch of records costs far more).
CHECK_EVERY_S = 0.25

PlanOf = Callable[[str, str], "Plan | None"]
Produce = Callable[["Plan", Callable[[], bool], ExitStack], "Product | None"]
Discard = Callable[["Product"], None]


@dataclass(eq=False)  # one per preparation: kept in sets by identity
class Prepared:
    job_id: str
    plan: Plan
    stack: ExitStack = field(default_factory=ExitStack)
    done: Future[Product | None] = field(default_factory=Future)
    stop: threading.Event = field(default_factory=threading.Event)
    # Set once a sync of this process took it: its own lease decides from then on.
    taken: threading.Event = field(default_factory=threading.Event)
    checked_at: float = 0.0


class PrepareAhead:
    def __init__(self, db: Database, slots: int, kind: str, plan_of: PlanOf,
                 produce: Produce, discard: Discard) -> None:
        self.db, self.slots, self.kind = db, max(0, slots), kind
        self._plan_of, self._produce, self._discard = plan_of, produce, discard
        self._lock = threading.Lock()
        self._ended = threading.Condition(self._lock)
        self._entries: dict[str, Prepared] = {}
        # Every preparation whose thread still runs, dropped ones included (`settle`).
        self._running: set[Prepared] = set()
        self._owner = process_owner()
        self.handed = 0  # products a sync took (for tests and logs)
        # Set while no sync of this process commits: a preparation running ahead waits at
        # its next batch meanwhile. Its record building and pickling hold the GIL, and
        # beside a commit (inserts, the index delta: Python too) both ran slower than one
        # after another (docs/benchmarks.md §32).
        self._quiet = threading.Event()
        self._quiet.set()
        self._commits = 0

    def look_ahead(self, serial_key: str, running_file: str) -> None:
        """Start preparing the syncs queued next under `serial_key`, up to the free slots:
        only files that appear once among them (the sync of `running_file` included), and
        none past a job of another kind (a re-index changes what a sync would reuse)."""
        if not self.slots:
            return
        self._sweep()
        with self._lock:
            free = self.slots - len(self._entries)
            taken = {e.plan.file_id for e in self._entries.values()}
        if free <= 0:
            return
        seen = {running_file, *taken}
        with self.db.read() as session:
            queued = queue.queued_under(session, serial_key, self.slots * 2 + 2)
        for job_id, kind, payload in queued:
            if kind != self.kind:
                break
            file_id = str(payload.get("fileId"))
            repeated = file_id in seen
            seen.add(file_id)
            if repeated or job_id in self._entries:
                continue
            plan = self._plan_of(str(payload.get("datasetId")), file_id)
            if plan is None or not plan.source or self._has_records(plan):
                continue
            self._start(job_id, plan)
            free -= 1
            if free <= 0:
                return

    def _start(self, job_id: str, plan: Plan) -> None:
        entry = Prepared(job_id, plan)
        with self._lock:
            self._entries[job_id] = entry
            self._running.add(entry)
        threading.Thread(target=self._run, args=(entry,), daemon=True,
                         name=f"dataloft-ahead-{job_id}").start()

    def _run(self, entry: Prepared) -> None:
        try:
            self._prepare(entry)
        finally:
            with self._lock:
                self._running.discard(entry)
                self._ended.notify_all()

    def _prepare(self, entry: Prepared) -> None:
        try:
            product = self._produce(entry.plan, lambda: self._alive(entry), entry.stack)
        except BaseException as exc:  # a failure is the serial sync's to meet, if it comes
            log.info("preparing job %s ahead failed (%s); its sync prepares it again",
                     entry.job_id, type(exc).__name__)
            product = None
        with self._lock:
            if entry.stop.is_set() or product is None:
                kept = False
            else:
                entry.done.set_result(product)
                kept = True
        if not kept:
            self._release(product, entry)
            with self._lock:
                self._entries.pop(entry.job_id, None)
                if not entry.done.done():
                    entry.done.set_result(None)

    @contextmanager
    def committing(self) -> Iterator[None]:
        """Around a sync's commit: the preparations running ahead pause."""
        with self._lock:
            self._commits += 1
            self._quiet.clear()
        try:
            yield
        finally:
            with self._lock:
                self._commits -= 1
                if not self._commits:
                    self._quiet.set()

    def _alive(self, entry: Prepared) -> bool:
        while not entry.taken.is_set() and not entry.stop.is_set():
            if self._quiet.wait(CHECK_EVERY_S):
                break
        if entry.stop.is_set():
            return False
        if entry.taken.is_set():
            return True
        now = time.monotonic()
        if now - entry.checked_at < CHECK_EVERY_S:
            return True
        entry.checked_at = now
        return self._wanted(entry)

    def _wanted(self, entry: Prepared) -> bool:
        with self.db.read() as session:
            return (queue.waiting_or_held(session, entry.job_id, self._owner)
                    and datasets.attachment(session, entry.plan.dataset_id,
                                            entry.plan.file_id) is not None)

    def _has_records(self, plan: Plan) -> bool:
        """A re-sync reuses the vectors it finds then: it prepares in its turn."""
        with self.db.read() as session:
            return records.file_has_records(session, plan.dataset_id, plan.file_id)

    def take(self, job_id: str, plan: Plan) -> Prepared | None:
        """The preparation of `job_id`, if one runs or ran here and still fits `plan`."""
        with self._lock:
            entry = self._entries.pop(job_id, None)
        if entry is None:
            return None
        if entry.plan != plan or self._has_records(plan):
            self.drop(entry)
            return None
        entry.taken.set()
        return entry

    def wait(self, entry: Prepared, alive: Callable[[], bool],
             check: Callable[[], None]) -> Product | None:
        """The prepared product (its spools then belong to the caller's `entry.stack`);
        None if there is none (the caller prepares itself) or `alive` turned false. `check`
        (the sync's deadline) may raise; the preparation is dropped then."""
        while True:
            try:
                product = entry.done.result(timeout=CHECK_EVERY_S)
            except FutureTimeout:
                pass
            else:
                if product is not None:
                    with self._lock:
                        self.handed += 1
                return product
            if not alive():
                self.drop(entry)
                return None
            try:
                check()
            except BaseException:
                self.drop(entry)
                raise

    def forget(self, job_id: str) -> None:
        with self._lock:
            entry = self._entries.get(job_id)
        if entry is not None:
            self.drop(entry)

    def drop(self, entry: Prepared) -> None:
        """Stop `entry` and free what it made (now, or when its thread ends)."""
        with self._lock:
            entry.stop.set()
            self._entries.pop(entry.job_id, None)
            finished = entry.done.done()
        if finished:
            self._release(entry.done.result(), entry)

    def _release(self, product: Product | None, entry: Prepared) -> None:
        try:
            if product is not None:
                self._discard(product)
        finally:
            entry.stack.close()

    def _sweep(self) -> None:
        """Drop finished preparations whose job no longer waits here (another process took
        it, or it was cancelled): nothing else would ever free their slot."""
        with self._lock:
            ready = [e for e in self._entries.values() if e.done.done()]
        for entry in ready:
            if not self._wanted(entry):
                self.drop(entry)

    def pending(self) -> list[str]:
        """The jobs prepared or preparing ahead."""
        with self._lock:
            return list(self._entries)

    def settle(self, timeout: float = 60.0) -> None:
        """Wait until every preparation's thread ended, dropped ones too: what a dropped
        one made is freed as it ends (tests)."""
        with self._ended:
            self._ended.wait_for(lambda: not self._running, timeout)

    def close(self) -> None:
        with self._lock:
            entries = list(self._entries.values())
        for entry in entries:
            self.drop(entry)
