"""Per-organisation quotas on stored bytes, records and files, and the usage figures.

Whoever stores, indexes or creates something charges it here in the transaction that
commits it (`charge`), and whoever removes something releases it (`release`); a refused
charge raises `QuotaExceeded` (413 QUOTA_EXCEEDED), so the transaction rolls back whole.
The instance defaults (DATALOFT_ORG_MAX_*) travel with the database's sessions
(`session.info[SESSION_KEY]`, set by the context), so the layers that charge need no
settings of their own; an organisation's overrides are set by an instance admin.

A charge is checked at once against the committed usage (so a refusal comes before the
work), but the org's counters move only as the transaction commits (`settle`, run by the
session's before_commit hook). Every writer of an org updates its one quota row; taken
anywhere earlier, that row lock joins lock cycles with the rows a transaction takes after
it (PostgreSQL answered a record create racing a sync commit with a deadlock), and it would
hold back the org's every other write for a whole long commit. Taken last, no transaction
waits for anything while holding it. The atomic conditional UPDATE at commit decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from dataloft.errors import BadRequest, QuotaExceeded
from dataloft.models import OrgQuota
from dataloft.quotas import repository
from dataloft.quotas.repository import UNLIMITED, Kind

SESSION_KEY = "dataloft.quota_limits"
_PENDING_KEY = "dataloft.quota_pending"
# The wire name of each quota, and the setting that sets its instance default.
WIRE: dict[Kind, str] = {"storage_bytes": "storageBytes", "records": "records",
                         "files": "files"}
SETTING: dict[Kind, str] = {"storage_bytes": "DATALOFT_ORG_MAX_STORAGE_BYTES",
                            "records": "DATALOFT_ORG_MAX_RECORDS",
                            "files": "DATALOFT_ORG_MAX_FILES"}
_UNIT: dict[Kind, str] = {"storage_bytes": "bytes", "records": "records", "files": "files"}
_WHAT: dict[Kind, str] = {"storage_bytes": "storage", "records": "record", "files": "file"}


@dataclass(frozen=True)
class Limits:
    """Instance defaults; None is unlimited."""

    storage_bytes: int | None = None
    records: int | None = None
    files: int | None = None

    def of(self, kind: Kind) -> int | None:
        value: int | None = getattr(self, kind)
        return value


def session_info(limits: Limits) -> dict[str, Any]:
    """What the context puts in every session's `info`."""
    return {SESSION_KEY: limits}


def _defaults(session: Session) -> Limits:
    found = session.info.get(SESSION_KEY)
    return found if isinstance(found, Limits) else Limits()


@dataclass(frozen=True)
class _Pending:
    """A charge made in `txn` (the savepoint it was made in, if any), not yet counted."""

    txn: SessionTransaction
    org_id: str
    kind: Kind
    n: int


def _pending(session: Session) -> list[_Pending]:
    found: list[_Pending] = session.info.setdefault(_PENDING_KEY, [])
    return found


def _pending_sum(session: Session, org_id: str, kind: Kind) -> int:
    return sum(p.n for p in session.info.get(_PENDING_KEY, ())
               if p.org_id == org_id and p.kind == kind)


def charge(session: Session, org_id: str, *, storage_bytes: int = 0, records: int = 0,
           files: int = 0) -> None:
    """Count what this transaction adds (negative: removes) once it commits; refused now
    past a limit as the committed usage stands, or at commit if others filled it meanwhile."""
    install()
    wanted: tuple[tuple[Kind, int], ...] = (
        ("storage_bytes", storage_bytes), ("records", records), ("files", files))
    txn = session.get_nested_transaction() or session.get_transaction() or session.begin()
    # One read of the org's row for every kind: it holds both the usage and the overrides.
    row = repository.get(session, org_id) if any(n > 0 for _, n in wanted) else None
    for kind, n in wanted:
        if not n:
            continue
        limit = _limit_of(session, row, kind) if n > 0 else None
        if limit is not None and _used_of(session, row, org_id, kind) + n > limit:
            raise _exceeded(session, org_id, kind, n)
        _pending(session).append(_Pending(txn, org_id, kind, n))


def settle(session: Session) -> None:
    """Move the counters by the charges made so far, one statement per org and kind in a
    fixed order (two transactions charging the same orgs lock their rows alike). Runs at
    a savepoint's release too, so that a savepoint can catch its refusal; refused, the
    charges stay pending for the rollback to sort out (`_forget`)."""
    pending = session.info.pop(_PENDING_KEY, [])
    due: dict[tuple[str, Kind], int] = {}
    for p in pending:
        due[(p.org_id, p.kind)] = due.get((p.org_id, p.kind), 0) + p.n
    defaults = _defaults(session)
    for (org_id, kind), n in sorted(due.items()):
        if n and not repository.add(session, org_id, kind, n, defaults.of(kind)):
            session.info[_PENDING_KEY] = pending
            raise _exceeded(session, org_id, kind, n)


def _forget(session: Session, previous: SessionTransaction) -> None:
    """A rolled-back transaction or savepoint takes its charges (and its savepoints') along."""
    session.info[_PENDING_KEY] = [p for p in session.info.get(_PENDING_KEY, ())
                                  if not _within(p.txn, previous)]


def _within(txn: SessionTransaction | None, outer: SessionTransaction) -> bool:
    while txn is not None:
        if txn is outer:
            return True
        txn = txn.parent
    return False


def install() -> None:
    """Hook `settle` into every session's commit (once per process); `charge` calls it, so
    no charge can go uncounted for want of the hook."""
    if not event.contains(Session, "before_commit", settle):
        event.listen(Session, "before_commit", settle)
        event.listen(Session, "after_soft_rollback", _forget)


def precheck(session: Session, org_id: str, *, storage_bytes: int) -> None:
    """Refuse early what would not fit now (an announced upload size); not atomic: the
    charge in the committing transaction decides."""
    limit = _limit(session, org_id, "storage_bytes")
    if storage_bytes > 0 and limit is not None \
            and _used(session, org_id, "storage_bytes") + storage_bytes > limit:
        raise _exceeded(session, org_id, "storage_bytes", storage_bytes)


def release(session: Session, org_id: str, *, storage_bytes: int = 0, records: int = 0,
            files: int = 0) -> None:
    charge(session, org_id, storage_bytes=-storage_bytes, records=-records, files=-files)


def _used(session: Session, org_id: str, kind: Kind) -> int:
    return _used_of(session, repository.get(session, org_id), org_id, kind)


def _used_of(session: Session, row: OrgQuota | None, org_id: str, kind: Kind) -> int:
    """Committed usage (`row`, the org's) plus what this transaction has charged so far."""
    return (0 if row is None else int(getattr(row, kind))) + _pending_sum(session, org_id, kind)


def _limit(session: Session, org_id: str, kind: Kind) -> int | None:
    return _limit_of(session, repository.get(session, org_id), kind)


def _limit_of(session: Session, row: OrgQuota | None, kind: Kind) -> int | None:
    override = None if row is None else getattr(row, f"max_{kind}")
    if override is None:
        return _defaults(session).of(kind)
    return None if override == UNLIMITED else int(override)


def _exceeded(session: Session, org_id: str, kind: Kind, n: int) -> QuotaExceeded:
    used = _used(session, org_id, kind)
    limit = _limit(session, org_id, kind)
    unit = _UNIT[kind]
    return QuotaExceeded(
        f"the organisation's {_WHAT[kind]} quota ({WIRE[kind]}: {limit} {unit}) would be "
        f"exceeded: {used} {unit} used, this needs {n} more", quota=WIRE[kind], limit=limit,
        used=used)


def usage(session: Session, org_id: str) -> dict[str, Any]:
    return {**{WIRE[k]: _used(session, org_id, k) for k in WIRE},
            "limits": {WIRE[k]: _limit(session, org_id, k) for k in WIRE}}


def set_limits(session: Session, org_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Overrides from `{storageBytes?, records?, files?}`: a number >= 0 is the limit,
    -1 unlimited, null back to the instance default; absent keys are left as they are."""
    values: dict[Kind, int | None] = {}
    for kind, wire in WIRE.items():
        if wire not in body:
            continue
        value = body[wire]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < UNLIMITED):
            raise BadRequest(f"{wire} must be a number >= 0, -1 (unlimited) or null "
                             "(the instance default)")
        values[kind] = value
    repository.set_overrides(session, org_id, values)
    return usage(session, org_id)
