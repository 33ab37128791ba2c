"""dataloft beside its peers, in one run: Chroma in-process, Chroma over its HTTP server and
LanceDB with an ANN index, on the same texts and the same WordLlama vectors.

Per size: the SciFact corpus, synthesised up to the size as bench/latency.py does (the real
abstracts stay in, so the test qrels still apply; the synthetic ones are hard distractors).
The vectors of every record and query are computed once here with dataloft's own embedder
(the text a sync embeds: the row rendered as `key: value` lines) and handed to the peers as
precomputed embeddings. So the peers get their query vector for free, while dataloft embeds
the query inside each request: its figures include that, theirs don't.

Loaded into:
- dataloft over HTTP (a fresh server from this venv, JSONL upload + sync), take=10, modes
  semantic, lexical, hybrid; load time = upload start -> the last record found in every mode
  (it includes embedding the corpus, which the peers' load times don't: that time is printed
  on its own);
- Chroma in-process (PersistentClient, HNSW, cosine), load = the `add` calls;
- Chroma's HTTP server (`chroma run` on a local port, HttpClient), load = the `add` calls;
  queried twice: `chroma-http` asks back ids only (`include=[]`), `chroma-http-docs` asks
  back what a dataloft answer carries too (documents, metadatas, distances);
- LanceDB (embedded) with an IVF_PQ index (cosine; LanceDB's default partition counts),
  load = create_table + create_index; and LanceDB's native full-text index (BM25) for
  lexical, load = create_fts_index. Chroma's `where_document` is a substring filter with no
  ranking, so Chroma has no lexical mode here.

Then the SciFact test queries (300, after warm-up), round-robin per query: for each query,
every system and mode in turn (the starting one rotating), each timed around its own call
(for dataloft: the HTTP request; for a peer: the library call, inside the peer process).
Prints p50/p99 per system and mode, the median of the per-query ratios dataloft/peer,
load times, nDCG@10 on SciFact, and recall@10 by row against an exact search over the same
vectors (dataloft answers one hit per row, its best part; a peer returns records).

The peers live in their own venv (bench/.peers-venv, the `peers` extra of pyproject.toml),
which this script makes and reuses; dataloft's venv never gets them.

    PYTHONPATH=src .venv/bin/python bench/peers.py                  # 10k and 100k
    PYTHONPATH=src .venv/bin/python bench/peers.py --sizes 5k --warmup 10
    PYTHONPATH=src .venv/bin/python bench/peers.py --sizes 1m --peers none  # dataloft alone
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from common import (
    DEFAULT_DATA,
    ID_FIELD,
    REPO,
    Api,
    RssSampler,
    Server,
    bare_server,
    corpus_jsonl,
    free_port,
    ingest,
    load_corpus,
    load_qrels,
    load_queries,
    machine,
    median,
    mib,
    ndcg_at_k,
    percentile,
    print_table,
    probe_text,
    source_state,
    wait_idle,
)
from latency import parse_size, synthesize

sys.path.insert(0, str(REPO / "src"))
from dataloft.ingest.embed.wordllama import WordLlamaEmbedder  # noqa: E402
from dataloft.search.service import SEMANTIC_FIRST  # noqa: E402
from dataloft.storage.index import ann  # noqa: E402

VENV = REPO / "bench" / ".peers-venv"
WORKER = REPO / "bench" / "peers_worker.py"
DL_MODES = ["semantic", "lexical", "hybrid"]
ALL_PEERS = ["chroma", "chroma-http", "chroma-http-docs", "lance", "lance-fts"]
# Not peers but parts of a dataloft semantic answer, timed alone in the same rotation (only
# when named in --peers; floor-walk needs --idle): the least each part costs, whatever the
# code around it. See floor().
FLOORS = ["floor-http", "floor-walk", "floor-embed"]
PEERS = list(ALL_PEERS)  # narrowed by --peers
PEER_MODE = {"chroma": "vector", "chroma-http": "vector",
             "chroma-http-docs": "vector, texts returned", "lance": "vector (IVF_PQ)",
             "lance-fts": "lexical (FTS, BM25)",
             "floor-http": "a bare ASGI app's round trip (bench/floor_server.py)",
             "floor-walk": "dataloft's graph walk, in process",
             "floor-embed": "dataloft's query embedding, in process"}
EMBED_BATCH = 512


# --------------------------------------------------------------------------- peers' venv


def peer_requirements() -> list[str]:
    with open(REPO / "pyproject.toml", "rb") as fh:
        return list(tomllib.load(fh)["project"]["optional-dependencies"]["peers"])


def ensure_venv() -> Path:
    """bench/.peers-venv with the `peers` extra installed; reinstalled when the extra changes."""
    reqs = peer_requirements()
    stamp = VENV / ".installed"
    want = hashlib.sha1("\n".join(reqs).encode()).hexdigest()
    python = VENV / "bin" / "python"
    if stamp.exists() and stamp.read_text() == want and python.exists():
        return python
    print(f"making {VENV} with {reqs} (once)...", flush=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *reqs], check=True)
    stamp.write_text(want)
    return python


class ChromaServer:
    def __init__(self, workdir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(workdir / "chroma.log", "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [str(VENV / "bin" / "chroma"), "run", "--path", str(workdir / "chroma-server"),
             "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("chroma server exited early (see chroma.log)")
            for path in ("/api/v2/heartbeat", "/api/v1/heartbeat"):
                try:
                    if httpx.get(self.url + path, timeout=1).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        raise RuntimeError("chroma server did not become ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


class Floors:
    """The floor-* systems: a bare ASGI app on dataloft's server stack (floor-http, timed as
    dataloft is: a search-shaped POST from this process), the graph the server saved for the
    dataset walked here with the query's precomputed vector (floor-walk: the walk a semantic
    request makes, SEMANTIC_FIRST hits at the saved width), and dataloft's embedder on the
    query text (floor-embed). Each is timed alone in the rotation, so its caches are as cold
    as the server's between requests. What a semantic answer must do at least is their sum;
    the key, the records, the highlights and the framework come on top."""

    def __init__(self, names: list[str], server: Server, dataset_id: str, qvecs: np.ndarray):
        self.qvecs = qvecs
        self.bare: subprocess.Popen[bytes] | None = None
        self.http: httpx.Client | None = None
        if "floor-http" in names:
            self.bare, self.http = bare_server()
        self.graph: ann.Graph | None = None
        if "floor-walk" in names:
            assert server.tmp is not None
            saved = sorted((Path(server.tmp.name) / "data" / "index" / dataset_id)
                           .glob("*/graph.usearch"), key=lambda p: p.stat().st_mtime)
            if not saved:
                raise RuntimeError("floor-walk: the server saved no graph (run with --idle)")
            self.graph = ann.Graph(None, saved=str(saved[-1]))
        self.embedder = WordLlamaEmbedder() if "floor-embed" in names else None

    def time(self, name: str, qi: int, query: str) -> float:
        t = time.perf_counter()
        if name == "floor-http":
            assert self.http is not None
            self.http.post("/api/v1/dataset/ds/search",
                           json={"search": query, "take": 10, "mode": "semantic"}
                           ).raise_for_status()
        elif name == "floor-walk":
            assert self.graph is not None
            self.graph.rows(self.qvecs[qi], SEMANTIC_FIRST)
        else:
            assert self.embedder is not None
            self.embedder.embed([query])
        return (time.perf_counter() - t) * 1000

    def close(self) -> None:
        if self.http is not None:
            self.http.close()
        if self.bare is not None:
            self.bare.terminate()
            self.bare.wait(20)


class Worker:
    """bench/peers_worker.py in the peers' venv, one JSON line per command each way."""

    def __init__(self, python: Path):
        # Lance logs a deprecation warning per query otherwise.
        env = {**os.environ, "RUST_LOG": "error", "LANCE_LOG": "error"}
        self.proc = subprocess.Popen([str(python), str(WORKER)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1, env=env)

    def call(self, **cmd: Any) -> Any:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("peer worker died (its stderr is above)")
        ans = json.loads(line)
        if "error" in ans:
            raise RuntimeError(f"peer worker: {ans['error']}")
        return ans["ok"]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.call_quiet()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def call_quiet(self) -> None:
        assert self.proc.stdin
        try:
            self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.proc.stdin.close()
        except OSError:
            pass


# --------------------------------------------------------------------------- data


def export_records(api: Api, dataset_id: str) -> list[dict[str, str]]:
    """Every record of the dataset as dataloft stores it (a long row is split into several
    records): its id, text and the SciFact id in its meta. The peers get exactly these
    texts, so both sides search the same units with the same vectors."""
    r = api.http.get(f"/api/v1/dataset/{dataset_id}/record/export",
                     headers={"Accept": "text/csv"})
    r.raise_for_status()
    rows = csv.DictReader(io.StringIO(r.text))
    return [{"id": row["id"], "text": row["text"],
             "doc": str(json.loads(row["meta"] or "{}").get(ID_FIELD, ""))} for row in rows]


def embed(texts: list[str]) -> np.ndarray:
    embedder = WordLlamaEmbedder()
    return np.vstack([embedder.embed(texts[i:i + EMBED_BATCH])
                      for i in range(0, len(texts), EMBED_BATCH)]).astype(np.float32)


def write_peer_data(d: Path, records: list[dict[str, str]], vecs: np.ndarray,
                    queries: list[tuple[str, str]], qvecs: np.ndarray) -> None:
    with open(d / "docs.jsonl", "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps({"id": rec["id"], "text": rec["text"]}) + "\n")
    with open(d / "queries.jsonl", "w", encoding="utf-8") as fh:
        for qid, text in queries:
            fh.write(json.dumps({"id": qid, "text": text}) + "\n")
    np.save(d / "vectors.npy", vecs)
    np.save(d / "queries.npy", qvecs)


def exact_top(vecs: np.ndarray, qvecs: np.ndarray, ids: list[str], k: int) -> list[list[str]]:
    out = []
    for q in qvecs:
        scores = vecs @ q
        top = np.argpartition(-scores, k)[:k]
        out.append([ids[i] for i in top[np.argsort(-scores[top])]])
    return out


# --------------------------------------------------------------------------- one size


def run_size(args: argparse.Namespace, python: Path | None, docs: list[dict[str, str]],
             queries: list[tuple[str, str]], qrels: dict[str, dict[str, int]],
             size: int) -> dict[str, Any]:
    corpus = docs[:size] + synthesize(docs, max(0, size - len(docs)), args.seed)
    files = [(f"records-{i // args.chunk_rows + 1}.jsonl",
              corpus_jsonl(corpus[i:i + args.chunk_rows]))
             for i in range(0, len(corpus), args.chunk_rows)]
    last = corpus[-1]
    del corpus  # 1M rows: the uploaded files are all that is needed from here on
    print(f"\n== {size:,} rows, {len(queries)} queries; load "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    rec: dict[str, Any] = {"rows": size, "load_before": os.getloadavg()}
    to_doc: dict[str, str] = {}
    exact: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="dataloft-peers-") as tmp:
        work = Path(tmp)
        server = Server().start()
        chroma = ChromaServer(work) if {"chroma-http", "chroma-http-docs"} & set(PEERS) \
            else None
        worker = Worker(python) if python else None
        floors: Floors | None = None
        api = Api(server.url, server.key)
        try:
            with RssSampler(server.pid, interval=0.5) as rss:
                cpu0 = rss.cpu()
                ing = ingest(api, files, probe_text(last), last["_id"], DL_MODES)
                rec["server_cpu_s"] = rss.cpu() - cpu0
            rec["server_rss"] = rss.peaks.get("start", 0)
            del files
            print(f"dataloft: searchable after {ing.searchable_s:.1f} s (synced "
                  f"{ing.synced_s:.1f} s; probe {ing.probe}); server CPU "
                  f"{rec['server_cpu_s']:.0f} s, peak RSS {mib(rec['server_rss'])}", flush=True)
            rec["load_s"] = {"dataloft": ing.searchable_s}
            if args.idle:
                began = time.monotonic()
                wait_idle(server)
                rec["idle_after_s"] = time.monotonic() - began
                print(f"dataloft: background work done {rec['idle_after_s']:.1f} s after "
                      "searchable", flush=True)
            rec["dataloft_synced_s"] = ing.synced_s
            rec["records"] = ing.records
            if worker:
                exact, qvecs = load_peers(args, api, ing.dataset_id, work, worker, chroma,
                                          queries, rec, to_doc)
                if set(FLOORS) & set(PEERS):
                    floors = Floors(PEERS, server, ing.dataset_id, qvecs)
                    rec["load_s"].update(dict.fromkeys(FLOORS, 0.0))
            lat, ranked = interleave(args, api, ing.dataset_id, worker, floors, queries,
                                     to_doc)
        finally:
            api.close()
            if floors:
                floors.close()
            if worker:
                worker.close()
            if chroma:
                chroma.stop()
            server.stop()
    rec["load_after"] = os.getloadavg()
    rec["lat"] = lat
    rec["ndcg@10"] = {
        s: sum(ndcg_at_k(rows_of(r, to_doc), qrels[qid], 10)
               for r, (qid, _) in zip(hits, queries, strict=True)) / len(queries)
        for s, hits in ranked.items()}
    # By row, not record: dataloft answers one hit per row (its best part), the peers
    # return records, several of one row at times (counted once here).
    exact_rows = [rows_of(e, to_doc)[:args.take] for e in exact]
    rec["recall@10 vs exact"] = {
        s: sum(len(set(rows_of(r, to_doc)) & set(e))
               for r, e in zip(ranked[s], exact_rows, strict=True))
        / (args.take * len(queries))
        for s in ("dataloft semantic", "chroma", "chroma-http", "lance")
        if s in ranked and exact}
    return rec


def load_peers(args: argparse.Namespace, api: Api, dataset_id: str, work: Path,
               worker: Worker, chroma: ChromaServer | None, queries: list[tuple[str, str]],
               rec: dict[str, Any], to_doc: dict[str, str]
               ) -> tuple[list[list[str]], np.ndarray]:
    """Export dataloft's records, embed them here, load the peers with them; the exact
    top records per query over those vectors (the recall oracle)."""
    records = export_records(api, dataset_id)
    rec["records"] = len(records)
    to_doc.update({r["id"]: r["doc"] for r in records})
    t = time.perf_counter()
    vecs = embed([r["text"] for r in records])
    qvecs = embed([text for _, text in queries])
    rec["embed_s"] = time.perf_counter() - t
    print(f"{len(records):,} records exported; embedded them + the queries here, "
          f"for the peers, in {rec['embed_s']:.1f} s", flush=True)
    ids = [r["id"] for r in records]
    # Deep enough that the first `take` distinct rows are in it.
    exact = exact_top(vecs, qvecs, ids, args.take * 10)
    write_peer_data(work, records, vecs, queries, qvecs)
    del vecs
    if chroma:
        chroma.wait()
    loads = worker.call(op="load", dir=str(work), chroma_url=chroma.url if chroma else "",
                        lance_index=args.lance_index,
                        systems=[p for p in PEERS if p not in FLOORS])
    print("peers loaded: " + ", ".join(f"{k} {v:.1f} s" for k, v in loads.items()),
          flush=True)
    rec["load_s"].update(loads)
    rec["peer_info"] = worker.call(op="info")
    return exact, qvecs


def rows_of(record_ids: list[str], to_doc: dict[str, str]) -> list[str]:
    """The distinct rows (SciFact ids) of ranked records, in rank order."""
    return list(dict.fromkeys(to_doc.get(x, x) for x in record_ids))


def systems() -> list[str]:
    return [f"dataloft {m}" for m in DL_MODES] + PEERS


def interleave(args: argparse.Namespace, api: Api, dataset_id: str, worker: Worker | None,
               floors: Floors | None, queries: list[tuple[str, str]], to_doc: dict[str, str]
               ) -> tuple[dict[str, list[float]], dict[str, list[list[str]]]]:
    """Per system, the latency (ms) and the record ids returned, per query; `to_doc` learns
    the SciFact id of each record dataloft returns (from its meta)."""
    names = systems()

    def one(name: str, qi: int) -> tuple[float, list[str]]:
        if name.startswith("dataloft "):
            t = time.perf_counter()
            r = api.search(dataset_id, queries[qi][1], args.take, name.split()[1])
            ms = (time.perf_counter() - t) * 1000
            if r.status_code >= 400:
                raise RuntimeError(f"{name}: HTTP {r.status_code} {r.text[:200]}")
            hits = r.json().get("records", [])
            to_doc.update({str(x["id"]): str((x.get("meta") or {}).get(ID_FIELD, x["id"]))
                           for x in hits})
            return ms, [str(x["id"]) for x in hits]
        if name in FLOORS:
            assert floors is not None
            return floors.time(name, qi, queries[qi][1]), []
        assert worker is not None
        ans = worker.call(op="search", system=name, q=qi)
        return float(ans["ms"]), list(ans["ids"])

    for qi in range(min(args.warmup, len(queries))):
        for name in names:
            one(name, qi)
    lat: dict[str, list[float]] = {n: [] for n in names}
    ranked: dict[str, list[list[str]]] = {n: [] for n in names}
    for qi in range(len(queries)):
        start = qi % len(names)
        for name in names[start:] + names[:start]:
            ms, hits = one(name, qi)
            lat[name].append(ms)
            ranked[name].append(hits)
    return lat, ranked


# --------------------------------------------------------------------------- report


def report(results: dict[int, dict[str, Any]], n_queries: int, warmup: int) -> None:
    print(f"\nlatency: take=10, one query at a time, {n_queries} SciFact test queries after "
          f"{warmup} warm-up, round-robin per query. dataloft: HTTP request, query embedded "
          "inside it; peers: the library call with a precomputed query vector (free to them).")
    rows = []
    for size, rec in results.items():
        for name in systems():
            lat = rec["lat"][name]
            mode = name.split()[1] if name.startswith("dataloft") else PEER_MODE[name]
            sysname = "dataloft (HTTP)" if name.startswith("dataloft") else name
            load_key = "dataloft" if name.startswith("dataloft") else name
            rows.append([f"{size:,}", sysname, mode, f"{percentile(lat, 50):.2f}",
                         f"{percentile(lat, 99):.2f}", f"{rec['ndcg@10'][name]:.4f}",
                         f"{rec['load_s'][load_key]:.1f}"])
    print_table(["rows", "system", "mode", "p50 ms", "p99 ms", "nDCG@10", "load s"], rows)
    print("\nload s: dataloft = upload -> last record found in every mode (embedding included);"
          " peers = add + index of precomputed vectors (embedding not included; it took the "
          "'embed s' below in this process).")

    if PEERS:
        paired(results)
    print("\nper size: embedding time (for the peers), recall@10 (by row) of the vector "
          "searches against an exact search over the same vectors, load average")
    rows = []
    for size, rec in results.items():
        rc = rec["recall@10 vs exact"]
        rows.append([f"{size:,}", f"{rec['records']:,}", f"{rec.get('embed_s', 0):.1f}",
                     " ".join(f"{k}={v:.3f}" for k, v in rc.items()),
                     " ".join(f"{x:.1f}" for x in rec["load_before"]) + " -> "
                     + " ".join(f"{x:.1f}" for x in rec["load_after"])])
    print_table(["rows", "records", "embed s", "recall@10 vs exact",
                 "loadavg before -> after"], rows)
    for size, rec in results.items():
        if "peer_info" in rec:
            print(f"\npeers at {size:,} rows: " + json.dumps(rec["peer_info"]))
    print("Chroma has no lexical mode here: `where_document` is an unranked substring filter.")
    if growth := _growth(results):
        print("\ngrowth of p50, smallest -> largest size: " + growth)


def paired(results: dict[int, dict[str, Any]]) -> None:
    print("\npaired ratios: median over queries of dataloft ms / peer ms (same query)")
    rows = []
    for size, rec in results.items():
        for dl in DL_MODES:
            a = rec["lat"][f"dataloft {dl}"]
            row = [f"{size:,}", f"dataloft {dl}"]
            for peer in PEERS:
                b = rec["lat"][peer]
                row.append(f"{median([x / y for x, y in zip(a, b, strict=True)]):.2f}")
            rows.append(row)
    print_table(["rows", "dataloft mode", *[f"/ {p}" for p in PEERS]], rows)
    if {*FLOORS, "chroma-http"} <= set(PEERS):
        print("\nthe floor of a semantic answer (floor-http + floor-walk + floor-embed, per "
              "query) / chroma-http, median over queries: " + ", ".join(
                  f"{size:,} {median([sum(p) / c for *p, c in zip(*(rec['lat'][f] for f in FLOORS), rec['lat']['chroma-http'], strict=True)]):.2f}"  # noqa: E501
                  for size, rec in results.items()))


def _growth(results: dict[int, dict[str, Any]]) -> str:
    if len(results) < 2:
        return ""
    lo, hi = min(results), max(results)
    return ", ".join(
        f"{n} {percentile(results[hi]['lat'][n], 50) / percentile(results[lo]['lat'][n], 50):.2f}x"
        for n in systems())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--sizes", default="10k,100k", help="5k = the real SciFact corpus")
    ap.add_argument("--take", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=20, help="queries per system before timing")
    ap.add_argument("--queries", type=int, default=0, help="first N test queries (0 = all)")
    ap.add_argument("--chunk-rows", type=int, default=20_000, help="rows per uploaded file")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lance-index", default="IVF_PQ", choices=["IVF_PQ", "IVF_HNSW_SQ"])
    ap.add_argument("--peers", default=",".join(ALL_PEERS),
                    help="which peers to load and query (a 100k load of each takes minutes); "
                         "'none': dataloft alone (no export, no embedding here, no recall); "
                         f"also {', '.join(FLOORS)} (with a peer and --idle)")
    ap.add_argument("--idle", action="store_true",
                    help="before the queries, wait for the server's background work (the ANN "
                         "graph of a big dataset) to end, so semantic is not an exact scan")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    logging.getLogger("httpx").setLevel(logging.WARNING)
    PEERS[:] = [p for p in ALL_PEERS + FLOORS if p in args.peers.split(",")]
    python = ensure_venv() if set(PEERS) - set(FLOORS) else None
    docs = load_corpus(args.data)
    qtext = load_queries(args.data)
    qrels = load_qrels(args.data)
    queries = [(q, qtext[q]) for q in sorted(qrels) if q in qtext]
    if args.queries:
        queries = queries[:args.queries]
    info = machine()
    print("machine:", ", ".join(f"{k}={v}" for k, v in info.items()))
    print("command:", " ".join(sys.argv), "| code:", source_state())
    results: dict[int, dict[str, Any]] = {}
    for size_s in args.sizes.split(","):
        size = parse_size(size_s, len(docs))
        results[size] = run_size(args, python, docs, queries, qrels, size)
        # After every size, so a long run that is stopped keeps what it measured.
        report(results, len(queries), args.warmup)
        if args.json:
            args.json.write_text(json.dumps({"machine": info, "command": " ".join(sys.argv),
                                             "sizes": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

