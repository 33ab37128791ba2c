"""Typed settings, read from DATALOFT_* environment variables.

Only the app factory and the CLI read settings; everything else receives plain arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DATALOFT_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path(".dataloft")
    # Empty means the embedded default: SQLite under data_dir.
    database_url: str = ""
    # Empty means the embedded default: a directory under data_dir.
    blob_url: str = ""
    # Public base URL used in signed upload URLs; empty means http://{host}:{port} (never
    # the request's Host header, which any client can forge).
    public_url: str = ""
    bootstrap_key: str = ""
    # The master key that encrypts the signing keys stored in the database. Empty: read it
    # from secret_key_file (default {data_dir}/secret.key), made with mode 0600 on first
    # start. Replicas of one cluster need the same one.
    secret_key: str = ""
    secret_key_file: Path | None = None

    max_upload_bytes: int = Field(default=100 * 1024 * 1024, gt=0)
    url_fetch_allow: str = ""  # comma-separated host:port pairs exempt from SSRF checks
    url_fetch_timeout: float = 30.0
    url_fetch_max_redirects: int = 5
    direct_upload_ttl: int = 3600  # seconds a signed upload URL stays valid
    # Per-organisation quotas (unset: unlimited); an instance admin overrides them per org.
    org_max_storage_bytes: int | None = Field(default=None, ge=0)
    org_max_records: int | None = Field(default=None, ge=0)
    org_max_files: int | None = Field(default=None, ge=0)

    workers: int = Field(default=2, ge=0)
    job_lease_seconds: float = 30.0
    job_max_attempts: int = Field(default=3, ge=1)
    job_max_run_seconds: float = 1800.0  # a job running longer is taken as stuck
    job_poll_seconds: float = 0.2
    # On shutdown (SIGTERM), running jobs get this long to finish; then their leases are
    # given back so another worker takes them over at once instead of after the lease.
    job_shutdown_seconds: float = Field(default=10.0, ge=0)
    sync_cooldown_seconds: float = 120.0
    # Finished jobs and events older than this are deleted (jobs/retention.py), checked
    # every retention_interval_seconds; the event log keeps everything of the window.
    retention_days: float = Field(default=30.0, gt=0)
    retention_interval_seconds: float = Field(default=3600.0, gt=0)
    # Each extraction runs in a child process under these limits (ingest/confined.py).
    extract_memory_mb: int = Field(default=1024, ge=64)
    extract_timeout_seconds: float = Field(default=120.0, gt=0)
    # The whole sync of one file (extraction, records, embedding, writing): past it the
    # file fails with `processing_timeout`, not retried.
    sync_timeout_seconds: float = Field(default=600.0, gt=0)
    # Files of one dataset whose syncs prepare (extract, chunk, embed) at once, the running
    # one included; commits stay one at a time, in queue order (sync/ahead.py). 1 (the
    # default): one after another; 0: one per core, at most 4. Off by default: in threads
    # of one process no gain was established (docs/benchmarks.md §32).
    sync_prepare_parallel: int = Field(default=1, ge=0)
    # How long a request waits for a database connection (on SQLite: the one writer, which
    # a big sync's commit holds for minutes) before answering 503 SERVICE_BUSY.
    write_wait_seconds: float = Field(default=300.0, gt=0)

    # Governed SQL: each query runs in a locked-down DuckDB child under these limits
    # (query/engine.py); at most `query_concurrency` run at once.
    query_memory_mb: int = Field(default=512, ge=16)
    query_threads: int = Field(default=2, ge=1)
    query_timeout_seconds: float = Field(default=10.0, gt=0)
    query_concurrency: int = Field(default=4, ge=1)

    # Embeddings: the offline default, any OpenAI-compatible /embeddings endpoint, or the
    # optional offline all-MiniLM-L6-v2 (the `minilm` extra; stronger, ~40x slower ingest).
    embedder: Literal["wordllama", "openai", "minilm"] = "wordllama"
    embedding_url: str = ""  # e.g. https://api.openai.com/v1 or http://localhost:11434/v1
    embedding_model: str = "text-embedding-3-small"
    embedding_api_key: str = ""
    embedding_dimension: int = Field(default=0, ge=0)  # 0 = ask the endpoint once
    embedding_batch_size: int = Field(default=64, ge=1)
    embedding_timeout: float = 30.0
    # onnxruntime threads of the `minilm` embedder (per process; they sleep when idle).
    embedding_threads: int = Field(default=2, ge=1)
    # Embedded index: datasets with at least this many vectors are searched through an
    # HNSW graph (approximate, recall@10 >= 0.99) instead of an exact scan.
    ann_min_records: int = Field(default=20_000, ge=1)
    # Embedded index: no search waits longer than this for a dataset's search structures
    # to be built (a big dataset's first build, a restart without a saved copy): it
    # answers 503 SERVICE_BUSY with Retry-After meanwhile. Structures are saved under
    # {data_dir}/index so a restart loads them.
    # 0.9: the rest of a request (embedding the query, loading the records) fits in the 1 s
    # that issue 16 allows a search to be held.
    index_wait_seconds: float = Field(default=0.9, gt=0)

    # Webhook deliveries (webhooks/tasks.py): attempt n waits about base * 2**(n-1) s
    # (capped, with jitter); a delivery still failing `retry_window` after its event fails.
    webhook_retry_base_seconds: float = Field(default=5.0, gt=0)
    webhook_retry_max_seconds: float = Field(default=3600.0, gt=0)
    webhook_retry_window_seconds: float = Field(default=86400.0, ge=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    # Event streams (subscribe, SSE) poll the events table this often, so every API
    # process sees every process's events; keep-alives go out when nothing else did.
    event_poll_seconds: float = Field(default=0.5, gt=0)
    event_keepalive_seconds: float = Field(default=15.0, gt=0)
    # A live stream ends after this long (0: never); SSE clients reconnect with
    # Last-Event-ID and miss nothing. Bounds what one idle connection holds.
    event_stream_max_seconds: float = Field(default=3600.0, ge=0)
    # The agent's language model: any OpenAI-compatible chat-completions endpoint. Empty
    # URL = no model: the agent answers from retrieval alone.
    llm_url: str = ""  # base URL ending in /v1, e.g. http://localhost:11434/v1
    llm_model: str = "gpt-4o-mini"  # an assistant's own `model` overrides it
    llm_api_key: str = ""
    llm_timeout_seconds: float = Field(default=60.0, gt=0)  # one model call
    agent_max_iterations: int = Field(default=8, ge=1)  # model calls per answer
    agent_deadline_seconds: float = Field(default=120.0, gt=0)  # one whole answer
    agent_keepalive_seconds: float = Field(default=10.0, gt=0)  # SSE keep-alive interval

    log_level: str = "info"

    @property
    def backend(self) -> Literal["sqlite", "postgres"]:
        return "postgres" if self.database_url.startswith("postgresql") else "sqlite"

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'dataloft.db').resolve()}"

    @property
    def own_url(self) -> str:
        """The base URL clients reach this server at, from configuration only."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def secret_key_path(self) -> Path:
        return (self.secret_key_file or self.data_dir / "secret.key").resolve()

    @property
    def blob_dir(self) -> Path:
        return (self.data_dir / "blobs").resolve()

    @property
    def url_fetch_allowlist(self) -> frozenset[str]:
        return frozenset(p.strip().lower() for p in self.url_fetch_allow.split(",") if p.strip())
