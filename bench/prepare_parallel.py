"""Upload -> searchable for several files synced into ONE dataset, per build (issue 16,
Build item 5: syncs of different files into one dataset prepare in parallel, commit in
order).

The SciFact abstracts are cut into --files text files (documents, so every file extracts,
chunks and embeds). Per run, each build in turn (`--build NAME=SRC_DIR[:ENV=VALUE,...]`,
the first the baseline; the order rotates per run) gets a fresh embedded server (one
process, SQLite, local blobs, default workers); the files are uploaded (not timed), then
the clock starts: every file is attached and its sync asked for, in one order, and the
clock stops when every file has its sync.completed event and a search of the dataset
answers. Reported per build: the median wall time and the server's CPU seconds over that
window (utime + stime of the server and every process under it, reaped extraction children
included: threads that ended still count), and the medians of the paired ratios to the
baseline. The box is shared: compare CPU and paired ratios, not one wall time.

    PYTHONPATH=src .venv/bin/python bench/prepare_parallel.py --build base=/work/base8/src \\
        --build new=$PWD/src --build new-serial=$PWD/src:DATALOFT_SYNC_PREPARE_PARALLEL=1
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from common import DEFAULT_DATA, Api, Server, _cpu_seconds, process_tree


def tree_cpu(pid: int) -> float:
    return sum(_cpu_seconds(p, reaped=True) for p in process_tree(pid))


def corpus_files(data: Path, count: int) -> list[bytes]:
    docs = [json.loads(line) for line in (data / "corpus.jsonl").read_text().splitlines()
            if line.strip()]
    texts = [f"{d.get('title', '')}\n\n{d.get('text', '')}" for d in docs]
    size = -(-len(texts) // count)
    return ["\n\n\n".join(texts[i:i + size]).encode() for i in range(0, len(texts), size)]


def one(name: str, src: str, env: dict[str, str], files: list[bytes]) -> tuple[float, float]:
    server = Server(env_extra={"PYTHONPATH": src, **env}).start()
    api = Api(server.url, server.key)
    try:
        ds = api.create_dataset("prepare")
        ids = [api.upload_file(f"part{i}.txt", data, "text/plain")
               for i, data in enumerate(files)]
        time.sleep(1.0)  # let the upload's own work settle
        cpu0, t0 = tree_cpu(server.pid or 0), time.monotonic()
        for file_id in ids:
            api.attach_and_sync(ds, file_id)
        api.wait_synced(ds, ids, poll=0.05)
        r = api.search(ds, "cells", 10, "hybrid")
        assert r.status_code == 200, r.text
        wall, cpu = time.monotonic() - t0, tree_cpu(server.pid or 0) - cpu0
        print(f"  {name:12s} wall {wall:7.2f} s  server CPU {cpu:7.2f} s", flush=True)
        return wall, cpu
    finally:
        api.close()
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", action="append", required=True,
                    help="NAME=SRC_DIR[:ENV=VALUE,...]")
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = ap.parse_args()
    builds: list[tuple[str, str, dict[str, str]]] = []
    for spec in args.build:
        name, rest = spec.split("=", 1)
        src, _, extra = rest.partition(":")
        env = dict(kv.split("=", 1) for kv in extra.split(",") if kv)
        builds.append((name, src, env))
    files = corpus_files(args.data, args.files)
    print(f"{len(files)} files, {sum(map(len, files)) / 1e6:.1f} MB, one dataset")
    results: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in builds}
    for run in range(args.runs):
        print(f"run {run + 1}/{args.runs}", flush=True)
        order = builds[run % len(builds):] + builds[:run % len(builds)]
        for name, src, env in order:
            results[name].append(one(name, src, env, files))
    base = builds[0][0]
    print(f"\n{'build':12s} {'wall p50':>9s} {'CPU p50':>9s} {'wall/base':>10s} {'CPU/base':>9s}")
    for name, _, _ in builds:
        walls = [w for w, _ in results[name]]
        cpus = [c for _, c in results[name]]
        wr = statistics.median(w / b for (w, _), (b, _) in zip(results[name], results[base],
                                                                strict=True))
        cr = statistics.median(c / b for (_, c), (_, b) in zip(results[name], results[base],
                                                               strict=True))
        print(f"{name:12s} {statistics.median(walls):9.2f} {statistics.median(cpus):9.2f} "
              f"{wr:10.2f} {cr:9.2f}")


if __name__ == "__main__":
    main()
