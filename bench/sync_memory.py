"""Peak memory and time of syncing one big CSV, through dataloft's public HTTP API.

For each size (rows): a fresh server (`dataloft serve`, embedded SQLite, default settings
apart from the upload cap), one CSV of that many rows uploaded, attached and synced; the
clock runs from the sync request to the file's `sync.completed` (or `sync.failed`) event, and
on until a lexical and a semantic search of the dataset are answered (searchable).
Reported: the server process's idle RSS before the sync, its peak RSS during it (VmHWM,
the kernel's high-water mark, so no spike is missed between samples) and the growth, plus
the peak of the extraction child (sampled) and the sync time.

    .venv/bin/python bench/sync_memory.py                          # 10k, 200k, 1M rows
    .venv/bin/python bench/sync_memory.py --rows 10000 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import time
from typing import Any

from common import REPO, Api, RssSampler, Server, _proc_status, mib
from inproc import WORDS


def make_csv(rows: int, seed: int = 7) -> bytes:
    """`id,name,city,amount,note` rows: ~45 bytes each, typed columns, varied words."""
    rnd = random.Random(seed)
    lines = ["id,name,city,amount,note"]
    for i in range(rows):
        a, b, c = rnd.choice(WORDS), rnd.choice(WORDS), rnd.choice(WORDS)
        lines.append(f"{i},{a} {b},{c},{rnd.randint(0, 99999) / 100},{b} {c} {i % 97}")
    return ("\n".join(lines) + "\n").encode()


def run(rows: int, timeout: float, env: dict[str, str]) -> dict[str, Any]:
    data = make_csv(rows)
    server = Server(env_extra=env).start()
    try:
        assert server.pid is not None
        api = Api(server.url, server.key, timeout=600)
        ds = api.create_dataset(f"bench-{rows}")
        fid = api.upload_file(f"rows-{rows}.csv", data, "text/csv")
        time.sleep(1.0)  # let the upload's own allocations settle before "idle"
        idle = _proc_status(server.pid).get("VmRSS", 0)
        with RssSampler(server.pid) as sampler:
            cpu = _cpu_s(server.pid)
            started = time.monotonic()
            api.attach_and_sync(ds, fid)
            try:
                outcome = _outcome(api.wait_synced(ds, [fid], timeout=timeout, poll=1.0)[fid])
            except (RuntimeError, TimeoutError) as exc:
                outcome = f"failed: {exc}"
            seconds = time.monotonic() - started
            # Searchable: both modes answer (a 503 index_building is retried by Api.search).
            for mode in ("lexical", "semantic"):
                answered = api.search(ds, "row label", 10, mode)
                assert answered.status_code == 200, answered.text
            searchable = time.monotonic() - started
            cpu = _cpu_s(server.pid) - cpu
        status = _proc_status(server.pid)
        api.close()
        return {"rows": rows, "bytes": len(data), "idle_rss": idle,
                "peak_rss": status.get("VmHWM", 0),
                "growth": status.get("VmHWM", 0) - idle,
                "sampled_peak": sampler.hwm(), "seconds": round(seconds, 1),
                "searchable_s": round(searchable, 1),
                "cpu_s": round(cpu, 1), "rows_per_s": round(rows / seconds),
                "searchable_rows_per_s": round(rows / searchable),
                "outcome": outcome}
    finally:
        server.stop()


def _cpu_s(pid: int) -> float:
    """The server process's CPU seconds, all its threads (not the extraction child's)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _outcome(event: dict[str, Any]) -> str:
    data = event.get("data") or {}
    return f"{event.get('type')} ({data.get('recordCount')} records)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="10000,200000,1000000")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--json", default="")
    parser.add_argument("--sync-timeout", default="",
                        help="DATALOFT_SYNC_TIMEOUT_SECONDS for the server (default: its own)")
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                            capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()
    print(f"commit {commit}, DATALOFT_EXTRACT_MEMORY_MB default, "
          f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {os.cpu_count()} cores")
    results = []
    for rows in (int(r) for r in args.rows.split(",")):
        env = {"DATALOFT_SYNC_TIMEOUT_SECONDS": args.sync_timeout} if args.sync_timeout else {}
        result = run(rows, args.timeout, env)
        results.append(result)
        print(f"{rows:>9} rows {mib(result['bytes']):>10}  idle {mib(result['idle_rss']):>10}"
              f"  peak {mib(result['peak_rss']):>10}  growth {mib(result['growth']):>10}"
              f"  {result['seconds']:>7} s  {result['rows_per_s']:>6} rows/s"
              f"  searchable {result['searchable_s']:>7} s"
              f" ({result['searchable_rows_per_s']:>6} rows/s)"
              f"  server CPU {result['cpu_s']:>6} s"
              f"  {result['outcome']}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"commit": commit, "load": load, "results": results}, fh, indent=2)


if __name__ == "__main__":
    main()
