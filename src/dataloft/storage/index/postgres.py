"""PostgreSQL index adapter: `tsvector` BM25 plus pgvector HNSW, in `record_index`.

One row per record (migration 0004), written in the caller's transaction, so the index
commits and rolls back with the records, and searches read the session's snapshot.

Lexical. `to_tsvector('english')` (snowball stems, stop words dropped) of the text with
diacritics folded in Python (no `unaccent` needed); a leading Markdown heading line is
weighted 'A' and counts twice. A query is the OR of its words (each quoted into
`to_tsquery`, so no query syntax reaches the server), scored by BM25 in SQL (k1 1.2,
b 0.75; a split table row's matched parts are one document, storage/index/rows.py): tf
per term from `ts_rank_cd` of that one term, length = distinct lexemes, and
df / N / average length over the matched rows the caller may see (no extra scan, and
nothing outside `restrict` shapes a score). SciFact (5,183 docs, 300 queries), nDCG@10 /
p50 on 2 busy cores: BM25 here 0.682 / 32 ms; `ts_rank_cd` of the OR query 0.37-0.41 /
110-130 ms (no idf: common words dominate); SQLite FTS5 0.687. Cost grows with the
matched rows: ~0.35-0.5 s for a multi-word query over one 104k-doc dataset (ts_rank_cd:
the same), ~30 ms for a 1k-doc tenant of a 207k-row table. Rows stay inline and
uncompressed (toast_tuple_target): TOASTed tsvectors made ranking ~8x slower.

Semantic: pgvector, HNSW or exact by the candidates' count; see `postgres_vectors.py`.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
from pgvector import Vector
from pgvector.psycopg import register_vector
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Engine,
    Float,
    String,
    bindparam,
    cast,
    column,
    delete,
    func,
    literal_column,
    null,
    select,
    table,
    text,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import TSQUERY
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import Select

from dataloft.kit.spool import Spool
from dataloft.models import Dataset, Record
from dataloft.storage.index.base import IndexRow, tokens
from dataloft.storage.index.postgres_vectors import (
    EF_SEARCH_MAX,
    OVERFETCH,
    Vec,
    ef_search,
    graph_walk,
    hnsw_index_ddl,
    hnsw_index_name,
    hnsw_kind,
)
from dataloft.storage.index.rows import row_key

log = logging.getLogger("dataloft.index")

_BATCH = 500
# Candidate sets up to this size are searched exactly (see the module docstring).
EXACT_MAX = 20_000
# HNSW: vector supports up to 2,000 dimensions, halfvec up to 4,000; above that, exact only.
_MAX_DIM = 16_000  # of a stored vector
_MAX_SCAN_TUPLES = 50_000
_COUNT_CACHE = 4_096
# tsvector is capped at 1 MB; indexing the first 500k characters keeps any record legal.
_TSV_MAX_CHARS = 500_000
# ts_rank_cd weights for {D, C, B, A}: a heading word counts twice a body word.
_TF_WEIGHTS = "'{0.5, 0.5, 0.5, 1.0}'::float4[]"
# BM25 parameters (SQLite's FTS5 uses the same).
_K1, _B = 1.2, 0.75
_CONFIG = "'english'::regconfig"
_HEADING = re.compile(r"[ \t]{0,3}#{1,6}[ \t]+[^\n]*\S[^\n]*")

_index = table("record_index", column("pk", BigInteger), column("dataset_id", String),
               column("tsv"), column("embedding"))


def fold(value: str) -> str:
    """The text with diacritics removed (café -> cafe, as SQLite's remove_diacritics does)
    and NULs, which PostgreSQL text cannot hold, blanked."""
    decomposed = unicodedata.normalize("NFKD", value.replace("\x00", " "))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _split_heading(value: str) -> tuple[str, str]:
    match = _HEADING.match(value)
    if match is None:
        return "", value
    return match.group(0).lstrip(" \t#"), value[match.end():]


def _register(session: Session) -> None:
    """Teach this connection pgvector's binary format (once per pooled connection)."""
    raw = session.connection().connection.dbapi_connection
    if raw is not None and raw.adapters.types.get("vector") is None:
        register_vector(raw)  # type: ignore[arg-type]


class PostgresIndex:
    def __init__(self, *, build_indexes: bool = True, exact_max: int = EXACT_MAX) -> None:
        self.exact_max = exact_max
        # Dimensions whose HNSW index is known valid, and those being built by this process.
        self._ready: set[int] = set()
        self._building: set[int] = set()
        self._lock = threading.Lock()
        self._build_indexes = build_indexes
        self._counts: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._has_iterative_scan: bool | None = None

    # The database's own indexes are current at commit: nothing to settle after a sync.
    settles = False

    def settle(self, dataset_id: str, timeout_s: float) -> None:
        return None

    def ahead(self, dataset_id: str, records: Spool, count: int, dimension: int) -> None:
        return None  # nothing in process to make

    def landed(self, session: Session, dataset_id: str, first: int, count: int) -> None:
        return None

    def abandon(self, dataset_id: str) -> None:
        return None

    # --- writes (inside the caller's transaction) -------------------------------------

    def added(self, session: Session, rows: Sequence[IndexRow]) -> None:
        if not rows:
            return
        _register(session)
        dims: set[int] = set()
        unusable = 0
        stmt = text(
            "INSERT INTO record_index (pk, dataset_id, tsv, embedding) VALUES (:pk, :ds, "
            f"setweight(to_tsvector({_CONFIG}, :head), 'A') || to_tsvector({_CONFIG}, :body), "
            "CAST(:vec AS vector))")
        for i in range(0, len(rows), _BATCH):
            params = []
            for r in rows[i : i + _BATCH]:
                head, body = _split_heading(fold(r.text[:_TSV_MAX_CHARS]))
                vec = None
                array = np.frombuffer(r.vector or b"", dtype="<f4")
                # pgvector refuses NaN, infinities and > 16,000 dimensions: such a record
                # stays lexical only, rather than failing the whole sync.
                if 0 < len(array) <= _MAX_DIM and np.isfinite(array).all():
                    vec = Vector(array)
                    dims.add(len(array))
                elif len(array):
                    unusable += 1
                params.append({"pk": r.pk, "ds": r.dataset_id, "head": head, "body": body,
                               "vec": vec})
            session.execute(stmt, params)
        if unusable:
            log.warning("%d vectors with NaN, infinity or > %d dimensions not indexed",
                        unusable, _MAX_DIM)
        for dim in dims:
            self._ensure_hnsw(session, dim)

    def removed(self, session: Session, pks: Sequence[int]) -> None:
        for i in range(0, len(pks), _BATCH):
            chunk = [int(pk) for pk in pks[i : i + _BATCH]]
            session.execute(delete(_index).where(_index.c.pk.in_(chunk)))

    # --- reads ----------------------------------------------------------------------------

    def lexical(self, session: Session, dataset_ids: Sequence[str], query: str, k: int,
                restrict: ColumnElement[bool] | None = None) -> list[tuple[int, float]]:
        terms = self._terms(session, query)
        if not terms or not dataset_ids or k <= 0:
            return []
        tsv = _index.c.tsv
        matches_any = tsv.op("@@")(cast(bindparam("any", " | ".join(f"( {t} )" for t in terms),
                                                   String), TSQUERY))
        # Weighted term frequency: ts_rank_cd of a one-term query, normalisation 0, is the
        # sum of the weights of its occurrences; / 0.5 makes a body occurrence count 1.
        tfs = [(func.ts_rank_cd(literal_column(_TF_WEIGHTS), tsv,
                                cast(bindparam(f"t{i}", t, String), TSQUERY), 0) / 0.5)
               .label(f"tf{i}") for i, t in enumerate(terms)]
        # One document per table row (storage/index/rows.py): a split row's matched parts
        # add up their term frequencies and lengths, and each part gets the row's score.
        base = (select(_index.c.pk, row_key().label("row"),
                       cast(func.length(tsv), Float).label("len"), *tfs)
                .join(Record, Record.pk == _index.c.pk)
                .where(_index.c.dataset_id.in_(list(dataset_ids)), matches_any))
        matched = (base if restrict is None else base.where(restrict)).cte("matched")
        grouped = (select(matched.c.row, func.sum(matched.c.len).label("len"),
                          *[func.sum(matched.c[f"tf{i}"]).label(f"tf{i}")
                            for i in range(len(terms))])
                   .group_by(matched.c.row).cte("grouped"))
        scored = _bm25(grouped, len(terms))
        stmt = (select(matched.c.pk, scored.c.score)
                .join(scored, scored.c.row == matched.c.row)
                .order_by(scored.c.score.desc(), matched.c.pk).limit(k))
        return [(int(pk), float(s)) for pk, s in session.execute(stmt)]

    @staticmethod
    def _terms(session: Session, query: str) -> list[str]:
        """The query's words as tsquery texts, as the documents' configuration parses them
        (stemmed; stop words gone; `foo_bar` a phrase), without duplicates. Each word is
        quoted for to_tsquery: inside quotes only ' and \\ are special, and \\w+ has
        neither, so no query syntax reaches the server."""
        words = list(dict.fromkeys(tokens(fold(query))))
        if not words:
            return []
        parsed = session.scalars(text(
            f"SELECT to_tsquery({_CONFIG}, w)::text FROM unnest(CAST(:words AS text[])) AS w"),
            {"words": [f"'{w}'" for w in words]})
        return [t for t in dict.fromkeys(parsed) if t]

    def semantic(self, session: Session, dataset_ids: Sequence[str], vector: np.ndarray, k: int,
                 restrict: ColumnElement[bool] | None = None) -> list[tuple[int, float]]:
        q = np.asarray(vector, dtype=np.float32).ravel()
        dim = int(q.size)
        if not dataset_ids or k <= 0 or not 0 < dim <= _MAX_DIM:  # none stored above
            return []
        # Like the SQLite adapter: only datasets whose embedder gives vectors of this length.
        datasets = session.execute(select(Dataset.id, Dataset.index_version).where(
            Dataset.id.in_(list(dataset_ids)), Dataset.embedding_dimension == dim)).all()
        ids = [ds for ds, _ in datasets]
        if not ids:
            return []
        _register(session)
        graph: float | None = None
        if restrict is None:
            candidates = self._sizes(session, datasets)
            if candidates <= self.exact_max:
                return self._exact(session, ids, q, k) if candidates else []
            # A walk through a narrow filter for many rows can cost more than the scan.
            graph = self._graph_size(session, dim)
            if candidates <= self.exact_max * graph_walk(k, candidates, graph) / EF_SEARCH_MAX:
                return self._exact(session, ids, q, k)
        else:
            hits, candidates = self._filter_first(session, ids, q, k, restrict)
            if candidates <= self.exact_max:
                return hits
        if np.any(q) and self._ensure_hnsw(session, dim):
            if graph is None:
                graph = self._graph_size(session, dim)
            hits = self._approximate(session, ids, q, k, restrict, ef_search(k, candidates, graph))
            if len(hits) >= min(k, candidates):
                return hits
            log.info("HNSW scan gave %d of %d hits; searching exactly", len(hits), k)
        return self._exact(session, ids, q, k, restrict)

    def vectors(self, session: Session, pks: Sequence[int]) -> dict[int, bytes]:
        if not pks:
            return {}
        _register(session)
        out: dict[int, bytes] = {}
        for i in range(0, len(pks), _BATCH):
            rows = session.execute(select(_index.c.pk, _index.c.embedding).where(
                _index.c.pk.in_([int(pk) for pk in pks[i : i + _BATCH]]),
                _index.c.embedding.is_not(None)))
            out.update({int(pk): np.asarray(v.to_numpy(), dtype="<f4").tobytes()
                        for pk, v in rows})
        return out

    # --- semantic internals ------------------------------------------------------------

    @staticmethod
    def _restricted(stmt: Select[Any], restrict: ColumnElement[bool] | None) -> Select[Any]:
        if restrict is None:
            return stmt
        return stmt.join(Record, Record.pk == _index.c.pk).where(restrict)

    def _sizes(self, session: Session, datasets: Sequence[Any]) -> int:
        """How many vectors the datasets hold, cached per dataset and index_version (read in
        this snapshot). Only a choice of plan rests on it, never a result."""
        total, missing = 0, []
        with self._lock:
            for ds, version in datasets:
                cached = self._counts.get(ds)
                if cached is not None and cached[0] == version:
                    total += cached[1]
                else:
                    missing.append((ds, version))
        if missing:
            counted: dict[str, int] = dict(session.execute(
                select(_index.c.dataset_id, func.count())
                .where(_index.c.dataset_id.in_([ds for ds, _ in missing]),
                       _index.c.embedding.is_not(None))
                .group_by(_index.c.dataset_id)).all())
            with self._lock:
                for ds, version in missing:
                    n = int(counted.get(ds, 0))
                    total += n
                    self._counts[ds] = (version, n)
                    self._counts.move_to_end(ds)
                while len(self._counts) > _COUNT_CACHE:
                    self._counts.popitem(last=False)
        return total

    def _filter_first(self, session: Session, ids: list[str], q: np.ndarray, k: int,
                      restrict: ColumnElement[bool]) -> tuple[list[tuple[int, float]], int]:
        """Exact search over the records `restrict` allows, in one statement, if there are
        at most EXACT_MAX of them; returns (hits, candidates up to EXACT_MAX + 1). With
        more, no distance is computed (a one-time filter on the count): the caller goes
        approximate, having paid only for counting."""
        allowed = (select(Record.pk).where(Record.dataset_id.in_(ids), restrict)
                   .limit(self.exact_max + 1).cte("allowed").prefix_with("MATERIALIZED"))
        count = select(func.count()).select_from(allowed).scalar_subquery()
        distance = _index.c.embedding.op("<=>", return_type=Float)(self._query(q))
        hits = (select(_index.c.pk, distance.label("distance"))
                .join(allowed, allowed.c.pk == _index.c.pk)
                .where(_index.c.dataset_id.in_(ids), self._dims(len(q)), count <= self.exact_max)
                .order_by(literal_column("distance"), _index.c.pk).limit(k).subquery("hits"))
        stmt = union_all(select(hits.c.pk, hits.c.distance), select(null(), cast(count, Float)))
        rows = session.execute(stmt).all()
        candidates = next(int(d) for pk, d in rows if pk is None)
        found = sorted(((pk, d) for pk, d in rows if pk is not None),
                       key=lambda r: (r[1] if r[1] == r[1] else math.inf, r[0]))  # NaN last
        return _scored(found), candidates

    @staticmethod
    def _query(q: np.ndarray) -> ColumnElement[Any]:
        return cast(bindparam("q", Vector(q)), Vec())

    def _exact(self, session: Session, ids: list[str], q: np.ndarray, k: int,
               restrict: ColumnElement[bool] | None = None) -> list[tuple[int, float]]:
        # `embedding <=> q` is not the indexed expression, so this never uses HNSW.
        distance = _index.c.embedding.op("<=>", return_type=Float)(self._query(q))
        stmt = (select(_index.c.pk, distance.label("distance"))
                .where(_index.c.dataset_id.in_(ids), self._dims(len(q)))
                .order_by(literal_column("distance"), _index.c.pk).limit(k))
        return _scored(session.execute(self._restricted(stmt, restrict)))

    def _approximate(self, session: Session, ids: list[str], q: np.ndarray, k: int,
                     restrict: ColumnElement[bool] | None, ef: int) -> list[tuple[int, float]]:
        dim = len(q)
        kind = hnsw_kind(dim)
        assert kind is not None
        # ORDER BY the indexed expression, so the planner can walk the HNSW graph.
        indexed = cast(_index.c.embedding, Vec(kind, dim)).op("<=>", return_type=Float)(
            cast(self._query(q), Vec(kind, dim)))
        exact_distance = _index.c.embedding.op("<=>", return_type=Float)(self._query(q))
        inner = self._restricted(
            select(_index.c.pk, exact_distance.label("distance"))
            .where(_index.c.dataset_id.in_(ids), self._dims(dim))
            .order_by(indexed).limit(OVERFETCH * k), restrict).subquery()
        stmt = (select(inner.c.pk, inner.c.distance)
                .order_by(inner.c.distance, inner.c.pk).limit(k))
        # Every other plan sorts by distance, i.e. is exact: never what we came here for.
        wanted: dict[str, str | None] = {"hnsw.ef_search": str(ef), "enable_sort": "off"}
        if self._iterative(session):  # pgvector >= 0.8; before, a short scan goes exact
            wanted |= {"hnsw.iterative_scan": "relaxed_order",
                       "hnsw.max_scan_tuples": str(_MAX_SCAN_TUPLES)}
        saved = _set_local(session, wanted)
        try:
            return _scored(session.execute(stmt))
        finally:
            _set_local(session, saved)

    def _iterative(self, session: Session) -> bool:
        if self._has_iterative_scan is None:
            version = session.scalar(text(
                "SELECT extversion FROM pg_extension WHERE extname = 'vector'")) or "0"
            parts = tuple(int(p) for p in re.findall(r"\d+", version)[:2])
            self._has_iterative_scan = parts >= (0, 8)
        return self._has_iterative_scan

    @staticmethod
    def _graph_size(session: Session, dim: int) -> float:
        """How many vectors dimension `dim`'s HNSW graph holds, as of its last VACUUM,
        ANALYZE or build (0 if never counted): a catalog read, only for sizing ef_search."""
        return float(session.scalar(text(
            "SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = to_regclass(:name)"),
            {"name": hnsw_index_name(dim)}) or 0)

    @staticmethod
    def _dims(dim: int) -> ColumnElement[bool]:
        # A literal, not a parameter: the planner must see it to use the partial index.
        return func.vector_dims(_index.c.embedding) == literal_column(str(int(dim)))

    # --- lazy HNSW indexes ---------------------------------------------------------------

    def _ensure_hnsw(self, session: Session, dim: int) -> bool:
        """Whether dimension `dim` has a valid HNSW index; starts building one if not."""
        if dim in self._ready:
            return True
        if hnsw_kind(dim) is None:
            return False
        valid = session.scalar(text(
            "SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass(:name)"),
            {"name": hnsw_index_name(dim)})
        if valid:
            with self._lock:
                self._ready.add(dim)
            return True
        if self._build_indexes:
            with self._lock:
                start = dim not in self._building
                self._building.add(dim)
            if start:
                engine = session.get_bind().engine
                threading.Thread(target=self._build, args=(engine, dim), daemon=True,
                                 name=f"hnsw-{dim}").start()
        return False

    def _build(self, engine: Engine, dim: int) -> None:
        """CREATE INDEX CONCURRENTLY may not run in a transaction, and it waits for every
        transaction writing record_index (the caller's included) to end: so it runs here,
        on its own autocommit connection, one builder per dimension across processes."""
        name = hnsw_index_name(dim)
        try:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                lock = 0x6C6F6674_0000_0000 + dim  # "loft" + dimension
                if not conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": lock}):
                    return  # another process is building it
                try:
                    valid = conn.scalar(text("SELECT i.indisvalid FROM pg_index i "
                                             "WHERE i.indexrelid = to_regclass(:name)"),
                                        {"name": name})
                    if valid is False:  # a build that died half-way leaves an invalid index
                        conn.execute(text(f"DROP INDEX CONCURRENTLY IF EXISTS {name}"))
                    conn.execute(text(hnsw_index_ddl(dim, concurrently=True)))
                    log.info("built HNSW index %s", name)
                finally:
                    conn.scalar(text("SELECT pg_advisory_unlock(:k)"), {"k": lock})
        except Exception:  # best effort: without the index, searches stay exact
            log.warning("building HNSW index %s failed", name, exc_info=True)
        finally:
            with self._lock:
                self._building.discard(dim)


def _set_local(session: Session, settings: dict[str, str | None]) -> dict[str, str | None]:
    """SET LOCAL (nothing outlives the transaction) in one round trip; None means the
    server's default. Returns the values they replace."""
    names = list(settings)
    old = session.execute(text("SELECT " + ", ".join(
        f"current_setting(:n{i}, true)" for i in range(len(names)))),
        {f"n{i}": n for i, n in enumerate(names)}).one()
    session.execute(text("SELECT " + ", ".join(
        f"set_config(:n{i}, coalesce(:v{i}, (SELECT reset_val FROM pg_settings "
        f"WHERE name = :n{i})), true)" for i in range(len(names)))),
        {**{f"n{i}": n for i, n in enumerate(names)},
         **{f"v{i}": settings[n] for i, n in enumerate(names)}})
    return dict(zip(names, old, strict=True))


def _scored(rows: Any) -> list[tuple[int, float]]:
    # Cosine similarity = 1 - distance; a zero vector has none (NaN): score it 0.
    out = []
    for pk, distance in rows:
        d = float(distance) if distance is not None else math.nan
        out.append((int(pk), 0.0 if math.isnan(d) else 1.0 - d))
    return out


def _bm25(docs: Any, n_terms: int) -> Any:
    """(row, score) of each document of `docs` (row, len, tf0, tf1 ...): BM25 with the
    collection statistics taken from `docs`, the matched documents the caller may see, so
    nothing about records outside `restrict` leaks into scores and no extra scan is needed."""
    n = cast(func.count(), Float)
    idfs = []
    for i in range(n_terms):
        df = cast(func.count().filter(docs.c[f"tf{i}"] > 0), Float)
        idfs.append(func.ln(1 + (n - df + 0.5) / (df + 0.5)).label(f"idf{i}"))
    stats = (select(func.avg(docs.c.len).label("avglen"), *idfs)
             .select_from(docs).subquery("stats"))
    # Per document: its length norm once, then one product per term (tf = 0 adds 0).
    # OFFSET 0 keeps the planner from inlining `norm` into every term again.
    rows = (select(docs.c.row,
                   (_K1 * (1 - _B + _B * docs.c.len / stats.c.avglen)).label("norm"),
                   *[docs.c[f"tf{i}"] for i in range(n_terms)],
                   *[stats.c[f"idf{i}"] for i in range(n_terms)])
            .select_from(docs).join(stats, true()).offset(0).subquery("rows"))
    score = sum((rows.c[f"idf{i}"] * rows.c[f"tf{i}"] * (_K1 + 1)
                 / (rows.c[f"tf{i}"] + rows.c.norm) for i in range(n_terms)),
                start=literal_column("0.0", Float))
    return select(rows.c.row, score.label("score")).subquery("scored")
