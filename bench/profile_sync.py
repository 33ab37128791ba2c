"""Where one sync's time goes: cProfile of the worker path (prepare, produce, commit) in
process, on the embedded default, for the CSV of `sync_memory.py`.

    PYTHONPATH=src .venv/bin/python bench/profile_sync.py --rows 200000 --out /tmp/sync.prof
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient
from sync_memory import make_csv

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dataloft.app import create_app  # noqa: E402
from dataloft.config import Settings  # noqa: E402
from dataloft.jobs.worker import WorkerConfig, WorkerPool  # noqa: E402
from dataloft.sync.service import SYNC_JOB  # noqa: E402
from dataloft.sync.tasks import ExtractLimits, SyncHandler  # noqa: E402

KEY = "dlk_bench_admin_key_0123456789abcdef"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--out", default="")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--no-profile", action="store_true",
                        help="time the sync without cProfile (its overhead is ~30%%)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", bootstrap_key=KEY, workers=0,
                            sync_cooldown_seconds=0, max_upload_bytes=1 << 30)
        with TestClient(create_app(settings),
                        headers={"Authorization": f"Bearer {KEY}"}) as client:
            ds = client.post("/api/v1/dataset/create", json={"name": "p"}).json()["id"]
            fid = client.post("/api/v1/file/create", json={"name": "rows.csv"}).json()["id"]
            client.post(f"/api/v1/file/{fid}/upload", content=make_csv(args.rows),
                        headers={"Content-Type": "text/csv"})
            for action in ("attach", "sync"):
                body = {"type": "source"} if action == "attach" else {}
                assert client.post(f"/api/v1/dataset/{ds}/file/{fid}/{action}",
                                   json=body).status_code == 200
            ctx = client.app.state.ctx  # type: ignore[attr-defined]
            ctx.embedder.embed(["warm up"])
            handler = SyncHandler(ctx.db, ctx.blobs, ctx.index, ctx.embedder,
                                  ExtractLimits(timeout_s=3600, sync_timeout_s=3600))
            pool = WorkerPool(ctx.db, {SYNC_JOB: handler}, WorkerConfig(threads=1))
            profile = cProfile.Profile()
            wall, cpu = time.monotonic(), time.process_time()
            if not args.no_profile:
                profile.enable()
            assert pool.run_once()
            if not args.no_profile:
                profile.disable()
            wall, cpu = time.monotonic() - wall, time.process_time() - cpu
            events = client.get(f"/api/v1/dataset/{ds}/event/list").json()["items"]
            done = next(e for e in events if e["type"].startswith("sync.") and
                        e["type"] != "sync.started")
            print(done["type"], done["data"].get("recordCount"), done["data"].get("reason"))
            print(f"rows {args.rows}: wall {wall:.1f} s, process CPU {cpu:.1f} s, "
                  f"{args.rows / wall:,.0f} rows/s, load {os.getloadavg()}")
    if args.no_profile:
        return
    if args.out:
        profile.dump_stats(args.out)
    stats = pstats.Stats(profile)
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
