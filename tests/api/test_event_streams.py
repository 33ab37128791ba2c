"""The event log followed live over real HTTP: the JSONL subscription @chatbotkit/sdk uses,
Server-Sent Events with Last-Event-ID resume, exports, and the access policy on all of them."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import create_dataset, create_file
from tests.support.live import LiveServer

ENV = {"DATALOFT_EVENT_POLL_SECONDS": "0.1", "DATALOFT_EVENT_KEEPALIVE_SECONDS": "0.5",
       "DATALOFT_SYNC_COOLDOWN_SECONDS": "0"}
Item = dict[str, Any]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(data_dir=Path(tmp_path_factory.mktemp("events")) / "data", env_extra=ENV)
    live.start()
    try:
        yield live
    finally:
        live.stop()


def attach(client: httpx.Client, ds: str, content: bytes = b"x") -> str:
    file_id = create_file(client, content)
    r = client.post(f"/api/v1/dataset/{ds}/file/{file_id}/attach", json={"type": "source"})
    assert r.status_code == 200, r.text
    return file_id


def read_until(lines: Iterator[str], done: Callable[[list[Item]], bool]) -> list[Item]:
    """Items (JSONL `item` lines) until `done` holds; keep-alives are counted, not kept."""
    got: list[Item] = []
    for raw in lines:
        if not raw.strip():
            continue
        obj = json.loads(raw)
        if obj["type"] == "item":
            got.append(obj["data"])
            if done(got):
                return got
        else:
            assert obj == {"type": "ping"}
    raise AssertionError(f"stream ended early: {got}")


def sse_until(lines: Iterator[str], done: Callable[[list[Item]], bool]) -> list[Item]:
    got: list[Item] = []
    event_id = None
    for raw in lines:
        if raw.startswith("id: "):
            event_id = raw[4:]
        elif raw.startswith("data: "):
            item = json.loads(raw[6:])
            assert item["id"] == event_id
            got.append(item)
            if done(got):
                return got
    raise AssertionError(f"stream ended early: {got}")


def of_file(file_id: str, type: str = "file.attached") -> Callable[[list[Item]], bool]:
    return lambda items: any(i["fileId"] == file_id and i["type"] == type for i in items)


def test_subscribe_replays_history_then_goes_live(server: LiveServer) -> None:
    with server.client() as client:
        ds = create_dataset(client)
        before = attach(client, ds)
        with client.stream("POST", "/api/v1/event/log/subscribe",
                           json={"historyLength": 1}) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("application/jsonl")
            lines = r.iter_lines()
            (first,) = read_until(lines, lambda items: len(items) == 1)
            assert first["fileId"] == before and first["type"] == "file.attached"
            after = attach(client, ds)
            live = read_until(lines, of_file(after))
            assert before not in [i["fileId"] for i in live]  # not sent twice
            ids = [i["id"] for i in live]
            assert ids == sorted(set(ids))


def test_sse_resumes_after_last_event_id(server: LiveServer) -> None:
    with server.client() as client:
        ds = create_dataset(client)
        with client.stream("GET", "/api/v1/event/stream") as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            first = attach(client, ds)
            seen = sse_until(r.iter_lines(), of_file(first))
        last_id = seen[-1]["id"]
        missed = [attach(client, ds), attach(client, ds)]  # while nobody listens
        with client.stream("GET", "/api/v1/event/stream",
                           headers={"Last-Event-ID": last_id}) as r:
            resumed = sse_until(r.iter_lines(), of_file(missed[1]))
        files = [i["fileId"] for i in resumed if i["type"] == "file.attached"]
        assert files == missed and all(i["id"] > last_id for i in resumed)


def test_export_json_jsonl_csv_and_the_type_filter(server: LiveServer) -> None:
    with server.client() as client:
        ds = create_dataset(client)
        file_id = attach(client, ds)
        client.post(f"/api/v1/dataset/{ds}/file/{file_id}/detach", json={})
        q = {"meta.datasetId": ds}
        page = client.get("/api/v1/event/log/export", params=q).json()
        assert {i["type"] for i in page["items"]} == {"file.attached", "file.detached"}
        jsonl = client.get("/api/v1/event/log/export", params={**q, "format": "jsonl"})
        assert jsonl.headers["content-type"].startswith("application/jsonl")
        assert [json.loads(x)["data"] for x in jsonl.text.splitlines()] == page["items"]
        text = client.get("/api/v1/event/log/export", params={**q, "format": "csv"}).text
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [r["id"] for r in rows] == [i["id"] for i in page["items"]]
        assert json.loads(rows[0]["data"])["datasetId"] == ds
        for path in ("/api/v1/event/list", f"/api/v1/dataset/{ds}/event/list"):
            typed = client.get(path, params={**q, "meta.type": "file.detached"}).json()
            assert [i["type"] for i in typed["items"]] == ["file.detached"], path
            assert client.get(path, params={**q, "meta[type]": "sync.failed"}).json()[
                "items"] == []


def test_streams_show_only_what_the_caller_may_see(server: LiveServer) -> None:
    alice = {"X-RunAs-User-Id": "alice"}
    with server.client() as client:
        org_ds = create_dataset(client)
        own_ds = client.post("/api/v1/dataset/create", json={"name": "a"},
                             headers=alice).json()["id"]
        limited = client.post("/api/v1/key/create", json={"permissions": ["datasets:write"],
                                                          "datasets": [own_ds]}).json()["key"]
        with client.stream("POST", "/api/v1/event/log/subscribe", json={"historyLength": 50},
                           headers=alice) as sub, \
                client.stream("GET", "/api/v1/event/stream",
                              headers={"Authorization": f"Bearer {limited}"}) as sse:
            hidden = attach(client, org_ds)
            own_file = client.post("/api/v1/file/create", json={"name": "a.txt"},
                                   headers=alice).json()["id"]
            client.post(f"/api/v1/file/{own_file}/upload", content=b"mine", headers=alice)
            r = client.post(f"/api/v1/dataset/{own_ds}/file/{own_file}/attach",
                            json={"type": "source"}, headers=alice)
            assert r.status_code == 200, r.text
            for items in (read_until(sub.iter_lines(), of_file(own_file)),
                          sse_until(sse.iter_lines(), of_file(own_file))):
                assert {i["datasetId"] for i in items} == {own_ds}
                assert hidden not in {i["fileId"] for i in items}
        exported = client.get("/api/v1/event/log/export", params={"format": "jsonl"},
                              headers=alice).text
        assert {json.loads(x)["data"]["datasetId"] for x in exported.splitlines()} == {own_ds}


def test_a_browser_follows_the_stream_with_an_end_user_token(server: LiveServer) -> None:
    """EventSource sends no headers: an end-user token in the URL authenticates it, with
    that user's view; an API key there is refused (keys stay out of URLs)."""
    with server.client() as client:
        token = client.post("/api/v1/token/create",
                            json={"userIdentifier": "bob", "permissions": [
                                "datasets:write", "files:write"]}).json()["token"]
        bob = {"Authorization": f"Bearer {token}"}
        own_ds = client.post("/api/v1/dataset/create", json={"name": "b"},
                             headers=bob).json()["id"]
        org_ds = create_dataset(client)
        with httpx.Client(base_url=server.url, timeout=30) as browser:
            r = browser.get("/api/v1/event/stream", params={"token": server.key})
            assert r.status_code == 400
            with browser.stream("GET", "/api/v1/event/stream", params={"token": token}) as sse:
                assert sse.status_code == 200
                hidden = attach(client, org_ds)
                own_file = client.post("/api/v1/file/create", json={"name": "b.txt"},
                                       headers=bob).json()["id"]
                client.post(f"/api/v1/file/{own_file}/upload", content=b"b", headers=bob)
                client.post(f"/api/v1/dataset/{own_ds}/file/{own_file}/attach",
                            json={"type": "source"}, headers=bob)
                items = sse_until(sse.iter_lines(), of_file(own_file))
        assert hidden not in {i["fileId"] for i in items}
        assert {i["datasetId"] for i in items} == {own_ds}
