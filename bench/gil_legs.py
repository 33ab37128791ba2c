"""Can hybrid's two legs overlap on two cores? A GIL probe on a saved index (issue 16).

A request runs its legs one after the other; the second core idles unless the code of one
leg lets go of the GIL. This times, per query, the usearch walk of the semantic leg (400
wide, as hybrid's 200-hit pool asks) and a lexical-like NumPy scoring (~100k postings,
`np.add.at`, as storage/index/terms.py scores a 100k-row query): one after the other, and
with either one on a worker thread. If neither released the GIL the three are equal.

    .venv/bin/python bench/gil_legs.py <data dir>/index/<dataset>/<version dir>
    # the directory holding graph.usearch and m_vectors.npy (a server's saved structures)
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from usearch.index import Index

WIDTH = 400


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("saved", type=Path)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    graph = Index.restore(str(args.saved / "graph.usearch"), view=True)
    graph.expansion_search = 128  # type: ignore[misc]  # as ann.py sets it
    vectors = np.load(args.saved / "m_vectors.npy", mmap_mode="r")
    rng = np.random.default_rng(0)
    queries = [np.asarray(vectors[i], dtype=np.float32)
               for i in rng.integers(0, len(vectors), args.queries)]
    n = len(vectors)
    postings = [(rng.integers(0, n, 12_000).astype(np.int32),
                 rng.random(12_000).astype(np.float32)) for _ in range(9)]
    norm = rng.random(n).astype(np.float32)

    def lexical() -> Any:
        out = np.zeros(n, dtype=np.float32)
        for docs, tf in postings:
            at = docs.astype(np.intp)
            np.add.at(out, at, tf / (tf + norm.take(at)) * np.float32(2.2))
        return np.argpartition(-out, 200)[:200]

    def walk(q: np.ndarray) -> Any:
        return graph.search(q, WIDTH, threads=1)

    pool = ThreadPoolExecutor(1)

    def serial(q: np.ndarray) -> None:
        walk(q)
        lexical()

    def lexical_on_worker(q: np.ndarray) -> None:
        done = pool.submit(lexical)
        walk(q)
        done.result()

    def walk_on_worker(q: np.ndarray) -> None:
        done = pool.submit(walk, q)
        lexical()
        done.result()

    def hop(_q: np.ndarray) -> None:
        pool.submit(int).result()

    ways = {"walk alone": walk, "lexical alone": lambda _q: lexical(), "serial": serial,
            "lexical on a worker": lexical_on_worker, "walk on a worker": walk_on_worker,
            "thread-pool hop": hop}
    for q in queries[:20]:
        serial(q)
    wall: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name, way in ways.items():
            started = time.perf_counter()
            for q in queries:
                way(q)
            wall[name].append((time.perf_counter() - started) / len(queries) * 1e6)
    for name, runs in wall.items():
        print(f"{name:20} {statistics.median(runs):8.0f} us per query (wall, median of "
              f"{args.rounds} rounds: {', '.join(f'{r:.0f}' for r in runs)})")


if __name__ == "__main__":
    main()
