"""Changing the embedder re-indexes existing datasets at start-up.

A live server syncs a file with the default offline embedder; it is stopped and started
again on the same data directory, now configured for an OpenAI-compatible endpoint (a
scripted server on loopback). The dataset's vectors are rebuilt from the records' texts by
that endpoint, its `embeddingModel` follows, and semantic search works with the new model.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import create_dataset, create_file, sync, wait_for_sync
from tests.support.embeddings_server import EmbeddingsServer
from tests.support.live import LiveServer

pytestmark = pytest.mark.slow

ENV = {"DATALOFT_SYNC_COOLDOWN_SECONDS": "0", "DATALOFT_JOB_POLL_SECONDS": "0.05"}
TEXT = "\n\n".join([
    "Owls hunt small rodents at night using silent flight and sharp hearing.",
    "The cobalt lighthouse on the northern cape guides fishing boats home.",
    "Sourdough bread needs a lively starter, flour, water, salt and patience.",
    "Glaciers carve deep valleys as they slowly move down from the mountains.",
])


@pytest.fixture
def embeddings() -> Iterator[EmbeddingsServer]:
    with EmbeddingsServer(dimension=32) as srv:
        yield srv


def fetch_dataset(client: httpx.Client, ds: str) -> dict[str, Any]:
    r = client.get(f"/api/v1/dataset/{ds}/fetch")
    assert r.status_code == 200, r.text
    return dict(r.json())


def record_texts(client: httpx.Client, ds: str) -> dict[str, str]:
    r = client.get(f"/api/v1/dataset/{ds}/record/list", params={"take": 100})
    assert r.status_code == 200, r.text
    return {item["id"]: item["text"] for item in r.json()["items"]}


def semantic(client: httpx.Client, ds: str, query: str) -> list[dict[str, Any]]:
    r = client.post(f"/api/v1/dataset/{ds}/search",
                    json={"search": query, "mode": "semantic", "take": 10})
    assert r.status_code == 200, r.text
    return list(r.json()["records"])


def test_changing_the_embedder_reindexes_at_start_up(tmp_path: Path,
                                                     embeddings: EmbeddingsServer) -> None:
    data = tmp_path / "data"
    first = LiveServer(data_dir=data, env_extra=ENV).start()
    try:
        with first.client() as c:
            ds = create_dataset(c)
            fid = create_file(c, TEXT.encode(), name="notes.txt")
            done = sync(c, ds, fid)
            assert done["type"] == "sync.completed", done
            assert fetch_dataset(c, ds)["embeddingModel"] == "wordllama-l2-supercat-256"
            texts = record_texts(c, ds)
            assert len(texts) == done["data"]["recordCount"] >= 1
            assert semantic(c, ds, "nocturnal birds of prey")
    finally:
        first.stop()
    assert embeddings.requests == []

    second = LiveServer(data_dir=data, key=first.key, env_extra={
        **ENV,
        "DATALOFT_EMBEDDER": "openai",
        "DATALOFT_EMBEDDING_URL": embeddings.url,
        "DATALOFT_EMBEDDING_MODEL": "test-model",
        "DATALOFT_EMBEDDING_DIMENSION": "0",
        "DATALOFT_EMBEDDING_API_KEY": "sk-e2e-secret",
    }).start()
    try:
        with second.client() as c:
            deadline = time.monotonic() + 30
            while fetch_dataset(c, ds)["embeddingModel"] != "openai:test-model":
                assert time.monotonic() < deadline, f"no re-index:\n{second.log()}"
                time.sleep(0.1)

            # The endpoint was asked (with the key) for the dimension, then for every text.
            assert embeddings.requests, "the endpoint was never called"
            assert all(s.path == "/embeddings" for s in embeddings.requests)
            assert all(s.body.get("model") == "test-model" for s in embeddings.requests)
            assert all({k.lower(): v for k, v in s.headers.items()}.get("authorization")
                       == "Bearer sk-e2e-secret" for s in embeddings.requests)
            sent = {t for batch in embeddings.inputs for t in batch}
            assert set(texts.values()) <= sent
            assert record_texts(c, ds) == texts  # re-indexing keeps the records as they were

            # Semantic search now runs on the new model: a record's own text is its best
            # match (the scripted vectors are a function of the text), with cosine 1.
            for rid, text in texts.items():
                hits = semantic(c, ds, text)
                assert hits and hits[0]["id"] == rid
                assert hits[0]["score"] == pytest.approx(1.0, abs=1e-4)
            assert {h["id"] for h in semantic(c, ds, "anything at all")} == set(texts)

            # A re-sync of the unchanged file reuses the new vectors; nothing is re-embedded.
            calls = len(embeddings.requests)
            started = int(time.time() * 1000) - 1
            r = c.post(f"/api/v1/dataset/{ds}/file/{fid}/sync", json={})
            assert r.status_code == 200, r.text
            again = wait_for_sync(c, ds, fid, after=started)
            assert again["type"] == "sync.completed", again
            assert again["data"]["reusedEmbeddings"] == len(texts)
            assert len(embeddings.requests) == calls
    finally:
        second.stop()


def test_a_new_dimension_under_the_same_model_name_reindexes(
        tmp_path: Path, embeddings: EmbeddingsServer) -> None:
    """The endpoint now answers with vectors of another length under the same model name
    (OpenAI's `dimensions`, a re-pulled Ollama tag, a TEI server given another model): the
    stored vectors cannot be compared with the new ones, so the dataset must be re-indexed,
    and search must never fail on mismatched shapes."""
    data = tmp_path / "data"
    env = {**ENV, "DATALOFT_EMBEDDER": "openai", "DATALOFT_EMBEDDING_URL": embeddings.url,
           "DATALOFT_EMBEDDING_MODEL": "test-model", "DATALOFT_EMBEDDING_DIMENSION": "0"}
    first = LiveServer(data_dir=data, env_extra=env).start()
    try:
        with first.client() as c:
            ds = create_dataset(c)
            fid = create_file(c, TEXT.encode(), name="notes.txt")
            assert sync(c, ds, fid)["type"] == "sync.completed"
            texts = record_texts(c, ds)
            assert semantic(c, ds, next(iter(texts.values())))
    finally:
        first.stop()

    embeddings.dimension = 16
    second = LiveServer(data_dir=data, key=first.key, env_extra=env).start()
    try:
        with second.client() as c:
            deadline = time.monotonic() + 20
            while True:
                r = c.post(f"/api/v1/dataset/{ds}/search",
                           json={"search": "lighthouse boats", "mode": "semantic"})
                assert r.status_code == 200, (r.status_code, r.text)
                if r.json()["records"]:
                    break
                assert time.monotonic() < deadline, "semantic search never came back"
                time.sleep(0.1)
            for rid, text in texts.items():
                hits = semantic(c, ds, text)
                assert hits[0]["id"] == rid
                assert hits[0]["score"] == pytest.approx(1.0, abs=1e-4)
    finally:
        second.stop()
