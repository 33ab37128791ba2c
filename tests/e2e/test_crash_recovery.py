"""Acceptance: kill -9 the server mid-sync (and mid-upload), restart it, and nothing is lost,
doubled or half-visible; the event log tells what happened."""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import create_dataset, create_file, wait_for_sync
from tests.support.live import LiveServer

pytestmark = pytest.mark.slow

WORDS = [
    "archive", "ledger", "harbor", "lantern", "meadow", "signal", "vector", "orchard", "copper",
    "violet", "summit", "canyon", "whisper", "engine", "garden", "silver", "market", "thunder",
    "pilot", "cedar", "falcon", "marble", "ocean", "prism", "river", "quartz", "ember", "glacier",
    "compass", "atlas", "beacon", "cobalt", "delta", "fjord", "granite", "horizon", "island",
    "jade", "kelp", "lagoon", "mosaic", "nebula", "oasis", "pebble", "quiver", "raven", "saffron",
    "tundra", "umbra", "valley", "willow"
]

ENV = {"DATALOFT_SYNC_COOLDOWN_SECONDS": "0", "DATALOFT_JOB_POLL_SECONDS": "0.05"}


def make_text(size: int, seed: int = 20240607) -> bytes:
    """Deterministic prose: numbered paragraphs of 2-9 sentences of 4-22 words, with a few
    long paragraphs that must be split at sentence boundaries."""
    rnd = random.Random(seed)
    paragraphs: list[str] = []
    total = 0
    while total < size:
        sentences = []
        for _ in range(rnd.randint(2, 40 if rnd.random() < 0.05 else 9)):
            words = [rnd.choice(WORDS) for _ in range(rnd.randint(4, 22))]
            sentences.append(" ".join(words).capitalize() + rnd.choice(".!?"))
        paragraph = f"{len(paragraphs)}. " + " ".join(sentences)
        paragraphs.append(paragraph)
        total += len(paragraph) + 2
    return "\n\n".join(paragraphs).encode()


def events(client: httpx.Client, dataset_id: str) -> list[dict[str, Any]]:
    r = client.get(f"/api/v1/dataset/{dataset_id}/event/list",
                   params={"take": 100, "order": "asc"})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def records(client: httpx.Client, dataset_id: str) -> list[dict[str, Any]]:
    """Every record of the dataset, streamed as JSONL."""
    with client.stream("GET", f"/api/v1/dataset/{dataset_id}/record/list",
                       params={"order": "asc"},
                       headers={"Accept": "application/jsonl"}) as r:
        assert r.status_code == 200, r.read()
        lines = [json.loads(line) for line in r.iter_lines() if line.strip()]
    assert all(line["type"] == "item" for line in lines)
    return [line["data"] for line in lines]


def request_sync(client: httpx.Client, dataset_id: str, file_id: str) -> None:
    r = client.post(f"/api/v1/dataset/{dataset_id}/file/{file_id}/attach",
                    json={"type": "source"})
    assert r.status_code == 200, r.text
    r = client.post(f"/api/v1/dataset/{dataset_id}/file/{file_id}/sync", json={})
    assert r.status_code == 200, r.text


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[LiveServer]]:
    """Servers started by the test, all on one data directory; stopped at the end."""
    started: list[LiveServer] = []
    try:
        yield started
    finally:
        for server in started:
            server.kill()


def start(servers: list[LiveServer], data_dir: Path) -> LiveServer:
    server = LiveServer(data_dir=data_dir, env_extra=ENV)
    servers.append(server)
    return server.start()


def test_kill_during_sync_then_restart_completes_the_sync_exactly_once(
        tmp_path: Path, servers: list[LiveServer]) -> None:
    data_dir = tmp_path / "data"
    content = make_text(9 * 1024 * 1024)
    first = start(servers, data_dir)
    with first.client() as c:
        file_id = create_file(c, content, name="big.txt")
        crashed = create_dataset(c, name="crashed")
        request_sync(c, crashed, file_id)
        # Kill as soon as the sync has started, before it can complete.
        deadline = time.monotonic() + 30
        while True:
            assert time.monotonic() < deadline, "the sync never started"
            types = [e["type"] for e in events(c, crashed) if e["fileId"] == file_id]
            if "sync.started" in types:
                first.kill()
                break
            time.sleep(0.02)
    assert "sync.completed" not in types and "sync.failed" not in types, (
        f"the sync ended before the kill: {types}")

    second = start(servers, data_dir)  # same data, same key, a new process
    with second.client() as c:
        done = wait_for_sync(c, crashed, file_id, timeout=60)
        assert done["type"] == "sync.completed", done
        got = records(c, crashed)

        # The same bytes synced cleanly into a second dataset, on the restarted server.
        clean = create_dataset(c, name="clean")
        request_sync(c, clean, file_id)
        clean_done = wait_for_sync(c, clean, file_id, timeout=60)
        assert clean_done["type"] == "sync.completed", clean_done
        want = records(c, clean)

        log = [e for e in events(c, crashed) if e["fileId"] == file_id]

    # Exactly once: the same records as a clean sync, each position once.
    assert len(want) > 1000
    assert len(got) == len(want) == done["data"]["recordCount"]
    positions = sorted(r["position"] for r in got)
    assert positions == list(range(len(got))), "duplicate or missing positions"
    assert {r["fileId"] for r in got} == {file_id}
    by_position = {r["position"]: r["text"] for r in got}
    assert [by_position[r["position"]] for r in want] == [r["text"] for r in want]
    assert done["data"]["replacedRecords"] == 0  # the killed attempt committed nothing

    # The event log tells the story.
    summary = [(e["type"], e["data"].get("attempt")) for e in log]
    assert summary == [
        ("file.attached", None),
        ("sync.queued", None),
        ("sync.started", 1),
        ("sync.retrying", 2),
        ("sync.started", 2),
        ("sync.completed", None),
    ], summary
    assert len({e["data"]["jobId"] for e in log if e["type"].startswith("sync.")}) == 1
    retrying = next(e for e in log if e["type"] == "sync.retrying")
    assert retrying["data"]["previousError"] == "lease_expired"
    assert "interrupted" in retrying["data"]["reason"]


def test_kill_during_upload_leaves_the_previous_content(
        tmp_path: Path, servers: list[LiveServer]) -> None:
    data_dir = tmp_path / "data"
    old = b"the first version of this file\n" * 100
    first = start(servers, data_dir)
    with first.client() as c:
        file_id = create_file(c, old, name="notes.txt")
        before = c.get(f"/api/v1/file/{file_id}/fetch").json()
    assert before["sha256"] == hashlib.sha256(old).hexdigest() and before["size"] == len(old)

    sent = threading.Event()
    stop = threading.Event()

    def body() -> Iterator[bytes]:
        piece = b"x" * 65536
        for n in range(800):  # 50 MiB, slowly: the kill lands mid-stream
            if stop.is_set():
                return
            if n == 16:
                sent.set()
            yield piece
            time.sleep(0.005)

    def upload() -> None:
        try:
            with first.client() as c:
                c.post(f"/api/v1/file/{file_id}/upload", content=body(),
                       headers={"Content-Type": "text/plain"})
        except httpx.HTTPError:
            pass  # the server died under it: expected

    uploader = threading.Thread(target=upload, daemon=True)
    uploader.start()
    assert sent.wait(30), "the upload did not start"
    tmp_parts = data_dir / "blobs" / "tmp"
    deadline = time.monotonic() + 10
    while not any(p.stat().st_size > 0 for p in tmp_parts.glob("*.part")):
        assert time.monotonic() < deadline, "no partial upload on disk"
        time.sleep(0.01)
    first.kill()
    stop.set()
    uploader.join(30)

    second = start(servers, data_dir)
    with second.client() as c:
        after = c.get(f"/api/v1/file/{file_id}/fetch").json()
        downloaded = c.get(f"/api/v1/file/{file_id}/download").content
    assert (after["sha256"], after["size"], after["version"]) == (
        before["sha256"], before["size"], before["version"])
    assert downloaded == old
    objects = [p for p in (data_dir / "blobs" / "objects").rglob("*") if p.is_file()]
    assert len(objects) == 1, "the partial upload became a visible blob"
    assert not list(tmp_parts.glob("*.part")), "start-up left the dead upload's partial file"
