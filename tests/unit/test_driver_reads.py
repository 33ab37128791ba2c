"""The per-request reads that bypass SQLAlchemy's execution on SQLite (kit.db.Lookup) answer
exactly what the Core statements answer through SQLAlchemy, JSON columns included, and read
in the session's own transaction: a commit made after the
session's snapshot began is not seen, as with every other read of the request (a revoked
key must not half-apply within one request, and must apply at the next)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from dataloft.datasets.repository import _SEARCHED
from dataloft.keys.repository import _GRANT, grant_by_hash
from dataloft.kit.db import Database
from dataloft.models import ApiKey, Dataset, Org, Record
from dataloft.search.repository import Found, records_by_pk
from dataloft.storage.index.sqlite import _VERSION
from tests.support.pg import migrated_database

_ids = itertools.count(1)

# PostgreSQL's JSONB holds no NUL character (nor lone surrogates, which JSON cannot carry).
word = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=10)
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**53, 2**53),
                      st.floats(allow_nan=False, allow_infinity=False), word)
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(word, inner, max_size=3), max_leaves=8)
meta = st.dictionaries(word, json_value, max_size=4)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest,
       tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    database = migrated_database(request, tmp_path_factory, "driverreads")
    with database.write() as session:
        session.add(Org(id="org_1", name="one"))
    yield database
    database.dispose()


def _through_sqlalchemy(db: Database, statement: Any, params: dict[str, Any]) -> Any:
    with db.read() as session:
        row = session.connection().execute(statement, params).first()
        return tuple(row) if row is not None else None


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(permissions=st.lists(word, max_size=3),
       datasets=st.none() | st.lists(word, max_size=3),
       revoked=st.none() | st.integers(0, 2**62), settings_=meta,
       dimension=st.none() | st.integers(1, 4096))
def test_lookups_answer_as_sqlalchemy_does(
        db: Database, permissions: list[str], datasets: list[str] | None,
        revoked: int | None, settings_: dict[str, Any], dimension: int | None) -> None:
    n = next(_ids)
    key_hash, dataset_id = f"{n:064d}", f"ds_{n}"
    with db.write() as session:
        session.add(ApiKey(id=f"key_{n}", org_id="org_1", prefix="p", hash=key_hash,
                           permissions=permissions, datasets=datasets, revoked_at=revoked))
        session.add(Dataset(id=dataset_id, org_id="org_1", settings=settings_,
                            embedding_model="m" if dimension else None,
                            embedding_dimension=dimension))
    for lookup, params in ((_GRANT, {"hash": key_hash}), (_GRANT, {"hash": "missing"}),
                           (_SEARCHED, {"dataset_id": dataset_id}),
                           (_SEARCHED, {"dataset_id": "missing"}),
                           (_VERSION, {"dataset_id": dataset_id})):
        with db.read() as session:
            fast = lookup.first(session, params)
        assert fast == _through_sqlalchemy(db, lookup.statement, params)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(st.tuples(word, meta, st.none() | word, st.none() | word),
                        min_size=1, max_size=6),
       gone=st.lists(st.integers(1, 2**40), max_size=3), data=st.data())
def test_a_pages_records_read_as_the_orm_reads_them(
        db: Database, records: list[tuple[str, dict[str, Any], str | None, str | None]],
        gone: list[int], data: st.DataObject) -> None:
    """records_by_pk (a Lookup's rows on SQLite) answers the records of the pks that
    exist, as the ORM loads them, in any order and with pks that name nothing."""
    n = next(_ids)
    with db.write() as session:
        session.add(Dataset(id=f"ds_r{n}", org_id="org_1", settings={}))
        session.flush()
        added = [Record(id=f"rec_{n}_{i}", org_id="org_1", dataset_id=f"ds_r{n}", text=text,
                        meta=meta_, source=source, file_id=file_id, created_at=i,
                        updated_at=i)
                 for i, (text, meta_, source, file_id) in enumerate(records)]
        session.add_all(added)
        session.flush()
        pks = [r.pk for r in added]
    asked = data.draw(st.permutations(pks + [-pk for pk in gone]))
    with db.read() as session:
        fast = records_by_pk(session, asked)
        orm = {r.pk: Found(r.pk, r.id, r.dataset_id, r.file_id, r.source, r.text, r.meta)
               for r in session.scalars(select(Record).where(Record.pk.in_(pks)))}
    assert fast == orm and len(fast) == len(records)


def test_lookups_read_in_the_sessions_snapshot(db: Database) -> None:
    with db.write() as session:
        session.add(ApiKey(id="key_snap", org_id="org_1", prefix="p", hash="s" * 64,
                           permissions=["admin"]))
    with db.read() as session:
        assert grant_by_hash(session, "s" * 64) is not None  # the snapshot begins here
        with db.write() as writer:
            writer.execute(update(ApiKey).where(ApiKey.id == "key_snap").values(revoked_at=1))
        before = grant_by_hash(session, "s" * 64)
    with db.read() as session:
        after = grant_by_hash(session, "s" * 64)
    assert before is not None and before.revoked_at is None
    assert after is not None and after.revoked_at == 1
