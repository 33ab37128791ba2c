"""Malformed values are 4xx: Schemathesis against the live server's /openapi.json.

Every operation the server describes gets generated requests (nulls, huge integers, wrong
types, odd strings in bodies, query and path parameters), sent with a real key; path
parameters that name an item (dataset, file, record, assistant, vector store ...) are the
ids of real items seeded first, so the handlers run past their 404s. Checked: no 5xx
(`not_a_server_error`) and, where the description has a response schema, the response
matches it. A bounded run: few examples per operation, derandomized, so it is repeatable
and fits CI.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance  # noqa: E402

from tests.support.live import LiveServer  # noqa: E402

pytestmark = pytest.mark.slow

# Per operation; a deeper run: DATALOFT_TEST_SCHEMATHESIS_EXAMPLES=50.
MAX_EXAMPLES = int(os.environ.get("DATALOFT_TEST_SCHEMATHESIS_EXAMPLES", "8"))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    server = LiveServer(data_dir=tmp / "data", env_extra={
        "DATALOFT_URL_FETCH_TIMEOUT": "2", "DATALOFT_SYNC_COOLDOWN_SECONDS": "0",
        "DATALOFT_EMBEDDING_TIMEOUT": "5"})
    server.start()
    try:
        yield server, _seed(server)
    finally:
        server.stop()


def _seed(server: LiveServer) -> dict[str, str]:
    with server.client() as c:
        def post(path: str, **kw: Any) -> dict[str, Any]:
            r = c.post(path, **kw)
            assert r.status_code in (200, 201), (path, r.text)
            return dict(r.json())

        ds = post("/api/v1/dataset/create", json={"name": "seed"})["id"]
        fid = post("/api/v1/file/create", json={"name": "seed.csv"})["id"]
        c.post(f"/api/v1/file/{fid}/upload", content=b"a,b\n1,2\n",
               headers={"Content-Type": "text/csv"})
        post(f"/api/v1/dataset/{ds}/file/{fid}/attach", json={"type": "source"})
        rec = post(f"/api/v1/dataset/{ds}/record/create", json={"text": "seed record"})["id"]
        agt = post("/api/v1/assistant/create", json={"name": "seed"})["id"]
        store = post("/v1/vector_stores", json={"name": "seed"})["id"]
        return {"dataset_id": ds, "file_id": fid, "record_id": rec, "assistant_id": agt,
                "agent_id": agt, "store_id": store, "user_identifier": "user-1",
                "context_key": "team", "context_value": "blue", "filename": "seed.csv"}


def _destructive(case: Any) -> bool:
    return bool(case.method.upper() == "DELETE" or case.path.rstrip("/").endswith(
        ("/delete", "/revoke", "/detach")))


def _run(operation: Any, server: LiveServer, ids: dict[str, str], failures: list[str]) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    def check(case: Any) -> None:
        # Real ids make the handlers run past their lookups; deleting the seeded items would
        # leave every later operation with 404s only, so destructive ones keep generated ids.
        if case.path_parameters and not _destructive(case):
            for name in case.path_parameters:
                if name in ids:
                    case.path_parameters[name] = ids[name]
        try:
            case.call_and_validate(base_url=server.url, headers=server.headers,
                                   checks=[not_a_server_error, response_schema_conformance],
                                   timeout=60)
        except Exception as exc:  # noqa: BLE001 - collected: every operation gets its turn
            failures.append(f"{case.method} {case.formatted_path}: {str(exc)[:1500]}")

    check()


@pytest.mark.timeout(1800)
def test_no_server_errors_and_responses_match_their_schemas(
        live: tuple[LiveServer, dict[str, str]]) -> None:
    server, ids = live
    api = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in api.get_all_operations():
        operation = result.ok()
        if any(part in operation.path for part in ("subscribe", "stream")):
            continue  # live streams stay open by design: not request/response operations
        _run(operation, server, ids, failures)
        operations += 1
    assert operations > 50
    assert not failures, "\n\n".join(failures[:40]) + f"\n({len(failures)} failures)"
