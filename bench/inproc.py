"""In-process setup shared by the harnesses that drive dataloft's modules directly
(first_search.py, build_memory.py): a migrated SQLite database holding one org and one
empty dataset. Imports are deferred so the tree on PYTHONPATH at run time is the one used."""

from __future__ import annotations

from typing import Any


def bench_dataset(url: str, dim: int) -> tuple[Any, str, str]:
    """Migrate `url`, open it, and make an org and a dataset of `dim`-d vectors in it;
    returns (database, org id, dataset id)."""
    from dataloft.kit import migrate
    from dataloft.kit.db import Database
    from dataloft.kit.ids import new_id
    from dataloft.models import Dataset, Org

    migrate.upgrade(url)
    db = Database(url)
    org, ds = new_id("org"), new_id("ds")
    with db.write() as s:
        s.add(Org(id=org, name="bench"))
    with db.write() as s:
        s.add(Dataset(id=ds, org_id=org, name="bench", meta={}, settings={},
                      embedding_model="bench", embedding_dimension=dim))
    return db, org, ds
