"""The embedded deployment keeps its search structures across a restart (issue 16, item 3),
and a search that would wait for a big build answers 503 with Retry-After, never a 500 or
a partial answer. Through the app: settings, data dir, sync worker and HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataloft.app import create_app
from dataloft.config import Settings
from dataloft.storage.index.sqlite import SqliteIndex
from tests.conftest import KEY
from tests.support.api import assert_envelope, create_dataset, create_file, sync, wait_for_sync

AUTH = {"Authorization": f"Bearer {KEY}"}


@contextmanager
def _app(settings: Settings) -> Iterator[tuple[TestClient, SqliteIndex]]:
    with TestClient(create_app(settings), headers=AUTH) as client:
        index = client.app.state.ctx.index  # type: ignore[attr-defined]
        if not isinstance(index, SqliteIndex):
            pytest.skip("the embedded index")
        yield client, index


def _hits(client: TestClient, ds: str, query: str, mode: str) -> list[tuple[str, float]]:
    r = client.post(f"/api/v1/dataset/{ds}/search", json={"search": query, "mode": mode,
                                                            "take": 20})
    assert r.status_code == 200, r.text
    return [(h["id"], h["score"]) for h in r.json()["records"]]


def test_a_restart_answers_from_the_saved_structures(settings: Settings) -> None:
    text = "\n\n".join(f"Paragraph {i} about {w} and rivers." for i, w in
                       enumerate(["apples", "stones", "clouds", "embers", "harbors"] * 4))
    with _app(settings) as (client, index):
        ds = create_dataset(client)
        sync(client, ds, create_file(client, text.encode(), name="saved.txt"))
        index.wait()
        before = {m: _hits(client, ds, "apples rivers", m) for m in ("lexical", "semantic")}
    assert [p.name for p in (settings.data_dir / "index" / ds).iterdir()
            if not p.name.startswith(".")], "no copy saved"
    with _app(settings) as (client, index):
        index.wait()  # the start-up warm, from the saved copy
        after = {m: _hits(client, ds, "apples rivers", m) for m in ("lexical", "semantic")}
        assert after == before and before["lexical"] and before["semantic"]
        # Deleting the dataset deletes its copy.
        assert client.post(f"/api/v1/dataset/{ds}/delete").status_code == 200
        index.wait()
        assert not (settings.data_dir / "index" / ds).exists()


def test_a_search_waiting_for_a_big_build_answers_503(settings: Settings) -> None:
    with _app(settings) as (client, index):
        ds = create_dataset(client)
        release = threading.Event()

        def blocker(_stale: Any) -> None:
            release.wait(30)

        index.inline_records = 3  # "big" for this test: the build goes to the warmer
        index.warmer.submit("blocker", blocker)
        try:
            for i in range(6):
                r = client.post(f"/api/v1/dataset/{ds}/record/create",
                                json={"text": f"Record {i} of the busy dataset."})
                assert r.status_code == 200, r.text
            r = client.post(f"/api/v1/dataset/{ds}/search", json={"search": "busy dataset"})
            assert_envelope(r, 503, "SERVICE_BUSY")
            assert r.headers.get("retry-after")
            assert r.json().get("reason") == "index_building"
        finally:
            release.set()
        index.wait()
        assert len(_hits(client, ds, "busy dataset", "lexical")) == 6


def test_a_sync_announces_completion_once_its_structures_are_built(settings: Settings) -> None:
    """The sync's records commit, then the sync waits for the dataset's structures before
    `sync.completed` (issue 16: first search after a sync): while the warmer is held, the
    file's records are in and its status still says in_progress; once it is released, the
    first search after the announcement is answered, with no wait allowed at all."""
    with _app(settings) as (client, index):
        ds = create_dataset(client)
        rows = "\n".join(f"{i},harbor {i} lantern" for i in range(40))
        file_id = create_file(client, f"n,text\n{rows}\n".encode(), name="h.csv",
                              content_type="text/csv")
        assert client.post(f"/api/v1/dataset/{ds}/file/{file_id}/attach",
                           json={"type": "source"}).status_code == 200
        index.inline_records, index.wait_s = 3, 0.0  # any build is the warmer's
        release = threading.Event()
        index.warmer.submit("blocker", lambda _stale: release.wait(60))
        try:
            assert client.post(f"/api/v1/dataset/{ds}/file/{file_id}/sync",
                               json={}).status_code == 200
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                items = client.get(f"/api/v1/dataset/{ds}/file/list").json()["items"]
                seen = items[0]["attachment"]
                if seen["recordCount"] or seen["status"] not in ("queued", "in_progress"):
                    break
                time.sleep(0.05)
            assert seen["recordCount"] == 40 and seen["status"] == "in_progress", seen
        finally:
            release.set()
        done = wait_for_sync(client, ds, file_id)
        assert done["type"] == "sync.completed", done
        r = client.post(f"/api/v1/dataset/{ds}/search", json={"search": "harbor lantern 7"})
        assert r.status_code == 200, r.text
        assert r.json()["records"]
