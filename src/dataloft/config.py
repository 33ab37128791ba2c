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
    # Public base URL used in signed upload URLs; empty means "derive from the request".
    public_url: str = ""
    bootstrap_key: str = ""

    max_upload_bytes: int = Field(default=100 * 1024 * 1024, gt=0)
    url_fetch_allow: str = ""  # comma-separated host:port pairs exempt from SSRF checks
    url_fetch_timeout: float = 30.0
    url_fetch_max_redirects: int = 5
    direct_upload_ttl: int = 3600  # seconds a signed upload URL stays valid

    workers: int = Field(default=2, ge=0)
    job_lease_seconds: float = 30.0
    job_max_attempts: int = Field(default=3, ge=1)
    job_max_run_seconds: float = 1800.0  # a job running longer is taken as stuck
    job_poll_seconds: float = 0.2
    # On shutdown (SIGTERM), running jobs get this long to finish; then their leases are
    # given back so another worker takes them over at once instead of after the lease.
    job_shutdown_seconds: float = Field(default=10.0, ge=0)
    sync_cooldown_seconds: float = 120.0
    # Each extraction runs in a child process under these limits (ingest/confined.py).
    extract_memory_mb: int = Field(default=1024, ge=64)
    extract_timeout_seconds: float = Field(default=120.0, gt=0)

    # Governed SQL: each query runs in a locked-down DuckDB child under these limits
    # (query/engine.py); at most `query_concurrency` run at once.
    query_memory_mb: int = Field(default=512, ge=16)
    query_threads: int = Field(default=2, ge=1)
    query_timeout_seconds: float = Field(default=10.0, gt=0)
    query_concurrency: int = Field(default=4, ge=1)

    # Embeddings: the offline default, or any OpenAI-compatible /embeddings endpoint.
    embedder: Literal["wordllama", "openai"] = "wordllama"
    embedding_url: str = ""  # e.g. https://api.openai.com/v1 or http://localhost:11434/v1
    embedding_model: str = "text-embedding-3-small"
    embedding_api_key: str = ""
    embedding_dimension: int = Field(default=0, ge=0)  # 0 = ask the endpoint once
    embedding_batch_size: int = Field(default=64, ge=1)
    embedding_timeout: float = 30.0

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
    def blob_dir(self) -> Path:
        return (self.data_dir / "blobs").resolve()

    @property
    def url_fetch_allowlist(self) -> frozenset[str]:
        return frozenset(p.strip().lower() for p in self.url_fetch_allow.split(",") if p.strip())
