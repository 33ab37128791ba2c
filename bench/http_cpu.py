"""Server CPU and latency per search request over real HTTP, two builds paired in one run.

Starts one server per build (`--build NAME=SRC_DIR`, each run with that tree's src on
PYTHONPATH; the first is the baseline), loads the same SciFact corpus into each (5,183
abstracts; `--rows N` synthesises more as bench/latency.py does), then per mode asks the
300 test queries round-robin: for each query every server in turn, the first rotating. Per
server it reports the median client latency, the server's CPU per request (mean and median;
the scheduler's count for all of the process's threads, read from /proc/PID/task/*/schedstat
around each request, so the event loop, the thread pool and uvicorn's HTTP parsing count,
and the other server's work does not) and the median over queries of the paired latency
ratio to the baseline. CPU time is what a busy shared box disturbs least; quote it and the
ratios, not one wall time. It also compares the answers: the share of queries whose top
`take` rows (SciFact doc ids, in order) equal the baseline's, and nDCG@10 over the queries
that have test qrels (the peers harness's measure).

    PYTHONPATH=src .venv/bin/python bench/http_cpu.py --build base=/work/base/src \
        --build new=$PWD/src
    # a profile of one build's timed queries: --spy new=/tmp/new.txt (py-spy, raw format)
    # load 100k rows once, then pair builds on copies of that data dir in later runs,
    # each measured only once its background work (ANN graph, saving) is done:
    #   --rows 100000 --seed-dir /tmp/seed100k
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from common import (
    DEFAULT_DATA,
    ID_FIELD,
    Api,
    Server,
    corpus_jsonl,
    cpu_ns,
    hit_ids,
    ingest,
    load_corpus,
    load_qrels,
    load_queries,
    ndcg_at_k,
    parse_env,
    probe_text,
    wait_idle,
)

MODES = ("lexical", "semantic", "hybrid")


def _corpus(data: Path, rows: int) -> list[dict[str, str]]:
    docs = load_corpus(data)
    if rows <= len(docs):
        return docs[:rows] if rows else docs
    from latency import synthesize  # the same distractors as bench/latency.py

    return docs + synthesize(docs, rows - len(docs))


def _start(name: str, src: str, env: dict[str, str], docs: list[dict[str, str]],
           seed: Path | None = None, rebuild: bool = False) -> tuple[Server, Api, str]:
    if seed is not None:
        return _from_seed(name, src, env, docs, seed, rebuild)
    server = Server(env_extra={"PYTHONPATH": src, **env}).start()
    api = Api(server.url, server.key)
    ing = ingest(api, [("corpus.jsonl", corpus_jsonl(docs))], probe_text(docs[-1]),
                 docs[-1]["_id"], MODES)
    print(f"{name}: {ing.records} records, searchable in {ing.searchable_s:.1f} s", flush=True)
    return server, api, ing.dataset_id


def _from_seed(name: str, src: str, env: dict[str, str], docs: list[dict[str, str]],
               seed: Path, rebuild: bool = False) -> tuple[Server, Api, str]:
    """A server on a copy of `seed` (a data dir loaded once; made here, by this build,
    when missing): every build searches the very same records, and a 100k load is paid
    once across runs."""
    marker = seed / "dataset_id"
    if not marker.exists():
        server, api, dataset_id = _start(name, src, env, docs)
        wait_idle(server)
        api.close()
        assert server.proc is not None and server.tmp is not None
        server.proc.terminate()
        server.proc.wait(60)
        shutil.copytree(Path(server.tmp.name) / "data", seed / "data")
        marker.write_text(dataset_id)
        server.stop()
    dataset_id = marker.read_text().strip()
    # rebuild: the copy loses its saved index structures, so this build makes its own
    # (terms, matrix, graph) from the database, as after an upgrade that changed them.
    server = Server(env_extra={"PYTHONPATH": src, **env}, seed=seed / "data",
                    drop=("index",) if rebuild else ()).start()
    api = Api(server.url, server.key)
    api.search(dataset_id, probe_text(docs[-1]), 10, "hybrid").raise_for_status()
    wait_idle(server)
    print(f"{name}: dataset {dataset_id} from {seed}", flush=True)
    return server, api, dataset_id


def _timed(server: Server, api: Api, dataset_id: str, query: str, take: int, mode: str
           ) -> tuple[float, float, list[str]]:
    pid = server.pid or 0
    cpu = cpu_ns(pid)
    t = time.perf_counter()
    r = api.search(dataset_id, query, take, mode)
    ms = (time.perf_counter() - t) * 1000
    cpu = cpu_ns(pid) - cpu
    r.raise_for_status()
    return ms, cpu / 1e6, hit_ids(r, ID_FIELD)


def _answers(got: dict[str, list[list[str]]], base: str, qids: list[str],
             qrels: dict[str, dict[str, int]]) -> dict[str, tuple[float, float | None]]:
    """Per build: the share of queries answered as the baseline did (first pass), and the
    mean nDCG@10 over the queries with test qrels (None if none has)."""
    out: dict[str, tuple[float, float | None]] = {}
    n = len(qids)
    judged = [i for i, q in enumerate(qids) if q in qrels]
    for name, lists in got.items():
        same = sum(a == b for a, b in zip(lists[:n], got[base][:n], strict=True)) / n
        ndcg = (statistics.fmean(ndcg_at_k(lists[i], qrels[qids[i]], 10) for i in judged)
                if judged else None)
        out[name] = (same, ndcg)
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    builds = [b.split("=", 1) for b in args.build]
    docs = _corpus(args.data, args.rows)
    by_id = list(load_queries(args.data).items())[: args.queries]
    qids, queries = [q for q, _ in by_id], [t for _, t in by_id]
    qrels = load_qrels(args.data)
    env = parse_env(args.server_env)
    seed = args.seed_dir
    if seed is not None:
        seed.mkdir(parents=True, exist_ok=True)
    started = [(name, *_start(name, src, env, docs, seed, args.rebuild))
               for name, src in builds]
    spies: list[subprocess.Popen[bytes]] = []
    try:
        if args.settle:
            time.sleep(args.settle)
        results: dict[str, Any] = {}
        for mode in args.modes.split(","):
            for q in queries[: args.warmup]:
                for _, server, api, ds in started:
                    _timed(server, api, ds, q, args.take, mode)
            for spec in args.spy:
                who, out = spec.split("=", 1)
                pid = next(s.pid for n, s, _, _ in started if n == who)
                spies.append(subprocess.Popen(
                    [args.py_spy, "record", "--nonblocking", "-r", "200", "-f", "raw",
                     "-o", f"{out}.{mode}", "--pid", str(pid)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            lat: dict[str, list[float]] = {n: [] for n, *_ in started}
            cpu: dict[str, list[float]] = {n: [] for n in lat}
            got: dict[str, list[list[str]]] = {n: [] for n in lat}
            for _ in range(args.passes):
                for qi, q in enumerate(queries):
                    k = qi % len(started)
                    for name, server, api, ds in started[k:] + started[:k]:
                        ms, c, ids = _timed(server, api, ds, q, args.take, mode)
                        lat[name].append(ms)
                        cpu[name].append(c)
                        got[name].append(ids)
            for spy in spies:
                spy.send_signal(2)
                spy.wait(30)
            spies.clear()
            base = builds[0][0]
            answers = _answers(got, base, qids, qrels)
            for name in lat:
                n = len(lat[name])
                ratio = statistics.median(a / b for a, b in zip(lat[name], lat[base], strict=True))
                med = statistics.median(cpu[name])
                results[f"{name} {mode}"] = {"p50": statistics.median(lat[name]),
                                             "cpu": statistics.fmean(cpu[name]),
                                             "cpu_p50": med, "ratio": ratio,
                                             "same": answers[name][0],
                                             "ndcg@10": answers[name][1]}
                same, ndcg = answers[name]
                print(f"{mode:8} {name:6} p50 {statistics.median(lat[name]):6.2f} ms  "
                      f"server CPU {statistics.fmean(cpu[name]):5.2f} ms/request "
                      f"(median {med:5.2f})  "
                      f"paired ratio to {base} {ratio:.3f}  (n={n})  "
                      f"same answer as {base} {same:.1%}"
                      + (f"  nDCG@10 {ndcg:.4f}" if ndcg is not None else ""), flush=True)
        return results
    finally:
        for spy in spies:
            spy.kill()
        for _, server, api, _ in started:
            api.close()
            server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", action="append", required=True, help="NAME=SRC_DIR")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--rows", type=int, default=0, help="0: the real corpus")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--passes", type=int, default=1)
    ap.add_argument("--take", type=int, default=10)
    ap.add_argument("--settle", type=float, default=0.0)
    ap.add_argument("--server-env", action="append", default=[])
    ap.add_argument("--rebuild", action="store_true", help="with --seed-dir: every build "
                    "starts without the seed's saved index structures and builds its own")
    ap.add_argument("--seed-dir", type=Path, help="load once into DIR (when missing), then "
                    "start every build on a copy of it, once its background work is done")
    ap.add_argument("--spy", action="append", default=[], help="NAME=OUT: py-spy that build")
    ap.add_argument("--py-spy", default=str(Path(__file__).resolve().parents[1]
                                             / ".venv" / "bin" / "py-spy"))
    logging.getLogger("httpx").setLevel(logging.WARNING)
    run(ap.parse_args())


if __name__ == "__main__":
    main()
