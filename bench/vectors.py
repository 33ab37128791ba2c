"""Tenant-filtered vector search on PostgreSQL + pgvector at 1M records (issue #5).

Starts a throwaway PostgreSQL 18 + pgvector the way the tests do (tests/support/pg.py,
data directory under /tmp, deleted at the end), migrates it, and bulk-loads N records x
256-d float32 vectors over 100 datasets (tenants) with COPY into the adapter's own tables
(`records`, and `record_index` with an empty tsvector), the rows the adapter's `added()`
writes, without its per-row text parsing and one statement per 500 rows (not timed at
1M; COPY took 21-139 s on the shared 2-core box). Then it builds the HNSW index
with the adapter's own DDL and sends top-k queries for each tenant class through
`PostgresIndex.semantic` (the adapter's search method, in a read unit of work as search
uses), reporting p50 / p99 wall time and recall@k against exact (NumPy brute force).

Data: vectors from a Gaussian mixture (1,000 clusters of uneven size in a 48-d latent
space, mapped into 256-d, plus small isotropic noise: neighbourhoods are real, so recall
means something; see Mixture), independent of the tenant, the worst case for filtering:
a tenant's nearest neighbours are scattered over the whole graph. Tenants: one holds 30 %, one
exactly 1 %, the other 98 share the rest by a Zipf law (13 %, 6.7 %, 4.4 %, ... ~2.7k
for the median). Rows are written in per-tenant batches ("files", 200-5,000 records) in
shuffled order, as syncs interleave them. Queries are fresh draws from the mixture.

    PYTHONPATH=src nice -n 19 .venv/bin/python bench/vectors.py                  # 1M
    PYTHONPATH=src nice -n 19 .venv/bin/python bench/vectors.py --records 100000
    ... --url postgresql+psycopg://...  --skip-load   # query an already loaded database
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.support.pg
sys.path.insert(0, str(REPO / "src"))

from common import machine, percentile, print_table, process_tree  # noqa: E402
from sqlalchemy import text  # noqa: E402

from dataloft.kit import migrate  # noqa: E402
from dataloft.kit.db import Database  # noqa: E402
from dataloft.storage.index import postgres as pg_index  # noqa: E402
from dataloft.storage.index import postgres_vectors as pg_vectors  # noqa: E402

ORG = "org_bench"
DIM = 256
CLUSTERS = 1_000
SUBSPACE = 16


def dataset_id(t: int) -> str:
    return f"ds_bench_{t:03d}"  # fixed width: the binary COPY below relies on it


# --------------------------------------------------------------------------- data


def tenant_sizes(n: int, tenants: int) -> np.ndarray:
    """Tenant 0 holds 30 %, tenant 1 exactly 1 %, the rest share the remainder by Zipf."""
    big, one = round(0.30 * n), round(0.01 * n)
    rest = n - big - one
    weights = 1.0 / np.arange(1, tenants - 1)
    sizes = np.floor(rest * weights / weights.sum()).astype(np.int64)
    sizes[: rest - sizes.sum()] += 1
    return np.concatenate([[big, one], sizes])


LATENT = 48


@dataclass
class Mixture:
    """A Gaussian mixture in a LATENT-d space, mapped linearly into DIM and normalised
    (like embeddings: low intrinsic dimension, clusters that overlap and touch). With
    `subspaces`, each cluster instead spreads over its own random 16-d subspace: clusters
    are then nearly orthogonal, which cuts the HNSW graph into islands (kept to show it)."""

    centers: np.ndarray  # (C, LATENT) or (C, DIM)
    mixing: np.ndarray  # (DIM, LATENT), or (C, DIM, 16) bases with `subspaces`
    weights: np.ndarray  # (C,)
    subspaces: bool = False

    @classmethod
    def make(cls, rng: np.random.Generator, subspaces: bool = False) -> Mixture:
        if subspaces:
            centers = rng.normal(size=(CLUSTERS, DIM)).astype(np.float32)
            centers /= np.linalg.norm(centers, axis=1, keepdims=True)
            bases = rng.normal(size=(CLUSTERS, DIM, SUBSPACE)).astype(np.float32)
            mixing = bases / np.sqrt(DIM)
        else:
            centers = rng.normal(size=(CLUSTERS, LATENT)).astype(np.float32)
            mixing = rng.normal(size=(DIM, LATENT)).astype(np.float32) / np.sqrt(LATENT)
        weights = rng.lognormal(0, 1, CLUSTERS)
        return cls(centers, mixing, weights / weights.sum(), subspaces)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n unit vectors, in random order."""
        counts = rng.multinomial(n, self.weights)
        out = np.empty((n, DIM), dtype=np.float32)
        at = 0
        for c, m in enumerate(counts):
            if not m:
                continue
            if self.subspaces:
                z = rng.normal(size=(m, SUBSPACE)).astype(np.float32) * 0.6
                noise = rng.normal(size=(m, DIM)).astype(np.float32) * (0.08 / np.sqrt(DIM))
                out[at : at + m] = self.centers[c] + z @ self.mixing[c].T + noise
            else:
                z = self.centers[c] + rng.normal(size=(m, LATENT)).astype(np.float32) * 0.5
                noise = rng.normal(size=(m, DIM)).astype(np.float32) * 0.05
                out[at : at + m] = z @ self.mixing.T + noise
            at += m
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out[rng.permutation(n)]


@dataclass
class Corpus:
    vectors: np.ndarray  # (N, d), row i is record pk i + 1
    tenant: np.ndarray  # (N,), tenant of record pk i + 1
    sizes: np.ndarray
    mixture: Mixture


def corpus(n: int, tenants: int, seed: int, subspaces: bool = False) -> Corpus:
    rng = np.random.default_rng(seed)
    mixture = Mixture.make(rng, subspaces)
    sizes = tenant_sizes(n, tenants)
    # Per-tenant batches in shuffled order: pk order is write order, as syncs produce.
    batches = []
    for t, size in enumerate(sizes):
        left = int(size)
        while left:
            b = min(left, int(rng.integers(200, 5_001)))
            batches.append((t, b))
            left -= b
    order = rng.permutation(len(batches))
    tenant = np.concatenate([np.full(batches[i][1], batches[i][0], np.int16) for i in order])
    return Corpus(mixture.sample(rng, n), tenant, sizes, mixture)


# --------------------------------------------------------------------------- load


def _copy_rows(corp: Corpus, lo: int, hi: int) -> tuple[str, bytes]:
    """records rows as COPY text, record_index rows as COPY binary, for pks lo+1..hi."""
    now = int(time.time() * 1000)
    pks = np.arange(lo + 1, hi + 1)
    lines = [f"{pk}\trec_{pk}\t{ORG}\t{dataset_id(t)}\tbench record {pk}\t{{}}\t{now}\t{now}\n"
             for pk, t in zip(pks.tolist(), corp.tenant[lo:hi].tolist(), strict=True)]
    row = np.dtype([("nf", ">i2"), ("l_pk", ">i4"), ("pk", ">i8"), ("l_ds", ">i4"),
                    ("ds", "S12"), ("l_tsv", ">i4"), ("tsv", ">i4"), ("l_vec", ">i4"),
                    ("dim", ">i2"), ("unused", ">i2"), ("vec", ">f4", (DIM,))])
    rows = np.zeros(hi - lo, dtype=row)
    rows["nf"], rows["l_pk"], rows["pk"] = 4, 8, pks
    rows["l_ds"] = 12
    rows["ds"] = np.array([dataset_id(t).encode() for t in range(len(corp.sizes))])[
        corp.tenant[lo:hi]]
    rows["l_tsv"], rows["tsv"] = 4, 0  # an empty tsvector: no lexical side here
    rows["l_vec"], rows["dim"], rows["vec"] = 4 + 4 * DIM, DIM, corp.vectors[lo:hi]
    return "".join(lines), rows.tobytes()


def load(url: str, corp: Corpus, maintenance_mem: str, workers: int) -> dict[str, float]:
    migrate.upgrade(url)
    db = Database(url)
    timings: dict[str, float] = {}
    name = pg_vectors.hnsw_index_name(DIM)
    with db.write() as s:
        s.execute(text("INSERT INTO orgs (id, name, created_at, updated_at) "
                       "VALUES (:o, 'bench', 0, 0)"), {"o": ORG})
        for t in range(len(corp.sizes)):
            s.execute(text(
                "INSERT INTO datasets (id, org_id, name, meta, visibility, owner_scope, "
                "settings, embedding_model, embedding_dimension, index_version, created_at, "
                "updated_at) VALUES (:id, :o, :id, '{}', 'private', 'org', '{}', 'bench', "
                ":d, 1, 0, 0)"), {"id": dataset_id(t), "o": ORG, "d": DIM})
        # Built after the load, as one would for a bulk import (inserting into a live
        # graph is several times slower).
        s.execute(text(f"DROP INDEX IF EXISTS {name}"))
    n = len(corp.tenant)
    t0 = time.perf_counter()
    raw = db.write_engine.raw_connection()
    try:
        cur = raw.cursor()
        # The rows are consistent by construction; skip the per-row FK trigger.
        cur.execute("SET session_replication_role = replica")
        chunk = 50_000
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            records, index_rows = _copy_rows(corp, lo, hi)
            with cur.copy("COPY records (pk, id, org_id, dataset_id, text, meta, created_at, "
                          "updated_at) FROM STDIN") as cp:
                cp.write(records)
            with cur.copy("COPY record_index (pk, dataset_id, tsv, embedding) "
                          "FROM STDIN (FORMAT BINARY)") as cp:
                cp.write(b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8)
                cp.write(index_rows)
                cp.write(b"\xff\xff")
            raw.commit()
            print(f"  loaded {hi:,} / {n:,} ({time.perf_counter() - t0:.0f} s)", flush=True)
        cur.execute("SET session_replication_role = DEFAULT")
        raw.commit()
        timings["copy_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        raw.driver_connection.autocommit = True  # type: ignore[union-attr]
        cur.execute("VACUUM ANALYZE records")
        cur.execute("VACUUM ANALYZE record_index")
        timings["analyze_s"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        cur.execute(f"SET maintenance_work_mem = '{maintenance_mem}'")
        cur.execute(f"SET max_parallel_maintenance_workers = {workers}")
        cur.execute(pg_vectors.hnsw_index_ddl(DIM, concurrently=False))
        timings["hnsw_build_s"] = time.perf_counter() - t2
        cur.execute("SELECT pg_relation_size(:n::regclass)".replace(":n", f"'{name}'"))
        timings["hnsw_mib"] = cur.fetchone()[0] / 2**20  # type: ignore[index]
        cur.execute("SELECT pg_relation_size('record_index')")
        timings["table_mib"] = cur.fetchone()[0] / 2**20  # type: ignore[index]
    finally:
        raw.close()
        db.dispose()
    return timings


# --------------------------------------------------------------------------- queries


def exact_top(corp: Corpus, t: int, queries: np.ndarray, k: int) -> np.ndarray:
    """(Q, k) similarity of each query's k-th nearest neighbour within tenant t."""
    members = corp.vectors[corp.tenant == t]
    sims = members @ queries.T  # (n_t, Q)
    kth = np.partition(-sims, k - 1, axis=0)[k - 1]
    return -kth


@dataclass
class Result:
    label: str
    strategy: str
    size: int
    p50: float
    p99: float
    mean: float
    recall: float
    min_recall: float


Search = Callable[[Any, str, np.ndarray, int], list[tuple[int, float]]]


def strategies(index: pg_index.PostgresIndex, corp: Corpus) -> dict[str, Search]:
    # "adapter" is the product path; the others force one plan, to compare.
    sizes = {dataset_id(t): int(n) for t, n in enumerate(corp.sizes)}

    def exact(s: Any, ds: str, q: np.ndarray, k: int) -> list[tuple[int, float]]:
        pg_index._register(s)  # noqa: SLF001
        return index._exact(s, [ds], q, k)  # noqa: SLF001

    def hnsw(s: Any, ds: str, q: np.ndarray, k: int) -> list[tuple[int, float]]:
        pg_index._register(s)  # noqa: SLF001
        graph = index._graph_size(s, DIM)  # noqa: SLF001
        ef = pg_vectors.ef_search(k, sizes[ds], graph)
        return index._approximate(s, [ds], q, k, None, ef)  # noqa: SLF001

    return {"adapter": lambda s, ds, q, k: index.semantic(s, [ds], q, k),
            "exact": exact, "hnsw": hnsw}


def run_queries(db: Database, corp: Corpus, classes: dict[str, int], k: int, count: int,
                which: list[str], seed: int) -> list[Result]:
    index = pg_index.PostgresIndex(build_indexes=False)
    searches = strategies(index, corp)
    rng = np.random.default_rng(seed + 1)
    out = []
    for label, t in classes.items():
        queries = corp.mixture.sample(rng, count)
        kth = exact_top(corp, t, queries, k)
        for name in which:
            search = searches[name]
            with db.read() as s:  # warm-up: connection, pgvector types, count cache
                for q in queries[:5]:
                    search(s, dataset_id(t), q, k)
            times, recalls = [], []
            for q, limit in zip(queries, kth, strict=True):
                t0 = time.perf_counter()
                with db.read() as s:
                    hits = search(s, dataset_id(t), q, k)
                times.append((time.perf_counter() - t0) * 1000)
                # A hit counts when it is as near as the exact k-th neighbour (ties allowed).
                good = sum(1 for _, score in hits[:k] if score >= limit - 1e-5)
                recalls.append(min(good, k) / k)
            out.append(Result(label, name, int(corp.sizes[t]), percentile(times, 50),
                              percentile(times, 99), float(np.mean(times)),
                              float(np.mean(recalls)), float(np.min(recalls))))
            r = out[-1]
            print(f"  {label:>12} {name:>8}: p50 {r.p50:6.1f} ms  p99 {r.p99:6.1f} ms  "
                  f"recall@{k} {r.recall:.3f} (min {r.min_recall:.1f})", flush=True)
    return out


def tenant_classes(sizes: np.ndarray) -> dict[str, int]:
    order = np.argsort(sizes)
    classes = {"1 %": 1, "30 %": 0}
    for t in np.argsort(-sizes)[1:3]:  # the next largest: 13 %, 6.7 %
        classes[f"{100 * sizes[t] / sizes.sum():.1f} %"] = int(t)
    classes["median"] = int(order[len(order) // 2])
    return classes


# --------------------------------------------------------------------------- main


@contextmanager
def server(url: str | None, shared_buffers: str) -> Iterator[str]:
    if url:
        yield url
        return
    from tests.support.pg import postgres_server

    settings = {"shared_buffers": shared_buffers, "effective_cache_size": "8GB",
                "max_wal_size": "8GB", "checkpoint_timeout": "30min",
                "max_worker_processes": "8", "max_parallel_workers": "4"}
    with postgres_server(settings=settings) as started:
        yield started


@contextmanager
def reniced(url: str, niceness: int) -> Iterator[None]:
    """Queries run at normal priority (the load ran under nice 19): renice the server's
    processes and this one while inside, when allowed (as root), and put them back after."""
    port = url.rsplit(":", 1)[1].split("/")[0]
    postmasters = subprocess.run(["pgrep", "-f", f"postgres -D .* -p {port} "],
                                 capture_output=True, text=True, check=False).stdout.split()
    if os.geteuid() != 0 or not postmasters:
        yield
        return
    before = os.getpriority(os.PRIO_PROCESS, int(postmasters[0]))
    mine = os.getpriority(os.PRIO_PROCESS, 0)

    def renice(value: int) -> None:
        # New backends fork from the postmaster and inherit its niceness.
        for pid in {p for pm in postmasters for p in process_tree(int(pm))}:
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, pid, value)

    renice(niceness)
    os.setpriority(os.PRIO_PROCESS, 0, niceness)
    try:
        yield
    finally:
        renice(before)
        os.setpriority(os.PRIO_PROCESS, 0, mine)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--tenants", type=int, default=100)
    ap.add_argument("--queries", type=int, default=200, help="per tenant class")
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--strategies", default="adapter,exact,hnsw")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--data", choices=["latent", "subspaces"], default="latent",
                    help="the Gaussian mixture (see Mixture)")
    ap.add_argument("--url", help="an existing database instead of a throwaway server")
    ap.add_argument("--no-queries", action="store_true", help="load and build only")
    ap.add_argument("--skip-load", action="store_true", help="with --url: already loaded")
    ap.add_argument("--shared-buffers", default="3GB")
    ap.add_argument("--maintenance-work-mem", default="3GB")
    ap.add_argument("--workers", type=int, default=1,
                    help="max_parallel_maintenance_workers for the HNSW build")
    ap.add_argument("--query-niceness", type=int, default=0)
    args = ap.parse_args()

    for key, value in machine().items():
        print(f"{key}: {value}")
    t0 = time.perf_counter()
    corp = corpus(args.records, args.tenants, args.seed, args.data == "subspaces")
    print(f"generated {args.records:,} x {DIM} vectors in {time.perf_counter() - t0:.0f} s; "
          f"tenant sizes {corp.sizes[:4].tolist()} ... median {int(np.median(corp.sizes))}")
    with server(args.url, args.shared_buffers) as url:
        if not args.skip_load:
            timings = load(url, corp, args.maintenance_work_mem, args.workers)
            print("load: " + ", ".join(f"{k} {v:,.1f}" for k, v in timings.items()))
        if args.no_queries:
            return
        db = Database(url)
        try:
            with reniced(url, args.query_niceness):
                results = run_queries(db, corp, tenant_classes(corp.sizes), args.k,
                                      args.queries, args.strategies.split(","), args.seed)
        finally:
            db.dispose()
    print()
    print_table(["tenant", "vectors", "strategy", "p50", "p99", "mean", f"recall@{args.k}",
                 "min"],
                [[r.label, f"{r.size:,}", r.strategy, f"{r.p50:.1f} ms", f"{r.p99:.1f} ms",
                  f"{r.mean:.1f} ms", f"{r.recall:.3f}", f"{r.min_recall:.1f}"]
                 for r in results])


if __name__ == "__main__":
    main()
