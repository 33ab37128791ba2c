"""Durable jobs in the metadata database, claimed under leases with fencing tokens.

A job row is inserted in the transaction of the data it concerns, so it exists exactly when
that data does. A worker claims a job by taking its lease (owner, token, expiry) and keeps it
alive with heartbeats. A lease that expires (the worker crashed, hung, or was killed) makes
the job claimable again, up to `max_attempts`; then it fails with reason `lease_expired`.
Completion checks the token, so a worker that lost its lease cannot commit its effects:
the effects and the completion commit together or not at all.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    CursorResult,
    Update,
    and_,
    bindparam,
    delete,
    exists,
    false,
    func,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session, aliased

from dataloft.jobs import locks
from dataloft.kit.ids import new_id, now_ms
from dataloft.models import Job

BLOB_DELETE = "blob.delete"


def job_by_id(session: Session, job_id: str) -> Job | None:
    return session.get(Job, job_id)


def delete_blob_later(session: Session, key: str, org_id: str | None) -> Job:
    """Queue the deletion of a blob, to run once the caller's transaction commits (so a
    rollback keeps the blob its rows still name)."""
    return enqueue(session, BLOB_DELETE, {"key": key}, org_id=org_id)


def enqueue(session: Session, kind: str, payload: dict[str, Any], *, org_id: str | None = None,
            serial_key: str | None = None, max_attempts: int = 3, delay_ms: int = 0) -> Job:
    job = Job(id=new_id("job"), kind=kind, payload=payload, org_id=org_id,
              serial_key=serial_key, max_attempts=max_attempts, run_after=now_ms() + delay_ms)
    session.add(job)
    return job


@dataclass(frozen=True)
class Lease:
    job_id: str
    token: str
    kind: str
    payload: dict[str, Any]
    attempt: int
    org_id: str | None
    previous_error: str | None
    # Why the previous attempt ended ('lease_expired' when it was interrupted), for people.
    previous_message: str | None = None


class LeaseLost(Exception):
    """The job's lease passed to someone else; this worker must drop its results."""


def _sibling_holds_key(serial_key: Any, job_id: Any, queued: Any, now: int) -> Any:
    """Whether another job of `serial_key` keeps the job `job_id` from starting.

    A queued job waits while a sibling runs under any lease, live or expired: the worker of
    an expired lease may still be committing (on PostgreSQL its finish holds the row, which
    claims skip), and only taking that job again (a new token) fences its commit off. A job
    whose own lease expired may be taken again unless a sibling holds a live lease."""
    other = aliased(Job)
    return exists().where(
        other.serial_key == serial_key,
        other.id != job_id,
        other.state == "running",
        or_(queued, other.lease_expires_at >= now),
    )


def _claimable(now: int) -> Any:
    ready = or_(
        and_(Job.state == "queued", Job.run_after <= now),
        and_(Job.state == "running", Job.lease_expires_at < now),
    )
    held = _sibling_holds_key(Job.serial_key, Job.id, Job.state == "queued", now)
    return and_(ready, or_(Job.serial_key.is_(None), ~held))


# Whether any job is ready at all, before the claim query: built once, it costs a fraction
# of building and running the fair-order query, which every idle worker ran every poll
# (~3 ms of CPU each, holding the GIL beside the API's requests; docs/decisions.md).
_ANY_READY = select(Job.id).where(or_(
    and_(Job.state == "queued", Job.run_after <= bindparam("now")),
    and_(Job.state == "running", Job.lease_expires_at < bindparam("now")))).limit(1)


def _turns() -> tuple[Any, Any]:
    """Fair order: the organisation served least recently first, then, within it, the serial
    key (a dataset) served least recently; never served counts as served at time 0."""
    org, key = aliased(Job), aliased(Job)
    org_turn = select(func.coalesce(func.max(org.claimed_at), 0)).where(
        org.org_id == Job.org_id).scalar_subquery()
    key_turn = select(func.coalesce(func.max(key.claimed_at), 0)).where(
        key.serial_key == Job.serial_key).scalar_subquery()
    return org_turn, key_turn


def claim(session: Session, owner: str, lease_ms: int,
          on_abandon: Callable[[Session, Job], None] | None = None) -> Lease | None:
    """Take the next claimable job in fair order (`_turns`: round-robin over organisations,
    then over datasets, then oldest first). Call inside a write transaction, and commit
    soon: on PostgreSQL the row looked at and the serial key taken stay locked until then.

    A job whose lease expired on its last allowed attempt is failed instead, and
    `on_abandon` lets its kind record why (e.g. a sync.failed event)."""
    # The clock is read once the transaction holds its connection: on SQLite that waits
    # for the one writer, which a big sync's commit can hold for longer than a lease, and
    # a lease counted from before the wait was born expired (taken again at once).
    conn = session.connection()
    now = now_ms()
    # No ready job, no claimable one (the claim query only narrows `ready` further).
    if conn.execute(_ANY_READY, {"now": now}).first() is None:
        return None
    passed: set[str] = set()  # jobs that could not be taken (a lost compare-and-set)
    held: set[str] = set()  # serial keys another claimer holds, or a sibling runs under
    while True:
        query = select(Job).where(_claimable(now))
        if passed:
            query = query.where(Job.id.not_in(passed))
        if held:
            query = query.where(or_(Job.serial_key.is_(None), Job.serial_key.not_in(held)))
        # One row at a time, locked, skipping rows other claimers have locked: many workers
        # on PostgreSQL never queue behind one row nor lock rows they will not take (a no-op
        # on SQLite, whose single writer already runs claims one at a time).
        job = session.scalars(
            query.order_by(*_turns(), Job.run_after, Job.id).limit(1)
            .with_for_update(skip_locked=True, of=Job)
            .execution_options(populate_existing=True)
        ).first()
        if job is None:
            return None
        if job.serial_key is not None and not _serial_key_free(session, job, now):
            held.add(job.serial_key)
            continue
        if job.state == "running" and job.attempts >= job.max_attempts:
            _abandon(session, job, now, on_abandon)
            continue
        lease = _take(session, job, owner, lease_ms, now)
        if lease is not None:
            return lease
        passed.add(job.id)


def _serial_key_free(session: Session, job: Job, now: int) -> bool:
    """Whether `job` may start now (`_sibling_holds_key`); on PostgreSQL also takes the key
    until this claim commits.

    The claim query's sibling check reads a snapshot: two claimers could both see "no
    sibling running" and start two syncs of one dataset. Under the key's lock the check is
    repeated with a fresh snapshot, which includes any sibling claim that committed before
    the lock was free (docs/decisions.md, "serial keys across workers")."""
    if not locks.try_transaction_lock(session, f"job-serial:{job.serial_key}"):
        return False
    queued = true() if job.state == "queued" else false()
    return not session.scalar(select(_sibling_holds_key(job.serial_key, job.id, queued, now)))


def _abandon(session: Session, job: Job, now: int,
             on_abandon: Callable[[Session, Job], None] | None) -> None:
    job.state, job.error_code = "failed", "lease_expired"
    job.error_message = "the worker running this job stopped responding too often"
    job.lease_token = job.lease_owner = job.lease_expires_at = None
    job.updated_at = now
    if on_abandon is not None:
        on_abandon(session, job)
    session.flush()


def _take(session: Session, job: Job, owner: str, lease_ms: int, now: int) -> Lease | None:
    expired = job.state == "running"
    previous: tuple[str | None, str | None]
    if expired:
        previous = ("lease_expired", "the previous attempt was interrupted "
                    "(its worker stopped or stopped responding)")
    else:
        previous = (job.error_code, job.error_message)
    token = secrets.token_hex(16)
    # Compare-and-set on the row we saw (still expired, same token), so two claimers on
    # PostgreSQL cannot both win, nor steal a lease a heartbeat has just renewed.
    seen = [Job.id == job.id, Job.state == job.state,
            Job.lease_token.is_(None) if job.lease_token is None
            else Job.lease_token == job.lease_token]
    if expired:
        seen.append(Job.lease_expires_at < now)
    won = _changed(session, update(Job)
                   .where(*seen)
                   .values(state="running", lease_owner=owner, lease_token=token,
                           lease_expires_at=now + lease_ms, attempts=Job.attempts + 1,
                           claimed_at=now, updated_at=now)
                   .execution_options(synchronize_session=False))
    if not won:
        return None
    session.refresh(job)
    return Lease(job.id, token, job.kind, dict(job.payload), job.attempts, job.org_id,
                 previous[0], previous[1])


def heartbeat(session: Session, lease: Lease, lease_ms: int, held_ms: int = 0) -> bool:
    """Extend the lease; False when it is no longer ours (re-claimed, failed, finished).
    `held_ms`: how long the caller's transaction has run. Its COMMIT writes out what the
    transaction wrote and keeps the writer (and so every other heartbeat) meanwhile, so a
    renewal made inside a long transaction must outlast that commit too: a 1M-row sync's
    commit on a loaded box outran a bare lease and its job was taken again."""
    session.connection()  # the writer first, then the clock (see `claim`)
    return bool(_changed(session, update(Job).where(
        Job.id == lease.job_id, Job.lease_token == lease.token, Job.state == "running")
        .values(lease_expires_at=now_ms() + lease_ms + max(0, held_ms))))


def release(session: Session, lease: Lease) -> bool:
    """Give the lease up now (a run over its time limit): the job is claimable at once, as
    if its lease had expired, and this token stays valid only until someone claims it."""
    return bool(_changed(session, update(Job).where(
        Job.id == lease.job_id, Job.lease_token == lease.token, Job.state == "running")
        .values(lease_expires_at=0, updated_at=now_ms())))


def finish(session: Session, lease: Lease, *, error_code: str | None = None,
           error_message: str | None = None, retry_in_ms: int | None = None) -> None:
    """Mark the job done/failed/queued-for-retry, inside the transaction of its effects.

    Raises LeaseLost if the lease is no longer ours, which rolls the effects back."""
    values: dict[str, Any] = {"lease_token": None, "lease_owner": None, "updated_at": now_ms()}
    if retry_in_ms is not None:
        values.update(state="queued", run_after=now_ms() + retry_in_ms, error_code=error_code,
                      error_message=error_message)
    else:
        values.update(state="failed" if error_code else "done", error_code=error_code,
                      error_message=error_message)
    won = _changed(session, update(Job).where(Job.id == lease.job_id,
                                              Job.lease_token == lease.token).values(**values))
    if not won:
        raise LeaseLost(lease.job_id)


def expire_leases_of_dead_process(session: Session) -> int:
    """Embedded mode runs one process: at start-up every 'running' lease is an orphan."""
    return _changed(session, update(Job).where(Job.state == "running").values(lease_expires_at=0))


def _changed(session: Session, statement: Update) -> int:
    """Rows an UPDATE changed: the compare-and-set result every lease operation hangs on."""
    result: CursorResult[Any] = session.execute(statement)  # type: ignore[assignment]
    return int(result.rowcount)


def queued_under(session: Session, serial_key: str, limit: int
                 ) -> list[tuple[str, str, dict[str, Any]]]:
    """(id, kind, payload) of the jobs queued under `serial_key`, in the order a claim takes
    them within the key (`claim`: run_after, then id), at most `limit`."""
    rows = session.execute(select(Job.id, Job.kind, Job.payload).where(
        Job.serial_key == serial_key, Job.state == "queued")
        .order_by(Job.run_after, Job.id).limit(limit))
    return [(job_id, kind, dict(payload)) for job_id, kind, payload in rows]


def waiting_or_held(session: Session, job_id: str, owner_prefix: str) -> bool:
    """Whether the job is queued, or running under a lease whose owner starts with
    `owner_prefix` (a worker of this process took it)."""
    row = session.execute(select(Job.state, Job.lease_owner).where(Job.id == job_id)).first()
    if row is None:
        return False
    state, owner = row
    return bool(state == "queued" or (state == "running" and owner is not None
                                      and owner.startswith(owner_prefix)))


def pending(session: Session, kind: str) -> bool:
    """Whether a job of `kind` is queued or running."""
    return session.scalar(select(Job.id).where(
        Job.kind == kind, Job.state.in_(("queued", "running"))).limit(1)) is not None


def prune(session: Session, before_ms: int, limit: int) -> int:
    """Delete up to `limit` finished jobs last changed before `before_ms`: every done job,
    and each failed one that a newer job of the same kind, serial key and file superseded
    (the newest job of a file is its sync status: a failure that still stands stays)."""
    newer = aliased(Job)
    file_of = Job.payload["fileId"].as_string()
    superseded = exists().where(
        newer.kind == Job.kind, newer.serial_key == Job.serial_key,
        newer.payload["fileId"].as_string() == file_of, newer.created_at > Job.created_at)
    doomed = select(Job.id).where(
        Job.updated_at < before_ms,
        or_(Job.state == "done", and_(Job.state == "failed", superseded))).limit(limit)
    ids = list(session.scalars(doomed))
    if ids:
        session.execute(delete(Job).where(Job.id.in_(ids)))
    return len(ids)
