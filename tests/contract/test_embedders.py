"""The embedder port contract (ingest/embed/base.py), run against every adapter.

Adapters: WordLlama (the offline default), all-MiniLM-L6-v2 on onnxruntime (the optional
offline one, its weights from the `minilm` extra) and the OpenAI-compatible client talking
real HTTP to a scripted endpoint on loopback (tests/support/embeddings_server.py). Then the OpenAI
adapter's own promises: batching, reordering by `index`, retries with backoff on transient
failures, readable errors, timeouts, the bearer key, the dimension probe.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from dataloft.ingest.embed.base import Embedder, EmbeddingError
from dataloft.ingest.embed.minilm import MiniLMEmbedder
from dataloft.ingest.embed.openai import OpenAICompatibleEmbedder
from dataloft.ingest.embed.wordllama import WordLlamaEmbedder
from tests.support.embeddings_server import EmbeddingsServer, Step, vector_for

MINILM = MiniLMEmbedder(threads=1)  # one per module: it loads on first use

TEXTS = ["The physician prescribed medicine.", "Stock markets fell on Tuesday.",
         "", "naïve café — ünïcødé ✓", "x" * 5000, "tomatoes and basil"]


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddingsServer]:
    with EmbeddingsServer(dimension=24) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _fresh(server: EmbeddingsServer) -> None:
    server.reset()


def openai(server: EmbeddingsServer, **kw: object) -> OpenAICompatibleEmbedder:
    opts: dict[str, object] = {"dimension": server.dimension, "backoff": 0.01,
                               "timeout": 5.0, **kw}
    return OpenAICompatibleEmbedder(server.url, "test-model", **opts)  # type: ignore[arg-type]


ADAPTERS: dict[str, Callable[[EmbeddingsServer], Embedder]] = {
    "wordllama": lambda _srv: WordLlamaEmbedder(),
    "minilm": lambda _srv: MINILM,
    "openai": openai,
}


@pytest.fixture(params=sorted(ADAPTERS))
def embedder(request: pytest.FixtureRequest, server: EmbeddingsServer) -> Embedder:
    return ADAPTERS[request.param](server)


# --- the port contract -------------------------------------------------------------------------


def test_name_and_dimension(embedder: Embedder) -> None:
    assert isinstance(embedder.name, str) and embedder.name
    assert isinstance(embedder.dimension, int) and embedder.dimension > 0


def test_shape_dtype_and_unit_norms(embedder: Embedder) -> None:
    vectors = embedder.embed(TEXTS)
    assert isinstance(vectors, np.ndarray)
    assert vectors.shape == (len(TEXTS), embedder.dimension)
    assert vectors.dtype == np.float32
    assert np.isfinite(vectors).all()
    norms = np.linalg.norm(vectors, axis=1)
    # Rows are unit length, except that an all-zero vector (nothing to embed) may stay zero.
    for text, norm in zip(TEXTS, norms, strict=True):
        if text.strip():
            assert norm == pytest.approx(1.0, abs=1e-5), text
        else:
            assert norm == pytest.approx(1.0, abs=1e-5) or norm == 0.0


def test_empty_list(embedder: Embedder) -> None:
    out = embedder.embed([])
    assert out.shape == (0, embedder.dimension) and out.dtype == np.float32


def test_deterministic_and_independent_of_batch_company(embedder: Embedder) -> None:
    alone = embedder.embed(["tomatoes and basil"])[0]
    again = embedder.embed(["tomatoes and basil"])[0]
    among = embedder.embed(["something else entirely", "tomatoes and basil"])[1]
    np.testing.assert_allclose(alone, again, atol=1e-6)
    np.testing.assert_allclose(alone, among, atol=1e-5)


def test_different_texts_differ_and_dot_is_cosine(embedder: Embedder) -> None:
    a, b = embedder.embed(["The physician prescribed medicine.", "Stock markets fell."])
    assert not np.allclose(a, b)
    cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    assert float(a @ b) == pytest.approx(cosine, abs=1e-5)


def test_accepts_a_tuple(embedder: Embedder) -> None:
    assert embedder.embed(("one", "two")).shape == (2, embedder.dimension)


# --- the OpenAI-compatible adapter -------------------------------------------------------------


def test_wire_protocol_model_and_bearer_key(server: EmbeddingsServer) -> None:
    emb = openai(server, api_key="sk-test-123")
    vectors = emb.embed(["alpha", "beta"])
    assert emb.name == "openai:test-model"
    (seen,) = server.requests
    assert seen.path == "/embeddings"
    assert seen.body == {"model": "test-model", "input": ["alpha", "beta"]}
    headers = {k.lower(): v for k, v in seen.headers.items()}
    assert headers["authorization"] == "Bearer sk-test-123"
    assert headers["content-type"].startswith("application/json")
    # The server's vectors, normalised, in input order.
    for row, text in zip(vectors, ["alpha", "beta"], strict=True):
        want = vector_for(text, server.dimension)
        np.testing.assert_allclose(row, want / np.linalg.norm(want), atol=1e-6)


def test_no_key_no_authorization_header(server: EmbeddingsServer) -> None:
    openai(server).embed(["alpha"])
    assert "authorization" not in {k.lower() for k in server.requests[0].headers}


def test_base_url_with_path_and_trailing_slash(server: EmbeddingsServer) -> None:
    emb = OpenAICompatibleEmbedder(server.url + "/v1/", "m", dimension=server.dimension)
    emb.embed(["alpha"])
    assert server.requests[0].path == "/v1/embeddings"


def test_batching(server: EmbeddingsServer) -> None:
    texts = [f"text number {i}" for i in range(7)]
    vectors = openai(server, batch_size=3).embed(texts)
    assert [len(batch) for batch in server.inputs] == [3, 3, 1]
    assert [t for batch in server.inputs for t in batch] == texts
    singles = np.vstack([vector_for(t, server.dimension) for t in texts])
    singles /= np.linalg.norm(singles, axis=1, keepdims=True)
    np.testing.assert_allclose(vectors, singles, atol=1e-6)


def test_out_of_order_indexes_are_reordered(server: EmbeddingsServer) -> None:
    texts = ["first", "second", "third", "fourth"]
    server.script(Step(reverse=True))
    reordered = openai(server).embed(texts)
    in_order = openai(server).embed(texts)
    np.testing.assert_allclose(reordered, in_order, atol=1e-7)


@pytest.mark.parametrize("status", [408, 409, 425, 429, 500, 502, 503, 504])
def test_retries_transient_statuses_then_succeeds(server: EmbeddingsServer, status: int) -> None:
    server.script(Step(status=status), Step(status=status))
    out = openai(server, retries=3).embed(["alpha"])
    assert out.shape == (1, server.dimension)
    assert len(server.requests) == 3


def test_mixed_429_and_503_then_success(server: EmbeddingsServer) -> None:
    server.script(Step(status=429), Step(status=503), Step(status=429))
    started = time.monotonic()
    out = openai(server, retries=4, backoff=0.05).embed(["alpha", "beta"])
    elapsed = time.monotonic() - started
    assert out.shape == (2, server.dimension)
    assert len(server.requests) == 4
    assert elapsed >= 0.05 + 0.1 + 0.2 - 0.01  # exponential backoff between tries


def test_gives_up_after_retries(server: EmbeddingsServer) -> None:
    server.script(*[Step(status=503)] * 10)
    with pytest.raises(EmbeddingError, match="503"):
        openai(server, retries=2).embed(["alpha"])
    assert len(server.requests) == 3


def test_non_retryable_400_fails_at_once_with_the_servers_message(
        server: EmbeddingsServer) -> None:
    server.script(Step(status=400))
    with pytest.raises(EmbeddingError) as info:
        openai(server, retries=4).embed(["alpha"])
    assert len(server.requests) == 1
    assert "400" in str(info.value) and "scripted failure 400" in str(info.value)


@pytest.mark.parametrize("status", [401, 403, 404, 422])
def test_other_client_errors_are_not_retried(server: EmbeddingsServer, status: int) -> None:
    server.script(Step(status=status))
    with pytest.raises(EmbeddingError, match=str(status)):
        openai(server, retries=4).embed(["alpha"])
    assert len(server.requests) == 1


@pytest.mark.parametrize("body", [
    b"not json at all",
    b'{"object": "list"}',
    b'{"data": [{"index": 0}]}',
    b'{"data": [{"index": 0, "embedding": "nope"}]}',
    b'{"data": "nope"}',
    b'{"data": [{"index": 0, "embedding": [1, 2, 3]}, {"index": 1, "embedding": [1, 2]}]}',
    b'{"data": []}',
    b"[]",
    b"null",
], ids=["not-json", "no-data", "no-embedding", "embedding-str", "data-str", "ragged",
        "too-few", "list", "null"])
def test_malformed_body_is_an_embedding_error(server: EmbeddingsServer, body: bytes) -> None:
    server.script(Step(body=body))
    with pytest.raises(EmbeddingError):
        openai(server, retries=0).embed(["alpha", "beta"])


def test_wrong_dimension_is_an_embedding_error(server: EmbeddingsServer) -> None:
    """Vectors of another length than `dimension` would corrupt the index; refuse them."""
    emb = openai(server, dimension=server.dimension + 1)
    with pytest.raises(EmbeddingError):
        emb.embed(["alpha"])


def test_timeout_is_retried_then_succeeds(server: EmbeddingsServer) -> None:
    server.script(Step(delay=0.6))
    out = openai(server, timeout=0.2, retries=2).embed(["alpha"])
    assert out.shape == (1, server.dimension)
    assert len(server.requests) == 2


def test_timeouts_give_up_with_embedding_error(server: EmbeddingsServer) -> None:
    server.script(*[Step(delay=0.6)] * 3)
    started = time.monotonic()
    with pytest.raises(EmbeddingError, match="(?i)timeout"):
        openai(server, timeout=0.2, retries=2).embed(["alpha"])
    assert len(server.requests) == 3
    assert time.monotonic() - started < 3


def test_unreachable_endpoint_is_retried_then_embedding_error() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    emb = OpenAICompatibleEmbedder(f"http://127.0.0.1:{port}", "m", dimension=8, retries=2,
                                   backoff=0.01, timeout=1)
    with pytest.raises(EmbeddingError, match="3 tries"):
        emb.embed(["alpha"])


def test_dimension_probe(server: EmbeddingsServer) -> None:
    emb = OpenAICompatibleEmbedder(server.url, "test-model", dimension=0)
    assert emb.dimension == server.dimension
    assert len(server.requests) == 1 and len(server.inputs[0]) == 1
    assert emb.embed([]).shape == (0, server.dimension)


def test_dimension_probe_failure_is_an_embedding_error(server: EmbeddingsServer) -> None:
    server.script(Step(status=400))
    with pytest.raises(EmbeddingError):
        OpenAICompatibleEmbedder(server.url, "test-model", dimension=0, retries=0)
