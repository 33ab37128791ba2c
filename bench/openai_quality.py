"""SciFact through the OpenAI-compatible API (/v1), next to the native search API, in one run.

Uploads the 5,183 abstracts as one JSONL file with the unmodified `openai` SDK
(`files.create`), adds it to a vector store with `vector_stores.files.create_and_poll`,
then runs the 300 judged queries through `vector_stores.search` (each table row is a
result, its fields in `attributes`) and through the native `POST /api/v1/dataset/{id}/search`
(hybrid, the same dataset: a vector store is one). Reports nDCG@10 of both and fails
(exit 1) when they differ by more than --tolerance.

    .venv/bin/python bench/openai_quality.py            # own server, temp data dir

The corpus is read from ../shared/bench/scifact (or --data); it is never copied.
"""

from __future__ import annotations

import argparse
import io
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
    Server,
    corpus_jsonl,
    hit_ids,
    load_corpus,
    load_qrels,
    load_queries,
    machine,
    ndcg_at_k,
    percentile,
    print_table,
    source_state,
)
from openai import OpenAI


def openai_ranked(client: OpenAI, store_id: str, query: str, k: int) -> list[str]:
    page = client.vector_stores.search(store_id, query=query, max_num_results=k)
    out = []
    for hit in page.data:
        doc = (hit.attributes or {}).get(ID_FIELD)
        if doc is not None:
            out.append(str(doc))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--k", type=int, default=10, help="max_num_results (1-50)")
    ap.add_argument("--tolerance", type=float, default=0.005)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    docs, queries, qrels = load_corpus(args.data), load_queries(args.data), load_qrels(args.data)
    qids = sorted(q for q in qrels if q in queries)
    info = machine()
    print("machine:", ", ".join(f"{k}={v}" for k, v in info.items()))
    server = Server().start()
    api = Api(server.url, server.key)
    client = OpenAI(base_url=f"{server.url}/v1", api_key=server.key, max_retries=0,
                    timeout=600)
    out: dict[str, Any] = {"machine": info, "command": " ".join(sys.argv),
                           "code": source_state(), "load_before": os.getloadavg()[0]}
    try:
        t0 = time.perf_counter()
        file = client.files.create(file=("scifact.jsonl", io.BytesIO(corpus_jsonl(docs))),
                                   purpose="assistants")
        store = client.vector_stores.create(name="scifact")
        vsf = client.vector_stores.files.create_and_poll(file_id=file.id,
                                                         vector_store_id=store.id,
                                                         poll_interval_ms=500)
        out["ingest_s"] = time.perf_counter() - t0
        if vsf.status != "completed":
            raise SystemExit(f"the corpus did not sync: {vsf.status} {vsf.last_error}")
        rows = []
        for system in ("native", "openai"):
            lat: list[float] = []
            total = 0.0
            for qid in qids:
                t = time.perf_counter()
                if system == "native":
                    ranked = hit_ids(api.search(store.id, queries[qid], args.k, "hybrid"),
                                     ID_FIELD)
                else:
                    ranked = openai_ranked(client, store.id, queries[qid], args.k)
                lat.append((time.perf_counter() - t) * 1000)
                total += ndcg_at_k(ranked, qrels[qid], 10)
            out[system] = {"ndcg@10": total / len(qids), "p50_ms": percentile(lat, 50),
                           "p99_ms": percentile(lat, 99)}
            rows.append([system, f"{out[system]['ndcg@10']:.4f}",
                         f"{out[system]['p50_ms']:.1f}", f"{out[system]['p99_ms']:.1f}"])
    finally:
        api.close()
        client.close()
        server.stop()
    delta = abs(out["native"]["ndcg@10"] - out["openai"]["ndcg@10"])
    out["delta"] = delta
    print(f"ingest through /v1 (upload + create_and_poll): {out['ingest_s']:.1f} s")
    print_table(["API (hybrid)", "nDCG@10", "p50 ms", "p99 ms"], rows)
    print(f"|delta| = {delta:.4f} (tolerance {args.tolerance})")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0 if delta <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
