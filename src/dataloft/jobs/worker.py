"""In-process worker pool: threads that claim jobs, heartbeat their leases and run handlers."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

from dataloft.jobs import queue
from dataloft.jobs.queue import Lease, LeaseLost
from dataloft.kit.db import Database
from dataloft.models import Job

log = logging.getLogger("dataloft.jobs")


def process_owner() -> str:
    """The start of every lease owner name this process's pools use: a job held under one
    is run by a handler in this process."""
    return f"{socket.gethostname()}:{os.getpid()}:"


class JobFailed(Exception):
    """A typed, final failure: no retry. `code` is machine-readable, the message is for people."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class Handler(Protocol):
    def run(self, lease: Lease, alive: Callable[[], bool]) -> None:
        """Do the work and commit its effects together with `queue.finish(session, lease)`."""

    def failed(self, session: Session, job_id: str, payload: dict[str, object], code: str,
               message: str) -> None:
        """Record a final failure (events); runs in the transaction that fails the job."""


@dataclass
class WorkerConfig:
    threads: int = 2
    lease_seconds: float = 30.0
    poll_seconds: float = 0.2
    retry_base_seconds: float = 1.0
    # A run longer than this is taken as stuck (a hung extractor): heartbeats stop, the
    # lease is given up and the job retried elsewhere, then failed with 'lease_expired'.
    # Without it a live process would renew a stuck job's lease forever.
    max_run_seconds: float = 1800.0


class WorkerPool:
    def __init__(self, db: Database, handlers: dict[str, Handler], config: WorkerConfig):
        self.db = db
        self.handlers = handlers
        self.config = config
        self.owner = f"{process_owner()}{id(self):x}"
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._spawned = 0
        self._running: dict[str, Lease] = {}  # job id -> lease, while a handler runs it

    @property
    def lease_ms(self) -> int:
        return int(self.config.lease_seconds * 1000)

    def start(self) -> None:
        for _ in range(self.config.threads):
            self._spawn()

    def _spawn(self) -> None:
        with self._lock:
            t = threading.Thread(target=self._loop, name=f"dataloft-worker-{self._spawned}",
                                 daemon=True)
            self._spawned += 1
            self._threads.append(t)
        t.start()

    def _retire(self, worker: threading.Thread) -> None:
        """`worker` is stuck in a handler: replace it so the pool keeps its size; it leaves
        its loop if the handler ever returns."""
        with self._lock:
            if worker not in self._threads:
                return  # not a pool thread (run_once called directly), or already retired
            self._threads.remove(worker)
        if not self._stop.is_set():
            self._spawn()

    def stop(self, timeout: float = 10.0) -> None:
        """Claim nothing more; give running jobs `timeout` seconds, then give their leases
        back, so another worker retries them now rather than when the lease runs out."""
        self._stop.set()
        self._wake.set()
        with self._lock:
            threads = list(self._threads)
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            unfinished = list(self._running.values())
        for handler in self.handlers.values():
            close = getattr(handler, "close", None)  # work a handler runs beside its jobs
            if callable(close):
                close()
        for lease in unfinished:
            log.warning("job %s did not finish before shutdown; giving its lease back",
                        lease.job_id)
            try:
                with self.db.write() as session:
                    queue.release(session, lease)
            except Exception:  # the lease then simply expires
                log.exception("could not release the lease of job %s", lease.job_id)

    def notify(self) -> None:
        """Wake idle workers: a job was just committed."""
        self._wake.set()

    def _loop(self) -> None:
        me = threading.current_thread()
        while not self._stop.is_set() and me in self._threads:
            try:
                worked = self.run_once()
            except Exception:  # a worker thread must never die
                log.exception("worker loop error")
                worked = False
            if not worked:
                self._wake.wait(self.config.poll_seconds)
                self._wake.clear()

    def _abandon(self, session: Session, job: Job) -> None:
        handler = self.handlers.get(job.kind)
        if handler is not None:
            handler.failed(session, job.id, dict(job.payload), job.error_code or "lease_expired",
                           job.error_message or "")

    def run_once(self) -> bool:
        with self.db.write() as session:
            lease = queue.claim(session, self.owner, self.lease_ms, self._abandon)
        if lease is None:
            return False
        handler = self.handlers.get(lease.kind)
        if handler is None:
            self._fail(lease, "unknown_job", f"no handler for job kind {lease.kind!r}")
            return True
        lost = threading.Event()
        done = threading.Event()
        beat = threading.Thread(target=self._heartbeat,
                                args=(lease, done, lost, threading.current_thread()),
                                daemon=True)
        beat.start()
        with self._lock:
            self._running[lease.job_id] = lease
        try:
            handler.run(lease, lambda: not lost.is_set())
        except LeaseLost:
            log.warning("job %s lost its lease; results dropped", lease.job_id)
        except JobFailed as exc:
            self._fail(lease, exc.code, exc.message)
        except Exception as exc:
            log.exception("job %s failed", lease.job_id)
            self._retry_or_fail(lease, exc)
        finally:
            with self._lock:
                self._running.pop(lease.job_id, None)
            done.set()
            beat.join()
        return True

    def _heartbeat(self, lease: Lease, done: threading.Event, lost: threading.Event,
                   worker: threading.Thread) -> None:
        deadline = time.monotonic() + self.config.max_run_seconds
        interval = self.config.lease_seconds / 3
        while not done.wait(max(0.0, min(interval, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                log.error("job %s ran over %.0f s; giving up its lease", lease.job_id,
                          self.config.max_run_seconds)
                lost.set()
                try:
                    with self.db.write() as session:
                        queue.release(session, lease)
                except Exception:  # the lease then simply expires
                    log.exception("could not release the lease of job %s", lease.job_id)
                self._retire(worker)
                self.notify()
                return
            try:
                with self.db.write() as session:
                    if not queue.heartbeat(session, lease, self.lease_ms):
                        lost.set()
                        return
            except Exception:
                log.exception("heartbeat failed for job %s", lease.job_id)

    def _fail(self, lease: Lease, code: str, message: str) -> None:
        try:
            with self.db.write() as session:
                queue.finish(session, lease, error_code=code, error_message=message)
                handler = self.handlers.get(lease.kind)
                if handler is not None:
                    handler.failed(session, lease.job_id, lease.payload, code, message)
        except LeaseLost:
            pass

    def _retry_or_fail(self, lease: Lease, exc: Exception) -> None:
        message = f"{type(exc).__name__}: {exc}"[:2000]
        with self.db.read() as session:
            job = queue.job_by_id(session, lease.job_id)
            attempts = job.attempts if job else lease.attempt
            max_attempts = job.max_attempts if job else 1
        if attempts >= max_attempts:
            self._fail(lease, "internal_error", message)
            return
        delay = int(self.config.retry_base_seconds * 1000 * 2 ** (attempts - 1))
        try:
            with self.db.write() as session:
                queue.finish(session, lease, error_code="retrying", error_message=message,
                             retry_in_ms=delay)
        except LeaseLost:
            pass
