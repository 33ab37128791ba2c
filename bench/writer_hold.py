"""How long a file's sync commit keeps other writers waiting (embedded SQLite, one writer).

Starts a fresh server, uploads a CSV of N rows, attaches and syncs it, and meanwhile sends a
small write (`POST /api/v1/file/create`) every 0.2 s on its own connection. Prints the
sync's time and the slowest probe write, with when it started relative to the sync: a
probe stuck behind the commit's transaction waits about as long as that transaction.

    PYTHONPATH=$PWD/src .venv/bin/python bench/writer_hold.py --rows 200000
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import httpx
from common import Api, Server
from sync_memory import make_csv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--timeout", type=float, default=3000)
    args = parser.parse_args()
    load = os.getloadavg()
    data = make_csv(args.rows)
    server = Server(env_extra={"DATALOFT_SYNC_TIMEOUT_SECONDS": str(int(args.timeout))}).start()
    try:
        api = Api(server.url, server.key, timeout=args.timeout)
        ds = api.create_dataset("hold")
        fid = api.upload_file("rows.csv", data, "text/csv")
        probes: list[tuple[float, float]] = []  # (start since the sync began, seconds)
        refused: list[tuple[float, float, int, str]] = []  # ... and status, body
        stop = threading.Event()
        started = time.monotonic()

        def probe() -> None:
            with httpx.Client(base_url=server.url, timeout=args.timeout,
                              headers={"Authorization": f"Bearer {server.key}"}) as c:
                while not stop.is_set():
                    t0 = time.monotonic()
                    r = c.post("/api/v1/file/create", json={"name": "probe.txt"})
                    took = time.monotonic() - t0
                    probes.append((t0 - started, took))
                    if r.status_code != 200:
                        refused.append((t0 - started, took, r.status_code, r.text[:200]))
                    stop.wait(0.2)

        thread = threading.Thread(target=probe, daemon=True)
        thread.start()
        api.attach_and_sync(ds, fid)
        event = api.wait_synced(ds, [fid], timeout=args.timeout, poll=1.0)[fid]
        seconds = time.monotonic() - started
        stop.set()
        thread.join()
        at, worst = max(probes, key=lambda p: p[1])
        slow = sum(1 for _, s in probes if s > 1.0)
        print(f"{args.rows} rows, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}: "
              f"{event.get('type')} ({(event.get('data') or {}).get('recordCount')} records) "
              f"in {seconds:.1f} s; {len(probes)} probe writes, slowest {worst:.1f} s "
              f"(sent at +{at:.1f} s), {slow} over 1 s", flush=True)
        for at, took, status, body in refused:
            print(f"  refused: sent at +{at:.1f} s, answered {status} after {took:.1f} s: "
                  f"{body}")
        if refused:  # why, from the server's log
            errors = [line for line in server.log().splitlines()
                      if "Error" in line or "error" in line]
            print("\n".join(errors[-12:]))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
