"""The fixed server CPU of a request, two or more builds paired: /healthz, a dataset fetch,
a search of an empty dataset (no ranking, no records: what every search pays) and OpenAI's
vector-store search of it (which also embeds the query).

One server per build (`--build NAME=SRC_DIR`, the first the baseline); per request kind,
each build in turn answers every request (round-robin), and the server's CPU per request is
the scheduler's count for all of its threads (bench/common.py cpu_ns, in ns) read around
it. Prints the median per build and its ratio to the baseline. With --bare, also the CPU of
the same search-shaped POST to bench/floor_server.py (a bare ASGI app on the same server
stack): what no framework, key or database costs. With --threads, also where each build's
CPU goes: per request kind, the CPU per request of each of the server's threads over a run
of --requests more (the main thread runs the event loop; the others are the thread pool's
and the background workers').

    PYTHONPATH=src .venv/bin/python bench/fixed_cost.py --build base=/work/base/src \
        --build new=$PWD/src
"""

from __future__ import annotations

import argparse
import logging
import statistics
from collections.abc import Callable

import httpx
from common import Server, bare_server, cpu_ns, thread_ns

Ask = Callable[[httpx.Client, str], httpx.Response]
KINDS: dict[str, Ask] = {
    "healthz": lambda c, ds: c.get("/healthz"),
    "dataset fetch": lambda c, ds: c.get(f"/api/v1/dataset/{ds}/fetch"),
    "search, empty dataset": lambda c, ds: c.post(f"/api/v1/dataset/{ds}/search",
                                                  json={"search": "hello world",
                                                        "mode": "lexical"}),
    # OpenAI's search of the same dataset as a vector store: hybrid, so it embeds the query.
    "vector store search": lambda c, ds: c.post(f"/v1/vector_stores/{ds}/search",
                                                json={"query": "hello world"}),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", action="append", required=True, help="NAME=SRC_DIR")
    ap.add_argument("--requests", type=int, default=600)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--bare", action="store_true", help="also a bare ASGI app's POST")
    ap.add_argument("--threads", action="store_true", help="also the CPU per server thread")
    args = ap.parse_args()
    logging.disable(logging.INFO)
    builds = [b.split("=", 1) for b in args.build]
    servers = [Server(env_extra={"PYTHONPATH": src}).start() for _, src in builds]
    try:
        clients = [httpx.Client(base_url=s.url, headers={"Authorization": f"Bearer {s.key}"})
                   for s in servers]
        datasets = [c.post("/api/v1/dataset/create", json={"name": "fixed"}).json()["id"]
                    for c in clients]
        for kind, ask in KINDS.items():
            cpu: dict[str, list[float]] = {name: [] for name, _ in builds}
            for i in range(args.warmup + args.requests):
                for (name, _), server, client, ds in zip(builds, servers, clients, datasets,
                                                         strict=True):
                    before = cpu_ns(server.pid or 0)
                    ask(client, ds).raise_for_status()
                    if i >= args.warmup:
                        cpu[name].append((cpu_ns(server.pid or 0) - before) / 1e6)
            base = statistics.median(cpu[builds[0][0]])
            print(f"{kind:22} " + "  ".join(
                f"{name} {statistics.median(v):.3f} ms ({statistics.median(v) / base:.2f})"
                for name, v in cpu.items()), flush=True)
            if args.threads:
                for (name, _), server, client, ds in zip(builds, servers, clients, datasets,
                                                         strict=True):
                    shares = split(server.pid or 0, ask, client, ds, args.requests)
                    print(f"{'':22} {name}: {shares}", flush=True)
        if args.bare:
            print(f"{'bare ASGI POST':22} {bare_cpu(args.warmup, args.requests):.3f} ms "
                  "(bench/floor_server.py)")
    finally:
        for server in servers:
            server.stop()


def split(pid: int, ask: Ask, client: httpx.Client, ds: str, requests: int) -> str:
    """Each busy thread's CPU per request over `requests` requests, the busiest first."""
    before = thread_ns(pid)
    for _ in range(requests):
        ask(client, ds).raise_for_status()
    after = thread_ns(pid)
    per = {tid: (ns - before.get(tid, 0)) / requests / 1e6 for tid, ns in after.items()}
    busy = sorted(((ms, tid) for tid, ms in per.items() if ms >= 0.005), reverse=True)
    return ", ".join(f"{'event loop' if tid == pid else f'thread {tid}'} {ms:.3f} ms"
                     for ms, tid in busy) + f" (all threads {sum(per.values()):.3f} ms)"


def bare_cpu(warmup: int, requests: int) -> float:
    bare, client = bare_server()
    try:
        cpu = []
        for i in range(warmup + requests):
            before = cpu_ns(bare.pid)
            client.post("/api/v1/dataset/ds/search",
                        json={"search": "hello world", "mode": "lexical"}).raise_for_status()
            if i >= warmup:
                cpu.append((cpu_ns(bare.pid) - before) / 1e6)
        return statistics.median(cpu)
    finally:
        client.close()
        bare.terminate()
        bare.wait(20)

if __name__ == "__main__":
    main()
