"""WordLlama pooling over real tokens gives today's vectors.

The reference below is the pooling the embedder used before (WordLlama's own `embed`):
texts sorted by length, batches of 64 padded to their longest text, token rows gathered into
a `batch x longest x dim` array, multiplied by the attention mask, summed, divided by the
number of real tokens, then normalised. It is kept here, self-contained, so the padding-free
pooling is compared against it and not against itself.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dataloft.ingest.embed.base import normalise
from dataloft.ingest.embed.wordllama import WordLlamaEmbedder, _load, pool_sums


def reference_embed(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    model, plain = _load()
    tokenizer = type(plain).from_str(plain.to_str())
    tokenizer.enable_padding()
    table = model.embedding
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.empty((len(texts), table.shape[1]), dtype=np.float32)
    for b in range(0, len(order), batch_size):
        idx = order[b : b + batch_size]
        encoded = tokenizer.encode_batch([texts[i] for i in idx], add_special_tokens=False)
        ids = np.array([e.ids for e in encoded], dtype=np.int32)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.float32)
        np.clip(ids, 0, table.shape[0] - 1, out=ids)
        x = table[ids]
        count = np.maximum(mask.sum(axis=1, keepdims=True), 1.0).astype(np.float32)
        out[idx] = np.sum(x * mask[..., np.newaxis], axis=1, dtype=np.float32) / count
    return normalise(out)


WORDS = ["the", "physician", "prescribed", "medicine", "naïve", "café", "ünïcødé", "✓", "🎉",
         "東京", "Ελληνικά", "—", "  ", "\n", "\t", "x" * 40, "CRISPR-Cas9", "p<0.05",
         "α-synuclein"]


def varied_texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    texts = ["", " ", "\n\n", "x" * 20_000, "🎉" * 3_000, "a"]
    while len(texts) < n:
        size = rng.choice([0, 1, 2, 5, 20, 100, 600, 3_000])
        texts.append(" ".join(rng.choice(WORDS) for _ in range(size)))
    rng.shuffle(texts)
    return texts


def test_same_vectors_as_padded_pooling() -> None:
    texts = varied_texts(400, seed=16)
    new = WordLlamaEmbedder().embed(texts)
    old = reference_embed(texts)
    assert new.shape == old.shape == (400, 256) and new.dtype == np.float32
    assert float(np.abs(new - old).max()) <= 1e-5
    # The empty text has no tokens: the zero vector, in both (whitespace has tokens).
    for text, row, ref in zip(texts, new, old, strict=True):
        assert row.any() == ref.any() == bool(text), repr(text)


def exact_embed(text: str) -> np.ndarray:
    """The mean of the text's token rows summed in float64: what both poolings approximate."""
    model, tokenizer = _load()
    ids = np.array(tokenizer.encode(text, add_special_tokens=False).ids, dtype=np.int64)
    mean = model.embedding[ids].astype(np.float64).mean(axis=0)
    unit: np.ndarray = mean / np.linalg.norm(mean)
    return unit


def test_texts_longer_than_the_gather_slice() -> None:
    """Past 32k tokens a text is gathered in slices, so its rows are added in another order
    than the padded pooling's one running float32 sum, which by then drifts by ~1e-4 (10,000
    emoji are 40,001 tokens). The sliced sum is at least as close to the exact mean."""
    texts = ["🎉" * 10_000, " ".join(WORDS * 3_000)]
    new, old = WordLlamaEmbedder().embed(texts), reference_embed(texts)
    for text, n, o in zip(texts, new, old, strict=True):
        exact = exact_embed(text)
        assert float(np.abs(n - exact).max()) <= float(np.abs(o - exact).max())
        assert float(np.abs(n - o).max()) <= 5e-4


def test_batch_company_and_order_do_not_matter() -> None:
    texts = varied_texts(120, seed=3)
    emb = WordLlamaEmbedder()
    whole = emb.embed(texts)
    reversed_ = emb.embed(texts[::-1])[::-1]
    singles = np.vstack([emb.embed([t]) for t in texts])
    assert float(np.abs(whole - reversed_).max()) <= 1e-5
    assert float(np.abs(whole - singles).max()) <= 1e-5


@settings(max_examples=200, deadline=None)
@given(lengths=st.lists(st.integers(0, 12), max_size=30), budget=st.integers(1, 40),
       seed=st.integers(0, 2**32 - 1))
def test_pool_sums_match_per_text_sums_for_any_slicing(lengths: list[int], budget: int,
                                                       seed: int) -> None:
    """Slicing the gather by a token budget (texts cut across slices, empty texts at any
    place, including at a slice boundary) never changes a text's sum."""
    rng = np.random.default_rng(seed)
    table = rng.standard_normal((50, 8)).astype(np.float32)
    ids = rng.integers(0, 50, size=sum(lengths))
    sums = pool_sums(table, ids, np.array(lengths, dtype=np.int64), budget=budget)
    assert sums.shape == (len(lengths), 8)
    start = 0
    for i, n in enumerate(lengths):
        want = table[ids[start : start + n]].sum(axis=0)
        np.testing.assert_allclose(sums[i], want, atol=1e-4)
        start += n


@settings(max_examples=100, deadline=None)
@given(lengths=st.lists(st.integers(0, 80), max_size=40), seed=st.integers(0, 2**32 - 1))
def test_short_texts_pooled_by_position_sum_exactly_as_a_row_sum(lengths: list[int],
                                                                  seed: int) -> None:
    """Texts up to 64 tokens are summed position by position across the batch, longer ones
    each on their own: either way every text's sum is bit for bit its row sum."""
    rng = np.random.default_rng(seed)
    table = rng.standard_normal((300, 16)).astype(np.float32)
    ids = rng.integers(0, 300, size=sum(lengths))
    sums = pool_sums(table, ids, np.array(lengths, dtype=np.int64))
    start = 0
    for i, n in enumerate(lengths):
        want = table[ids[start : start + n]].sum(axis=0) if n else np.zeros(16, np.float32)
        np.testing.assert_array_equal(sums[i], want)
        start += n
