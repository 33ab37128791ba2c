"""Cheaper graph walks at the same recall? Variants of the walk, paired per query (§40).

bench/graph_recall.py's vectors (WordLlama, SciFact + synthesised abstracts; run it once
for --records to cache them) and its 300 queries, exact top 10 by a full scan. Each
variant is `codes:dims:order:connectivity:expansion_add:dtype:width:rescore`:

- codes: `full` (the vectors as ann.py stores them), `prefix` (the first `dims`
  coordinates, renormalised: WordLlama is Matryoshka-trained), `pca` (projection on the
  top `dims` principal directions of a 20k sample, uncentred, renormalised), `pcaip`
  (the same, not renormalised, inner-product metric);
- order: the graph's insertion order, which is its memory layout: `row` (ann.py's),
  `kmN` (rows grouped by k-means cluster, clusters by their projection on the second
  principal direction), `mixN` (a random 10 % first, then kmN);
- then the walk: `width` wide, the best `rescore` rescored exactly on the float32 matrix.

Per query every variant runs in turn (the first rotating), optionally after a --sleep as a
server's thread sleeps between requests, and/or after reading --thrash MiB (caches go
cold: without it, a walk right after another on the same graph finds it warm). Reported:
recall@10 against exact, thread-CPU median of walk + rescoring, its ratio to the first variant, and
usearch's count of distances computed per walk (load-independent, unlike the CPU).

    PYTHONPATH=src .venv/bin/python bench/walk_variants.py --records 22846 --sleep 0.002 \
        --variants full:256:row:32:128:i8:320:64,pca:128:row:32:128:i8:512:200
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

from graph_recall import setup  # noqa: E402
from usearch.index import Index  # noqa: E402

from dataloft.storage.index.terms import top  # noqa: E402

Codes = Callable[[np.ndarray], np.ndarray]


def unit(a: np.ndarray) -> np.ndarray:
    return (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)


centre = np.zeros(1, dtype=np.float32)


def codes(kind: str, dims: int, basis: np.ndarray) -> Codes:
    if kind in ("full", "fullip"):  # unit vectors: inner product orders as cosine
        return lambda a: a
    if kind == "prefix":
        return lambda a: unit(a[:, :dims])
    if kind == "pca":
        return lambda a: unit(a @ basis[:dims].T)
    if kind == "pcaip":
        return lambda a: (a @ basis[:dims].T).astype(np.float32)
    if kind == "centreip":  # q . (x - m) orders as q . x: the same ranking, spread codes
        return lambda a: (a - centre).astype(np.float32) if len(a) > 300 else a
    raise ValueError(kind)


def kmeans_order(v: np.ndarray, k: int, basis: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(1)
    cent = v[rng.choice(len(v), k, replace=False)].copy()
    label = np.empty(len(v), dtype=np.int64)
    for _ in range(8):
        for s in range(0, len(v), 20_000):
            label[s:s + 20_000] = np.argmax(v[s:s + 20_000] @ cent.T, axis=1)
        for c in range(k):
            members = label == c
            if members.any():
                cent[c] = v[members].mean(0)
        cent = unit(cent)
    rank = np.argsort(np.argsort(cent @ basis[1]))
    return np.lexsort((np.arange(len(v)), rank[label]))


def order(kind: str, v: np.ndarray, basis: np.ndarray) -> np.ndarray:
    if kind == "row":
        return np.arange(len(v))
    if kind.startswith("km"):
        return kmeans_order(v, int(kind[2:]), basis)
    if kind.startswith("mix"):
        grouped = kmeans_order(v, int(kind[3:]), basis)
        first = np.random.default_rng(3).random(len(v)) < 0.1
        return np.concatenate([grouped[first[grouped]], grouped[~first[grouped]]])
    raise ValueError(kind)


def build(v: np.ndarray, spec: list[str], basis: np.ndarray, cache: Path | None
          ) -> tuple[Index, Codes]:
    kind, dims, how, conn, ea, dtype = spec
    f = codes(kind, int(dims), basis)
    path = None if cache is None else cache / f"w{len(v)}-{'-'.join(spec)}.usearch"
    if path is not None and path.exists():
        restored = Index.restore(str(path), view=True)
        assert restored is not None
        return restored, f
    w = f(v)
    index = Index(ndim=int(w.shape[1]), metric="ip" if kind.endswith("ip") else "cos",
                  dtype=dtype, connectivity=int(conn), expansion_add=int(ea))
    rows = order(how, v, basis)
    started = time.process_time()
    for s in range(0, len(v), 8192):
        chunk = rows[s:s + 8192]
        index.add(chunk.astype(np.uint64), np.ascontiguousarray(w[chunk]), threads=1)
    print(f"built {spec}: {time.process_time() - started:.1f} CPU s", flush=True)
    if path is None:
        return index, f
    index.save(str(path))
    viewed = Index.restore(str(path), view=True)  # as a restarted server views it
    assert viewed is not None
    return viewed, f


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=int, default=22_846)
    p.add_argument("--variants", default="full:256:row:32:128:i8:320:64")
    p.add_argument("--passes", type=int, default=2)
    p.add_argument("--sleep", type=float, default=0.0, help="seconds before each walk")
    p.add_argument("--thrash", type=int, default=0,
                   help="MiB read before each walk, untimed: every walk starts on caches "
                        "another graph's walk did not leave warm")
    p.add_argument("--cache", type=Path, default=Path("/tmp/semgraph"))
    p.add_argument("--save", action="store_true", help="keep each graph under --cache")
    args = p.parse_args()
    v, q, exact, pks = setup(args.records, args.cache)
    sample = v[np.random.default_rng(0).choice(len(v), min(len(v), 20_000), replace=False)]
    basis = np.linalg.svd(sample, full_matrices=False)[2]
    global centre
    centre = sample.mean(0)
    junk = np.ones(args.thrash << 18, dtype=np.float32)
    graphs: dict[str, tuple[Index, Codes]] = {}
    runs = []
    for variant in args.variants.split(","):
        spec = variant.split(":")
        key = ":".join(spec[:6])
        if key not in graphs:
            graphs[key] = build(v, spec[:6], basis, args.cache if args.save else None)
        index, f = graphs[key]
        runs.append((variant, index, f(q), int(spec[6]), int(spec[7])))
    spent: dict[str, list[int]] = {r[0]: [] for r in runs}
    found = dict.fromkeys(spent, 0)
    walked = dict.fromkeys(spent, 0)
    for n in range(args.passes):
        for i in range(len(q)):
            for name, index, coded, width, rescore in runs[i % len(runs):] + runs[:i % len(runs)]:
                index.expansion_search = width  # type: ignore[misc]
                if args.sleep:
                    time.sleep(args.sleep)
                if len(junk):
                    junk.sum()
                t = time.thread_time_ns()
                match = index.search(coded[i], rescore, threads=1)
                rows = np.asarray(match.keys, dtype=np.int64)
                hits = top(v[rows] @ q[i], pks[rows], 10, None)
                spent[name].append(time.thread_time_ns() - t)
                if n == 0:
                    found[name] += len(exact[i] & {pk for pk, _ in hits})
                    walked[name] += int(match.computed_distances)
    first = float(np.median(spent[runs[0][0]]))
    for name in spent:
        cpu = float(np.median(spent[name]))
        print(f"{name:38s} recall@10 {found[name] / (10 * len(q)):.4f}  {cpu / 1e3:6.0f} us  "
              f"x{cpu / first:.2f}  {walked[name] / len(q):6.0f} distances", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
