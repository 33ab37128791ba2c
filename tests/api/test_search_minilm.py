"""Search through the HTTP API with the optional offline embedder (DATALOFT_EMBEDDER=minilm):
a synced file and a created record get 384-d vectors, and semantic and hybrid search find a
paraphrase that shares no word with the query, on both backends (PostgreSQL builds the HNSW
index of that dimension on demand).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataloft.app import create_app
from tests.conftest import KEY
from tests.support.api import create_dataset, create_file, sync

AUTH = {"Authorization": f"Bearer {KEY}"}

ROWS = [
    {"doc": "antibiotics", "text": "The physician prescribed antibiotics for the infection."},
    {"doc": "market", "text": "Stock prices fell sharply on Tuesday."},
    {"doc": "garden", "text": "We planted tomatoes and basil in spring."},
    {"doc": "football", "text": "The team won the championship game."},
]
# No word in common with any row (stop words aside): only meaning can rank them.
QUERY = "How do doctors cure a bacterial illness?"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, backend_settings: Any
           ) -> Iterator[TestClient]:
    settings = backend_settings(Path(tmp_path_factory.mktemp("minilm")), embedder="minilm",
                                embedding_threads=1)
    with TestClient(create_app(settings), headers=AUTH) as c:
        yield c


def search(client: TestClient, ds: str, query: str, mode: str) -> list[dict[str, Any]]:
    r = client.post(f"/api/v1/dataset/{ds}/search", json={"search": query, "mode": mode})
    assert r.status_code == 200, r.text
    return list(r.json()["records"])


def test_a_synced_file_is_searched_by_meaning(client: TestClient) -> None:
    ds = create_dataset(client)
    jsonl = "".join(json.dumps(row) + "\n" for row in ROWS).encode()
    done = sync(client, ds, create_file(client, jsonl, name="rows.jsonl",
                                        content_type="application/x-ndjson"))
    assert done["type"] == "sync.completed", done
    dataset = client.get(f"/api/v1/dataset/{ds}/fetch").json()
    assert dataset["embeddingModel"] == "all-minilm-l6-v2-onnx-int8"
    for mode in ("semantic", "hybrid"):
        hits = search(client, ds, QUERY, mode)
        assert hits and hits[0]["meta"]["doc"] == "antibiotics", (mode, hits)
    assert search(client, ds, QUERY, "lexical") == []


def test_a_created_record_is_embedded_alike(client: TestClient) -> None:
    ds = create_dataset(client)
    for row in ROWS:
        r = client.post(f"/api/v1/dataset/{ds}/record/create",
                        json={"text": row["text"], "meta": {"doc": row["doc"]}})
        assert r.status_code == 200, r.text
    hits = search(client, ds, "Which sport match ended in a victory?", "semantic")
    assert hits[0]["meta"]["doc"] == "football", hits
