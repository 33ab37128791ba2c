"""Quota charges racing on PostgreSQL, driven statement by statement on the real database:
- an org's usage row made by a concurrent transaction between a charge's UPDATE (which saw
  no row) and its next statement: the charge must still be accepted (no limit is set);
- a record create and a sync commit of one org, each holding a row the other needs next:
  the quota row must not close a lock cycle (it did: PostgreSQL aborted one with a deadlock,
  and the API answered 500);
- a charge that fit when made but not when its transaction commits (another filled the
  quota meanwhile): refused at the commit, nothing written;
- a request the database aborts to break a lock cycle (held here from outside): 503
  SERVICE_BUSY with Retry-After, never a 500, and nothing written;
- charges in savepoints (both backends): a rolled-back savepoint's are not counted; at a
  release all charged so far are counted, so the savepoint can catch its refusal."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session

from dataloft.config import Settings
from dataloft.datasets import repository as dataset_rows
from dataloft.datasets import service as datasets
from dataloft.errors import QuotaExceeded
from dataloft.quotas import repository
from dataloft.quotas import service as quotas
from dataloft.records import repository as records
from dataloft.records.repository import NewRecord
from dataloft.storage.index.postgres import PostgresIndex
from tests.support.api import app_context, assert_envelope, create_dataset


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_charge_that_found_no_row_is_not_refused_when_another_makes_it(
        settings: Settings, app_client: object) -> None:
    engine = create_engine(str(settings.database_url))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO orgs (id, name, created_at, updated_at) "
                          "VALUES ('org_race', 'race', 0, 0)"))
    paused, resume = threading.Event(), threading.Event()
    results: list[bool] = []

    def second() -> None:
        with Session(engine) as b:
            conn = b.connection()

            @event.listens_for(conn, "after_cursor_execute")
            def _pause(*args: object) -> None:
                statement = str(args[2])
                if statement.startswith("UPDATE org_quotas") and not paused.is_set():
                    paused.set()  # its UPDATE matched no row: let the other commit now
                    resume.wait(30)

            results.append(repository.add(b, "org_race", "files", 1, None))
            b.commit()

    with Session(engine) as a:
        assert repository.add(a, "org_race", "files", 1, None)  # makes the row, uncommitted
        thread = threading.Thread(target=second)
        thread.start()
        assert paused.wait(30)
        a.commit()
    resume.set()
    thread.join(30)
    assert results == [True]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT files FROM org_quotas WHERE org_id = 'org_race'")
                            ).scalar() == 2
    engine.dispose()


def _in_thread(work: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    failures: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            failures.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, failures


def _wait_for_lock_wait(engine: Engine, thread: threading.Thread,
                        failures: list[BaseException]) -> None:
    """Until some other session of this database waits for a row lock (`thread`, which
    must not end first: its `failures` say why it did)."""
    end = time.monotonic() + 60
    with engine.connect() as conn:
        while time.monotonic() < end:
            assert thread.is_alive(), f"ended without waiting: {failures!r}"
            waiting = conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")).scalar()
            # pg_stat_activity is read once per transaction and kept until it ends: a new
            # transaction per look, or the first look's answer would be the only one.
            conn.rollback()
            if waiting:
                return
            time.sleep(0.05)
    raise AssertionError("the other transaction never waited for a lock")


def _quota_of(engine: Engine, org_id: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT records FROM org_quotas WHERE org_id = :o"),
                                {"o": org_id}).scalar() or 0)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_record_create_and_a_sync_commit_of_one_org_do_not_deadlock(
        settings: Settings, app_client: TestClient) -> None:
    engine = create_engine(str(settings.database_url))
    ds = create_dataset(app_client)
    index = PostgresIndex()
    with Session(engine) as s:
        found = dataset_rows.dataset_by_id(s, ds)
        assert found is not None and found.embedding_model is None
        org_id = found.org_id
    before = _quota_of(engine, org_id)
    with Session(engine) as create:
        # A record create on a fresh dataset: the dataset adopts the embedder first, which
        # locks the dataset's row (as the API's create does when its charge flushes).
        dataset = dataset_rows.dataset_by_id(create, ds)
        assert dataset is not None
        datasets.adopt_embedder(dataset, "test-embedder", 4)
        create.flush()

        def sync_commit() -> None:  # inserts the file's records, then touches the dataset
            with Session(engine) as s, s.begin():
                records.insert_batches(s, index, org_id, ds, [[NewRecord(text="synced")]], 1)

        thread, failures = _in_thread(sync_commit)
        _wait_for_lock_wait(engine, thread, failures)  # the sync commit: for the dataset
        records.insert_records(create, index, org_id, ds, [NewRecord(text="created")])
        create.commit()
    thread.join(60)
    assert not thread.is_alive() and failures == []
    assert _quota_of(engine, org_id) == before + 2
    with Session(engine) as s:
        assert quotas.usage(s, org_id)["records"] == repository.counted(s, org_id)["records"]
    engine.dispose()


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_charge_the_quota_no_longer_fits_at_commit_is_refused_whole(
        settings: Settings, app_client: TestClient) -> None:
    engine = create_engine(str(settings.database_url))
    ds, other = create_dataset(app_client), create_dataset(app_client)
    index = PostgresIndex()
    with Session(engine) as s, s.begin():
        found = dataset_rows.dataset_by_id(s, ds)
        assert found is not None
        org_id = found.org_id
        used = repository.counted(s, org_id)["records"]
        repository.set_overrides(s, org_id, {"records": used + 1})
    with Session(engine) as late:
        records.insert_records(late, index, org_id, ds, [NewRecord(text="late")])  # fits now
        with Session(engine) as s, s.begin():  # another takes the last place and commits
            records.insert_records(s, index, org_id, other, [NewRecord(text="first")])
        with pytest.raises(QuotaExceeded):
            late.commit()
    with Session(engine) as s:
        texts = set(s.execute(text("SELECT text FROM records WHERE org_id = :o"),
                              {"o": org_id}).scalars())
        assert "late" not in texts and "first" in texts  # the refused one wrote nothing
        counted = repository.counted(s, org_id)["records"]
        assert counted == used + 1 and quotas.usage(s, org_id)["records"] == counted
    engine.dispose()


def test_charges_in_savepoints_count_with_them(app_client: TestClient) -> None:
    db = app_context(app_client).db
    with db.write() as s:
        org_id = "org_savepoints"
        s.execute(text("INSERT INTO orgs (id, name, created_at, updated_at) "
                       "VALUES (:o, 'savepoints', 0, 0)"), {"o": org_id})
        repository.set_overrides(s, org_id, {"files": 3})
        quotas.charge(s, org_id, files=1)
        with pytest.raises(RuntimeError), s.begin_nested():
            quotas.charge(s, org_id, files=2)
            raise RuntimeError("undone")
        assert quotas.usage(s, org_id)["files"] == 1  # the undone savepoint's 2 are gone
        with s.begin_nested():
            quotas.charge(s, org_id, files=1)
        # Counted at the release, with what the transaction charged before it.
        assert repository.get(s, org_id).files == 2  # type: ignore[union-attr]
        with pytest.raises(QuotaExceeded), s.begin_nested():
            quotas.charge(s, org_id, files=1)  # fits: 2 of 3
            # Another writer's committed use is what the release finds: played here by
            # moving the row itself, inside the savepoint so that it is undone with it.
            repository.add(s, org_id, "files", 1, None)
        assert quotas.usage(s, org_id)["files"] == 2
        quotas.charge(s, org_id, files=-1)
    with db.read() as s:
        assert quotas.usage(s, org_id)["files"] == 1


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_request_aborted_for_a_lock_cycle_is_answered_busy(
        settings: Settings, app_client: TestClient) -> None:
    engine = create_engine(str(settings.database_url))
    ds = create_dataset(app_client)
    with Session(engine) as s:
        found = dataset_rows.dataset_by_id(s, ds)
        assert found is not None
        org_id = found.org_id
    answers: list[object] = []
    with Session(engine) as outside:
        # The request's own backend waits first, so its deadlock check (after
        # deadlock_timeout) finds the cycle before ours would: ours waits 20 s to be sure.
        outside.execute(text("SET LOCAL deadlock_timeout = '20s'"))
        repository.add(outside, org_id, "records", 0, None)  # holds the org's quota row

        def create() -> None:
            answers.append(app_client.post(f"/api/v1/dataset/{ds}/record/create",
                                           json={"text": "caught in a cycle"}))

        thread, failures = _in_thread(create)
        # The request, at its commit, waits for the quota row.
        _wait_for_lock_wait(engine, thread, failures)
        outside.execute(text("UPDATE datasets SET name = name WHERE id = :d"), {"d": ds})
        thread.join(60)
        outside.rollback()
    assert not thread.is_alive() and failures == []
    (answer,) = answers
    assert answer.status_code == 503, answer.text  # type: ignore[attr-defined]
    assert answer.headers["Retry-After"] == "1"  # type: ignore[attr-defined]
    assert_envelope(answer, 503, "SERVICE_BUSY")  # type: ignore[arg-type]
    listed = app_client.get(f"/api/v1/dataset/{ds}/record/list").json()
    assert listed["items"] == []
    engine.dispose()
