"""The unmodified `openai` SDK against a live server, on each backend: Files, Vector
Stores, vector-store files, file batches, search with attribute filters, OpenAI's error
body, and end-user tokens seeing only their own files.

The server keeps the default sync cooldown (120 s here): adding a file through this API
syncs it at once, so every create_and_poll below proves there is no cooldown on this path.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from openai import BadRequestError, NotFoundError, OpenAI

from tests.conftest import BackendSettings
from tests.support.files import make_csv, make_docx, make_text_pdf
from tests.support.live import LiveServer, backend_env

MD = b"# Lighthouse\n\nThe lighthouse stairs are painted cobalt blue.\n"
POLL_MS = 200


@pytest.fixture(scope="module")
def server(backend: str, backend_settings: BackendSettings, request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("openai")
    env = {"DATALOFT_SYNC_COOLDOWN_SECONDS": "120", "DATALOFT_JOB_POLL_SECONDS": "0.05"}
    if backend == "postgres":
        env.update(backend_env(backend, backend_settings(tmp), request))
    live = LiveServer(data_dir=tmp / "data", env_extra=env).start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def client(server: LiveServer) -> OpenAI:
    return OpenAI(base_url=f"{server.url}/v1", api_key=server.key, max_retries=0)


def _token(server: LiveServer, user: str) -> str:
    r = httpx.post(f"{server.url}/api/v1/token/create", headers=server.headers,
                   json={"userIdentifier": user, "permissions": ["files:write",
                                                                 "datasets:write"]})
    r.raise_for_status()
    return str(r.json()["token"])


def _upload(client: OpenAI, name: str, data: bytes) -> str:
    return client.files.create(file=(name, io.BytesIO(data)), purpose="assistants").id


# --------------------------------------------------------------------------- files


def test_files_create_list_retrieve_content_delete(client: OpenAI) -> None:
    made = client.files.create(file=("notes.md", io.BytesIO(MD)), purpose="assistants",
                               expires_after={"anchor": "created_at", "seconds": 7200})
    assert made.object == "file" and made.bytes == len(MD) and made.filename == "notes.md"
    assert made.purpose == "assistants" and made.status == "processed"
    assert made.expires_at is not None and made.expires_at - made.created_at == 7200
    other = client.files.create(file=("b.txt", io.BytesIO(b"beta")), purpose="user_data")

    listed = [f.id for f in client.files.list(limit=1)]  # the SDK pages with `after`
    assert made.id in listed and other.id in listed
    assert listed.index(other.id) < listed.index(made.id)  # newest first by default
    assert [f.id for f in client.files.list(purpose="user_data")] == [other.id]
    assert client.files.retrieve(made.id).filename == "notes.md"
    assert client.files.content(made.id).read() == MD

    gone = client.files.delete(made.id)
    assert gone.deleted is True and gone.id == made.id
    with pytest.raises(NotFoundError) as err:
        client.files.retrieve(made.id)
    assert set(err.value.response.json()["error"]) == {"message", "type", "param", "code"}
    with pytest.raises(BadRequestError):
        client.files.create(file=("x.txt", io.BytesIO(b"x")), purpose="nonsense")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- vector stores


def test_vector_stores_create_list_retrieve_update_delete(client: OpenAI,
                                                          server: LiveServer) -> None:
    store = client.vector_stores.create(
        name="handbook", metadata={"team": "docs"},
        expires_after={"anchor": "last_active_at", "days": 7},
        chunking_strategy={"type": "static", "static": {"max_chunk_size_tokens": 400,
                                                        "chunk_overlap_tokens": 100}})
    assert store.object == "vector_store" and store.status == "completed"
    assert store.metadata == {"team": "docs"} and store.file_counts.total == 0
    assert store.expires_after is not None and store.expires_after.days == 7
    assert store.last_active_at is not None
    assert store.expires_at == store.last_active_at + 7 * 86400

    assert store.id in [s.id for s in client.vector_stores.list(limit=1)]
    updated = client.vector_stores.update(store.id, name="manual", metadata={"v": "2"},
                                          expires_after=None)
    assert updated.name == "manual" and updated.metadata == {"v": "2"}
    assert updated.expires_after is None
    assert client.vector_stores.retrieve(store.id).name == "manual"

    file_id = _upload(client, "chunked.md", MD)
    vsf = client.vector_stores.files.create_and_poll(file_id=file_id, vector_store_id=store.id,
                                                     poll_interval_ms=POLL_MS)
    assert vsf.status == "completed"
    assert vsf.chunking_strategy is not None and vsf.chunking_strategy.type == "static"
    assert vsf.chunking_strategy.static.max_chunk_size_tokens == 400

    deleted = client.vector_stores.delete(store.id)
    assert deleted.deleted is True and deleted.object == "vector_store.deleted"
    with pytest.raises(NotFoundError) as err:
        client.vector_stores.retrieve(store.id)
    body = err.value.response.json()
    assert set(body) == {"error"}
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["code"] == "not_found" and store.id in body["error"]["message"]
    assert client.files.retrieve(file_id).id == file_id  # the file outlives the store


# --------------------------------------------------------------------------- store files


def test_vector_store_files(client: OpenAI) -> None:
    store = client.vector_stores.create(name="files")
    first = client.vector_stores.files.create_and_poll(
        file_id=_upload(client, "a.md", MD), vector_store_id=store.id,
        attributes={"lang": "en", "year": 2024, "draft": False}, poll_interval_ms=POLL_MS)
    assert first.status == "completed" and first.last_error is None
    assert first.attributes == {"lang": "en", "year": 2024, "draft": False}
    assert first.usage_bytes > 0 and first.vector_store_id == store.id
    second = client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=("b.txt", io.BytesIO(b"Seagulls circle the pier.")),
        poll_interval_ms=POLL_MS)
    assert second.status == "completed"

    pages = client.vector_stores.files.list(vector_store_id=store.id, limit=1)
    assert len(pages.data) == 1 and pages.has_more is True
    assert sorted(f.id for f in pages) == sorted([first.id, second.id])  # auto-paginates
    done = client.vector_stores.files.list(vector_store_id=store.id, filter="completed")
    assert len(done.data) == 2
    assert client.vector_stores.files.list(vector_store_id=store.id, filter="failed").data == []
    asc = client.vector_stores.files.list(vector_store_id=store.id, order="asc")
    assert [f.id for f in asc.data] == [first.id, second.id]

    changed = client.vector_stores.files.update(file_id=first.id, vector_store_id=store.id,
                                                attributes={"lang": "de"})
    assert changed.attributes == {"lang": "de"}
    content = client.vector_stores.files.content(file_id=first.id, vector_store_id=store.id)
    assert any("cobalt blue" in (part.text or "") for part in content)

    gone = client.vector_stores.files.delete(file_id=first.id, vector_store_id=store.id)
    assert gone.deleted is True and gone.object == "vector_store.file.deleted"
    left = client.vector_stores.files.list(vector_store_id=store.id)
    assert [f.id for f in left.data] == [second.id]
    hits = client.vector_stores.search(store.id, query="cobalt blue stairs")
    assert first.id not in [r.file_id for r in hits.data]  # its records went with it
    with pytest.raises(NotFoundError):
        client.vector_stores.files.retrieve(file_id=first.id, vector_store_id=store.id)


def test_a_broken_file_ends_failed_with_last_error(client: OpenAI) -> None:
    store = client.vector_stores.create(name="broken")
    broken = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog" + b"\x00\xff" * 64
    vsf = client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=("broken.pdf", io.BytesIO(broken)),
        poll_interval_ms=POLL_MS)
    assert vsf.status == "failed"
    assert vsf.last_error is not None and vsf.last_error.code == "invalid_file"
    assert vsf.last_error.message
    assert client.vector_stores.retrieve(store.id).file_counts.failed == 1


# --------------------------------------------------------------------------- batches


def test_file_batches_with_several_formats(client: OpenAI) -> None:
    store = client.vector_stores.create(name="formats")
    docs = [("report.pdf", make_text_pdf([["Quarterly revenue of the walrus division."]])),
            ("memo.docx", make_docx("The quarterly numbers grew steadily.")),
            ("sales.csv", make_csv()), ("guide.md", MD)]
    batch = client.vector_stores.file_batches.upload_and_poll(
        store.id, files=[(name, io.BytesIO(data)) for name, data in docs],
        poll_interval_ms=POLL_MS)
    assert batch.object == "vector_store.files_batch" and batch.status == "completed"
    assert batch.file_counts.model_dump() == {"in_progress": 0, "completed": 4, "failed": 0,
                                              "cancelled": 0, "total": 4}
    listed = client.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id)
    assert len(listed.data) == 4 and {f.status for f in listed.data} == {"completed"}

    more = [_upload(client, f"n{i}.md", f"# Note {i}\n\nOtter number {i}.".encode())
            for i in range(3)]
    again = client.vector_stores.file_batches.create_and_poll(
        store.id, file_ids=more, attributes={"kind": "note"}, poll_interval_ms=POLL_MS)
    assert again.file_counts.completed == 3 and again.file_counts.in_progress == 0
    assert client.vector_stores.file_batches.retrieve(
        again.id, vector_store_id=store.id).status == "completed"
    assert client.vector_stores.retrieve(store.id).file_counts.completed == 7

    raw = client.vector_stores.file_batches.with_raw_response.retrieve(
        again.id, vector_store_id=store.id)
    assert int(raw.headers["openai-poll-after-ms"]) > 0
    for hit in client.vector_stores.search(store.id, query="walrus division revenue"):
        assert 0.0 <= hit.score <= 1.0
    rows = client.vector_stores.search(store.id, query="north closed", max_num_results=5)
    assert any(r.filename == "sales.csv" and r.attributes and "region" in r.attributes
               for r in rows.data), rows


# --------------------------------------------------------------------------- search


def test_search_with_comparison_and_compound_filters(client: OpenAI) -> None:
    store = client.vector_stores.create(name="search")
    specs: list[tuple[str, str, dict[str, str | float | bool]]] = [
             ("red.md", "The red fox jumps over the fence.", {"colour": "red", "n": 1}),
             ("blue.md", "The blue fox sleeps under the fence.", {"colour": "blue", "n": 2}),
             ("grey.md", "The grey fox hunts along the fence.", {"colour": "grey", "n": 3,
                                                                "wild": True})]
    ids = {}
    for name, text, attrs in specs:
        ids[attrs["colour"]] = client.vector_stores.files.create_and_poll(
            file_id=_upload(client, name, f"# {name}\n\n{text}\n".encode()),
            vector_store_id=store.id, attributes=attrs, poll_interval_ms=POLL_MS).id

    def found(filters: Any) -> set[str]:
        page = client.vector_stores.search(store.id, query="fox fence", filters=filters)
        assert page.object == "vector_store.search_results.page"
        assert len({r.file_id for r in page.data}) == len(page.data)  # grouped per file
        for r in page.data:
            assert 0.0 <= r.score <= 1.0 and r.content and r.content[0].type == "text"
        return {str((r.attributes or {})["colour"]) for r in page.data}

    assert found(None) == {"red", "blue", "grey"}
    assert found({"type": "eq", "key": "colour", "value": "red"}) == {"red"}
    assert found({"type": "ne", "key": "colour", "value": "red"}) == {"blue", "grey"}
    assert found({"type": "gt", "key": "n", "value": 1}) == {"blue", "grey"}
    assert found({"type": "lte", "key": "n", "value": 2}) == {"red", "blue"}
    assert found({"type": "in", "key": "colour", "value": ["red", "grey"]}) == {"red", "grey"}
    assert found({"type": "nin", "key": "colour", "value": ["red"]}) == {"blue", "grey"}
    assert found({"type": "eq", "key": "wild", "value": True}) == {"grey"}
    assert found({"type": "and", "filters": [
        {"type": "gte", "key": "n", "value": 2},
        {"type": "ne", "key": "colour", "value": "grey"}]}) == {"blue"}
    assert found({"type": "or", "filters": [
        {"type": "eq", "key": "colour", "value": "red"},
        {"type": "and", "filters": [{"type": "eq", "key": "wild", "value": True},
                                    {"type": "gt", "key": "n", "value": 2}]}]}) == {"red",
                                                                                    "grey"}
    top = client.vector_stores.search(store.id, query=["red fox", "jumps"], max_num_results=1,
                                      ranking_options={"score_threshold": 0.0})
    assert [r.file_id for r in top.data] == [ids["red"]]
    with pytest.raises(BadRequestError) as err:
        client.vector_stores.search(store.id, query="fox",
                                    filters=cast(Any, {"type": "like", "key": "n", "value": 1}))
    assert err.value.response.json()["error"]["type"] == "invalid_request_error"


# --------------------------------------------------------------------------- access


def test_an_end_user_token_sees_only_that_users_files(client: OpenAI,
                                                      server: LiveServer) -> None:
    alice = OpenAI(base_url=f"{server.url}/v1", api_key=_token(server, "alice"), max_retries=0)
    bob = OpenAI(base_url=f"{server.url}/v1", api_key=_token(server, "bob"), max_retries=0)
    a_file = _upload(alice, "alice.md", b"# Alice\n\nAlice keeps a pet iguana named Rex.\n")
    b_file = _upload(bob, "bob.md", b"# Bob\n\nBob keeps a pet iguana named Max.\n")
    a_store = alice.vector_stores.create(name="alice")
    assert alice.vector_stores.files.create_and_poll(
        file_id=a_file, vector_store_id=a_store.id, poll_interval_ms=POLL_MS).status == "completed"

    assert {f.id for f in alice.files.list()} == {a_file}
    assert {f.id for f in bob.files.list()} == {b_file}
    assert [s.id for s in bob.vector_stores.list()] == []
    for call in (lambda: bob.files.retrieve(a_file), lambda: bob.files.content(a_file),
                 lambda: bob.vector_stores.retrieve(a_store.id),
                 lambda: bob.vector_stores.search(a_store.id, query="iguana"),
                 lambda: bob.vector_stores.files.create(file_id=a_file,
                                                        vector_store_id=a_store.id)):
        with pytest.raises(NotFoundError):
            call()
    hits = alice.vector_stores.search(a_store.id, query="iguana")
    assert [h.file_id for h in hits.data] == [a_file]
    everyone = {f.id for f in client.files.list()}  # the backend key sees the whole org
    assert {a_file, b_file} <= everyone


# --------------------------------------------------------------------------- envelopes


def test_errors_use_openai_body_on_v1_only(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, headers=server.headers) as http:
        missing = http.get("/v1/vector_stores/vs_nope")
        assert missing.status_code == 404 and set(missing.json()) == {"error"}
        invalid = http.post("/v1/vector_stores/vs_nope/search", json={"max_num_results": 99})
        assert invalid.status_code == 400
        assert invalid.json()["error"]["param"] in ("query", "max_num_results")
        anon = httpx.get(f"{server.url}/v1/files")
        assert anon.status_code == 401
        assert anon.json()["error"]["type"] == "authentication_error"
        native = http.get("/api/v1/file/nope/fetch")
        assert native.status_code == 404 and set(native.json()) == {"message", "code"}


def test_openapi_lists_the_v1_routes(server: LiveServer, tmp_path: Path) -> None:
    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    assert "/v1/vector_stores/{store_id}/search" in paths and "/v1/files" in paths
