"""The default embedder: WordLlama's 256-d model, which ships inside its wheel.

WordLlama's own offline tokenizer lookup is broken, so we point `cache_dir` at the package
directory and disable downloads: nothing is ever fetched at run time.

A text's vector is the mean of its tokens' rows of the embedding table, normalised.
WordLlama's own `embed` pads every batch to its longest text and multiplies a
`batch x longest x dim` array by a mask; we pool over the real tokens only (`pool_sums`),
which gives the same vectors (to float32 rounding) for a
fraction of the work. With no padding, the order of the texts no
longer changes the cost, so there is nothing to gain from sorting them by length.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from dataloft.ingest.embed.base import EmbeddingError, normalise

# Bounds on memory per call, whatever the input: texts are tokenized a chunk of at most
# _CHARS characters at a time, and at most _TOKENS embedding rows (32k x 256 x 4 B = 32 MiB)
# are gathered at once, so even a single huge text is summed in slices.
_CHARS = 1 << 18
_TOKENS = 1 << 15

_lock = threading.Lock()
_model: Any = None
_tokenizer: Any = None


def _load() -> tuple[Any, Any]:
    global _model, _tokenizer
    with _lock:
        if _model is None:
            import wordllama
            from wordllama import WordLlama

            try:
                model = WordLlama.load(cache_dir=os.path.dirname(wordllama.__file__),
                                       disable_download=True)
            except Exception as exc:  # pragma: no cover - depends on the installed wheel
                raise EmbeddingError(f"could not load the WordLlama model: {exc}") from exc
            # Our own copy: the model's tokenizer pads (its `embed` relies on that), ours not.
            tokenizer = type(model.tokenizer).from_str(model.tokenizer.to_str())
            tokenizer.no_padding()
            tokenizer.no_truncation()
            _model, _tokenizer = model, tokenizer
        return _model, _tokenizer


def _chunks(texts: Sequence[str], budget: int) -> list[tuple[int, int]]:
    """[start, end) ranges of consecutive texts of at most `budget` characters (or one text)."""
    ranges, start, size = [], 0, 0
    for i, text in enumerate(texts):
        if i > start and size + len(text) > budget:
            ranges.append((start, i))
            start, size = i, 0
        size += len(text)
    ranges.append((start, len(texts)))
    return ranges


# Texts of at most this many tokens are pooled position by position (below).
_SHORT = 64


def pool_sums(table: np.ndarray, ids: np.ndarray, lengths: np.ndarray,
              budget: int = _TOKENS) -> np.ndarray:
    """Per text, the float32 sum of `table` rows over its tokens.

    `ids` holds every text's token ids end to end, `lengths` the number of each text's.
    Short texts (table rows, chunks of a few sentences) are summed position by position:
    with the texts ordered longest first, those that have a j-th token are a prefix, so
    one gather and one in-place add per position serve them all (a batch of 512 rendered
    rows: ~40 numpy calls instead of ~1,500). Each text's rows are still added in token
    order into a float32 zero, as a row sum does, so the sums are the same bit for bit.
    Longer texts take one small gather and a row sum each (cache-hot; `np.add.reduceat`
    and `cumsum` along axis 0 are ~30x slower, `np.add.at` too); a text longer than
    `budget` tokens is gathered in slices.
    """
    sums = np.zeros((len(lengths), table.shape[1]), dtype=np.float32)
    starts = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    # One text (a query) is a row sum at once: the per-position loop pays off only when it
    # serves many texts per numpy call.
    limit = min(_SHORT, budget) if len(lengths) > 1 else 0
    short = np.flatnonzero(lengths <= limit)
    if len(short):
        order = short[np.argsort(-lengths[short], kind="stable")]
        heads, sizes = starts[order], lengths[order]
        acc = np.zeros((len(order), table.shape[1]), dtype=np.float32)
        # have[j]: how many of them have a token at position j (a prefix of `order`).
        have = np.searchsorted(-sizes, -np.arange(int(sizes[0]) if len(sizes) else 0),
                               side="left")
        for j, k in enumerate(have.tolist()):
            acc[:k] += table[ids[heads[:k] + j]]
        sums[order] = acc
    for i in np.flatnonzero(lengths > limit).tolist():
        start, n = int(starts[i]), int(lengths[i])
        for lo in range(start, start + n, budget):
            sums[i] += table[ids[lo : min(lo + budget, start + n)]].sum(axis=0)
    return sums


def _one(table: np.ndarray, tokenizer: Any, text: str) -> np.ndarray:
    """`embed([text])`, as a search's query asks for it: the same float32 operations in the
    same order as the batch path (so the same vector, bit for bit) in a handful of numpy
    calls instead of ~20. On a server between requests the caches are cold, where each
    numpy call costs several times its in-loop price (docs/benchmarks.md §35)."""
    encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
    ids = np.array(encode([text], add_special_tokens=False)[0].ids, dtype=np.int64)
    np.clip(ids, 0, table.shape[0] - 1, out=ids)  # as WordLlama does
    sums = np.zeros((1, table.shape[1]), dtype=np.float32)
    for lo in range(0, len(ids), _TOKENS):
        sums[0] += table[ids[lo : lo + _TOKENS]].sum(axis=0)
    return normalise(sums / np.float32(max(len(ids), 1)))


class WordLlamaEmbedder:
    name = "wordllama-l2-supercat-256"
    dimension = 256

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model, tokenizer = _load()
        table: np.ndarray = model.embedding
        if len(texts) == 1 and len(texts[0]) <= _CHARS:
            return _one(table, tokenizer, texts[0])
        # Same ids as `encode_batch`, ~20 % less CPU: it skips the character offsets.
        encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start, end in _chunks(texts, _CHARS):
            id_lists = [e.ids for e in encode(list(texts[start:end]), add_special_tokens=False)]
            lengths = np.fromiter(map(len, id_lists), dtype=np.int64, count=len(id_lists))
            ids = np.fromiter(itertools.chain.from_iterable(id_lists), dtype=np.int64,
                              count=int(lengths.sum()))
            np.clip(ids, 0, table.shape[0] - 1, out=ids)  # as WordLlama does
            sums = pool_sums(table, ids, lengths)
            vectors[start:end] = sums / np.maximum(lengths, 1).astype(np.float32)[:, None]
        return normalise(vectors)
