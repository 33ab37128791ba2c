"""Any OpenAI-compatible `/embeddings` endpoint (OpenAI, Ollama, vLLM, TEI, ...)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import httpx
import numpy as np

from dataloft.ingest.embed.base import EmbeddingError, normalise

_RETRYABLE = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAICompatibleEmbedder:
    def __init__(self, base_url: str, model: str, api_key: str = "", *, dimension: int = 0,
                 batch_size: int = 64, timeout: float = 30.0, retries: int = 4,
                 backoff: float = 0.5, transport: httpx.BaseTransport | None = None):
        self.name = f"openai:{model}"
        self.model = model
        self.batch_size = batch_size
        self.retries = retries
        self.backoff = backoff
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=base_url.rstrip("/") + "/", headers=headers,
                                    timeout=timeout, transport=transport)
        # 0 = learn it from the first response (one probe request at start-up).
        self.dimension = dimension or int(self.embed(["dimension probe"]).shape[1])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        parts = [self._batch(list(texts[i : i + self.batch_size]))
                 for i in range(0, len(texts), self.batch_size)]
        return normalise(np.vstack(parts))

    def _batch(self, texts: list[str]) -> np.ndarray:
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                r = self._client.post("embeddings", json={"model": self.model, "input": texts})
            except httpx.TransportError as exc:  # timeouts, refused connections, resets
                last = f"{type(exc).__name__}: {exc}"
                continue
            if r.status_code in _RETRYABLE:
                last = f"HTTP {r.status_code}"
                continue
            if r.status_code != 200:
                raise EmbeddingError(f"embedding endpoint answered HTTP {r.status_code}: "
                                     f"{r.text[:200]}")
            return self._parse(r, len(texts))
        raise EmbeddingError(f"embedding endpoint failed after {self.retries + 1} tries: {last}")

    def _parse(self, response: httpx.Response, expected: int) -> np.ndarray:
        try:
            data = sorted(response.json()["data"], key=lambda d: d["index"])
            vectors = np.array([d["embedding"] for d in data], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as exc:
            raise EmbeddingError(f"embedding endpoint sent an unexpected body: {exc}") from exc
        if vectors.ndim != 2 or len(vectors) != expected or not vectors.shape[1]:
            raise EmbeddingError(f"expected {expected} embeddings, got shape {vectors.shape}")
        want = getattr(self, "dimension", 0)  # unset while probing
        if want and vectors.shape[1] != want:
            raise EmbeddingError(f"the endpoint sent {vectors.shape[1]}-d embeddings, "
                                 f"{want} were configured")
        return vectors
