"""The command line: first start prints a key; keys create/list/revoke work on the live data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.support.chat_server import ChatServer, Step, tool_messages
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


def _client_cli(server: LiveServer, *args: str, columns: str = "200"
                ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATALOFT_URL": server.url, "DATALOFT_API_KEY": server.key,
           "COLUMNS": columns}
    return subprocess.run([sys.executable, "-m", "dataloft.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def _mixed_folder(root: Path) -> Path:
    folder = root / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("The lighthouse stairs are painted cobalt blue.\n")
    (folder / "prices.csv").write_text("item,price\nlamp,12\nrope,30\nlens,18\n")
    (folder / "sub" / "guide.md").write_text("# Guide\n\nOwls hunt at dusk over the marsh.\n")
    (folder / "sub" / "page.html").write_text(
        "<html><body><h1>Tides</h1><p>The tide turns at noon.</p></body></html>")
    (folder / ".hidden").write_text("not uploaded")
    return folder


def test_upload_folder_wait_json_then_search_and_query(tmp_path: Path) -> None:
    server = LiveServer(data_dir=tmp_path / "data").start()
    try:
        folder = _mixed_folder(tmp_path)
        up = _client_cli(server, "upload", str(folder), "--dataset", "handbook", "--wait",
                         "--json")
        assert up.returncode == 0, up.stderr
        report = json.loads(up.stdout)
        assert report["dataset"]["created"] is True
        names = sorted(Path(f["path"]).name for f in report["files"])
        assert names == ["guide.md", "notes.txt", "page.html", "prices.csv"]
        assert {f["state"] for f in report["files"]} == {"completed"}, report

        found = _client_cli(server, "search", "what colour are the stairs?", "--dataset",
                            "handbook", "--json")
        assert found.returncode == 0, found.stderr
        assert "cobalt" in json.loads(found.stdout)["records"][0]["text"]
        # Piped without --json: tab-separated, whole values.
        plain = _client_cli(server, "search", "owls", "--dataset", "handbook", "--mode",
                            "lexical", columns="40")
        assert plain.stdout.splitlines()[0].split("\t") == ["score", "source", "quote", "id"]
        assert "Owls hunt at dusk over the marsh." in plain.stdout

        rows = _client_cli(server, "query", "SELECT item FROM prices ORDER BY price DESC",
                           "--dataset", "handbook", "--json")
        assert rows.returncode == 0, rows.stderr
        assert json.loads(rows.stdout)["rows"] == [["rope"], ["lens"], ["lamp"]]
        bad = _client_cli(server, "query", "DROP TABLE prices", "--dataset", "handbook")
        assert bad.returncode == 1 and "SQL_NOT_ALLOWED" in bad.stderr

        listed = _client_cli(server, "files", "list", "--dataset", "handbook", "--json")
        assert {f["attachment"]["status"] for f in json.loads(listed.stdout)} == {"completed"}
        datasets = _client_cli(server, "datasets", "list", columns="30")
        assert report["dataset"]["id"] in datasets.stdout.split()  # never cut
        events = _client_cli(server, "events", "tail", "--no-follow", "--take", "50",
                             "--json")
        types = [json.loads(line)["type"] for line in events.stdout.splitlines()]
        assert "sync.completed" in types
    finally:
        server.stop()


def test_upload_exit_code_when_a_sync_fails(tmp_path: Path) -> None:
    server = LiveServer(data_dir=tmp_path / "data").start()
    try:
        (tmp_path / "junk.bin").write_bytes(b"\x00\x01\x02binary" * 100)
        (tmp_path / "empty.txt").write_bytes(b"")  # refused at upload: an empty body
        (tmp_path / "fine.txt").write_text("Something to index.")
        up = _client_cli(server, "upload", str(tmp_path / "junk.bin"),
                         str(tmp_path / "empty.txt"), str(tmp_path / "fine.txt"),
                         "--dataset", "broken", "--wait", "--json")
        assert up.returncode == 1, up.stdout + up.stderr
        files = {Path(f["path"]).name: f for f in json.loads(up.stdout)["files"]}
        assert files["junk.bin"]["state"] == "failed"
        assert files["junk.bin"]["errorCode"] in {"unsupported_format", "corrupted_file"}
        assert files["junk.bin"]["errorMessage"]
        assert files["empty.txt"]["state"] == "failed" and files["empty.txt"]["errorCode"]
        assert files["fine.txt"]["state"] == "completed"
        table = _client_cli(server, "files", "list", "--dataset", "broken")
        assert any(line.split("\t")[-2:] in (["failed", "unsupported_format"],
                                               ["failed", "corrupted_file"])
                   for line in table.stdout.splitlines()), table.stdout
        missing = _client_cli(server, "upload", str(tmp_path / "nope"), "--dataset", "x")
        assert missing.returncode == 2
        unknown = _client_cli(server, "search", "x", "--dataset", "no-such-dataset")
        assert unknown.returncode == 1 and "no dataset" in unknown.stderr
    finally:
        server.stop()
    refused = _client_cli(server, "datasets", "list")  # the server is gone
    assert refused.returncode == 1 and "cannot reach" in refused.stderr


def test_version_and_piped_keys_list_shows_whole_ids(tmp_path: Path) -> None:
    from dataloft import __version__

    version = _cli(tmp_path / "data", "--version")
    assert version.returncode == 0 and version.stdout.strip() == f"dataloft {__version__}"
    data = tmp_path / "data"
    # keys commands refuse a data dir never set up, and need an organisation
    assert _cli(data, "migrate").returncode == 0
    assert _cli(data, "orgs", "create", "acme").returncode == 0
    key = json.loads(_cli(data, "keys", "create", "--name", "ci").stdout)
    env = {**os.environ, "DATALOFT_DATA_DIR": str(data), "COLUMNS": "40"}
    listed = subprocess.run([sys.executable, "-m", "dataloft.cli", "keys", "list"], env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert listed.returncode == 0, listed.stderr
    ids = [line.split("\t")[0] for line in listed.stdout.splitlines()[1:]]
    assert key["id"] in ids and "…" not in "".join(ids)
    as_json = json.loads(_cli(data, "keys", "list", "--json").stdout)
    assert key["id"] in [k["id"] for k in as_json]


def test_chat_answers_with_a_model_and_without_one(tmp_path: Path) -> None:
    """With a scripted OpenAI-compatible model the answer and its table come back (piped:
    printed once, whole); with none, the retrieval-only answer; an unknown agent exits 1."""
    def model(body: dict[str, Any]) -> Step:
        if not tool_messages(body):
            return {"tool_calls": [{"name": "sql", "arguments": json.dumps(
                {"sql": "SELECT 'rope' AS item, 30 AS price", "present": "table"})}]}
        return {"content": "Rope costs 30."}

    with ChatServer() as chat:
        chat.script = model
        server = LiveServer(data_dir=tmp_path / "data", env_extra={
            "DATALOFT_LLM_URL": chat.url, "DATALOFT_LLM_MODEL": "scripted"}).start()
        try:
            with server.client() as c:
                agent = c.post("/api/v1/assistant/create", json={"name": "helper"}).json()["id"]
            plain = _client_cli(server, "chat", "--agent", agent, "What does rope cost?")
            assert plain.returncode == 0, plain.stderr
            assert plain.stdout.count("Rope costs 30.") == 1, plain.stdout
            assert "… Running sql" in plain.stderr  # the steps, on stderr
            as_json = _client_cli(server, "chat", "--agent", agent, "And now?", "--json")
            assert as_json.returncode == 0, as_json.stderr
            reply = json.loads(as_json.stdout)
            assert reply["message"] == "Rope costs 30." and reply["type"] == "table"
            assert any(body.get("stream") for body in chat.requests)
            unknown = _client_cli(server, "chat", "--agent", "agt_nope", "hi")
            assert unknown.returncode == 1 and "Traceback" not in unknown.stderr
        finally:
            server.stop()
    bare = LiveServer(data_dir=tmp_path / "bare").start()
    try:
        with bare.client() as c:
            agent = c.post("/api/v1/assistant/create", json={"name": "helper"}).json()["id"]
        retrieval = _client_cli(bare, "chat", "--agent", agent, "How many files?", "--json")
        assert retrieval.returncode == 0, retrieval.stderr
        assert "No language model is configured" in json.loads(retrieval.stdout)["message"]
    finally:
        bare.stop()
