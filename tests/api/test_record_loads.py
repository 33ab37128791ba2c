"""Search loads its ranked records by pk in one statement per backend (SQLite json_each,
PostgreSQL = ANY): exactly the live records asked for, whatever the order, repeats or pks
that never existed or were deleted."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from dataloft.models import Record
from dataloft.search.repository import records_by_pk
from tests.support.api import app_context, create_dataset, create_file, sync


def test_records_by_pk_reads_the_live_records_asked_for(app_client: TestClient) -> None:
    ds = create_dataset(app_client)
    text = "\n\n".join(f"Paragraph {i} about owls and ships, number {i}." for i in range(400))
    fid = create_file(app_client, text.encode(), name="owls.txt")
    sync(app_client, ds, fid)
    db = app_context(app_client).db
    with db.read() as session:
        rows = session.execute(select(Record.pk, Record.id, Record.text, Record.meta)
                               .where(Record.dataset_id == ds)).all()
    assert len(rows) >= 3, len(rows)
    by_pk = {r.pk: r for r in rows}
    pks = sorted(by_pk)
    asked = [pks[-1], 10**12, *pks[::2], pks[0], -5]
    with db.read() as session:
        found = records_by_pk(session, asked)
        assert records_by_pk(session, []) == {}
    assert set(found) == set(pks[::2]) | {pks[-1]}
    for pk, record in found.items():
        assert (record.id, record.text, record.meta) == (by_pk[pk].id, by_pk[pk].text,
                                                         by_pk[pk].meta)
        assert record.pk == pk and record.dataset_id == ds and record.file_id == fid
