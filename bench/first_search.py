"""First search after a sync, on the embedded index (issue 16, item 3), in process.

Per tree (this one, and with --base another checkout's src/, e.g. main's) and size, in a
subprocess running that tree: a fresh SQLite database holds `size` records (SciFact
abstracts plus synthetic ones recombined from them, as bench/latency.py makes them; random
unit 256-d vectors, since embedding is not what is measured), inserted through the records
repository in 5k-record commits as a sync does, then searched once to build the caches and
left until the ANN graph (if any) is built. Then `--cycles` times: a re-sync of one file
(500 records deleted, 500 new inserted, one commit), then the first lexical and the first
semantic search right after the commit, then both again after the warmer is idle (the old
code has none: its numbers are the same search). Printed: medians over cycles of wall and
process CPU milliseconds, per tree.

    .venv/bin/python bench/first_search.py --sizes 10k --base /work/base-incr/src
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DIM = 256
FILE = 500
QUERIES = ["cancer cell proliferation", "vitamin d deficiency risk", "protein binding site"]


def _texts(n: int) -> list[str]:
    sys.path.insert(0, str(HERE))
    from common import DEFAULT_DATA, load_corpus
    from latency import synthesize

    docs = load_corpus(DEFAULT_DATA)
    docs = docs + synthesize(docs, max(0, n - len(docs)))
    return [f"{d['title']}\n{d['text']}" for d in docs[:n]]


def _timed(fn: Any) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def worker(size: int, cycles: int) -> dict[str, Any]:
    import inspect

    import numpy as np

    from dataloft.kit import migrate
    from dataloft.kit.db import Database
    from dataloft.kit.ids import new_id
    from dataloft.kit.vectors import to_blob
    from dataloft.models import Dataset, Org
    from dataloft.records import repository as records
    from dataloft.records.repository import NewRecord
    from dataloft.storage.index.sqlite import SqliteIndex

    tmp = tempfile.mkdtemp(prefix="first-search-")
    url = f"sqlite:///{tmp}/db.sqlite"
    migrate.upgrade(url)
    db = Database(url)
    warm = "reader" in inspect.signature(SqliteIndex).parameters
    index = SqliteIndex(reader=db.read) if warm else SqliteIndex()
    org, ds = new_id("org"), new_id("ds")
    with db.write() as s:
        s.add(Org(id=org, name="bench"))
    with db.write() as s:
        s.add(Dataset(id=ds, org_id=org, name="bench", meta={}, settings={},
                      embedding_model="bench", embedding_dimension=DIM))
    texts = _texts(size + FILE * cycles)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(texts), DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    new = [NewRecord(text=t, vector=to_blob(v)) for t, v in zip(texts, vectors, strict=True)]
    files: list[list[int]] = []
    for i in range(0, size, 5_000):
        with db.write() as s:
            got = records.insert_records(s, index, org, ds, new[i : min(size, i + 5_000)])
        files += [[pk for pk, _ in got[j : j + FILE]] for j in range(0, len(got), FILE)]
    query = vectors[0]

    def search() -> None:
        with db.read() as s:
            for q in QUERIES:
                index.lexical(s, [ds], q, 10)
            index.semantic(s, [ds], query, 10)

    def lexical() -> None:
        with db.read() as s:
            index.lexical(s, [ds], QUERIES[0], 10)

    def semantic() -> None:
        with db.read() as s:
            index.semantic(s, [ds], query, 10)

    def idle() -> None:
        if warm:
            index.warmer.wait()
        index.graphs.wait()

    idle()
    cold = _timed(search)
    idle()
    out: dict[str, list[float]] = {}
    for c in range(cycles):
        start = size + c * FILE
        sync = _timed(partial(_resync, db, index, org, ds, files[c], new[start : start + FILE]))
        out.setdefault("sync_ms", []).append(sync[0])
        for name, fn in (("lexical", lexical), ("semantic", semantic)):
            wall, cpu = _timed(fn)
            out.setdefault(f"first_{name}_ms", []).append(wall)
            out.setdefault(f"first_{name}_cpu_ms", []).append(cpu)
        idle()
        for name, fn in (("lexical", lexical), ("semantic", semantic)):
            out.setdefault(f"idle_{name}_ms", []).append(_timed(fn)[0])
    db.dispose()
    return {"size": size, "warm": warm, "cold_build_ms": cold[0],
            **{k: statistics.median(v) for k, v in out.items()}}


def _resync(db: Any, index: Any, org: str, ds: str, doomed: list[int], new: list[Any]) -> None:
    from dataloft.records import repository as records

    with db.write() as s:
        records.delete_where(s, index, org_id=org, pks=doomed)
        records.insert_records(s, index, org, ds, new)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10k")
    ap.add_argument("--cycles", type=int, default=5)
    ap.add_argument("--base", help="another tree's src/ (the old code), run first")
    ap.add_argument("--worker", type=int)
    args = ap.parse_args()
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.cycles)))
        return
    trees = ([("base", args.base)] if args.base else []) + [("this", str(HERE.parent / "src"))]
    for size in (int(float(s[:-1]) * 1000) if s.endswith("k") else int(s)
                 for s in args.sizes.split(",")):
        for label, src in trees:
            env = {**os.environ, "PYTHONPATH": src}
            done = subprocess.run([sys.executable, __file__, "--worker", str(size),
                                   "--cycles", str(args.cycles)], env=env, check=True,
                                  capture_output=True, text=True)
            print(json.dumps({"tree": label, **json.loads(done.stdout.splitlines()[-1])}),
                  flush=True)


if __name__ == "__main__":
    main()
