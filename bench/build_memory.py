"""Memory of the embedded index's build, phase by phase (issue 16: a 1M-row dataset).

A SQLite database with one dataset of `--rows` records (short table-row texts as
`sync_memory.py`'s CSV renders them, random unit 256-d vectors) is made once and kept under
`--dir`; then per tree (this one, and with --base another checkout's src/) a subprocess
running that tree builds the dataset's structures step by step, as the warmer does: the
catalog, the term index, the vector matrix, the HNSW graph, the saved copy. Before each
step the kernel's high-water mark is reset (`/proc/self/clear_refs` 5), so each step's
peak is its own: printed per step, MiB over the RSS before the step (peak) and after it
(kept), and the wall and process CPU seconds.

    .venv/bin/python bench/build_memory.py --rows 200000 --base /work/base6-bigbuild/src
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from inproc import WORDS, status_mib

DIM = 256


def make(path: Path, rows: int) -> str:
    """The database (if not there yet) and its dataset's id."""
    import numpy as np
    from inproc import bench_dataset

    from dataloft.kit.vectors import to_blob
    from dataloft.records import repository as records
    from dataloft.records.repository import NewRecord
    from dataloft.storage.index.sqlite import SqliteIndex

    marker = path / "dataset.txt"
    if marker.exists():
        return marker.read_text()
    path.mkdir(parents=True, exist_ok=True)
    db, org, ds = bench_dataset(f"sqlite:///{path}/db.sqlite", DIM)
    rnd, rng, index = random.Random(7), np.random.default_rng(0), SqliteIndex()
    for start in range(0, rows, 50_000):
        n = min(50_000, rows - start)
        vectors = rng.normal(size=(n, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        new = []
        for i in range(n):
            a, b, c = rnd.choice(WORDS), rnd.choice(WORDS), rnd.choice(WORDS)
            text = (f"id: {start + i}\nname: {a} {b}\ncity: {c}\n"
                    f"amount: {rnd.randint(0, 99999) / 100}\nnote: {b} {c} {(start + i) % 97}")
            new.append(NewRecord(text=text, vector=to_blob(vectors[i])))
        with db.write() as s:
            records.insert_records(s, index, org, ds, new)
    db.dispose()
    marker.write_text(ds)
    return ds


def measure(path: Path, ds: str, graph: bool) -> dict[str, Any]:
    import inspect

    from dataloft.kit.db import Database
    from dataloft.storage.index import ann, build, delta, persist

    db = Database(f"sqlite:///{path}/db.sqlite")
    store = persist.Store(path / f"index-{os.getpid()}")
    out: dict[str, Any] = {"idle_rss_mib": status_mib()["VmRSS"]}
    kept: dict[str, Any] = {}

    def step(name: str, fn: Any) -> None:
        Path("/proc/self/clear_refs").write_text("5")
        before = status_mib()["VmRSS"]
        wall, cpu = time.perf_counter(), time.process_time()
        kept[name] = fn()
        after = status_mib()
        out[name] = {"peak_mib": after["VmHWM"] - before, "kept_mib": after["VmRSS"] - before,
                     "wall_s": round(time.perf_counter() - wall, 2),
                     "cpu_s": round(time.process_time() - cpu, 2)}

    with db.read() as session:
        step("catalog", lambda: delta.catalog(session, ds))
        step("terms", lambda: build.build_terms(session, ds))
        # Trees that can map a big matrix from a file under the store (mapped.py) do.
        mapping = "scratch" in inspect.signature(build.build_matrix).parameters
        scratch = {"scratch": store.root / ".scratch"} if mapping else {}
        out["mapped"] = mapping
        step("matrix", lambda: build.build_matrix(session, ds, DIM, kept["catalog"],
                                                  **scratch))
    if graph:
        from dataloft.storage.index.structures import Approx

        step("graph", lambda: ann.build_logged(ds, kept["matrix"].vectors))
        kept["matrix"].approx = Approx(kept["graph"])
    step("save", lambda: store.save(ds, 1, kept["terms"], kept["matrix"]))
    out["total_rss_mib"] = status_mib()["VmRSS"] - out["idle_rss_mib"]
    store.drop(ds)
    db.dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--dir", default="/tmp/dataloft-build-memory")
    ap.add_argument("--base", help="another tree's src/ (the old code), run first")
    ap.add_argument("--measure", help="internal: the dataset id to measure")
    ap.add_argument("--no-graph", action="store_true", help="skip the HNSW graph step")
    args = ap.parse_args()
    path = Path(args.dir) / str(args.rows)
    if args.measure:
        print(json.dumps(measure(path, args.measure, not args.no_graph)), flush=True)
        return
    here = Path(__file__).resolve().parent
    ds = make(path, args.rows)
    trees = ([("base", args.base)] if args.base else []) + [("this", str(here.parent / "src"))]
    for label, src in trees:
        done = subprocess.run([sys.executable, __file__, "--rows", str(args.rows), "--dir",
                               args.dir, "--measure", ds]
                              + (["--no-graph"] if args.no_graph else []),
                              env={**os.environ, "PYTHONPATH": src}, check=True,
                              stdout=subprocess.PIPE, text=True)
        print(json.dumps({"tree": label, "rows": args.rows,
                          **json.loads(done.stdout.splitlines()[-1])}), flush=True)


if __name__ == "__main__":
    main()
