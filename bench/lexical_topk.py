"""Lexical ranking CPU per query, in process, at two dataset sizes: how it grows.

The term index of a dataset (storage/index/rows.py: BM25 per row, answers per record) is
built straight from SciFact synthesised up to each size as bench/latency.py does, each
row split into parts of at most ~PART_CHARS characters (as a row over the token budget is
split into records; ~2.2 records per row, as the 100k API load had). Then the 300 test
queries, `--passes` times, rank the top `--k` records (fusion's pool, search/service.py)
the way the embedded adapter does, and the thread CPU time of each is taken. The same
script runs the code of whichever checkout PYTHONPATH names: the old path (terms.top over
every record's score) where storage/index/lexrank.py does not exist.

    PYTHONPATH=$PWD/src .venv/bin/python bench/lexical_topk.py --label new --out /tmp/new.json
    PYTHONPATH=/path/to/base/src .venv/bin/python bench/lexical_topk.py --label base \\
        --out /tmp/base.json
    .venv/bin/python bench/lexical_topk.py --compare /tmp/base.json /tmp/new.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from common import DEFAULT_DATA, load_corpus, load_queries
from latency import parse_size, synthesize

from dataloft.storage.index.rows import RowTerms

PART_CHARS = 900


def records(docs: list[dict[str, str]]) -> Iterator[tuple[int, str, str]]:
    pk = 0
    for n, d in enumerate(docs):
        text = f"title: {d['title']}\ntext: {d['text']}\ndoc_id: {d['_id']}"
        parts = len(text) // PART_CHARS + 1
        step = len(text) // parts + 1
        for i in range(parts):
            pk += 1
            yield pk, text[i * step:(i + 1) * step], f"row{n}"


def ranker(index: RowTerms, k: int) -> Callable[[str], list[tuple[int, float]]]:
    try:
        from dataloft.storage.index import lexrank
    except ImportError:
        from dataloft.storage.index.terms import top

        def old(query: str) -> list[tuple[int, float]]:
            scores = index.scores(query)
            return [] if scores is None else top(scores, index.pks, k, positive=True)

        return old
    return lambda query: lexrank.top(index, query, k)


def run(args: argparse.Namespace) -> dict[str, Any]:
    docs = load_corpus(args.data)
    queries = list(load_queries(args.data).values())
    out: dict[str, Any] = {"label": args.label, "sizes": {}}
    for raw in args.sizes.split(","):
        size = parse_size(raw, len(docs))
        corpus = docs[:size] + synthesize(docs, max(0, size - len(docs)), args.seed)
        t = time.perf_counter()
        index = RowTerms.build(records(corpus))
        built = time.perf_counter() - t
        rank = ranker(index, args.k)
        for q in queries[:20]:
            rank(q)
        cpu: list[float] = []
        results: list[list[tuple[int, float]]] = []
        for p in range(args.passes):
            for q in queries:
                t = time.thread_time()
                hits = rank(q)
                cpu.append((time.thread_time() - t) * 1000)
                if p == 0:
                    results.append(hits)
        cpu.sort()
        row = {"rows": len(index.rows.pks), "records": len(index.pks),
               "postings": len(index.rows.docs), "build_s": round(built, 1),
               "median_ms": round(statistics.median(cpu), 3),
               "p90_ms": round(cpu[int(0.9 * (len(cpu) - 1))], 3), "results": results}
        out["sizes"][raw] = row
        print(f"{args.label} {raw}: {row['rows']} rows, {row['records']} records, "
              f"{row['postings']} postings; CPU per query median {row['median_ms']} ms, "
              f"p90 {row['p90_ms']} ms", flush=True)
    sizes = list(out["sizes"].values())
    if len(sizes) > 1:
        print(f"{args.label} growth of the median: "
              f"{sizes[-1]['median_ms'] / sizes[0]['median_ms']:.2f}x")
    return out


def compare(base_path: Path, new_path: Path) -> None:
    """Same results? Scores in order bit for bit; pks equal but where the old cut kept
    another of several records tied at the k-th score."""
    base, new = (json.loads(p.read_text()) for p in (base_path, new_path))
    for size, b in base["sizes"].items():
        n = new["sizes"][size]
        same_scores = all([s for _, s in x] == [s for _, s in y]
                          for x, y in zip(b["results"], n["results"], strict=True))
        differ = sum(x != y for x, y in zip(b["results"], n["results"], strict=True))
        # Where pks differ, only among the records tied with the last one kept.
        at_cut = all({p for p, s in x if s != x[-1][1]} == {p for p, s in y if s != y[-1][1]}
                     for x, y in zip(b["results"], n["results"], strict=True) if x != y)
        print(f"{size}: scores in order equal: {same_scores}; queries whose pks differ "
              f"{differ}, all among records tied at the cut: {at_cut}; median CPU "
              f"{b['median_ms']} -> {n['median_ms']} ms ({n['median_ms'] / b['median_ms']:.2f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--sizes", default="10k,100k")
    ap.add_argument("--k", type=int, default=200)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--label", default="")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--compare", type=Path, nargs=2)
    args = ap.parse_args()
    if args.compare:
        compare(*args.compare)
        return
    out = run(args)
    if args.out:
        args.out.write_text(json.dumps(out))


if __name__ == "__main__":
    main()
