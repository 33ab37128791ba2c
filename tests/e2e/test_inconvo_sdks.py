"""The official Inconvo SDKs, and seed 001's curl form, against a live server on each backend.

- `inconvo` (PyPI): the seeds' examples through `client.agents.datasets.{user,context}` on
  the org's default agent and on a created one: upload, list, delete, response shapes and
  the paths the SDK calls; the upload is synced by itself and an end-user token finds it.
- `@inconvoai/node` (npm, pinned in js_inconvo/package.json): js_inconvo/seed_examples.mjs
  runs the seeds' examples (fs.createReadStream, toFile) through the SDK's resources and the
  seeds' agent-less `/datasets/...` paths through the SDK's transport; one JSON line a step.
- seed 001's `curl -X POST .../datasets/user/user_123 -F file=@... -F notes=...`, sent
  byte for byte as curl builds it, and through the real curl binary when there is one.

Installing: node_modules goes into tests/e2e/js_inconvo (git-ignored), once per session.
The Python SDK belongs in the `test` extra (`inconvo>=0.3`); while it is missing from the
environment it is pip-installed once into build/pydeps (git-ignored) and imported from there.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.conftest import BackendSettings
from tests.support.live import REPO, LiveServer, backend_env
from tests.support.node import run_steps

JS_DIR = Path(__file__).resolve().parent / "js_inconvo"
SCRIPT = JS_DIR / "seed_examples.mjs"
NODE_SDK = "@inconvoai/node"
PY_SDK_PIN = "inconvo==0.3.0"
PY_DEPS = REPO / "build" / "pydeps"  # build/ is git-ignored

SALES = b"region,quarter,amount\nnorth,Q4,quokka2048\nsouth,Q4,1024\n"
PRICING = b"plan,price\nStarter,10\nEnterprise,wombat990\n"
PATH_RE = re.compile(r"^(org_[0-9a-z]+)/(agt_[0-9a-z]+)/(.+)$")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest, backend: str, backend_settings: BackendSettings,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("inconvo")
    live = LiveServer(data_dir=tmp / "data",
                      env_extra=backend_env(backend, backend_settings(tmp), request))
    live.start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture(scope="module")
def default_agent(http: httpx.Client) -> str:
    items = http.get("/api/v1/assistant/list").json()["items"]
    defaults = [a["id"] for a in items if a["default"] is True]
    assert len(defaults) == 1, items
    return str(defaults[0])


@pytest.fixture(scope="session")
def inconvo_sdk() -> ModuleType:
    """The `inconvo` package: from the environment, else pip-installed into build/pydeps."""
    try:
        return importlib.import_module("inconvo")
    except ImportError:
        pass
    if not (PY_DEPS / "inconvo").is_dir():
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--target", str(PY_DEPS), PY_SDK_PIN],
            capture_output=True, text=True, timeout=240, check=False)
        if proc.returncode != 0:
            pytest.fail(f"pip install {PY_SDK_PIN} failed:\n{proc.stdout}\n{proc.stderr}")
    sys.path.append(str(PY_DEPS))  # last: the environment's httpx/pydantic keep precedence
    return importlib.import_module("inconvo")


@pytest.fixture(scope="session")
def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.skip("node is not installed: the @inconvoai/node end-to-end test needs Node.js")
    return path


def _pinned_node_sdk() -> str:
    return str(json.loads((JS_DIR / "package.json").read_text())["dependencies"][NODE_SDK])


def _installed_node_sdk() -> str | None:
    manifest = JS_DIR / "node_modules" / NODE_SDK / "package.json"
    return str(json.loads(manifest.read_text())["version"]) if manifest.is_file() else None


@pytest.fixture(scope="session")
def node_sdk(node: str) -> Path:
    """`npm install` into tests/e2e/js_inconvo once per session; node_modules stays there."""
    pinned = _pinned_node_sdk()
    if _installed_node_sdk() == pinned:
        return JS_DIR
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(f"npm is not installed and {NODE_SDK}@{pinned} is not in {JS_DIR}")
    proc = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--prefer-offline", "--no-package-lock"],
        cwd=JS_DIR, capture_output=True, text=True, timeout=240, check=False)
    installed = _installed_node_sdk()
    if proc.returncode != 0 and installed != pinned:
        pytest.fail(f"npm install failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    assert installed == pinned, f"{NODE_SDK} installed {installed}, package.json pins {pinned}"
    return JS_DIR


# --------------------------------------------------------------------------- helpers


def check_upload(body: dict[str, Any], name: str, agent: str, scope_path: str,
                 size: int) -> str:
    """`{file: {name, path, size}}` with path {orgId}/{agentId}/{scope}/{name}; → orgId."""
    assert set(body) <= {"file", "error"} and body.get("error") is None, body
    assert set(body["file"]) == {"name", "path", "size"}, body
    assert body["file"]["name"] == name and body["file"]["size"] == size, body
    match = PATH_RE.match(body["file"]["path"])
    assert match, body
    assert match.group(2) == agent and match.group(3) == f"{scope_path}/{name}", body
    return match.group(1)


def token_for(http: httpx.Client, user: str, context: dict[str, str] | None = None) -> str:
    r = http.post("/api/v1/token/create", json={"userIdentifier": user,
                                                 "userContext": context or {}})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def search_as(server: LiveServer, token: str, scope_path: str, needle: str,
              timeout: float = 30.0) -> list[dict[str, Any]]:
    """Poll until the end-user's dataset for `scope_path` (on the default agent, named
    "Default assistant · {scope_path}") has a record holding `needle`."""
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as user:
        found = [d for d in user.get("/api/v1/dataset/list").json()["items"]
                 if d["name"] == f"Default assistant · {scope_path}"]
        assert len(found) == 1, found
        while time.monotonic() < deadline:
            r = user.post(f"/api/v1/dataset/{found[0]['id']}/search",
                          json={"search": needle, "take": 10})
            assert r.status_code == 200, r.text
            hits = [rec for rec in r.json()["records"] if needle in rec["text"]]
            if hits:
                return hits
            time.sleep(0.1)
    raise AssertionError(f"{needle!r} was not searchable in {scope_path} after {timeout}s")


# --------------------------------------------------------------------------- tests


@pytest.mark.timeout(120)
def test_python_sdk_runs_the_seed_examples(inconvo_sdk: ModuleType, server: LiveServer,
                                           http: httpx.Client, default_agent: str,
                                           tmp_path: Path) -> None:
    client = inconvo_sdk.Inconvo(api_key=server.key, base_url=f"{server.url}/api/v1",
                                 max_retries=0)
    datasets = client.agents.datasets
    sales = tmp_path / "sales_data.csv"
    sales.write_bytes(SALES)

    # user upload (a path, as fs.createReadStream in the seed) ...
    raw = datasets.user.with_raw_response.upload("user_123", agent_id=default_agent,
                                                  file=sales, notes="Q4 2024 sales report")
    assert raw.http_request.url.path == f"/api/v1/agents/{default_agent}/datasets/user/user_123"
    assert raw.http_request.headers["content-type"].startswith("multipart/form-data; boundary=")
    org = check_upload(raw.json(), "sales_data.csv", default_agent, "userIdentifier/user_123",
                       len(SALES))
    uploaded = raw.parse()
    assert uploaded.file.name == "sales_data.csv" and uploaded.file.size == len(SALES)

    # ... and context upload (a (name, bytes, type) tuple)
    ctx = datasets.context.upload("org_456", agent_id=default_agent, context_key="orgId",
                                  file=("company_pricing.csv", PRICING, "text/csv"),
                                  notes="2024 pricing sheet")
    assert check_upload(ctx.to_dict(), "company_pricing.csv", default_agent,
                        "userContext/orgId:org_456", len(PRICING)) == org

    # synced by itself: searchable through end-user tokens, each in its own scope
    hits = search_as(server, token_for(http, "user_123"), "userIdentifier/user_123",
                     "quokka2048")
    assert hits[0]["meta"]["fileName"] == "sales_data.csv"
    search_as(server, token_for(http, "user_9", {"orgId": "org_456"}),
              "userContext/orgId:org_456", "wombat990")
    notes = {f["name"]: f["description"] for f in http.get("/api/v1/file/list").json()["items"]}
    assert notes["sales_data.csv"] == "Q4 2024 sales report"

    # list both
    listed = datasets.user.with_raw_response.list("user_123", agent_id=default_agent)
    assert listed.json() == {"files": ["sales_data.csv"]}
    assert datasets.context.list("org_456", agent_id=default_agent,
                                 context_key="orgId").files == ["company_pricing.csv"]
    # the seeds' agent-less paths answer for the default agent
    assert http.get("/api/v1/datasets/user/user_123").json() == {"files": ["sales_data.csv"]}

    # refusals arrive as the SDK's typed errors, with the envelope as body
    with pytest.raises(inconvo_sdk.APIStatusError) as refused:
        datasets.user.upload("user_123", agent_id=default_agent,
                             file=("report.csv", b"%PDF-1.7\n%\xe2\xe3\n", "text/csv"))
    assert refused.value.status_code == 415
    assert refused.value.body == {"message": refused.value.body["message"],
                                  "code": "UNSUPPORTED_MEDIA_TYPE"}
    with pytest.raises(inconvo_sdk.NotFoundError):
        datasets.user.list("user_123", agent_id="agt_doesnotexist")
    with pytest.raises(inconvo_sdk.AuthenticationError):
        inconvo_sdk.Inconvo(api_key="dlk_wrong_key_000000000000", base_url=f"{server.url}/api/v1",
                            max_retries=0).agents.datasets.user.list("user_123",
                                                                     agent_id=default_agent)

    # another agent keeps its own scope datasets
    other = http.post("/api/v1/assistant/create", json={"name": "Sales analyst"}).json()["id"]
    on_other = datasets.user.upload("user_123", agent_id=other,
                                    file=("targets.json", b'[{"target": 3000}]',
                                          "application/json"))
    assert check_upload(on_other.to_dict(), "targets.json", other, "userIdentifier/user_123",
                        18) == org
    assert datasets.user.list("user_123", agent_id=other).files == ["targets.json"]
    assert datasets.user.list("user_123", agent_id=default_agent).files == ["sales_data.csv"]

    # delete both
    deleted = datasets.user.with_raw_response.delete("sales_data.csv", agent_id=default_agent,
                                                     user_identifier="user_123")
    assert deleted.http_request.method == "DELETE"
    assert deleted.json() == {"file": "sales_data.csv", "success": True}
    assert datasets.context.delete("company_pricing.csv", agent_id=default_agent,
                                   context_key="orgId", context_value="org_456"
                                   ).to_dict() == {"file": "company_pricing.csv",
                                                   "success": True}
    assert datasets.user.delete("targets.json", agent_id=other,
                                user_identifier="user_123").success is True
    # a name the SDK must percent-encode in the delete path
    odd = "Q4 report (100%) #2.csv"
    assert datasets.user.upload("user_123", agent_id=other,
                                file=(odd, SALES, "text/csv")).file.name == odd
    assert datasets.user.list("user_123", agent_id=other).files == [odd]
    assert datasets.user.delete(odd, agent_id=other, user_identifier="user_123").file == odd
    assert datasets.user.list("user_123", agent_id=other).files == []
    assert datasets.user.list("user_123", agent_id=default_agent).files == []
    assert datasets.context.list("org_456", agent_id=default_agent,
                                 context_key="orgId").files == []
    with pytest.raises(inconvo_sdk.NotFoundError):
        datasets.user.delete("sales_data.csv", agent_id=default_agent,
                             user_identifier="user_123")
    left = {f["name"] for f in http.get("/api/v1/file/list").json()["items"]}
    assert not left & {"sales_data.csv", "company_pricing.csv", "targets.json"}, left


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_node_sdk_runs_the_seed_examples(node: str, node_sdk: Path,
                                         server: LiveServer) -> None:
    steps, report = run_steps(node, SCRIPT, node_sdk, server, timeout=120)
    names = [s["step"] for s in steps]
    for wanted in ("user upload (fs.createReadStream)", "context upload (fs.createReadStream)",
                   "list both", "delete both", "agent-less user upload",
                   "agent-less context upload", "agent-less list both",
                   "agent-less delete both"):
        assert wanted in names, report


CURL_BOUNDARY = "------------------------d74496d66958873e"


def curl_form(filename: str, content: bytes, notes: str) -> bytes:
    """What `curl -F "file=@./{filename}" -F "notes={notes}"` sends (curl 7/8)."""
    return (f"--{CURL_BOUNDARY}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + content + (
            f"\r\n--{CURL_BOUNDARY}\r\n"
            f'Content-Disposition: form-data; name="notes"\r\n\r\n'
            f"{notes}\r\n--{CURL_BOUNDARY}--\r\n").encode()


@pytest.mark.timeout(120)
def test_seed_001_curl_form(server: LiveServer, http: httpx.Client, default_agent: str,
                            tmp_path: Path) -> None:
    body = curl_form("sales_report_q4.csv", SALES, "Q4 2024 sales data")
    r = httpx.post(f"{server.url}/api/v1/datasets/user/user_123", content=body, timeout=30,
                   headers={**server.headers, "Accept": "*/*",
                            "Content-Type": f"multipart/form-data; boundary={CURL_BOUNDARY}"})
    assert r.status_code == 200, r.text
    check_upload(r.json(), "sales_report_q4.csv", default_agent, "userIdentifier/user_123",
                 len(SALES))
    files = {f["name"]: f for f in http.get("/api/v1/file/list").json()["items"]}
    assert files["sales_report_q4.csv"]["description"] == "Q4 2024 sales data"
    assert files["sales_report_q4.csv"]["type"] == "text/csv"  # decided by content

    r = http.post("/api/v1/datasets/context/orgId/org_456", content=curl_form(
        "shared_pricing.csv", PRICING, "Company-wide pricing sheet"),
        headers={"Content-Type": f"multipart/form-data; boundary={CURL_BOUNDARY}"})
    assert r.status_code == 200, r.text
    check_upload(r.json(), "shared_pricing.csv", default_agent, "userContext/orgId:org_456",
                 len(PRICING))

    curl = shutil.which("curl")
    if curl is not None:  # and the seed's command itself
        (tmp_path / "sales_report_q4.csv").write_bytes(SALES)
        proc = subprocess.run(
            [curl, "-sS", "-X", "POST", f"{server.url}/api/v1/datasets/user/user_123",
             "-H", f"Authorization: Bearer {server.key}",
             "-F", "file=@./sales_report_q4.csv", "-F", "notes=Q4 2024 sales data (curl)"],
            cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        check_upload(json.loads(proc.stdout), "sales_report_q4.csv", default_agent,
                     "userIdentifier/user_123", len(SALES))

    assert http.get("/api/v1/datasets/user/user_123").json() == {
        "files": ["sales_report_q4.csv"]}  # uploaded twice: one file
    assert http.get("/api/v1/datasets/context/orgId/org_456").json() == {
        "files": ["shared_pricing.csv"]}
    assert http.delete("/api/v1/datasets/user/user_123/sales_report_q4.csv").json() == {
        "file": "sales_report_q4.csv", "success": True}
    assert http.delete("/api/v1/datasets/context/orgId/org_456/shared_pricing.csv").json() == {
        "file": "shared_pricing.csv", "success": True}
    assert http.get("/api/v1/datasets/user/user_123").json() == {"files": []}
