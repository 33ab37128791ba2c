"""Search latency and nDCG@10 on a dataset a running server already holds, as bench/peers.py
measures them (SciFact test queries, take 10, modes round-robin per query, the starting
mode rotating, after a warm-up), without loading anything: for a dataset whose load is
still going on or was stopped (peers.py --sizes 1m on a busy box), measured where it is.

    .venv/bin/python bench/search_running.py --url http://127.0.0.1:PORT --key dlk_... \\
        --dataset ds_...

`--probe SECONDS` instead sends searches one after another for that long (modes in turn, a
503 `index_building` not retried but counted), while a load goes on: answered and 503
counts, the longest stretch of 503s (wall s), and p50/p99 of the answered ones.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from common import (
    DEFAULT_DATA,
    ID_FIELD,
    Api,
    hit_ids,
    load_qrels,
    load_queries,
    ndcg_at_k,
    percentile,
    print_table,
)

MODES = ["semantic", "lexical", "hybrid"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--take", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--probe", type=float, default=0, help="seconds of the 503 probe")
    args = ap.parse_args()
    if args.probe:
        return probe(args)

    qtext, qrels = load_queries(args.data), load_qrels(args.data)
    queries = [(q, qtext[q]) for q in sorted(qrels) if q in qtext]
    api = Api(args.url, args.key)
    load_before = os.getloadavg()
    for _, text in queries[:args.warmup]:
        for mode in MODES:
            api.search(args.dataset, text, args.take, mode)
    lat: dict[str, list[float]] = {m: [] for m in MODES}
    ndcg: dict[str, list[float]] = {m: [] for m in MODES}
    for qi, (qid, text) in enumerate(queries):
        start = qi % len(MODES)
        for mode in MODES[start:] + MODES[:start]:
            t = time.perf_counter()
            r = api.search(args.dataset, text, args.take, mode)
            lat[mode].append((time.perf_counter() - t) * 1000)
            r.raise_for_status()
            ndcg[mode].append(ndcg_at_k(hit_ids(r, ID_FIELD), qrels[qid], 10))
    api.close()
    load_after = os.getloadavg()
    rows = [[m, f"{percentile(lat[m], 50):.2f}", f"{percentile(lat[m], 99):.2f}",
             f"{sum(ndcg[m]) / len(ndcg[m]):.4f}"] for m in MODES]
    print(f"{len(queries)} queries after {args.warmup} warm-up, take {args.take}; load "
          + " ".join(f"{x:.1f}" for x in load_before) + " -> "
          + " ".join(f"{x:.1f}" for x in load_after))
    print_table(["mode", "p50 ms", "p99 ms", "nDCG@10"], rows)
    if args.json:
        args.json.write_text(json.dumps({"lat": lat, "ndcg": ndcg, "load_before": load_before,
                                         "load_after": load_after}))
    return 0


def probe(args: argparse.Namespace) -> int:
    qtext = load_queries(args.data)
    texts = [qtext[q] for q in sorted(qtext)]
    api = Api(args.url, args.key)
    load_before = os.getloadavg()
    lat: dict[str, list[float]] = {m: [] for m in MODES}
    busy, streak, longest, i = 0, None, 0.0, 0
    end = time.monotonic() + args.probe
    while time.monotonic() < end:
        t = time.perf_counter()
        mode = MODES[i % len(MODES)]
        r = api.http.post(f"/api/v1/dataset/{args.dataset}/search",
                          json={"search": texts[i % len(texts)], "take": args.take,
                                "mode": mode})
        i += 1
        if r.status_code == 503 and "index_building" in r.text:
            busy += 1
            streak = t if streak is None else streak
            time.sleep(0.2)
            continue
        r.raise_for_status()
        lat[mode].append((time.perf_counter() - t) * 1000)
        if streak is not None:
            longest, streak = max(longest, time.perf_counter() - streak), None
    if streak is not None:
        longest = max(longest, time.perf_counter() - streak)
    api.close()
    out: dict[str, Any] = {"answered": sum(map(len, lat.values())), "busy_503": busy,
                           "longest_503_streak_s": round(longest, 1),
                           "load_before_after": [load_before, os.getloadavg()]}
    for mode, ms in lat.items():
        if ms:
            out[mode] = {"n": len(ms), "p50_ms": round(percentile(ms, 50), 1),
                         "p99_ms": round(percentile(ms, 99), 1)}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
