"""Searches while a dataset of table rows keeps loading, on the embedded index, in process
(issue 16; docs/benchmarks.md section 25).

Per tree (this one, and with --base another checkout's src/, e.g. main's), in a subprocess
running that tree: a fresh SQLite database gets a base of `size` records, table rows split
into two parts each as a CSV's long rows are (meta part/row/sheet; SciFact-like texts,
random unit 256-d vectors), committed 5k records at a time, and the index (wired as
context.py wires it: a reader, a store, a 0.9 s wait bound) is left to catch up. Then
`--files` files of `--file` records are committed back to back on a thread, as syncs of a
loading dataset commit them, while searches (lexical and semantic in turn) are sent one
after another, a 503 `index_building` retried after 0.2 s, until the load is done and a
search answered. Printed per tree: searches answered and answered 503, the longest stretch
of 503s (wall s: a client retrying got no answer for that long), the wall s from the end
of the load to both modes answered, and process CPU s of it all (commits, the warmer's
work, searches) until the index is idle.

    .venv/bin/python bench/stream_rows.py --size 100k --files 5 --base /work/base7/src
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DIM = 256
QUERY = "cancer cell proliferation"


def _texts(n: int) -> list[str]:
    sys.path.insert(0, str(HERE))
    from common import DEFAULT_DATA, load_corpus
    from latency import synthesize

    docs = load_corpus(DEFAULT_DATA)
    docs = docs + synthesize(docs, max(0, n - len(docs)))
    return [f"{d['title']}\n{d['text']}" for d in docs[:n]]


def _busy(exc: Exception) -> bool:
    return type(exc).__name__ == "Busy"


def worker(size: int, files: int, per_file: int) -> dict[str, Any]:
    import numpy as np

    sys.path.insert(0, str(HERE))
    from inproc import bench_dataset

    from dataloft.kit.vectors import to_blob
    from dataloft.records import repository as records
    from dataloft.records.repository import NewRecord
    from dataloft.storage.index.sqlite import SqliteIndex

    tmp = tempfile.mkdtemp(prefix="stream-rows-")
    db, org, ds = bench_dataset(f"sqlite:///{tmp}/db.sqlite", DIM)
    # No HNSW graphs: what is measured is the term index and matrix keeping up with the
    # commits, and a graph build (minutes at this load) would dominate the CPU figure.
    index = SqliteIndex(reader=db.read, store=Path(tmp) / "index", wait_s=0.9,
                        ann_min_records=10**9)
    total = size + files * per_file
    texts = _texts(total // 2 + 1)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(total, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    # Record i is part i % 2 of row i // 2 of its file: the halves of one abstract.
    new = [NewRecord(text=texts[i // 2][: len(texts[i // 2]) // 2] if i % 2 == 0
                     else texts[i // 2][len(texts[i // 2]) // 2:], vector=to_blob(vectors[i]),
                     meta={"part": i % 2, "row": i // 2,
                           "sheet": "base" if i < size else f"f{(i - size) // per_file}"})
           for i in range(total)]

    def commit(lo: int, hi: int) -> None:
        with db.write() as s:
            records.insert_records(s, index, org, ds, new[lo:hi])

    for i in range(0, size, 5_000):
        commit(i, min(size, i + 5_000))
    index.wait()

    def search(mode: str) -> None:
        with db.read() as s:
            if mode == "lexical":
                index.lexical(s, [ds], QUERY, 10)
            else:
                index.semantic(s, [ds], vectors[0], 10)

    # Files commit back to back on a thread, as a loading dataset's syncs do, while
    # searches (lexical and semantic in turn) go on, each 503 retried after 0.2 s.
    import threading

    done = threading.Event()

    def load() -> None:
        for f in range(files):
            commit(size + f * per_file, size + (f + 1) * per_file)
        done.set()

    busy = answered = 0
    streak, longest = None, 0.0
    cpu = time.process_time()
    loader = threading.Thread(target=load)
    loader.start()
    modes = ["lexical", "semantic"]
    while not done.is_set() or streak is not None:
        try:
            search(modes[(busy + answered) % 2])
            answered += 1
            if streak is not None:
                longest, streak = max(longest, time.perf_counter() - streak), None
        except Exception as exc:
            if not _busy(exc):
                raise
            busy += 1
            streak = time.perf_counter() if streak is None else streak
            time.sleep(0.2)
    loader.join()
    last = time.perf_counter()
    for mode in modes:
        while True:
            try:
                search(mode)
                break
            except Exception as exc:
                if not _busy(exc):
                    raise
                busy += 1
                time.sleep(0.2)
    to_answer = time.perf_counter() - last
    index.wait()
    shutil.rmtree(tmp, ignore_errors=True)
    return {"searches_503": busy, "searches_answered": answered,
            "longest_503_streak_s": round(longest, 2),
            "last_commit_to_answered_s": round(to_answer, 2),
            "stream_cpu_s": round(time.process_time() - cpu, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="100k")
    ap.add_argument("--files", type=int, default=5)
    ap.add_argument("--file", type=int, default=10_000, help="records per file")
    ap.add_argument("--base", help="another tree's src/ (the old code), run first")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    size = int(float(args.size[:-1]) * 1000) if args.size.endswith("k") else int(args.size)
    if args.worker:
        print(json.dumps(worker(size, args.files, args.file)))
        return
    trees = ([("base", args.base)] if args.base else []) + [("this", str(HERE.parent / "src"))]
    for name, src in trees:
        done = subprocess.run([sys.executable, __file__, "--worker", "--size", str(size),
                               "--files", str(args.files), "--file", str(args.file)],
                              env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin"}, check=True,
                              stdout=subprocess.PIPE, text=True)
        print(name, src, done.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
