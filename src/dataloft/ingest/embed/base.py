"""The embedder port.

Contract (tests/contract/test_embedders.py runs it against every adapter):
- `name` identifies the model (stored on each dataset; a change re-indexes it) and
  `dimension` is the length of every vector it returns.
- `embed(texts)` returns a float32 array of shape (len(texts), dimension) whose rows have
  unit L2 norm (so a dot product is the cosine similarity); an empty list gives (0, dim).
- Failures raise EmbeddingError with a readable message; adapters retry transient errors
  themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class EmbeddingError(Exception):
    pass


class Embedder(Protocol):
    name: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise EmbeddingError(f"expected a 2-d array of vectors, got shape {vectors.shape}")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    unit: np.ndarray = vectors / norms
    return unit
