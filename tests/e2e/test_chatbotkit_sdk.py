"""The official @chatbotkit/sdk (pinned in js/package.json) against a live server.

js/lifecycle.mjs walks the dataset/file lifecycle through the SDK only: create, direct-to-
source upload, attach, sync, sync cooldown (429 TOO_MANY_REQUESTS + Retry-After), records,
search, cursor paging, meta filters, JSONL streaming, detach with record deletion, NOT_FOUND
after detach and after delete. It prints one JSON line per step and exits non-zero on the
first failed assertion; this test runs it and shows that output on failure.

The walk runs twice, unchanged: against the embedded default (SQLite + a local directory)
and against cluster mode, configured by environment only: DATALOFT_DATABASE_URL (a fresh
PostgreSQL database) and DATALOFT_BLOB_URL (a moto S3 bucket), so the SDK's direct upload
goes to a presigned bucket URL and the server confirms it on the SDK's next request.

Skipped only when `node` is not installed. node_modules is installed once per session into
tests/e2e/js (git-ignored) and reused.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.live import LiveServer
from tests.support.node import run_steps
from tests.support.pg import Databases
from tests.support.s3 import MotoS3

JS_DIR = Path(__file__).resolve().parent / "js"
SCRIPT = JS_DIR / "lifecycle.mjs"
SDK = "@chatbotkit/sdk"


def _pinned_version() -> str:
    return str(json.loads((JS_DIR / "package.json").read_text())["dependencies"][SDK])


def _installed_version() -> str | None:
    manifest = JS_DIR / "node_modules" / SDK / "package.json"
    if not manifest.is_file():
        return None
    return str(json.loads(manifest.read_text()).get("version"))


@pytest.fixture(scope="session")
def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.skip("node is not installed: the @chatbotkit/sdk end-to-end test needs Node.js")
    return path


@pytest.fixture(scope="session")
def sdk_installed(node: str) -> Path:
    """`npm install` into tests/e2e/js once per session; node_modules stays there."""
    pinned = _pinned_version()
    npm = shutil.which("npm")
    if npm is None:
        if _installed_version() == pinned:
            return JS_DIR
        pytest.fail(f"npm is not installed and {SDK}@{pinned} is not in {JS_DIR}/node_modules")
    proc = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--prefer-offline", "--no-package-lock"],
        cwd=JS_DIR, capture_output=True, text=True, timeout=240, check=False,
    )
    if proc.returncode != 0 and _installed_version() != pinned:
        pytest.fail(f"npm install failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    installed = _installed_version()
    assert installed == pinned, f"{SDK} installed {installed}, package.json pins {pinned}"
    return JS_DIR


@pytest.fixture(params=["sqlite", "postgres"])
def sdk_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    """A live server in embedded mode, or in cluster mode by its environment alone."""
    env = {"DATALOFT_SYNC_COOLDOWN_SECONDS": "120"}
    database = None
    if request.param == "postgres":
        databases: Databases = request.getfixturevalue("pg_databases")
        s3: MotoS3 = request.getfixturevalue("moto_s3_server")
        database = databases.create()
        env.update(s3.env, DATALOFT_DATABASE_URL=database,
                   DATALOFT_BLOB_URL=s3.new_bucket_url())
    server = LiveServer(data_dir=tmp_path / "data", env_extra=env)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        if database is not None:
            databases.give_back(database)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sdk_lifecycle(node: str, sdk_installed: Path, sdk_server: LiveServer) -> None:
    steps, _ = run_steps(node, SCRIPT, sdk_installed, sdk_server, timeout=240)
    upload = next(s for s in steps if s.get("step") == "file.upload (direct-to-source)")
    assert upload["fetched"]["size"] == upload["bytes"]  # confirmed by the SDK's next fetch


@pytest.mark.timeout(120)
def test_a_created_id_is_usable_by_the_next_request(live_server: LiveServer) -> None:
    """What the SDK walk trips over first, without Node: a */create answer is a promise that
    the next request sees the row (the SDK immediately uploads to / attaches the new id)."""
    misses: list[str] = []
    with live_server.client() as client:
        for i in range(60):
            file_id = client.post("/api/v1/file/create", json={"name": f"f{i}"}).json()["id"]
            if client.get(f"/api/v1/file/{file_id}/fetch").status_code != 200:
                misses.append(file_id)
            ds_id = client.post("/api/v1/dataset/create", json={"name": f"d{i}"}).json()["id"]
            if client.get(f"/api/v1/dataset/{ds_id}/fetch").status_code != 200:
                misses.append(ds_id)
            r = client.post(f"/api/v1/dataset/{ds_id}/file/{file_id}/attach",
                            json={"type": "source"})
            if r.status_code != 200:
                misses.append(f"attach {file_id} -> {r.status_code}")
                continue
            listed = client.get(f"/api/v1/dataset/{ds_id}/file/list").json()["items"]
            if [item["id"] for item in listed] != [file_id]:
                misses.append(f"attach {file_id}")
    assert misses == [], (f"{len(misses)} of 180 writes were not visible to the next request "
                          f"(committed after the response was sent): {misses[:10]}")
