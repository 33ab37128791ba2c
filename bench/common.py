"""Shared pieces of the benchmarks: a server launcher, an RSS sampler, a thin HTTP client
for the public API, SciFact loading and the IR metrics.

Everything here talks to dataloft over HTTP only (no imports from `dataloft`), so the
benchmarks measure what a client sees and keep working while the engine changes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "bench" / "scifact"
BENCH_KEY = "dlk_bench_key_0123456789abcdef0123"


# --------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bare_server() -> tuple[subprocess.Popen[bytes], httpx.Client]:
    """bench/floor_server.py on a free port, ready, and a client for it."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(REPO / "bench" / "floor_server.py"), str(port)],
                            start_new_session=True)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 30
    while True:
        try:
            client.post("/ready", json={}).raise_for_status()
            return proc, client
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise
            time.sleep(0.1)


@dataclass
class Server:
    """`python -m dataloft.cli serve` in a subprocess, on a fresh data dir and free port."""

    env_extra: dict[str, str] = field(default_factory=dict)
    key: str = BENCH_KEY
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    tmp: tempfile.TemporaryDirectory[str] | None = None
    # A data dir to start from (copied): a dataset loaded once, searched by several builds.
    seed: Path | None = None
    # Paths under the copied seed to delete before starting (e.g. "index": the saved index
    # structures, so the server builds its own from the database).
    drop: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, timeout: float = 120.0) -> Server:
        self.tmp = tempfile.TemporaryDirectory(prefix="dataloft-bench-")
        data_dir = Path(self.tmp.name) / "data"
        if self.seed is not None:
            shutil.copytree(self.seed, data_dir)
            for rel in self.drop:
                shutil.rmtree(data_dir / rel, ignore_errors=True)
        env = {
            **os.environ,
            "DATALOFT_DATA_DIR": str(data_dir),
            "DATALOFT_PORT": str(self.port),
            "DATALOFT_HOST": "127.0.0.1",
            "DATALOFT_BOOTSTRAP_KEY": self.key,
            "DATALOFT_LOG_LEVEL": "warning",
            # Larger than any corpus chunk the benchmarks upload.
            "DATALOFT_MAX_UPLOAD_BYTES": str(1 << 30),
            **self.env_extra,
        }
        self.log_path = Path(self.tmp.name) / "server.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dataloft.cli", "serve"], env=env, stdout=log,
            stderr=subprocess.STDOUT, cwd=str(REPO), start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not become ready:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if self.tmp:
            self.tmp.cleanup()
            self.tmp = None


# --------------------------------------------------------------------------- RSS


def _proc_status(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    k, v = line.split(":", 1)
                    out[k] = int(v.split()[0]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return out


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                kids.extend(int(x) for x in fh.read().split())
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return kids


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int, reaped: bool) -> float:
    """utime + stime of a process (plus its reaped children's when `reaped`), in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0.0
    # fields[0] is field 3 (state): utime, stime, cutime, cstime are fields 14..17.
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _TICK


def cpu_ns(pid: int) -> int:
    """CPU time of all of a process's threads in ns (/proc/PID/task/*/schedstat): the
    scheduler's exact count, where /proc/PID/stat moves in 10 ms ticks, too coarse for a
    request of a few ms. A thread that exited since the last read is no longer counted."""
    return sum(thread_ns(pid).values())


def thread_ns(pid: int) -> dict[int, int]:
    """CPU time in ns of each of a process's threads (cpu_ns's count), by thread id."""
    out: dict[int, int] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as fh:
                out[int(tid)] = int(fh.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return out


def wait_idle(server: Server, quiet_s: float = 3.0, share: float = 0.05) -> None:
    """Until the server's background work (ANN graph, saving the structures) is done: its
    CPU over `quiet_s` under `share` of one core. A graph build holding the GIL in another
    thread inflates every request's time in SQLite calls."""
    while True:
        before = cpu_ns(server.pid or 0)
        time.sleep(quiet_s)
        if cpu_ns(server.pid or 0) - before < share * quiet_s * 1e9:
            return


def process_tree(pid: int) -> list[int]:
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.append(p)
        todo.extend(_children(p))
    return seen


class RssSampler:
    """Polls VmRSS of a process and its descendants (summed) in a thread, keeping the peak
    per named phase; `hwm()` is the kernel's own peak (VmHWM) of the main process, which
    also catches spikes shorter than the polling interval."""

    def __init__(self, pid: int | None, interval: float = 0.05):
        self.pid = pid
        self.interval = interval
        self.phase = "start"
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        if self.pid:
            self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.sample()
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2)

    def set_phase(self, phase: str) -> None:
        self.sample()
        self.phase = phase

    def current(self) -> int:
        if not self.pid:
            return 0
        return sum(_proc_status(p).get("VmRSS", 0) for p in process_tree(self.pid))

    def sample(self) -> None:
        rss = self.current()
        if rss > self.peaks.get(self.phase, 0):
            self.peaks[self.phase] = rss

    def cpu(self) -> float:
        """CPU seconds used so far by the server and its descendants (live and reaped):
        unlike wall time, barely affected by other load on the machine."""
        if not self.pid:
            return float("nan")
        return sum(_cpu_seconds(p, reaped=True) for p in process_tree(self.pid))

    def hwm(self) -> int:
        return _proc_status(self.pid).get("VmHWM", 0) if self.pid else 0

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()


def mib(n: float) -> str:
    return f"{n / (1 << 20):,.0f} MiB" if n else "n/a"


# --------------------------------------------------------------------------- API client


class ApiError(RuntimeError):
    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


class Api:
    """The handful of public endpoints the benchmarks use, on one keep-alive connection."""

    def __init__(self, url: str, key: str, timeout: float = 300.0):
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"},
                                 timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def _post(self, path: str, body: Any = None, *, content: bytes | None = None,
              headers: dict[str, str] | None = None) -> Any:
        if content is not None:
            r = self.http.post(path, content=content, headers=headers)
        else:
            r = self.http.post(path, json=body if body is not None else {})
        if r.status_code >= 400:
            raise ApiError(r.status_code, r.text)
        return r.json()

    def create_dataset(self, name: str, **settings: Any) -> str:
        return str(self._post("/api/v1/dataset/create", {"name": name, **settings})["id"])

    def update_dataset(self, dataset_id: str, **settings: Any) -> None:
        self._post(f"/api/v1/dataset/{dataset_id}/update", settings)

    def upload_file(self, name: str, data: bytes, content_type: str) -> str:
        file_id = str(self._post("/api/v1/file/create", {"name": name})["id"])
        self._post(f"/api/v1/file/{file_id}/upload", content=data,
                   headers={"Content-Type": content_type})
        return file_id

    def attach_and_sync(self, dataset_id: str, file_id: str) -> None:
        self._post(f"/api/v1/dataset/{dataset_id}/file/{file_id}/attach", {"type": "source"})
        self._post(f"/api/v1/dataset/{dataset_id}/file/{file_id}/sync", {})

    def events(self, dataset_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"take": 100}
            if cursor:
                params["cursor"] = cursor
            r = self.http.get(f"/api/v1/dataset/{dataset_id}/event/list", params=params)
            if r.status_code >= 400:
                raise ApiError(r.status_code, r.text)
            page = r.json()
            items.extend(page["items"])
            cursor = page.get("cursor")
            if not cursor:
                return items

    def wait_synced(self, dataset_id: str, file_ids: Iterable[str], timeout: float = 3600,
                    poll: float = 0.1) -> dict[str, dict[str, Any]]:
        """Block until every file has a sync.completed event; returns them by file id.
        A sync.failed event raises."""
        want = set(file_ids)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done: dict[str, dict[str, Any]] = {}
            for ev in self.events(dataset_id):
                data = ev.get("data") or {}
                fid = data.get("fileId") or ev.get("fileId")
                if fid not in want:
                    continue
                if ev.get("type") == "sync.failed":
                    raise RuntimeError(f"sync failed for {fid}: {data}")
                if ev.get("type") == "sync.completed":
                    done[fid] = ev
            if set(done) >= want:
                return done
            time.sleep(poll)
        raise TimeoutError(f"sync did not complete within {timeout} s")

    def search(self, dataset_id: str, query: str, take: int, mode: str | None) -> httpx.Response:
        body: dict[str, Any] = {"search": query, "take": take}
        if mode and mode != "default":
            body["mode"] = mode
        while True:
            r = self.http.post(f"/api/v1/dataset/{dataset_id}/search", json=body)
            # The structures of a big dataset are still being built (a first sync, a
            # restart without a saved copy): the server says when to come back.
            if r.status_code != 503 or "index_building" not in r.text:
                return r
            time.sleep(min(float(r.headers.get("retry-after") or 1), 0.2))


def hit_ids(response: httpx.Response, id_field: str) -> list[str]:
    out = []
    for rec in response.json().get("records", []):
        meta = rec.get("meta") or {}
        if id_field in meta:
            out.append(str(meta[id_field]))
    return out


# --------------------------------------------------------------------------- SciFact


def load_corpus(data: Path) -> list[dict[str, str]]:
    with open(data / "corpus.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load_queries(data: Path) -> dict[str, str]:
    with open(data / "queries.jsonl", encoding="utf-8") as fh:
        return {str(q["_id"]): q["text"] for q in map(json.loads, fh) if q}


def load_qrels(data: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with open(data / "qrels-test.tsv", encoding="utf-8") as fh:
        next(fh)  # header
        for line in fh:
            if not line.strip():
                continue
            qid, did, score = line.rstrip("\n").split("\t")
            qrels.setdefault(qid, {})[did] = int(score)
    return qrels


ID_FIELD = "doc_id"


def corpus_jsonl(docs: Sequence[dict[str, str]], raw: bool = False) -> bytes:
    """The corpus as one JSONL file. By default each row is {"title", "text", "doc_id"}:
    the server renders a row as `key: value` lines in key order, so the id goes last (it
    is a meaningless token to the ranker) and under a plain name; it comes back in
    `record.meta`. With `raw`, the BEIR rows are uploaded exactly as they are."""
    lines = []
    for d in docs:
        row = d if raw else {"title": d["title"], "text": d["text"], ID_FIELD: d["_id"]}
        lines.append(json.dumps(row, ensure_ascii=False))
    return ("\n".join(lines) + "\n").encode()


def ndcg_at_k(ranked: Sequence[str], rels: dict[str, int], k: int = 10) -> float:
    """BEIR / trec_eval nDCG@k: gain = graded relevance, discount 1/log2(rank + 1), ideal
    DCG from the judged documents. Duplicate hits count once (first occurrence)."""
    seen: set[str] = set()
    dcg = 0.0
    rank = 0
    for doc in ranked:
        if doc in seen:
            continue
        seen.add(doc)
        rank += 1
        if rank > k:
            break
        dcg += rels.get(doc, 0) / math.log2(rank + 1)
    ideal = sorted((r for r in rels.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], rels: dict[str, int], k: int = 100) -> float:
    relevant = {d for d, r in rels.items() if r > 0}
    if not relevant:
        return 0.0
    top: list[str] = []
    for doc in ranked:
        if doc not in top:
            top.append(doc)
        if len(top) == k:
            break
    return len(relevant & set(top)) / len(relevant)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return float("nan")
    s = sorted(values)
    idx = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))
    return s[idx]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --------------------------------------------------------------------------- machine


def machine() -> dict[str, str]:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")),
                       "")
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as fh:
            kb = int(next(ln for ln in fh if ln.startswith("MemTotal")).split()[1])
            mem = f"{kb / (1 << 20):.1f} GiB"
    except (OSError, StopIteration):
        pass
    commit = source_state()
    return {"nproc": str(os.cpu_count()), "usable cpus": str(len(os.sched_getaffinity(0))),
            "cpu": cpu or platform.processor(), "ram": mem,
            "python": platform.python_version(), "commit": commit,
            "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg())}


def source_state() -> str:
    """HEAD, plus a fingerprint of uncommitted changes under src/ when there are any: the
    server runs from the working tree, so this names the code that was measured."""
    def git(*cmd: str) -> bytes:
        return subprocess.run(["git", *cmd], cwd=REPO, capture_output=True, timeout=10,
                              check=False).stdout

    try:
        head = git("rev-parse", "--short", "HEAD").decode().strip()
        diff = git("diff", "HEAD", "--", "src")
        untracked = git("ls-files", "--others", "--exclude-standard", "--", "src").split()
    except (OSError, subprocess.SubprocessError):
        return ""
    if not diff and not untracked:
        return head
    h = hashlib.sha1(diff)
    for name in sorted(untracked):
        h.update(name)
        with contextlib.suppress(OSError):
            h.update((REPO / name.decode()).read_bytes())
    return f"{head}+dirty:{h.hexdigest()[:8]}"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(cells[0], widths, strict=True)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells[1:]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")


# --------------------------------------------------------------------------- ingest


@dataclass
class Ingest:
    dataset_id: str
    upload_s: float  # first byte sent -> last upload answered
    synced_s: float  # upload start -> every file's sync.completed seen
    searchable_s: float  # upload start -> the probe document found in every mode
    records: int
    server_sync_ms: list[int]  # durationMs of each sync.completed event
    probe: dict[str, str]  # mode -> "ok" | what happened instead


def probe_text(doc: dict[str, str]) -> str:
    """A query that finds `doc` in any mode: its title and the start of its abstract (a
    title alone is too little for a weak embedding model among 100k near-duplicates)."""
    return f"{doc['title']} {doc['text'][:300]}"


def ingest(api: Api, files: Sequence[tuple[str, bytes]], probe_query: str, probe_id: str,
           modes: Sequence[str], id_field: str = ID_FIELD, probe_timeout: float = 120.0,
           settings: dict[str, Any] | None = None, sync_timeout: float = 3600) -> Ingest:
    """Create a dataset, then time: upload every file, attach + sync each right after its
    upload (so syncs overlap later uploads), wait for every sync.completed, then poll a
    search per mode until the probe document (from the last file) is in its top 20."""
    dataset_id = api.create_dataset(f"bench-{int(time.time() * 1000)}", **(settings or {}))
    t0 = time.perf_counter()
    file_ids = []
    for name, data in files:
        fid = api.upload_file(name, data, "application/jsonl")
        api.attach_and_sync(dataset_id, fid)
        file_ids.append(fid)
    t_up = time.perf_counter()
    done = api.wait_synced(dataset_id, file_ids, timeout=sync_timeout)
    t_sync = time.perf_counter()
    probe: dict[str, str] = {}
    for mode in modes:
        deadline = time.perf_counter() + probe_timeout
        while True:
            r = api.search(dataset_id, probe_query, 20, mode)
            if r.status_code >= 400:
                probe[mode] = f"HTTP {r.status_code}"
                break
            if probe_id in hit_ids(r, id_field):
                probe[mode] = "ok"
                break
            if time.perf_counter() > deadline:
                probe[mode] = f"probe not in top 20 after {probe_timeout:.0f} s"
                break
            time.sleep(0.05)
    t_search = time.perf_counter()
    events = list(done.values())
    return Ingest(
        dataset_id=dataset_id, upload_s=t_up - t0, synced_s=t_sync - t0,
        searchable_s=t_search - t0,
        records=sum(int((e.get("data") or {}).get("recordCount", 0)) for e in events),
        server_sync_ms=[int((e.get("data") or {}).get("durationMs", 0)) for e in events],
        probe=probe)


def parse_env(pairs: Sequence[str]) -> dict[str, str]:
    out = {}
    for p in pairs:
        k, _, v = p.partition("=")
        out[k] = v
    return out
