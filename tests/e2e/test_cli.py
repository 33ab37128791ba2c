"""The command line: first start prints a key; keys create/list/revoke work on the live data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.live import LiveServer


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATALOFT_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "dataloft.cli", *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_first_start_prints_a_working_key_once(tmp_path: Path) -> None:
    server = LiveServer(data_dir=tmp_path / "data", key="")  # no bootstrap key: one is made
    server.start()
    try:
        lines = [ln for ln in server.log().splitlines() if ln.startswith("DATALOFT_API_KEY=")]
        assert len(lines) == 1
        key = lines[0].split("=", 1)[1]
        ok = httpx.get(f"{server.url}/api/v1/file/list", headers={"Authorization": f"Bearer {key}"})
        assert ok.status_code == 200
    finally:
        server.stop()
    server.start()  # second start: nothing new is printed
    try:
        assert server.log().count("DATALOFT_API_KEY=") == 1
    finally:
        server.stop()


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    data = tmp_path / "data"
    created = _cli(data, "keys", "create", "--name", "ci", "-p", "files:write")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    listed = _cli(data, "keys", "list")
    assert key["id"] in listed.stdout and "files:write" in listed.stdout
    assert key["key"] not in listed.stdout  # secrets are never listed

    server = LiveServer(data_dir=data, key=key["key"]).start()
    try:
        headers = {"Authorization": f"Bearer {key['key']}"}
        assert httpx.post(f"{server.url}/api/v1/file/create", json={},
                          headers=headers).status_code == 200
        denied = httpx.post(f"{server.url}/api/v1/dataset/create", json={}, headers=headers)
        assert denied.status_code == 403 and denied.json()["code"] == "NOT_AUTHORIZED"
        assert _cli(data, "keys", "revoke", key["id"]).returncode == 0
        gone = httpx.get(f"{server.url}/api/v1/file/list", headers=headers)
        assert gone.status_code == 401 and gone.json()["code"] == "NOT_AUTHENTICATED"
    finally:
        server.stop()
    assert _cli(data, "keys", "revoke", "key_nope").returncode == 1
