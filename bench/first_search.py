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

`--restart` adds, after the cycles, two restarts of the index (a new SqliteIndex on the same
database, as a new process would make; the structures of the old one are dropped): with the
copy the old one saved (trees that save one: first lexical and semantic search, wall and
CPU), and without any (warm_recent starts the background rebuild, and searches are sent
one after another until one is answered: the worst single search, how many were answered
503 "index_building", and the time until the first answer). A tree that saves nothing (the
old code) rebuilds in both. A search answered 503 is retried after 0.2 s, as the bench's
HTTP client does; "first search" times include those retries.

    .venv/bin/python bench/first_search.py --sizes 10k --base /work/base-incr/src --restart

`--first-sync` measures instead the first sync into an empty dataset: `size` records in one
commit (as a sync's commit writes them), then, for trees whose index settles (a sync waits
for the structures before it announces completion: docs/decisions.md), `settle`, timed; then
the first lexical and semantic searches as above (503s retried). Printed: commit, settle,
each first search, and commit -> both answered, wall and process CPU ms, medians over
`--cycles` fresh databases.

    .venv/bin/python bench/first_search.py --sizes 100k --first-sync --base /work/base6/src
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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


def _answered(fn: Any) -> tuple[float, float, int, float]:
    """(wall ms, CPU ms, 503 answers, worst single call ms) until `fn` is answered."""
    wall, cpu = time.perf_counter(), time.process_time()
    busy, worst = 0, 0.0
    while True:
        call = time.perf_counter()
        try:
            fn()
        except Exception as exc:  # Busy: only trees with a wait bound raise it
            if type(exc).__name__ != "Busy":
                raise
            busy += 1
            worst = max(worst, time.perf_counter() - call)
            time.sleep(0.2)
            continue
        worst = max(worst, time.perf_counter() - call)
        return ((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000, busy,
                worst * 1000)


def worker(size: int, cycles: int, restart: bool) -> dict[str, Any]:
    import inspect

    import numpy as np

    sys.path.insert(0, str(HERE))
    from inproc import bench_dataset

    from dataloft.kit.vectors import to_blob
    from dataloft.records import repository as records
    from dataloft.records.repository import NewRecord
    from dataloft.storage.index.sqlite import SqliteIndex

    tmp = tempfile.mkdtemp(prefix="first-search-")
    db, org, ds = bench_dataset(f"sqlite:///{tmp}/db.sqlite", DIM)
    params = inspect.signature(SqliteIndex).parameters
    warm, saves = "reader" in params, "store" in params
    store = Path(tmp) / "index"

    def make() -> Any:
        if saves:  # as context.py wires it
            return SqliteIndex(reader=db.read, store=store, wait_s=0.9)
        return SqliteIndex(reader=db.read) if warm else SqliteIndex()

    index = make()
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
        if hasattr(index, "wait"):
            index.wait()
        else:
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
            wall, cpu, busy, worst = _answered(fn)
            out.setdefault(f"first_{name}_ms", []).append(wall)
            out.setdefault(f"first_{name}_cpu_ms", []).append(cpu)
            out.setdefault(f"first_{name}_busy", []).append(busy)
        idle()
        for name, fn in (("lexical", lexical), ("semantic", semantic)):
            out.setdefault(f"idle_{name}_ms", []).append(_timed(fn)[0])
    result = {"size": size, "warm": warm, "saves": saves, "cold_build_ms": cold[0],
              **{k: statistics.median(v) for k, v in out.items()}}
    if restart:
        for label, keep in (("saved", True), ("unsaved", False)):
            idle()
            if not keep:
                shutil.rmtree(store, ignore_errors=True)
            index = make()
            started = time.perf_counter()
            if not keep and warm:
                index.warm_recent()  # as a server does at start-up
            for name, fn in (("lexical", lexical), ("semantic", semantic)):
                wall, cpu, busy, worst = _answered(fn)
                result |= {f"restart_{label}_first_{name}_ms": wall,
                           f"restart_{label}_first_{name}_cpu_ms": cpu,
                           f"restart_{label}_{name}_busy": busy,
                           f"restart_{label}_{name}_worst_call_ms": worst}
            result[f"restart_{label}_answered_after_ms"] = (time.perf_counter() - started) * 1000
    idle()  # a graph build still running at exit would abort the process (usearch)
    db.dispose()
    shutil.rmtree(tmp, ignore_errors=True)
    return result


def first_sync(size: int) -> dict[str, Any]:
    """One fresh database: `size` records in one commit into an empty dataset, then (if the
    tree settles) the sync's wait for the structures, then the first searches."""
    import numpy as np

    sys.path.insert(0, str(HERE))
    from inproc import bench_dataset

    from dataloft.kit.vectors import to_blob
    from dataloft.records import repository as records
    from dataloft.records.repository import NewRecord
    from dataloft.storage.index.sqlite import SqliteIndex

    tmp = tempfile.mkdtemp(prefix="first-sync-")
    db, org, ds = bench_dataset(f"sqlite:///{tmp}/db.sqlite", DIM)
    index = SqliteIndex(reader=db.read, store=Path(tmp) / "index", wait_s=0.9)
    texts = _texts(size)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(texts), DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    new = [NewRecord(text=t, vector=to_blob(v)) for t, v in zip(texts, vectors, strict=True)]
    out: dict[str, float] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    with db.write() as s:
        records.insert_records(s, index, org, ds, new)
    out["commit_ms"] = (time.perf_counter() - wall) * 1000
    since = time.perf_counter()
    if hasattr(index, "settle"):
        out["settle_ms"], out["settle_cpu_ms"] = _timed(partial(index.settle, ds, 600.0))
    for name, q in (("lexical", QUERIES[0]), ("semantic", None)):
        def one(q: str | None = q) -> None:
            with db.read() as s:
                if q is None:
                    index.semantic(s, [ds], vectors[0], 10)
                else:
                    index.lexical(s, [ds], q, 10)
        w, c, busy, worst = _answered(one)
        out |= {f"first_{name}_ms": w, f"first_{name}_cpu_ms": c, f"first_{name}_busy": busy}
    out["commit_to_answered_ms"] = (time.perf_counter() - since) * 1000
    out["process_cpu_ms"] = (time.process_time() - cpu) * 1000
    index.wait()
    db.dispose()
    shutil.rmtree(tmp, ignore_errors=True)
    return out


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
    ap.add_argument("--restart", action="store_true", help="add the restart cases")
    ap.add_argument("--first-sync", action="store_true",
                    help="an empty dataset's first sync instead of re-syncs")
    ap.add_argument("--worker", type=int)
    args = ap.parse_args()
    if args.worker is not None and args.first_sync:
        runs = [first_sync(args.worker) for _ in range(args.cycles)]
        print(json.dumps({"size": args.worker, "first_sync": True, "runs": args.cycles,
                          **{k: statistics.median(r[k] for r in runs) for k in runs[0]}}),
              flush=True)
        return
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.cycles, args.restart)), flush=True)
        return
    trees = ([("base", args.base)] if args.base else []) + [("this", str(HERE.parent / "src"))]
    for size in (int(float(s[:-1]) * 1000) if s.endswith("k") else int(s)
                 for s in args.sizes.split(",")):
        for label, src in trees:
            env = {**os.environ, "PYTHONPATH": src}
            done = subprocess.run([sys.executable, __file__, "--worker", str(size),
                                   "--cycles", str(args.cycles)]
                                  + (["--restart"] if args.restart else [])
                                  + (["--first-sync"] if args.first_sync else []),
                                  env=env, check=True,
                                  stdout=subprocess.PIPE, text=True)
            print(json.dumps({"tree": label, **json.loads(done.stdout.splitlines()[-1])}),
                  flush=True)


if __name__ == "__main__":
    main()
