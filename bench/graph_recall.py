"""Graph settings and walk width against recall on real vectors, in process (§31).

WordLlama vectors of SciFact + synthesised abstracts (bench/latency.py's `synthesize`, one
vector per document, title + text up to 3,000 characters, as §23 measured), the 300 first
test queries, the exact top 10 by a full scan. For each graph setting (connectivity,
expansion_add, stored dtype) a usearch graph is built the way storage/index/ann.py builds
it (one thread, keys = row numbers; build CPU seconds reported), then each walk width is
timed the way `ann.nearest` serves a page: walk `width` wide, rescore `rescore` of its
candidates exactly against the float32 matrix, keep the best 10. Reported: recall@10
against exact, thread-CPU median of that step per query.

    PYTHONPATH=src .venv/bin/python bench/graph_recall.py --records 22846 \
        --graphs 16:96:i8,32:128:i8 --widths 128,200,256,400

Vectors are cached under --cache (the embedding of 228k documents is minutes).
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

from common import DEFAULT_DATA, load_corpus, load_queries  # noqa: E402
from latency import synthesize  # noqa: E402
from usearch.index import Index  # noqa: E402

from dataloft.storage.index.terms import top  # noqa: E402


def vectors(records: int, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    cache.mkdir(parents=True, exist_ok=True)
    vpath, qpath = cache / f"v{records}.npy", cache / "q300.npy"
    if vpath.exists() and qpath.exists():
        return np.load(vpath, mmap_mode="r"), np.load(qpath)
    from dataloft.ingest.embed.wordllama import WordLlamaEmbedder

    docs = load_corpus(DEFAULT_DATA)
    docs = docs + synthesize(docs, records - len(docs))
    e = WordLlamaEmbedder()
    v = e.embed([(d.get("title", "") + "\n" + d.get("text", ""))[:3000] for d in docs])
    q = e.embed(list(load_queries(DEFAULT_DATA).values())[:300])
    np.save(vpath, v)
    np.save(qpath, q)
    return v, q


def exact_top(v: np.ndarray, q: np.ndarray, k: int = 10) -> list[set[int]]:
    scores = q @ np.asarray(v).T
    part = np.argpartition(-scores, k, axis=1)[:, :k]
    return [set(row.tolist()) for row in part]


def setup(records: int, cache: Path
          ) -> tuple[np.ndarray, np.ndarray, list[set[int]], np.ndarray]:
    """The vectors (contiguous), the queries, each query's exact top 10, the row keys."""
    v, q = vectors(records, cache)
    v = np.ascontiguousarray(v)
    return v, q, exact_top(v, q), np.arange(len(v), dtype=np.int64)


def build(v: np.ndarray, conn: int, ea: int, dtype: str) -> tuple[Index, float]:
    started = time.process_time()
    index = Index(ndim=int(v.shape[1]), metric="cos", dtype=dtype, connectivity=conn,
                  expansion_add=ea, expansion_search=128)
    chunk = 8192
    for start in range(0, len(v), chunk):
        end = min(start + chunk, len(v))
        index.add(np.arange(start, end, dtype=np.uint64), np.asarray(v[start:end]), threads=1)
    return index, time.process_time() - started


def walk(index: Index, v: np.ndarray, pks: np.ndarray, q: np.ndarray, exact: list[set[int]],
         width: int, rescore: int) -> tuple[float, float]:
    index.expansion_search = width  # type: ignore[misc]
    found, spent = 0, []
    for query, truth in zip(q, exact, strict=True):
        t = time.thread_time_ns()
        rows = np.asarray(index.search(query, rescore, threads=1).keys, dtype=np.int64)
        hits = top(v[rows] @ query, pks[rows], 10, None)
        spent.append(time.thread_time_ns() - t)
        found += len(truth & {pk for pk, _ in hits})
    return found / (10 * len(q)), float(np.median(spent)) / 1e3


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=int, default=22_846)
    p.add_argument("--graphs", default="16:96:i8")
    p.add_argument("--widths", default="128,200,256,400")
    p.add_argument("--rescore", default="", help="candidates rescored (default: the width)")
    p.add_argument("--cache", type=Path, default=Path("/tmp/semgraph"))
    p.add_argument("--save", action="store_true", help="keep each graph under --cache")
    args = p.parse_args()
    v, q, exact, pks = setup(args.records, args.cache)
    print(f"records {len(v)}, queries {len(q)}", flush=True)
    for spec in args.graphs.split(","):
        conn, ea, dtype = spec.split(":")
        path = args.cache / f"g{len(v)}-{conn}-{ea}-{dtype}.usearch"
        if path.exists():
            index, spent = Index.restore(str(path)), float("nan")
        else:
            index, spent = build(v, int(conn), int(ea), dtype)
            if args.save:
                index.save(str(path))
        for width in (int(w) for w in args.widths.split(",")):
            counts = [int(c) for c in args.rescore.split(",") if c] or [width]
            for count in counts:
                if count > width:
                    continue
                recall, cpu = walk(index, v, pks, q, exact, width, count)
                print(f"conn {conn} ea {ea} {dtype} build {spent:.1f} s | width {width} "
                      f"rescore {count}: recall@10 {recall:.4f}, {cpu:.0f} us/query", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
