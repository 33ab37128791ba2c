"""pgvector for the PostgreSQL index: vector types, HNSW indexes and search tuning.

Semantic. `embedding` has no fixed dimension; dimension d gets a partial expression index
`record_index_hnsw_{d}` on `(embedding::vector(d))` (halfvec from 2,001 to 4,000 dims;
above, exact only), built by the migration for 256 and otherwise by a background CREATE
INDEX CONCURRENTLY once vectors of that size arrive; until it is valid, search is exact.

Filter first, or HNSW with an iterative scan? Both measured on 100 tenants (datasets) x
1,000 clustered 256-d vectors, tenants independent of clusters, k = 200 (the pool search
asks for), p50 and recall against exact on 2 busy cores:
  1 tenant (1 %)                 filter first 1.4 ms, 1.000 (planner shuns HNSW anyway)
  1 % restrict over all 100k     filter first 61-72 ms, 1.000 | iterative 320-430 ms, 0.73
  10 % restrict                  filter first 50-55 ms, 1.000 | iterative 120-130 ms, 0.97
  20 tenants (20k candidates)    exact 11-15 ms, 1.000        | HNSW 37-49 ms, 0.97
  50 tenants (50k candidates)    exact 57 ms, 1.000           | HNSW 25-43 ms, 0.97
  25 % restrict (25k)            exact 99-135 ms, 1.000       | iterative 58-99 ms, 0.95
  unfiltered 100k                exact 67-85 ms, 1.000        | HNSW 10-17 ms, 0.996
So: count the candidates (datasets x `restrict`) up to EXACT_MAX = 20,000 and, at or
below it, search exactly after filtering (ORDER BY a distance HNSW cannot serve): exact
and no slower there, which also gives the contract's brute-force equality on small sets.
Above it, HNSW with `hnsw.iterative_scan = relaxed_order`, fetching 2k rows and keeping
the best k by exact distance, and searching exactly if the scan still comes back short.
Unrestricted candidate counts are cached per dataset and index_version; restricted ones
are counted in the same statement as the exact search (a one-time filter skips the
distances when over).

At 1M x 256-d over 100 tenants (bench/vectors.py, docs/benchmarks.md), k = 10: the 1 %
tenant (10k) exact p50 5 ms, recall 1.0, where HNSW with a 1 % filter is 28 ms and 0.97.
For the HNSW path two things mattered. `enable_sort = off` while it runs: otherwise the
planner may price a scan + sort below the graph walk (it did for the contract test's
2,400-row dataset), and at 1M a sort is an exact scan of up to 1M rows. And ef_search:
64 gave recall ~0.92 (single queries 0.0) for a 30 % tenant; 1,000 gives 0.99 at p50
~10 ms. The filter passes only a share s of what the graph search visits, so ef_search =
15 x rows fetched / s, between 400 (unfiltered: 0.98) and pgvector's 1,000, with
s = candidates / the index's reltuples. For many rows through a narrow filter (top-200
of a 6.7 % tenant) the iterative walk outgrows ef_search and costs more than the exact
scan (p99 228 vs 175 ms): see `_graph_walk`.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy.types import UserDefinedType

VECTOR_MAX_DIM = 2_000
HALFVEC_MAX_DIM = 4_000
EF_SEARCH_MIN = 400
EF_SEARCH_MAX = 1_000  # pgvector's limit
OVERFETCH = 2
EF_PER_HIT = 15


class Vec(UserDefinedType[Any]):
    """pgvector's `vector` / `halfvec` with an optional dimension, for CASTs."""

    cache_ok = True

    def __init__(self, name: str = "vector", dim: int | None = None) -> None:
        self.name, self.dim = name, dim

    def get_col_spec(self, **_: Any) -> str:
        return f"{self.name}({self.dim})" if self.dim else self.name


def hnsw_kind(dim: int) -> str | None:
    if 0 < dim <= VECTOR_MAX_DIM:
        return "vector"
    if dim <= HALFVEC_MAX_DIM:
        return "halfvec"
    return None


def hnsw_index_name(dim: int) -> str:
    return f"record_index_hnsw_{int(dim)}"


def hnsw_index_ddl(dim: int, *, concurrently: bool) -> str:
    """The DDL of one dimension's HNSW index; migration 0004 writes the same for 256."""
    d, kind = int(dim), hnsw_kind(dim)
    if kind is None:
        raise ValueError(f"no HNSW index for {d} dimensions")
    how = "CONCURRENTLY " if concurrently else ""
    return (f"CREATE INDEX {how}IF NOT EXISTS {hnsw_index_name(d)} ON record_index "
            f"USING hnsw ((embedding::{kind}({d})) {kind}_cosine_ops) "
            f"WHERE vector_dims(embedding) = {d}")


def share(candidates: int, graph: float) -> float:
    return min(1.0, candidates / graph) if graph > 0 else 1.0


def ef_search(k: int, candidates: int, graph: float) -> int:
    """The graph search's candidate list: enough that the share of it passing the
    datasets / `restrict` filter still holds EF_PER_HIT x the rows fetched."""
    ef = math.ceil(EF_PER_HIT * OVERFETCH * k / share(candidates, graph))
    return min(EF_SEARCH_MAX, max(EF_SEARCH_MIN, ef))


def graph_walk(k: int, candidates: int, graph: float) -> float:
    """About how many graph nodes an HNSW search visits: ef_search, or, when the filter
    is narrow and k large, the rows fetched / the filter's share (the iterative scan goes
    on until it has them). Measured at 1M: ~18 us a node against ~0.8 us a candidate for
    the exact scan, so exact wins below ~20 candidates a node: EXACT_MAX at ef 1,000."""
    return max(float(ef_search(k, candidates, graph)),
               OVERFETCH * k / share(candidates, graph))


