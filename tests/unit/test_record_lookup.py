"""A re-sync looks up reusable vectors batch by batch; each lookup must read only its
batch's hashes through the index, not every record of the file: reading the file's records
per batch made a re-sync of a big file quadratic in its size."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite

from dataloft.kit.db import Database
from dataloft.records.repository import hash_lookup
from tests.support.pg import migrated_database


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest,
       tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    database = migrated_database(request, tmp_path_factory, "lookup")
    yield database
    database.dispose()


def test_the_hash_lookup_seeks_the_batch_hashes_in_the_index(db: Database) -> None:
    stmt = hash_lookup("ds_1", "file_1", ["a" * 64, "b" * 64])
    dialect = postgresql.dialect() if db.dialect == "postgresql" else sqlite.dialect()
    sql = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    with db.read() as session:
        if db.dialect == "postgresql":
            # An empty table would be scanned whatever its indexes: ask for the index path.
            session.execute(text("SET LOCAL enable_seqscan = off"))
            plan = "\n".join(r[0] for r in session.execute(text("EXPLAIN " + sql)))
            assert "ix_records_dataset_file_hash" in plan, plan
            assert "content_hash" in plan.split("Index Cond:")[1].split("\n")[0], plan
        else:
            plan = "\n".join(str(r[-1]) for r in
                             session.execute(text("EXPLAIN QUERY PLAN " + sql)))
            assert ("ix_records_dataset_file_hash (dataset_id=? AND file_id=? AND "
                    "content_hash=?)") in plan, plan
