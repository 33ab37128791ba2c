"""Server CPU per search request, in process, per mode: the fixed cost of the request path.

The app runs in this process behind Starlette's TestClient, with sync endpoints and
dependencies called directly instead of in the thread pool, so each search request runs
start to finish in one thread; its thread CPU time is taken around the ASGI call. Thread
CPU time, unlike wall time, does not count the time the box's other processes hold the
cores, so a pair of runs on a busy machine stays comparable. SciFact (5,183 abstracts) is
synced once, then per mode 20 warm-up queries and `--passes` x 300 timed queries, take=10.

    PYTHONPATH=src .venv/bin/python bench/request_cpu.py --label new
    PYTHONPATH=/path/to/other/checkout/src .venv/bin/python bench/request_cpu.py --label base
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import fastapi.dependencies.utils
import fastapi.routing
from common import DEFAULT_DATA, Api, corpus_jsonl, ingest, load_corpus, load_queries, probe_text
from fastapi.testclient import TestClient

from dataloft.app import create_app
from dataloft.config import Settings

KEY = "k" * 40


async def _direct(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return func(*args, **kwargs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--modes", default="lexical,semantic,hybrid")
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--label", default="")
    args = ap.parse_args()
    logging.disable(logging.INFO)
    # One thread per request: the thread CPU clock then sees all of the request's work.
    fastapi.routing.run_in_threadpool = _direct  # type: ignore[assignment]
    fastapi.dependencies.utils.run_in_threadpool = _direct  # type: ignore[assignment]
    docs = load_corpus(args.data)
    queries = list(load_queries(args.data).values())
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="request-cpu-")),
                        bootstrap_key=KEY)
    inner = create_app(settings)
    samples: list[float] = []

    async def app(scope: dict[str, Any], receive: Callable[[], Awaitable[Any]],
                  send: Callable[[Any], Awaitable[None]]) -> None:
        timed = scope["type"] == "http" and scope["path"].endswith("/search")
        t = time.thread_time()
        await inner(scope, receive, send)
        if timed:
            samples.append((time.thread_time() - t) * 1000)

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    with TestClient(app, headers={"Authorization": f"Bearer {KEY}"}) as client:
        api = Api.__new__(Api)
        api.http = client
        ing = ingest(api, [("corpus.jsonl", corpus_jsonl(docs))], probe_text(docs[-1]),
                     docs[-1]["_id"], modes)
        for mode in modes:
            for q in queries[:20]:
                api.search(ing.dataset_id, q, 10, mode)
            samples.clear()
            for _ in range(args.passes):
                for q in queries:
                    r = api.search(ing.dataset_id, q, 10, mode)
                    r.raise_for_status()
            s = sorted(samples)
            print(f"{args.label} {mode}: median {statistics.median(s):.2f} ms CPU/request, "
                  f"p90 {s[int(0.9 * len(s))]:.2f}, mean {statistics.fmean(s):.2f} "
                  f"(n={len(s)})", flush=True)


if __name__ == "__main__":
    main()
