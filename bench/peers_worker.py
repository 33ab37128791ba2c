"""The peer side of bench/peers.py: runs in the peers' own venv (bench/.peers-venv), never in
dataloft's, and imports nothing from dataloft.

It reads one JSON command per line on stdin and answers one JSON line on stdout (the real
stdout is kept for the protocol; anything the libraries print goes to stderr). Every latency
is measured here, around the library call alone, so the pipe to the harness is not in it.

Commands:
    {"op": "load", "dir": D, "chroma_url": U}   load D/docs.jsonl + D/vectors.npy into every
                                                peer; answers the load seconds per system
    {"op": "search", "system": S, "q": I}       query I (D/queries.npy, D/queries.jsonl);
                                                answers {"ms", "ids"}
    {"op": "info"}                              versions and index parameters
    {"op": "quit"}
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

TAKE = 10
# LanceDB's docs: nprobes covering ~5-15 % of the partitions, and a refine factor (re-rank
# the PQ candidates with the full vectors) when PQ alone loses too much recall.
NPROBES = 20
REFINE = 10
BATCH = 4096  # rows per `add` call (Chroma caps a batch at ~5,461)


class Peers:
    def __init__(self) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="dataloft-peers-")
        self.qvecs: np.ndarray | None = None
        self.qtext: list[str] = []
        self.info: dict[str, Any] = {}
        self.chroma_local: Any = None
        self.chroma_http: Any = None
        self.lance: Any = None

    # ----------------------------------------------------------------------- load

    def load(self, data_dir: str, chroma_url: str, lance_index: str,
             systems: list[str]) -> dict[str, float]:
        d = Path(data_dir)
        with open(d / "docs.jsonl", encoding="utf-8") as fh:
            docs = [json.loads(line) for line in fh]
        vecs = np.load(d / "vectors.npy")
        self.qvecs = np.load(d / "queries.npy")
        with open(d / "queries.jsonl", encoding="utf-8") as fh:
            self.qtext = [json.loads(line)["text"] for line in fh]
        ids = [x["id"] for x in docs]
        texts = [x["text"] for x in docs]
        out = {}
        if "chroma" in systems:
            out["chroma"] = self._load_chroma_local(ids, texts, vecs)
        http = [n for n in ("chroma-http", "chroma-http-docs") if n in systems]
        if http:  # one collection: the two differ only in what a query asks back
            out.update(dict.fromkeys(http, self._load_chroma_http(chroma_url, ids, texts, vecs)))
        if "lance" in systems or "lance-fts" in systems:
            out.update(self._load_lance(ids, texts, vecs, lance_index, systems))
        return out

    def _chroma_add(self, coll: Any, ids: list[str], texts: list[str], vecs: np.ndarray) -> None:
        for i in range(0, len(ids), BATCH):
            coll.add(ids=ids[i:i + BATCH], documents=texts[i:i + BATCH],
                     embeddings=vecs[i:i + BATCH])

    def _load_chroma_local(self, ids: list[str], texts: list[str], vecs: np.ndarray) -> float:
        import chromadb

        client = chromadb.PersistentClient(path=os.path.join(self.tmp.name, "chroma"))
        t = time.perf_counter()
        # No embedding function: the vectors are handed over. Cosine, as dataloft ranks.
        coll = client.create_collection("bench", embedding_function=None,
                                        metadata={"hnsw:space": "cosine"})
        self._chroma_add(coll, ids, texts, vecs)
        elapsed = time.perf_counter() - t
        self.chroma_local = coll
        self.info["chroma"] = chromadb.__version__
        return elapsed

    def _load_chroma_http(self, url: str, ids: list[str], texts: list[str],
                          vecs: np.ndarray) -> float:
        import chromadb

        host, port = url.rsplit(":", 1)
        client = chromadb.HttpClient(host=host.split("//")[-1], port=int(port))
        t = time.perf_counter()
        coll = client.create_collection("bench", embedding_function=None,
                                        metadata={"hnsw:space": "cosine"})
        self._chroma_add(coll, ids, texts, vecs)
        elapsed = time.perf_counter() - t
        self.chroma_http = coll
        return elapsed

    def _load_lance(self, ids: list[str], texts: list[str], vecs: np.ndarray,
                    index_type: str, systems: list[str]) -> dict[str, float]:
        import lancedb
        import pyarrow as pa
        from lancedb.index import FTS, HnswSq, IvfPq

        db = lancedb.connect(os.path.join(self.tmp.name, "lance"))
        dim = vecs.shape[1]
        table_data = pa.table({
            "id": pa.array(ids, pa.string()), "text": pa.array(texts, pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(
                pa.array(vecs.reshape(-1), pa.float32()), dim)})
        t = time.perf_counter()
        table = db.create_table("bench", data=table_data)
        # IVF_PQ is what LanceDB's docs recommend as the default ANN index; its partition
        # and sub-vector counts are left to LanceDB's defaults for the row count. HNSW
        # (IVF_HNSW_SQ) on request.
        config = (IvfPq(distance_type="cosine") if index_type == "IVF_PQ"
                  else HnswSq(distance_type="cosine"))
        if "lance" in systems:
            table.create_index("vector", config=config)
        t_vec = time.perf_counter()
        # LanceDB's native full-text index (BM25 ranking; English stemming, stop words).
        if "lance-fts" in systems:
            table.create_index("text", config=FTS())
        t_fts = time.perf_counter()
        self.lance = table
        self.info["lancedb"] = lancedb.__version__
        self.info["lance indices"] = [f"{ix.index_type} {ix.index_details}"
                                      for ix in table.list_indices()]
        out = {"lance": t_vec - t, "lance-fts": t_fts - t_vec}
        return {k: v for k, v in out.items() if k in systems}

    # ----------------------------------------------------------------------- search

    def search(self, system: str, q: int) -> dict[str, Any]:
        assert self.qvecs is not None
        vec = self.qvecs[q]
        if system in ("chroma", "chroma-http", "chroma-http-docs"):
            coll = self.chroma_local if system == "chroma" else self.chroma_http
            # -docs asks back what a dataloft answer carries (text, metadata, score).
            include = ["documents", "metadatas", "distances"] if system.endswith("-docs") \
                else []
            t = time.perf_counter()
            res = coll.query(query_embeddings=[vec], n_results=TAKE, include=include)
            ms = (time.perf_counter() - t) * 1000
            return {"ms": ms, "ids": list(res["ids"][0])}
        if system == "lance":
            t = time.perf_counter()
            query = (self.lance.search(vec, vector_column_name="vector").metric("cosine")
                     .nprobes(NPROBES).limit(TAKE).select(["id", "_distance"]))
            if REFINE:
                query = query.refine_factor(REFINE)
            rows = query.to_list()
        elif system == "lance-fts":
            t = time.perf_counter()
            rows = (self.lance.search(self.qtext[q], query_type="fts")
                    .limit(TAKE).select(["id", "_score"]).to_list())
        else:
            raise ValueError(f"unknown system {system}")
        ms = (time.perf_counter() - t) * 1000
        return {"ms": ms, "ids": [r["id"] for r in rows]}


def main() -> int:
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # library chatter goes to stderr, never into the protocol
    sys.stdout = sys.stderr
    peers = Peers()
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        try:
            if op == "load":
                ans: Any = peers.load(cmd["dir"], cmd["chroma_url"], cmd["lance_index"],
                                      cmd["systems"])
            elif op == "search":
                ans = peers.search(cmd["system"], int(cmd["q"]))
            elif op == "info":
                ans = peers.info
            elif op == "quit":
                break
            else:
                raise ValueError(f"unknown op {op}")
            proto.write(json.dumps({"ok": ans}) + "\n")
        except Exception as exc:  # noqa: BLE001 - reported to the harness, which stops
            proto.write(json.dumps({"error": f"{type(exc).__name__}: {exc}"}) + "\n")
    peers.tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
