"""Ingest time, search latency and peak RSS at 5k and 100k records, over HTTP.

For each size and run, on a fresh server (own temp data dir): upload the records as JSONL
files (20k rows each), attach + sync each, wait for every sync.completed and the last
document to be found in every mode; then, per mode, send the SciFact test queries one at
a time on one keep-alive connection (warm-up first) and report p50/p99 client-side
latency. Sizes: "5k" is the SciFact corpus (5,183 abstracts); larger sizes add synthetic
abstracts, recombined deterministically (seeded RNG) from SciFact's titles and sentences,
up to that many records. nDCG@10 at each size is printed too (the real abstracts stay in,
the synthetic ones act as hard distractors).

    .venv/bin/python bench/latency.py                          # 5k and 100k, 3 runs each
    .venv/bin/python bench/latency.py --sizes 5k --runs 1
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

from common import (
    DEFAULT_DATA,
    ID_FIELD,
    Api,
    RssSampler,
    Server,
    corpus_jsonl,
    hit_ids,
    ingest,
    load_corpus,
    load_qrels,
    load_queries,
    machine,
    median,
    mib,
    ndcg_at_k,
    parse_env,
    percentile,
    print_table,
    probe_text,
    source_state,
)

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(])")


def synthesize(docs: list[dict[str, str]], n: int, seed: int = 0) -> list[dict[str, str]]:
    """`n` new abstracts: a title spliced from two real titles, and a body of sentences
    drawn in order from three real abstracts, as many as a fourth real abstract has."""
    rng = random.Random(seed)
    sentences = [_SENTENCE.split(d["text"]) for d in docs]
    titles = [d["title"].split() for d in docs]
    out = []
    for i in range(n):
        a, b, c, d = (rng.randrange(len(docs)) for _ in range(4))
        ta, tb = titles[a], titles[b]
        title = " ".join(ta[: max(1, len(ta) // 2)] + tb[len(tb) // 2:])
        pool = sentences[a] + sentences[b] + sentences[c]
        k = max(2, min(len(pool), len(sentences[d])))
        body = " ".join(pool[j] for j in sorted(rng.sample(range(len(pool)), k)))
        out.append({"_id": f"syn{seed}-{i}", "title": title, "text": body})
    return out


def parse_size(s: str, corpus_size: int) -> int:
    """"5k" (or "scifact") is the whole SciFact corpus; other sizes are exact ("100k", "1m")."""
    s = s.strip().lower()
    if s in ("5k", "scifact"):
        return corpus_size
    scale = {"k": 1000, "m": 1_000_000}.get(s[-1:])
    return int(float(s[:-1]) * scale) if scale else int(s)


def measure(api: Api, dataset_id: str, queries: list[tuple[str, str]], mode: str, take: int,
            warmup: int, passes: int, rss: RssSampler) -> dict[str, Any]:
    for _, q in queries[:warmup]:
        r = api.search(dataset_id, q, take, mode)
        if r.status_code >= 400:
            return {"error": f"HTTP {r.status_code}: {r.text[:200]}"}
    lat: list[float] = []
    ranked: dict[str, list[str]] = {}
    cpu0 = rss.cpu()
    for p in range(passes):
        for qid, q in queries:
            t = time.perf_counter()
            r = api.search(dataset_id, q, take, mode)
            lat.append((time.perf_counter() - t) * 1000)
            if p == 0:
                ranked[qid] = hit_ids(r, ID_FIELD)
    cpu_ms = (rss.cpu() - cpu0) * 1000 / len(lat)
    return {"p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99), "cpu_ms": cpu_ms,
            "mean_ms": sum(lat) / len(lat), "max_ms": max(lat), "n": len(lat),
            "ranked": ranked}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--sizes", default="5k,100k")
    ap.add_argument("--modes", default="lexical,semantic,hybrid")
    ap.add_argument("--runs", type=int, default=3, help="fresh server + ingest per run")
    ap.add_argument("--take", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=20, help="queries sent before timing")
    ap.add_argument("--passes", type=int, default=1, help="timed passes over the 300 queries")
    ap.add_argument("--chunk-rows", type=int, default=20_000, help="rows per uploaded file")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--settle", type=float, default=0.0,
                    help="seconds to wait once searchable, before timing: lets background "
                         "index builds (the ANN graph) finish")
    ap.add_argument("--url", help="use a running server (no RSS unless --pid)")
    ap.add_argument("--key")
    ap.add_argument("--pid", type=int)
    ap.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    docs = load_corpus(args.data)
    qtext = load_queries(args.data)
    qrels = load_qrels(args.data)
    queries = [(q, qtext[q]) for q in sorted(qrels) if q in qtext]
    info = machine()
    print("machine:", ", ".join(f"{k}={v}" for k, v in info.items()))
    out: dict[str, Any] = {"machine": info, "command": " ".join(sys.argv), "sizes": {}}

    for size_s in args.sizes.split(","):
        size = parse_size(size_s, len(docs))
        t = time.perf_counter()
        corpus = docs[:size] + synthesize(docs, max(0, size - len(docs)), args.seed)
        files = [(f"records-{i // args.chunk_rows + 1}.jsonl",
                  corpus_jsonl(corpus[i : i + args.chunk_rows]))
                 for i in range(0, len(corpus), args.chunk_rows)]
        mb = sum(len(b) for _, b in files) / 1e6
        print(f"\n== {len(corpus):,} records: {len(files)} file(s), {mb:.0f} MB "
              f"(generated in {time.perf_counter() - t:.1f} s)")
        last = corpus[-1]
        runs: list[dict[str, Any]] = []
        for run in range(args.runs):
            server = None
            if args.url:
                url, key, pid = args.url, args.key or "", args.pid
            else:
                server = Server(env_extra=parse_env(args.server_env)).start()
                url, key, pid = server.url, server.key, server.pid
            api = Api(url, key)
            code, load_before = source_state(), os.getloadavg()[0]
            try:
                with RssSampler(pid) as rss:
                    rss.set_phase("ingest")
                    cpu0 = rss.cpu()
                    ing = ingest(api, files, probe_text(last), last["_id"], modes)
                    rss.set_phase("search")
                    ingest_cpu = rss.cpu() - cpu0
                    print(f"run {run + 1}: searchable after {ing.searchable_s:.1f} s; "
                          "timing searches...", flush=True)
                    time.sleep(args.settle)
                    per_mode = {}
                    for m in modes:
                        per_mode[m] = measure(api, ing.dataset_id, queries, m, args.take,
                                              args.warmup, args.passes, rss)
                        r = per_mode[m]
                        print(f"  {m}: " + (r["error"] if "error" in r else
                              f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, server "
                              f"CPU {r['cpu_ms']:.1f} ms/query"), flush=True)
                rec: dict[str, Any] = {
                    "code": code, "load_before": load_before, "load_after": os.getloadavg()[0],
                    "records": ing.records, "upload_s": ing.upload_s,
                    "synced_s": ing.synced_s, "searchable_s": ing.searchable_s,
                    "server_sync_ms": ing.server_sync_ms, "probe": ing.probe,
                    "ingest_cpu_s": ingest_cpu,
                    "rss_ingest": rss.peaks.get("ingest", 0),
                    "rss_search": rss.peaks.get("search", 0), "vmhwm": rss.hwm(), "modes": {}}
                for m, res in per_mode.items():
                    ranked = res.pop("ranked", None)
                    if ranked is not None:
                        res["ndcg@10"] = sum(ndcg_at_k(ranked[q], qrels[q], 10)
                                             for q, _ in queries) / len(queries)
                    rec["modes"][m] = res
                runs.append(rec)
                lat = "; ".join(
                    f"{m} " + (f"p50 {r['p50_ms']:.1f} p99 {r['p99_ms']:.1f} ms"
                               if "error" not in r else r["error"])
                    for m, r in rec["modes"].items())
                print(f"run {run + 1}: {ing.records:,} records, upload {ing.upload_s:.1f} s, "
                      f"synced {ing.synced_s:.1f} s, searchable {ing.searchable_s:.1f} s "
                      f"(server sync ms {ing.server_sync_ms}; server CPU {ingest_cpu:.1f} s; "
                      f"probe {ing.probe}); RSS ingest "
                      f"{mib(rec['rss_ingest'])}, search {mib(rec['rss_search'])}, VmHWM "
                      f"{mib(rec['vmhwm'])}; {lat}; code {code}; load "
                      f"{load_before:.1f}->{rec['load_after']:.1f}", flush=True)
            finally:
                api.close()
                if server:
                    server.stop()
        out["sizes"][size] = runs

    print(f"\nmedians over {args.runs} run(s); latency: take={args.take}, sequential, "
          f"keep-alive, {args.passes} x {len(queries)} queries after {args.warmup} warm-up")
    rows = []
    for size, runs in out["sizes"].items():
        for m in modes:
            ok = [r["modes"][m] for r in runs if "error" not in r["modes"][m]]
            if not ok:
                rows.append([f"{size:,}", m, "unsupported"] + [""] * 8)
                continue
            rows.append([f"{size:,}", m, f"{median([r['p50_ms'] for r in ok]):.1f}",
                         f"{median([r['p99_ms'] for r in ok]):.1f}",
                         f"{median([r['cpu_ms'] for r in ok]):.1f}",
                         f"{median([r['ndcg@10'] for r in ok]):.4f}",
                         f"{median([r['synced_s'] for r in runs]):.1f}",
                         f"{median([r['searchable_s'] for r in runs]):.1f}",
                         f"{median([r['ingest_cpu_s'] for r in runs]):.1f}",
                         mib(median([r['rss_ingest'] for r in runs])),
                         mib(median([r['rss_search'] for r in runs]))])
    print_table(["records", "mode", "p50 ms", "p99 ms", "server CPU ms/q", "nDCG@10",
                 "upload→synced s", "upload→searchable s", "ingest server CPU s",
                 "peak RSS ingest", "peak RSS search"], rows)
    out["commit_after"] = machine()["commit"]
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
