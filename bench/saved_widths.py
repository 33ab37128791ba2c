"""Walk width against recall and CPU on a graph a server saved (its index copy), in process.

Loads a saved index copy of a dataset (`--copy`: a directory holding graph.usearch and
m_vectors.npy, e.g. under a bench/http_cpu.py --seed-dir data dir), embeds the first 300
SciFact test queries, and per walk width serves them as `ann.nearest` serves a semantic
page: walk for 64 rows, rescore them exactly against the float32 matrix, keep the best 10.
Reported: recall@10 (by record) against an exact scan, and the thread-CPU median of that
step, with a 64 MiB array touched before each walk so the caches are as cold as a server's
between requests. Widths are measured in the order given: repeat one to see the noise.

    PYTHONPATH=src .venv/bin/python bench/saved_widths.py \
        --copy "$(dirname /tmp/seed100k/data/index/*/*/graph.usearch)" --widths 256,128,192,256
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

from common import DEFAULT_DATA, load_queries  # noqa: E402
from graph_recall import exact_top  # noqa: E402

from dataloft.ingest.embed.wordllama import WordLlamaEmbedder  # noqa: E402
from dataloft.storage.index import ann  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--copy", type=Path, required=True)
    ap.add_argument("--widths", default="256,128,192,256")
    ap.add_argument("--queries", type=int, default=300)
    args = ap.parse_args()
    vectors = np.ascontiguousarray(np.load(args.copy / "m_vectors.npy", mmap_mode="r"))
    queries = WordLlamaEmbedder().embed(list(load_queries(DEFAULT_DATA).values())
                                        [:args.queries])
    exact = exact_top(vectors, queries)
    junk = np.ones(64 << 20, dtype=np.uint8)
    print(f"{len(vectors):,} vectors, {len(queries)} queries")
    for width in (int(w) for w in args.widths.split(",")):
        graph = ann.Graph(None, saved=str(args.copy / "graph.usearch"), width=width)
        found, cpu = 0, []
        for q, want in zip(queries, exact, strict=True):
            junk[::4096] += 1
            t = time.thread_time_ns()
            rows = graph.rows(q, 64)
            best = rows[np.argsort(-(vectors[rows] @ q))[:10]]
            cpu.append(time.thread_time_ns() - t)
            found += len(set(best.tolist()) & want)
        print(f"width {width:4d}: recall@10 {found / (10 * len(queries)):.4f}, walk + rescore "
              f"CPU median {np.median(cpu) / 1e3:.0f} us", flush=True)


if __name__ == "__main__":
    main()
