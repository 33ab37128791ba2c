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


def test_keys_need_an_existing_database(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for args in (("keys", "create"), ("keys", "list"), ("orgs", "create", "acme"),
                 ("orgs", "list")):
        done = _cli(data, *args)
        assert done.returncode == 2 and "No dataloft database" in done.stdout + done.stderr, \
            (args, done.stdout, done.stderr)
    assert not (data / "dataloft.db").exists()  # nothing was made on the way


def test_orgs_create_list_and_keys_per_org(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert _cli(data, "migrate").returncode == 0
    acme = json.loads(_cli(data, "orgs", "create", "acme").stdout)
    globex = json.loads(_cli(data, "orgs", "create", "globex").stdout)
    assert acme["key"].startswith("dlk_") and acme["id"] != globex["id"]
    listed = _cli(data, "orgs", "list").stdout
    assert acme["id"] in listed and "globex" in listed
    ci = json.loads(_cli(data, "keys", "create", "--org", "globex", "--name", "ci").stdout)
    assert ci["org"] == globex["id"]
    only = _cli(data, "keys", "list", "--org", acme["id"]).stdout
    assert acme["id"] in only and globex["id"] not in only and ci["id"] not in only
    assert _cli(data, "keys", "create", "--org", "nope").returncode == 1
    # A key revoked through the wrong organisation stays live.
    assert _cli(data, "keys", "revoke", ci["id"], "--org", "acme").returncode == 1
    assert "yes" not in _cli(data, "keys", "list", "--org", "globex").stdout


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert _cli(data, "migrate").returncode == 0
    assert _cli(data, "orgs", "create", "main").returncode == 0
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
