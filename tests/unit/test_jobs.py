"""Durable jobs over real SQLite and real PostgreSQL: claims, leases, fencing, retries, the
pool; and on PostgreSQL, claimers in flight at the same time (what many worker processes do)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from dataloft.jobs import queue
from dataloft.jobs.queue import Lease, LeaseLost
from dataloft.jobs.worker import JobFailed, WorkerConfig, WorkerPool
from dataloft.kit.db import Database
from dataloft.kit.ids import now_ms
from dataloft.models import Job
from tests.support.pg import migrated_database

LONG = 60_000  # a lease that never runs out on its own during a test


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest,
       tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    database = migrated_database(request, tmp_path_factory, "jobs")
    yield database
    database.dispose()


@pytest.fixture
def pg(db: Database) -> Database:
    """The same database, for tests of claimers in flight together: PostgreSQL only (on
    SQLite a second writer waits for the first to commit; there is no "together")."""
    if db.dialect != "postgresql":
        pytest.skip("concurrent claim transactions exist on PostgreSQL only")
    return db


@pytest.fixture(autouse=True)
def _empty(db: Database) -> None:
    with db.write() as session:
        session.execute(delete(Job))


def add(db: Database, kind: str = "k", **kw: Any) -> str:
    with db.write() as session:
        return queue.enqueue(session, kind, {"n": kw.pop("n", 0)}, **kw).id


def claim(db: Database, owner: str = "w1", lease_ms: int = LONG,
          on_abandon: Callable[[Session, Job], None] | None = None) -> Lease | None:
    with db.write() as session:
        return queue.claim(session, owner, lease_ms, on_abandon)


def job(db: Database, job_id: str) -> Job:
    with db.read() as session:
        row = session.get(Job, job_id)
        assert row is not None
        return row


def expire(db: Database, job_id: str) -> None:
    """Time passes beyond the job's lease: the worker is gone or silent."""
    with db.write() as session:
        session.execute(update(Job).where(Job.id == job_id, Job.state == "running")
                        .values(lease_expires_at=now_ms() - 1))


def finish(db: Database, lease: Lease, **kw: Any) -> None:
    with db.write() as session:
        queue.finish(session, lease, **kw)


def heartbeat(db: Database, lease: Lease) -> bool:
    with db.write() as session:
        return queue.heartbeat(session, lease, LONG)


# --- the queue -------------------------------------------------------------------------------

def test_claims_oldest_ready_job_first_and_skips_delayed_ones(db: Database) -> None:
    first, second = add(db, n=1), add(db, n=2)
    later = add(db, n=3, delay_ms=LONG)
    third = add(db, n=4)
    order = [lease.job_id for lease in iter(lambda: claim(db), None)]
    assert order == [first, second, third]
    assert job(db, later).state == "queued"
    assert claim(db) is None


def test_a_claim_that_waited_for_the_writer_gets_a_whole_lease(db: Database) -> None:
    """Found at 1M records (docs/benchmarks.md §22): each sync's commit held SQLite's one
    writer past the 30 s lease, so the next claim, queued behind it, wrote a lease that had
    already run out; another thread took the job again at once (sync.retrying,
    lease_expired) and the first attempt's work was dropped."""
    if db.dialect != "sqlite":
        pytest.skip("on PostgreSQL a claim does not wait for other writers")
    job_id = add(db)
    lease_ms = 300
    holding, release = threading.Event(), threading.Event()

    def hold_the_writer() -> None:
        with db.write() as session:
            session.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: the one writer is ours
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold_the_writer)
    holder.start()
    assert holding.wait(30)
    got: list[Lease | None] = []
    claimer = threading.Thread(target=lambda: got.append(claim(db, lease_ms=lease_ms)))
    claimer.start()
    time.sleep(3 * lease_ms / 1000)  # the claim waits for the writer longer than a lease
    released_at = now_ms()
    release.set()
    holder.join(30)
    claimer.join(30)
    assert got and got[0] is not None and got[0].job_id == job_id
    # The lease runs from when the claim could write, not from when it started waiting.
    assert (job(db, job_id).lease_expires_at or 0) >= released_at + lease_ms


def test_a_renewal_inside_a_long_transaction_outlasts_its_commit(db: Database) -> None:
    """A sync's commit renews its lease as the transaction's last write; the COMMIT that
    follows writes out as much as the transaction wrote and holds the writer meanwhile, so
    the renewal adds the transaction's age to the lease (a 1M-row commit outran a bare
    lease at load 20 and its job was re-claimed: docs/benchmarks.md section 26)."""
    job_id = add(db)
    lease = claim(db)
    assert lease is not None
    lease_ms, held_ms = 300, 60_000
    with db.write() as session:
        before = now_ms()
        assert queue.heartbeat(session, lease, lease_ms, held_ms=held_ms)
    assert (job(db, job_id).lease_expires_at or 0) >= before + lease_ms + held_ms
    # The job is not claimable while that lease runs, though a bare lease would be over.
    time.sleep(2 * lease_ms / 1000)
    assert claim(db, owner="thief") is None
    with db.write() as session:
        assert queue.heartbeat(session, lease, lease_ms)  # a plain renewal: the lease alone
    assert (job(db, job_id).lease_expires_at or 0) < now_ms() + lease_ms + held_ms


def test_claim_takes_a_lease_with_a_fresh_token(db: Database) -> None:
    job_id = add(db, kind="thing", org_id="org_1")
    lease = claim(db, owner="me")
    assert lease is not None
    assert (lease.job_id, lease.kind, lease.payload, lease.attempt, lease.org_id) == (
        job_id, "thing", {"n": 0}, 1, "org_1")
    row = job(db, job_id)
    assert (row.state, row.lease_owner, row.lease_token, row.attempts) == (
        "running", "me", lease.token, 1)
    assert row.lease_expires_at is not None and row.lease_expires_at > now_ms() + LONG // 2
    finish(db, lease)
    row = job(db, job_id)
    assert (row.state, row.lease_token, row.error_code) == ("done", None, None)


def test_job_enqueued_in_a_rolled_back_transaction_does_not_exist(db: Database) -> None:
    created: list[str] = []
    with pytest.raises(RuntimeError), db.write() as session:
        created.append(queue.enqueue(session, "k", {}).id)
        session.flush()  # the row was really written, then rolled back
        raise RuntimeError("the data this job concerns failed to commit")
    with db.read() as session:
        assert session.get(Job, created[0]) is None
        assert session.scalars(select(Job)).all() == []
    assert claim(db) is None


def test_same_serial_key_never_runs_concurrently(db: Database) -> None:
    a = add(db, serial_key="dataset:1")
    b = add(db, serial_key="dataset:1")
    other = add(db, serial_key="dataset:2")
    free = add(db)
    lease_a = claim(db)
    assert lease_a is not None and lease_a.job_id == a
    # b waits for a; jobs of other keys (or none) are not held up.
    got = [claim(db), claim(db), claim(db)]
    assert [g.job_id if g else None for g in got] == [other, free, None]
    assert job(db, b).state == "queued"
    finish(db, lease_a)
    lease_b = claim(db)
    assert lease_b is not None and lease_b.job_id == b


def test_an_expired_job_is_taken_again_before_its_queued_sibling(db: Database) -> None:
    a = add(db, serial_key="s")
    b = add(db, serial_key="s")
    lease_a = claim(db)
    assert lease_a is not None
    assert claim(db) is None
    expire(db, a)
    again = claim(db)
    assert again is not None and again.job_id == a and again.attempt == 2
    assert claim(db) is None and job(db, b).state == "queued"


def test_a_queued_sibling_waits_for_an_expired_job_even_when_it_comes_first(
        db: Database) -> None:
    # The worker of an expired lease may still commit (its token is valid until its job is
    # taken again), so a sibling started beside it would be a second sync of one dataset.
    a = add(db, serial_key="s")
    b = add(db, serial_key="s")
    assert claim(db) is not None
    expire(db, a)
    with db.write() as session:  # b first in the claim order (its run_after before a's)
        session.execute(update(Job).where(Job.id == b).values(run_after=0))
    again = claim(db)
    assert again is not None and (again.job_id, again.attempt) == (a, 2)
    assert claim(db) is None and job(db, b).state == "queued"


def test_expired_lease_is_reclaimed_and_the_old_token_is_fenced_off(db: Database) -> None:
    job_id = add(db)
    old = claim(db, owner="w1")
    assert old is not None and old.attempt == 1
    assert heartbeat(db, old)
    expire(db, job_id)
    new = claim(db, owner="w2")
    assert new is not None
    assert (new.job_id, new.attempt, new.previous_error) == (job_id, 2, "lease_expired")
    assert new.token != old.token
    row = job(db, job_id)
    assert (row.attempts, row.lease_owner, row.lease_token) == (2, "w2", new.token)
    # The first worker wakes up: it can neither renew nor commit.
    assert not heartbeat(db, old)
    with pytest.raises(LeaseLost):
        finish(db, old)
    with pytest.raises(LeaseLost):
        finish(db, old, error_code="boom", error_message="late failure")
    assert job(db, job_id).state == "running"
    assert heartbeat(db, new)
    finish(db, new)
    assert job(db, job_id).state == "done"
    assert not heartbeat(db, new)
    with pytest.raises(LeaseLost):
        finish(db, new)


def test_effects_of_a_fenced_off_worker_roll_back_with_its_finish(db: Database) -> None:
    job_id = add(db)
    old = claim(db)
    assert old is not None
    expire(db, job_id)
    assert claim(db) is not None
    effect: list[str] = []
    with pytest.raises(LeaseLost), db.write() as session:
        effect.append(queue.enqueue(session, "effect", {}).id)  # any write of the job
        queue.finish(session, old)
    with db.read() as session:
        assert session.get(Job, effect[0]) is None


def test_lease_expiring_on_the_last_attempt_fails_the_job(db: Database) -> None:
    job_id = add(db, max_attempts=2, serial_key="s")
    sibling = add(db, serial_key="s")
    abandoned: list[tuple[str, str | None, str]] = []

    def on_abandon(session: Session, row: Job) -> None:
        assert session.in_transaction()
        abandoned.append((row.id, row.error_code, row.state))

    tokens = []
    for attempt in (1, 2):
        lease = claim(db, on_abandon=on_abandon)
        assert lease is not None and (lease.job_id, lease.attempt) == (job_id, attempt)
        tokens.append(lease)
        expire(db, job_id)
    # The third claim fails the job instead (and hands out the next job in line).
    nxt = claim(db, on_abandon=on_abandon)
    assert abandoned == [(job_id, "lease_expired", "failed")]
    assert nxt is not None and nxt.job_id == sibling
    row = job(db, job_id)
    assert (row.state, row.error_code, row.attempts, row.lease_token) == (
        "failed", "lease_expired", 2, None)
    assert row.error_message
    for lease in tokens:
        assert not heartbeat(db, lease)
        with pytest.raises(LeaseLost):
            finish(db, lease)
    assert claim(db, on_abandon=on_abandon) is None and len(abandoned) == 1


def test_many_abandoned_jobs_do_not_hide_a_claimable_one(db: Database) -> None:
    dead = [add(db, max_attempts=1) for _ in range(12)]
    for _ in dead:
        assert claim(db) is not None
    for job_id in dead:
        expire(db, job_id)
    alive = add(db)
    lease = claim(db)
    assert lease is not None and lease.job_id == alive
    assert {job(db, j).state for j in dead} == {"failed"}


def test_start_up_expires_the_leases_of_a_dead_process(db: Database) -> None:
    job_id = add(db, serial_key="s")
    old = claim(db)
    assert old is not None and claim(db) is None
    with db.write() as session:
        assert queue.expire_leases_of_dead_process(session) == 1
    new = claim(db)
    assert new is not None and new.job_id == job_id and new.attempt == 2
    with pytest.raises(LeaseLost):
        finish(db, old)


def test_retry_requeues_with_a_delay(db: Database) -> None:
    job_id = add(db)
    lease = claim(db)
    assert lease is not None
    finish(db, lease, error_code="retrying", error_message="x", retry_in_ms=LONG)
    row = job(db, job_id)
    assert (row.state, row.lease_token, row.error_code) == ("queued", None, "retrying")
    assert row.run_after > now_ms() + LONG // 2
    assert claim(db) is None


def test_release_makes_the_job_claimable_at_once(db: Database) -> None:
    job_id = add(db)
    lease = claim(db)
    assert lease is not None and claim(db) is None
    with db.write() as session:
        assert queue.release(session, lease)
    again = claim(db)
    assert again is not None and again.job_id == job_id and again.attempt == 2


# --- claimers in flight together (PostgreSQL: many worker processes) ------------------------

def _no_waiting(session: Session) -> None:
    """Make this claim fail loudly instead of queueing behind another claim's row lock."""
    session.execute(text("SET LOCAL lock_timeout = '2s'"))


def test_postgres_sessions_name_their_process(pg: Database) -> None:
    # Which replica or worker holds a lock is then one query on pg_stat_activity away.
    with pg.write() as session:
        name = session.scalar(text("SELECT application_name FROM pg_stat_activity "
                                   "WHERE pid = pg_backend_pid()"))
    assert name == f"dataloft:{os.getpid()}:{socket.gethostname()}"[:63]


def test_a_claim_skips_the_rows_another_claim_in_flight_holds(pg: Database) -> None:
    first, second = add(pg), add(pg)
    with pg.write() as a:
        lease_a = queue.claim(a, "a", LONG)
        assert lease_a is not None and lease_a.job_id == first
        # a has not committed: to b, `first` still looks queued, but it is locked.
        started = time.monotonic()
        with pg.write() as b:
            _no_waiting(b)
            lease_b = queue.claim(b, "b", LONG)
        assert time.monotonic() - started < 1.5
        assert lease_b is not None and lease_b.job_id == second
    assert (job(pg, first).lease_owner, job(pg, second).lease_owner) == ("a", "b")


def test_two_claims_in_flight_never_start_two_jobs_of_one_serial_key(pg: Database) -> None:
    x = add(pg, serial_key="dataset:1")
    y = add(pg, serial_key="dataset:1")
    other = add(pg, serial_key="dataset:2")
    with pg.write() as a:
        lease_a = queue.claim(a, "a", LONG)
        assert lease_a is not None and lease_a.job_id == x
        # b's snapshot cannot see x running yet; without the serial-key lock it would take y.
        with pg.write() as b:
            _no_waiting(b)
            lease_b = queue.claim(b, "b", LONG)
        assert lease_b is not None and lease_b.job_id == other
    assert claim(pg, owner="c") is None  # x committed as running: y still waits
    assert job(pg, y).state == "queued"


def test_reclaiming_an_expired_job_in_flight_holds_its_siblings_back(pg: Database) -> None:
    x = add(pg, serial_key="s")
    y = add(pg, serial_key="s")
    assert claim(pg, owner="dead") is not None
    expire(pg, x)
    with pg.write() as a:
        again = queue.claim(a, "a", LONG)
        assert again is not None and (again.job_id, again.attempt) == (x, 2)
        with pg.write() as b:
            _no_waiting(b)
            assert queue.claim(b, "b", LONG) is None  # y must not start beside x
    assert job(pg, y).state == "queued"


def test_a_late_finish_in_flight_holds_the_serial_key(pg: Database) -> None:
    x = add(pg, serial_key="s")
    y = add(pg, serial_key="s")
    slow = claim(pg, owner="slow")
    assert slow is not None
    expire(pg, x)  # its heartbeats starved past the lease, but it is committing now
    with pg.write() as a:
        queue.finish(a, slow)  # holds x's row until it commits, so claims skip x
        with pg.write() as b:
            _no_waiting(b)
            assert queue.claim(b, "b", LONG) is None  # y must not start before x commits
    assert job(pg, x).state == "done" and job(pg, y).state == "queued"
    nxt = claim(pg)
    assert nxt is not None and nxt.job_id == y


class Overlaps:
    """Runs jobs from many pools at once, and records every time two jobs of one serial
    key were inside a handler together."""

    def __init__(self, dbs: list[Database], hold_s: float):
        self.dbs = dbs
        self.hold_s = hold_s
        self.lock = threading.Lock()
        self.inside: dict[str, int] = {}
        self.overlaps: list[str] = []
        self.runs: list[str] = []

    def handler(self, db: Database) -> Any:
        outer = self

        class Handler:
            def run(self, lease: Lease, alive: Callable[[], bool]) -> None:
                key = str(lease.payload["key"])
                with outer.lock:
                    outer.inside[key] = outer.inside.get(key, 0) + 1
                    if key != "none" and outer.inside[key] > 1:
                        outer.overlaps.append(key)
                time.sleep(outer.hold_s)
                with outer.lock:
                    outer.inside[key] -= 1
                    outer.runs.append(lease.job_id)
                with db.write() as session:
                    queue.finish(session, lease)

            def failed(self, *args: object) -> None:
                return None

        return Handler()


def test_many_pools_run_every_job_once_and_serial_keys_one_at_a_time(db: Database) -> None:
    # Each pool has its own engine (its own connections), as a worker process would.
    dbs = [Database(db.url) for _ in range(3)]
    probe = Overlaps(dbs, hold_s=0.005)
    keys = ["dataset:a", "dataset:b", "dataset:c", None]
    ids = []
    with db.write() as session:
        for n in range(80):
            key = keys[n % len(keys)]
            ids.append(queue.enqueue(session, "k", {"key": key or "none"},
                                     serial_key=key).id)
    pools = [WorkerPool(d, {"k": probe.handler(d)},
                        WorkerConfig(threads=3, poll_seconds=0.01)) for d in dbs]
    try:
        for p in pools:
            p.start()
        wait_until(lambda: len(probe.runs) >= len(ids), timeout=60)
    finally:
        for p in pools:
            p.stop()
        for d in dbs:
            d.dispose()
    assert sorted(probe.runs) == sorted(ids), "a job ran twice or never"
    assert probe.overlaps == []
    with db.read() as session:
        assert set(session.scalars(select(Job.state))) == {"done"}


def test_stopping_a_pool_gives_the_lease_of_an_unfinished_job_back(db: Database) -> None:
    release = threading.Event()

    def slow(lease: Lease, alive: Callable[[], bool]) -> None:
        release.wait(10)

    handler = FakeHandler(db, slow)
    workers = pool(db, handler, poll_seconds=0.01)
    job_id = add(db)
    workers.start()
    try:
        wait_until(lambda: len(handler.runs) == 1)
        workers.stop(timeout=0.2)
        # Another worker takes it over now, not when the lease (a minute) runs out.
        again = claim(db, owner="next")
        assert again is not None and (again.job_id, again.attempt) == (job_id, 2)
        assert again.previous_error == "lease_expired"
    finally:
        release.set()
    wait_until(lambda: not any(t.is_alive() for t in workers._threads))
    assert job(db, job_id).lease_owner == "next"  # the old attempt's finish was refused


# --- the worker pool -------------------------------------------------------------------------

class FakeHandler:
    """A test double of the Handler interface: scripted outcomes, recorded calls."""

    def __init__(self, db: Database, script: Callable[[Lease, Callable[[], bool]], None]
                 | None = None):
        self.db = db
        self.script = script
        self.runs: list[Lease] = []
        self.failures: list[tuple[str, dict[str, object], str, str]] = []
        self.failed_in_transaction = True

    def run(self, lease: Lease, alive: Callable[[], bool]) -> None:
        self.runs.append(lease)
        if self.script is not None:
            self.script(lease, alive)
        with self.db.write() as session:
            queue.finish(session, lease)

    def failed(self, session: Session, job_id: str, payload: dict[str, object], code: str,
               message: str) -> None:
        self.failed_in_transaction &= session.in_transaction()
        self.failures.append((job_id, payload, code, message))


def pool(db: Database, handler: FakeHandler, **config: Any) -> WorkerPool:
    return WorkerPool(db, {"k": handler}, WorkerConfig(**{"threads": 1, **config}))


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_run_once_runs_a_job_to_done(db: Database) -> None:
    handler = FakeHandler(db)
    workers = pool(db, handler)
    assert workers.run_once() is False
    job_id = add(db)
    assert workers.run_once() is True
    assert [lease.job_id for lease in handler.runs] == [job_id]
    assert job(db, job_id).state == "done" and handler.failures == []


def test_unexpected_errors_retry_with_backoff_then_fail_as_internal_error(db: Database) -> None:
    def boom(lease: Lease, alive: Callable[[], bool]) -> None:
        raise RuntimeError(f"boom {lease.attempt}")

    handler = FakeHandler(db, boom)
    workers = pool(db, handler, retry_base_seconds=0.2)
    job_id = add(db, max_attempts=3, n=7)
    for attempt, backoff_ms in ((1, 200), (2, 400)):  # exponential: base * 2^(attempt-1)
        assert workers.run_once()
        row = job(db, job_id)
        assert (row.state, row.attempts, row.error_code) == ("queued", attempt, "retrying")
        assert row.error_message == f"RuntimeError: boom {attempt}"
        assert backoff_ms <= row.run_after - row.updated_at <= backoff_ms + 5
        assert workers.run_once() is False  # not before its backoff
        wait_until(lambda r=row: now_ms() > r.run_after)  # type: ignore[misc]
    assert handler.failures == []
    assert workers.run_once()
    row = job(db, job_id)
    assert (row.state, row.attempts, row.error_code) == ("failed", 3, "internal_error")
    assert handler.failures == [(job_id, {"n": 7}, "internal_error", "RuntimeError: boom 3")]
    assert handler.failed_in_transaction
    assert [lease.attempt for lease in handler.runs] == [1, 2, 3]
    assert handler.runs[1].previous_error == "retrying"
    assert handler.runs[1].previous_message == "RuntimeError: boom 1"
    assert workers.run_once() is False


def test_job_failed_is_final_and_typed(db: Database) -> None:
    def refuse(lease: Lease, alive: Callable[[], bool]) -> None:
        raise JobFailed("corrupted_file", "the file is not valid JSON")

    handler = FakeHandler(db, refuse)
    workers = pool(db, handler)
    job_id = add(db, max_attempts=3)
    assert workers.run_once()
    row = job(db, job_id)
    assert (row.state, row.attempts, row.error_code, row.error_message) == (
        "failed", 1, "corrupted_file", "the file is not valid JSON")
    assert handler.failures == [(job_id, {"n": 0}, "corrupted_file",
                                 "the file is not valid JSON")]
    assert handler.failed_in_transaction
    assert workers.run_once() is False and len(handler.runs) == 1


def test_unknown_kind_fails_the_job(db: Database) -> None:
    workers = pool(db, FakeHandler(db))
    job_id = add(db, kind="nobody.handles.this")
    assert workers.run_once()
    row = job(db, job_id)
    assert (row.state, row.error_code) == ("failed", "unknown_job")


def test_worker_whose_lease_is_gone_sees_alive_false_and_cannot_commit(db: Database) -> None:
    seen: dict[str, object] = {}
    stolen: list[Lease] = []

    def slow(lease: Lease, alive: Callable[[], bool]) -> None:
        assert alive()
        expire(db, lease.job_id)
        other = claim(db, owner="someone-else")
        assert other is not None
        stolen.append(other)
        deadline = time.monotonic() + 5
        while alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        seen["alive"] = alive()

    handler = FakeHandler(db, slow)
    workers = pool(db, handler, lease_seconds=0.15)  # a heartbeat every 50 ms
    job_id = add(db)
    assert workers.run_once()  # the handler's finish raised LeaseLost; the pool shrugs
    assert seen["alive"] is False
    row = job(db, job_id)
    assert (row.state, row.lease_owner, row.lease_token) == (
        "running", "someone-else", stolen[0].token)
    assert handler.failures == []


def test_heartbeats_keep_a_long_job_leased(db: Database) -> None:
    def long_job(lease: Lease, alive: Callable[[], bool]) -> None:
        time.sleep(1.2)  # well past the lease
        assert alive()
        assert claim(db, owner="thief") is None  # never expired: heartbeats renewed it

    handler = FakeHandler(db, long_job)
    workers = pool(db, handler, lease_seconds=0.45)
    job_id = add(db)
    assert workers.run_once()
    assert job(db, job_id).state == "done" and handler.failures == []


def test_stuck_handler_loses_its_lease_and_the_job_fails_as_lease_expired(db: Database) -> None:
    unstick = threading.Event()

    def stuck(lease: Lease, alive: Callable[[], bool]) -> None:
        unstick.wait(30)  # a hung extractor: never looks at alive()

    handler = FakeHandler(db, stuck)
    workers = pool(db, handler, threads=1, lease_seconds=0.3, poll_seconds=0.02,
                   max_run_seconds=0.3)
    job_id = add(db, max_attempts=2)
    workers.start()
    try:
        # Attempt 1 hangs, gives up its lease, a fresh thread takes attempt 2, which hangs
        # too; then the job fails instead of staying 'running' forever.
        wait_until(lambda: job(db, job_id).state == "failed")
        row = job(db, job_id)
        assert (row.error_code, row.attempts) == ("lease_expired", 2)
        assert [f[2] for f in handler.failures] == ["lease_expired"]
        assert [lease.attempt for lease in handler.runs] == [1, 2]
        # The pool kept its size: a new job still runs while the stuck threads hang.
        handler.script = None
        other = add(db)
        wait_until(lambda: job(db, other).state == "done")
    finally:
        unstick.set()
        workers.stop()
    # The stuck attempts woke up late: their finish was refused.
    assert job(db, job_id).state == "failed"


# --- property: random interleavings keep the queue's invariants -----------------------------

class QueueMachine(RuleBasedStateMachine):
    leases = Bundle("leases")

    def __init__(self, db: Database):
        super().__init__()
        self.db = db
        with db.write() as session:
            session.execute(delete(Job))
        self.ids: list[str] = []
        self.latest: dict[str, str] = {}  # job id -> token of its newest lease

    def rows(self) -> list[Job]:
        with self.db.read() as session:
            return list(session.scalars(select(Job)))

    @rule(serial=st.sampled_from([None, "a", "b"]), max_attempts=st.integers(1, 3))
    def enqueue(self, serial: str | None, max_attempts: int) -> None:
        self.ids.append(add(self.db, serial_key=serial, max_attempts=max_attempts))

    @rule(target=leases)
    def claim(self) -> Lease | None:
        now = now_ms()
        before = {r.id: r for r in self.rows()}
        abandoned: list[str] = []

        def claimable(r: Job) -> bool:
            ready = ((r.state == "queued" and r.run_after <= now)
                     or (r.state == "running" and (r.lease_expires_at or 0) < now))
            # A queued job waits for a running sibling whatever its lease (unless this
            # claim failed that sibling first); a job taken again waits only for a sibling
            # with a live lease.
            busy = r.serial_key is not None and any(
                o.serial_key == r.serial_key and o.id != r.id and o.state == "running"
                and o.id not in abandoned
                and (r.state == "queued" or (o.lease_expires_at or 0) >= now)
                for o in before.values())
            return ready and not busy

        def on_abandon(session: Session, row: Job) -> None:
            abandoned.append(row.id)

        lease = claim(self.db, owner="w", on_abandon=on_abandon)
        rows = {r.id: r for r in self.rows()}
        for job_id in abandoned:
            assert rows[job_id].state == "failed"
            assert rows[job_id].error_code == "lease_expired"
            assert before[job_id].attempts >= before[job_id].max_attempts
        if lease is None:
            # Nothing was left to run but jobs out of attempts, which are failed now.
            assert all(not claimable(r) or r.attempts >= r.max_attempts
                       for r in before.values())
        else:
            assert claimable(before[lease.job_id])
            assert lease.attempt == before[lease.job_id].attempts + 1
            self.latest[lease.job_id] = lease.token
        return lease

    @rule(lease=leases)
    def expire(self, lease: Lease | None) -> None:
        if lease is not None:
            expire(self.db, lease.job_id)

    @rule()
    def restart(self) -> None:
        with self.db.write() as session:
            queue.expire_leases_of_dead_process(session)

    @rule(lease=leases)
    def heartbeat(self, lease: Lease | None) -> None:
        if lease is None:
            return
        row = next(r for r in self.rows() if r.id == lease.job_id)
        valid = row.state == "running" and row.lease_token == lease.token
        assert heartbeat(self.db, lease) is valid

    @rule(lease=leases, outcome=st.sampled_from(["done", "failed", "retry"]))
    def finish(self, lease: Lease | None, outcome: str) -> None:
        if lease is None:
            return
        row = next(r for r in self.rows() if r.id == lease.job_id)
        valid = row.state == "running" and row.lease_token == lease.token
        assert valid == (self.latest.get(lease.job_id) == lease.token
                         and row.state == "running")
        kw: dict[str, Any] = {}
        if outcome == "retry" and row.attempts >= row.max_attempts:
            outcome = "failed"  # the worker's policy: no retry past max_attempts
        if outcome == "failed":
            kw = {"error_code": "x", "error_message": "x"}
        elif outcome == "retry":
            kw = {"error_code": "retrying", "error_message": "x", "retry_in_ms": 0}
        if valid:
            finish(self.db, lease, **kw)
            after = next(r for r in self.rows() if r.id == lease.job_id)
            assert after.state == {"done": "done", "failed": "failed", "retry": "queued"}[
                outcome]
        else:
            with pytest.raises(LeaseLost):
                finish(self.db, lease, **kw)

    @invariant()
    def consistent(self) -> None:
        rows = self.rows()
        assert sorted(r.id for r in rows) == sorted(self.ids)
        for r in rows:
            assert r.state in ("queued", "running", "done", "failed")
            # A lease exists exactly while running, and it is the newest one handed out.
            assert (r.lease_token is not None) == (r.state == "running")
            if r.state == "running":
                assert r.lease_token == self.latest[r.id]
            assert 0 <= r.attempts <= r.max_attempts
            if r.error_code == "lease_expired":
                assert r.state == "failed" and r.attempts >= r.max_attempts
        # Not only two live leases: a job under an expired lease may still commit.
        running = [r.serial_key for r in rows if r.state == "running" and r.serial_key]
        assert len(running) == len(set(running)), "two running jobs on one serial key"


def test_random_interleavings_keep_the_invariants(db: Database) -> None:
    run_state_machine_as_test(
        lambda: QueueMachine(db),
        settings=settings(max_examples=40, stateful_step_count=30, deadline=None,
                          suppress_health_check=list(HealthCheck)),
    )


# --- fairness ------------------------------------------------------------------------------

def drain(db: Database) -> list[int]:
    """Claim and finish one job at a time (a single worker); the order jobs ran in."""
    order = []
    while (lease := claim(db)) is not None:
        order.append(int(lease.payload["n"]))
        with db.write() as session:
            queue.finish(session, lease)
    return order


def test_one_organisations_backlog_delays_another_by_at_most_one_job(db: Database) -> None:
    for n in range(1, 7):  # org A: a backlog over three datasets
        add(db, org_id="org_a", serial_key=f"dataset:a{n % 3}", n=n)
    add(db, org_id="org_b", serial_key="dataset:b", n=100)
    order = drain(db)
    assert sorted(order) == [1, 2, 3, 4, 5, 6, 100]
    assert order.index(100) <= 1, order  # A's oldest, then B's first at the latest


def test_an_organisation_served_before_waits_for_one_never_served(db: Database) -> None:
    add(db, org_id="org_a", serial_key="dataset:a", n=1)
    assert drain(db) == [1]
    for n in range(2, 6):
        add(db, org_id="org_a", serial_key=f"dataset:a{n}", n=n)
    add(db, org_id="org_b", serial_key="dataset:b", n=100)
    assert drain(db)[0] == 100


def test_datasets_of_one_organisation_take_turns(db: Database) -> None:
    for n in range(1, 5):
        add(db, org_id="org_a", serial_key="dataset:big", n=n)
    add(db, org_id="org_a", serial_key="dataset:small", n=100)
    order = drain(db)
    assert order.index(100) <= 1, order
    assert [n for n in order if n != 100] == [1, 2, 3, 4]  # each dataset's own order kept
