"""The wired application: settings turned into engines, stores and workers, in one place."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from dataloft.assistants import service as assistants
from dataloft.config import Settings
from dataloft.events import repository as event_rows
from dataloft.files.tasks import BlobDeleteHandler
from dataloft.ingest import confined
from dataloft.ingest.embed.base import Embedder
from dataloft.jobs import locks, queue, retention
from dataloft.jobs.worker import Handler, WorkerConfig, WorkerPool
from dataloft.keys import service as keys
from dataloft.keys import signing, tokens
from dataloft.kit import migrate
from dataloft.kit.db import Database
from dataloft.openai.tasks import EXPIRE_JOB, FileExpireHandler
from dataloft.query.engine import QueryEngine, QueryLimits
from dataloft.query.service import QueryService
from dataloft.quotas import service as quotas
from dataloft.storage.blobs.base import BlobStore
from dataloft.storage.blobs.factory import build_blob_store
from dataloft.storage.index.base import Index
from dataloft.storage.index.postgres import PostgresIndex
from dataloft.storage.index.sqlite import SqliteIndex
from dataloft.sync.reindex import REINDEX_JOB, ReindexHandler, enqueue_stale
from dataloft.sync.service import SYNC_JOB
from dataloft.sync.tasks import ExtractLimits, SyncHandler
from dataloft.webhooks import repository as webhook_rows
from dataloft.webhooks import service as webhooks
from dataloft.webhooks.tasks import DeliveryConfig, WebhookDeliveryHandler

log = logging.getLogger("dataloft")


@dataclass
class Context:
    settings: Settings
    db: Database
    blobs: BlobStore
    index: Index
    embedder: Embedder
    query: QueryService
    signing_key: bytes
    # Every signing key still in use, the current one first (keys/signing.py).
    verify_keys: tuple[bytes, ...] = ()
    workers: WorkerPool | None = None
    bootstrap_key: str | None = None

    @property
    def dialect(self) -> str:
        return self.db.dialect

    def notify(self) -> None:
        if self.workers is not None:
            self.workers.notify()

    def close(self) -> None:
        if self.workers is not None:
            self.workers.stop(self.settings.job_shutdown_seconds)
        self.query.engine.close()
        self.db.dispose()


def signing_keys(settings: Settings, db: Database) -> tuple[bytes, ...]:
    """The signing keys in use, current first; made (or encrypted) on first start."""
    master = signing.master_key(settings.secret_key, settings.secret_key_path)
    with db.write() as session:
        return tuple(signing.load(session, master, signing_grace_seconds(settings)))


def signing_grace_seconds(settings: Settings) -> float:
    """How long a replaced key still verifies: the longest life of what it signed."""
    return float(max(tokens.MAX_TTL_S, settings.direct_upload_ttl))


def build_embedder(settings: Settings) -> Embedder:
    if settings.embedder == "openai":
        from dataloft.ingest.embed.openai import OpenAICompatibleEmbedder

        return OpenAICompatibleEmbedder(
            settings.embedding_url, settings.embedding_model, settings.embedding_api_key,
            dimension=settings.embedding_dimension, batch_size=settings.embedding_batch_size,
            timeout=settings.embedding_timeout)
    if settings.embedder == "minilm":
        from dataloft.ingest.embed.minilm import MiniLMEmbedder

        minilm = MiniLMEmbedder(threads=settings.embedding_threads)
        minilm.load()
        return minilm
    from dataloft.ingest.embed.wordllama import WordLlamaEmbedder

    return WordLlamaEmbedder()


def build_query(settings: Settings, db: Database, blobs: BlobStore) -> QueryService:
    """Governed SQL; its pool of query children starts only when the API warms it."""
    limits = QueryLimits(memory_bytes=settings.query_memory_mb << 20,
                         threads=settings.query_threads,
                         timeout_s=settings.query_timeout_seconds,
                         concurrency=settings.query_concurrency)
    return QueryService(db, blobs, QueryEngine(limits),
                        cache_dir=settings.data_dir.resolve() / "sql-cache")


def build(settings: Settings, *, start_workers: bool = True) -> Context:
    """The API process (`dataloft serve`): embedded, it also runs the workers; in cluster
    mode with DATALOFT_WORKERS=0 it is a stateless replica."""
    db, blobs, index, embedder, raw_key, ring = _open(settings, api=True)
    ctx = Context(settings=settings, db=db, blobs=blobs, index=index, embedder=embedder,
                  query=build_query(settings, db, blobs), signing_key=ring[0],
                  verify_keys=ring, bootstrap_key=raw_key)
    if start_workers and settings.workers > 0:
        ctx.workers = _start_workers(settings, db, blobs, index, embedder)
    return ctx


def build_worker(settings: Settings) -> Context:
    """A `dataloft worker` process: job workers only, no HTTP, no bootstrap (an admin key
    made here could never be shown to anyone)."""
    db, blobs, index, embedder, _, _ = _open(settings, api=False)
    ctx = Context(settings=settings, db=db, blobs=blobs, index=index, embedder=embedder,
                  query=build_query(settings, db, blobs), signing_key=b"")
    ctx.workers = _start_workers(settings, db, blobs, index, embedder)
    return ctx


def _open(settings: Settings, *, api: bool
          ) -> tuple[Database, BlobStore, Index, Embedder, str | None, tuple[bytes, ...]]:
    if settings.backend == "sqlite":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    webhooks.install()
    # API replicas and workers may start together against one PostgreSQL: migrations and
    # first-start rows (org, admin key, signing key) are made by one of them at a time.
    with locks.exclusive(settings.sqlalchemy_url, "start-up"):
        migrate.upgrade(settings.sqlalchemy_url)
        db = Database(settings.sqlalchemy_url, info=quotas.session_info(quotas.Limits(
            storage_bytes=settings.org_max_storage_bytes, records=settings.org_max_records,
            files=settings.org_max_files)), wait_s=settings.write_wait_seconds)
        blobs = build_blob_store(settings.blob_url, settings.blob_dir)
        index = PostgresIndex() if db.dialect == "postgresql" \
            else SqliteIndex(ann_min_records=settings.ann_min_records, reader=db.read,
                             store=settings.data_dir.resolve() / "index",
                             wait_s=settings.index_wait_seconds)
        embedder = build_embedder(settings)
        if api and isinstance(index, SqliteIndex):
            index.warm_recent()
        raw_key: str | None = None
        ring: tuple[bytes, ...] = ()
        if api:
            raw_key = _first_start(settings, db, embedder)
            ring = signing_keys(settings, db)
    if settings.backend == "sqlite":
        blobs.purge_partials()
    return db, blobs, index, embedder, raw_key, ring


def _first_start(settings: Settings, db: Database, embedder: Embedder) -> str | None:
    with db.write() as session:
        enqueue_stale(session, embedder.name, embedder.dimension)
        raw_key = keys.bootstrap(session, settings.bootstrap_key or None)
        assistants.ensure_defaults(session)
        retention.ensure_scheduled(session, int(settings.retention_interval_seconds * 1000))
        if settings.backend == "sqlite":
            # One process owns an embedded deployment: leases left 'running' belong to a
            # process that died, so make them claimable at once instead of after expiry.
            # Never in cluster mode: there they belong to live workers elsewhere.
            queue.expire_leases_of_dead_process(session)
    return raw_key


def _start_workers(settings: Settings, db: Database, blobs: BlobStore, index: Index,
                   embedder: Embedder) -> WorkerPool:
    handlers: dict[str, Handler] = {
        SYNC_JOB: SyncHandler(db, blobs, index, embedder, ExtractLimits(
            memory_bytes=settings.extract_memory_mb << 20,
            timeout_s=settings.extract_timeout_seconds,
            sync_timeout_s=settings.sync_timeout_seconds), settings.job_lease_seconds,
            prepare_parallel=settings.sync_prepare_parallel or min(os.cpu_count() or 1, 4)),
        REINDEX_JOB: ReindexHandler(db, index, embedder),
        queue.BLOB_DELETE: BlobDeleteHandler(db, blobs),
        EXPIRE_JOB: FileExpireHandler(db, index),
        retention.RETENTION_JOB: retention.RetentionHandler(
            db, retention_ms=int(settings.retention_days * 86_400_000),
            interval_ms=int(settings.retention_interval_seconds * 1000),
            pruners=[event_rows.prune, webhook_rows.prune_delivered]),
        webhooks.DELIVERY_JOB: WebhookDeliveryHandler(db, DeliveryConfig(
            allow=settings.url_fetch_allowlist, timeout_s=settings.webhook_timeout_seconds,
            retry_base_s=settings.webhook_retry_base_seconds,
            retry_max_s=settings.webhook_retry_max_seconds,
            retry_window_s=settings.webhook_retry_window_seconds)),
    }
    confined.start()  # the extraction forkserver, up before the first sync needs it
    pool = WorkerPool(db, handlers, WorkerConfig(
        threads=settings.workers, lease_seconds=settings.job_lease_seconds,
        poll_seconds=settings.job_poll_seconds,
        max_run_seconds=settings.job_max_run_seconds))
    pool.start()
    return pool
