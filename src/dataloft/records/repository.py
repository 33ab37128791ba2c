"""All SQL over records. Every insert or delete also updates the index, in the same session."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Select, Table, delete, func, insert, select, update
from sqlalchemy.orm import Session

from dataloft.kit.db import json_text
from dataloft.kit.ids import new_ids, now_ms
from dataloft.models import Dataset, Record
from dataloft.quotas import service as quotas
from dataloft.storage.index.base import Index, IndexRow

_BATCH = 500
_DELETE_SLICE = 10_000

_RECORDS = cast(Table, Record.__table__)


@dataclass
class NewRecord:
    text: str
    meta: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    position: int | None = None
    content_hash: str | None = None
    vector: bytes | None = None
    reused: bool = False  # the vector was carried over from the previous sync
    # Set by `prepare` (ahead of the insert): the record's id and its meta as stored.
    id: str | None = None
    meta_json: str | None = None

    def __reduce__(self) -> tuple[type[NewRecord], tuple[Any, ...]]:
        # A sync spools every record and reads it back in its commit: a constructor call
        # unpickles faster than the default object-and-state protocol.
        return NewRecord, (self.text, self.meta, self.source, self.position,
                           self.content_hash, self.vector, self.reused, self.id,
                           self.meta_json)


def prepare(batch: Sequence[NewRecord]) -> None:
    """Do ahead what inserting a record needs that does not depend on the transaction:
    its id and its meta's JSON (the meta dict is dropped: the JSON is what is stored). A
    sync prepares its records while it builds them, so its commit, which holds the one
    writer, only inserts."""
    for rid, record in zip(new_ids("rec", len(batch)), batch, strict=True):
        record.id, record.meta_json, record.meta = rid, json_text(record.meta), {}


def _touch(session: Session, dataset_ids: Iterable[str]) -> None:
    """Mark the datasets' indexes changed (caches keyed on index_version go stale).

    A fresh random value, not a counter: a rolled-back transaction's value (under which a
    cache may already hold its uncommitted rows) must never come back in a later commit."""
    ids = sorted(set(dataset_ids))
    if ids:
        session.execute(update(Dataset).where(Dataset.id.in_(ids))
                        .values(index_version=secrets.randbits(62))
                        .execution_options(synchronize_session=False))


def insert_records(session: Session, index: Index, org_id: str, dataset_id: str,
                   new: Sequence[NewRecord], file_id: str | None = None) -> list[tuple[int, str]]:
    """Bulk insert; returns (pk, id) per record, in input order. Charged to the org's
    record quota: QuotaExceeded past it, before anything is written."""
    return insert_batches(session, index, org_id, dataset_id, [new], len(new), file_id)


def insert_batches(session: Session, index: Index, org_id: str, dataset_id: str,
                   batches: Iterable[Sequence[NewRecord]], count: int,
                   file_id: str | None = None) -> list[tuple[int, str]]:
    """`insert_records` of `count` records arriving in batches (a sync's spool): the quota
    is charged, the dataset touched and the next pk read once, not per batch."""
    quotas.charge(session, org_id, records=count)
    now = now_ms()
    out: list[tuple[int, str]] = []
    sqlite = session.get_bind().dialect.name == "sqlite"
    last = (session.execute(select(func.max(_RECORDS.c.pk))).scalar_one_or_none() or 0
            if sqlite else 0)
    seen = 0
    for new in batches:
        seen += len(new)
        if seen > count:
            raise ValueError(f"more records than the {count} announced")
        for i in range(0, len(new), _BATCH):
            batch = new[i : i + _BATCH]
            ids = _ids(batch)
            rows = [(rid, org_id, dataset_id, file_id, r.text,
                     r.meta if r.meta_json is None else r.meta_json, r.source, r.position,
                     r.content_hash, now, now) for rid, r in zip(ids, batch, strict=True)]
            if sqlite:
                pks = list(range(last + 1, last + 1 + len(rows)))
                _insert_sqlite(session, pks, rows)
                last += len(rows)
            else:
                pks = _insert_returning_pks(session, ids, rows)
            index.added(session, [IndexRow(pk, dataset_id, r.text, r.vector)
                                  for pk, r in zip(pks, batch, strict=True)])
            out += list(zip(pks, ids, strict=True))
    if out:
        _touch(session, [dataset_id])
    return out


def _ids(batch: Sequence[NewRecord]) -> list[str]:
    if all(r.id is not None for r in batch):
        return [str(r.id) for r in batch]
    fresh = iter(new_ids("rec", sum(r.id is None for r in batch)))
    return [next(fresh) if r.id is None else r.id for r in batch]


_COLUMNS = ("id", "org_id", "dataset_id", "file_id", "text", "meta", "source", "position",
            "content_hash", "created_at", "updated_at")
_SQLITE_INSERT = (f"INSERT INTO records (pk, {', '.join(_COLUMNS)}) "
                  f"VALUES ({', '.join('?' * (len(_COLUMNS) + 1))})")


def _insert_sqlite(session: Session, pks: list[int], rows: list[tuple[Any, ...]]) -> None:
    """Rows in `_COLUMNS` order, by the driver's executemany, meta serialised as the engine
    would (SQLAlchemy's per-row parameter processing cost more than the insert itself).
    The pks are given, not read back: SQLite cannot order a batched INSERT ... RETURNING,
    and reading them back by id cost a query per batch. The writer's transaction began
    IMMEDIATE (kit/db.py), so nobody else can take max(pk) + 1 meanwhile; it is the pk
    SQLite itself would pick (the table has no AUTOINCREMENT)."""
    session.connection().exec_driver_sql(
        _SQLITE_INSERT, [(pk, *row[:5], row[5] if type(row[5]) is str else json_text(row[5]),
                          *row[6:]) for pk, row in zip(pks, rows, strict=True)])


def _insert_returning_pks(session: Session, ids: list[str], rows: list[tuple[Any, ...]]
                          ) -> list[int]:
    rows = [(*row[:5], json.loads(row[5]) if type(row[5]) is str else row[5], *row[6:])
            for row in rows]  # a prepared meta back to the dict the engine serialises
    session.execute(insert(_RECORDS), [dict(zip(_COLUMNS, row, strict=True)) for row in rows])
    by_id = dict(session.execute(select(_RECORDS.c.id, _RECORDS.c.pk)
                                 .where(_RECORDS.c.id.in_(ids))).all())
    return [by_id[rid] for rid in ids]


def delete_where(session: Session, index: Index, *, org_id: str, dataset_id: str | None = None,
                 file_id: str | None = None, pks: Sequence[int] | None = None) -> int:
    """Delete matching records (and their index rows) a slice at a time, in pk order, so
    a file of a million records never has its million pks in memory at once."""
    conds = [Record.org_id == org_id]
    if dataset_id is not None:
        conds.append(Record.dataset_id == dataset_id)
    if file_id is not None:
        conds.append(Record.file_id == file_id)
    if pks is not None:
        conds.append(Record.pk.in_(list(pks)))
    total, last = 0, None
    touched: set[str] = set()
    while True:
        page = select(Record.pk, Record.dataset_id).where(*conds).order_by(Record.pk)
        if last is not None:
            page = page.where(Record.pk > last)
        doomed = session.execute(page.limit(_DELETE_SLICE)).all()
        if not doomed:
            break
        doomed_pks = [pk for pk, _ in doomed]
        touched.update(ds for _, ds in doomed)
        index.removed(session, doomed_pks)
        for i in range(0, len(doomed_pks), _BATCH):
            session.execute(delete(Record).where(Record.pk.in_(doomed_pks[i : i + _BATCH])))
        total += len(doomed_pks)
        last = doomed_pks[-1]
    if total:
        quotas.release(session, org_id, records=total)
        _touch(session, touched)
    return total


def advance(record: Record) -> None:
    """Move the record's updated_at strictly forward, even within one millisecond: the
    embedded index tells a record changed in place from its cached copy by it (storage/
    index/delta.py), so two committed states of a record never share a value."""
    record.updated_at = max(now_ms(), record.updated_at + 1)


def reindex(session: Session, index: Index, record: Record, vector: bytes | None) -> None:
    advance(record)
    index.removed(session, [record.pk])
    index.added(session, [IndexRow(record.pk, record.dataset_id, record.text, vector)])
    _touch(session, [record.dataset_id])


def file_has_records(session: Session, dataset_id: str, file_id: str) -> bool:
    """Whether the file has records in the dataset (a first sync has none to reuse)."""
    return session.execute(select(Record.pk).where(
        Record.dataset_id == dataset_id, Record.file_id == file_id).limit(1)).first() is not None


def hash_lookup(dataset_id: str, file_id: str, hashes: list[str]) -> Select[int, str | None]:
    """A file's records with one of `hashes`: ix_records_dataset_file_hash answers it, so a
    batch's lookup reads its own hashes, not every record of the file."""
    return select(Record.pk, Record.content_hash).where(
        Record.dataset_id == dataset_id, Record.file_id == file_id,
        Record.content_hash.in_(hashes))


def vectors_for_hashes(session: Session, index: Index, dataset_id: str, file_id: str,
                       hashes: Iterable[str]) -> dict[str, bytes]:
    """Embeddings of a file's current records with one of `hashes`, by hash, for reuse on
    re-sync: one batch of a sync at a time (bounded memory)."""
    wanted = list(hashes)
    out: dict[str, bytes] = {}
    for i in range(0, len(wanted), _BATCH):
        rows = session.execute(hash_lookup(dataset_id, file_id, wanted[i : i + _BATCH])).all()
        stored = index.vectors(session, [pk for pk, _ in rows])
        out.update({h: stored[pk] for pk, h in rows if h is not None and pk in stored})
    return out
