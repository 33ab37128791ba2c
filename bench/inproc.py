"""In-process setup shared by the harnesses that drive dataloft's modules directly
(first_search.py, build_memory.py, term_memory.py): a migrated SQLite database holding one
org and one empty dataset, the words of synthetic rows, this process's memory. Imports are
deferred so the tree on PYTHONPATH at run time is the one used."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# The words of the synthetic table rows (sync_memory.py's CSV, build_memory.py's records).
WORDS = ("alpha", "bravo", "cobalt", "delta", "ember", "fjord", "garnet", "harbor", "indigo",
         "juniper", "kestrel", "lumen", "meadow", "nimbus", "orchid", "pylon")


def status_mib() -> dict[str, int]:
    """This process's VmRSS and VmHWM in MiB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS", "VmHWM")):
            name, value = line.split(":")
            out[name] = int(value.split()[0]) // 1024
    return out


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
