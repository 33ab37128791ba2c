"""Where the time of N syncs into one dataset goes, in process, per DATALOFT_SYNC_PREPARE_PARALLEL
(issue 16 Build item 5; docs/benchmarks.md §32).

One embedded app (no server, no HTTP, workers=0); the SciFact abstracts cut into 8 text
files (or, with --csv, 6 CSVs of 15k rows), attached and queued into one dataset, then a
one-thread worker pool runs every sync. Printed per run: the process CPU (threads of this
process; the extraction children are not counted), the total wall, the time in `produce`
and `commit` summed over the syncs (a preparation running ahead counts in `produce` too)
and how long the syncs waited for a product prepared ahead. Runs alternate the settings.

    PYTHONPATH=src .venv/bin/python bench/prepare_phases.py --parallel 1,2 --runs 2 [--csv]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import DEFAULT_DATA
from fastapi.testclient import TestClient
from prepare_parallel import corpus_files
from sync_memory import make_csv

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dataloft.app import create_app  # noqa: E402
from dataloft.config import Settings  # noqa: E402
from dataloft.jobs.worker import WorkerConfig, WorkerPool  # noqa: E402
from dataloft.sync.service import SYNC_JOB  # noqa: E402
from dataloft.sync.tasks import SyncHandler  # noqa: E402

KEY = "dlk_bench_admin_key_0123456789abcdef"


def timed(spent: dict[str, float], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.monotonic()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[name] = spent.get(name, 0.0) + time.monotonic() - t0
    return wrapper


def run(parallel: int, files: list[bytes], csv: bool) -> None:
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="dataloft-phases-")),
                        workers=0, bootstrap_key=KEY, max_upload_bytes=1 << 30)
    ext, ctype = ("csv", "text/csv") if csv else ("txt", "text/plain")
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {KEY}"}) as c:
        ctx = c.app.state.ctx  # type: ignore[attr-defined]
        ds = c.post("/api/v1/dataset/create", json={"name": "phases"}).json()["id"]
        for i, data in enumerate(files):
            fid = c.post("/api/v1/file/create", json={"name": f"p{i}.{ext}"}).json()["id"]
            c.post(f"/api/v1/file/{fid}/upload", content=data, headers={"Content-Type": ctype})
            c.post(f"/api/v1/dataset/{ds}/file/{fid}/attach", json={"type": "source"})
            c.post(f"/api/v1/dataset/{ds}/file/{fid}/sync", json={})
        handler = SyncHandler(ctx.db, ctx.blobs, ctx.index, ctx.embedder,
                              prepare_parallel=parallel)
        spent: dict[str, float] = {}
        for name in ("produce", "commit"):
            setattr(handler, name, timed(spent, name, getattr(handler, name)))
        handler.ahead.wait = timed(spent, "waited", handler.ahead.wait)  # type: ignore[method-assign]
        pool = WorkerPool(ctx.db, {SYNC_JOB: handler}, WorkerConfig(threads=1))
        cpu0, t0, jobs = time.process_time(), time.monotonic(), 0
        while pool.run_once():
            jobs += 1
        wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
        print(f"parallel {parallel}: {jobs} syncs, wall {wall:.2f} s, process CPU {cpu:.2f} s, "
              f"handed {handler.ahead.handed}, "
              + ", ".join(f"{k} {v:.2f} s" for k, v in sorted(spent.items())), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parallel", default="1,2")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--csv", action="store_true")
    args = ap.parse_args()
    files = ([make_csv(15000, seed=i) for i in range(6)] if args.csv
             else corpus_files(DEFAULT_DATA, 8))
    for _ in range(args.runs):
        for parallel in map(int, args.parallel.split(",")):
            run(parallel, files, args.csv)


if __name__ == "__main__":
    main()
