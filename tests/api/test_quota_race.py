"""The quota charge on PostgreSQL when an org's usage row is made by a concurrent transaction
between a charge's UPDATE (which saw no row) and its next statement: the charge must still
be accepted (no limit is set). Driven statement by statement on the real database, with the
driver's own event hook pausing the second transaction right after its first UPDATE."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.orm import Session

from dataloft.config import Settings
from dataloft.quotas import repository


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
