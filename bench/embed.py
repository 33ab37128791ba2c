"""WordLlama ingest embedding: padded pooling (before) against pooling over real tokens (now).

Embeds the SciFact corpus (5,183 documents) the way a sync does: texts rendered as the
server renders a JSONL row (`key: value` lines), handed to the embedder 512 at a time
(sync/tasks.py EMBED_BATCH). "old" is the pooling the embedder used before, kept here as a
reference: sort each 512-text batch by length, then WordLlama's own `embed` (batches of 64
padded to their longest text, `batch x longest x 256` float32 times a mask). "new" is
`WordLlamaEmbedder.embed`. Rounds interleave the two (alternating which goes first), after
one warm-up of each; it prints the median wall and CPU seconds (process CPU, all threads:
the tokenizer runs on several) per pass, the ratios, and the largest difference between the
two sets of vectors.

    PYTHONPATH=src .venv/bin/python bench/embed.py [--rounds 5] [--data DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from common import DEFAULT_DATA, load_corpus, machine  # noqa: E402

from dataloft.ingest.embed.base import normalise  # noqa: E402
from dataloft.ingest.embed.wordllama import WordLlamaEmbedder, _load  # noqa: E402

BATCH = 512  # texts per embed call, as a sync hands them over


def old_embed(texts: Sequence[str]) -> np.ndarray:
    """The embedder before: length-sorted inside the call, WordLlama's padded pooling."""
    model, _ = _load()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    vectors = np.empty((len(texts), 256), dtype=np.float32)
    vectors[order] = model.embed([texts[i] for i in order], norm=False, batch_size=64)
    return normalise(vectors)


def run(embed: Callable[[Sequence[str]], np.ndarray],
        texts: Sequence[str]) -> tuple[float, float, np.ndarray]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = np.vstack([embed(texts[i : i + BATCH]) for i in range(0, len(texts), BATCH)])
    return time.perf_counter() - wall, time.process_time() - cpu, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = ap.parse_args()
    texts = [f"title: {d['title']}\ntext: {d['text']}\ndoc_id: {d['_id']}"
             for d in load_corpus(args.data)]
    for key, value in machine().items():
        print(f"{key}: {value}")
    print(f"texts: {len(texts)}, characters: {sum(map(len, texts)):,}")
    systems: dict[str, Callable[[Sequence[str]], np.ndarray]] = {
        "old": old_embed, "new": WordLlamaEmbedder().embed}
    outs = {name: run(embed, texts)[2] for name, embed in systems.items()}  # warm-up
    print(f"max |new - old| over all vectors: {np.abs(outs['new'] - outs['old']).max():.2e}")
    walls: dict[str, list[float]] = {name: [] for name in systems}
    cpus: dict[str, list[float]] = {name: [] for name in systems}
    for r in range(args.rounds):
        names = list(systems) if r % 2 == 0 else list(systems)[::-1]
        for name in names:
            wall, cpu, _ = run(systems[name], texts)
            walls[name].append(wall)
            cpus[name].append(cpu)
            print(f"round {r + 1} {name}: wall {wall:.3f} s, cpu {cpu:.3f} s", flush=True)
    med = {name: (statistics.median(walls[name]), statistics.median(cpus[name]))
           for name in systems}
    for name, (wall, cpu) in med.items():
        print(f"median {name}: wall {wall:.3f} s, cpu {cpu:.3f} s")
    print(f"new / old: wall {med['new'][0] / med['old'][0]:.3f}, "
          f"cpu {med['new'][1] / med['old'][1]:.3f}")
    print(f"loadavg after: {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
