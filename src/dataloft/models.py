"""The metadata schema. Generic column types only, so one model serves SQLite and PostgreSQL.

Timestamps are epoch milliseconds (BigInteger), the unit the wire format uses.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JSONType = JSON().with_variant(JSONB(), "postgresql")
# SQLite only autoincrements an INTEGER PRIMARY KEY, PostgreSQL wants BIGINT identity.
IntPK = BigInteger().with_variant(Integer(), "sqlite")


def now_ms() -> int:
    # Restated from kit.ids: the tables are the bottom layer and import nothing of ours.
    return time.time_ns() // 1_000_000


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSONType, list[str]: JSONType}


class Timestamps:
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    updated_at: Mapped[int] = mapped_column(BigInteger, default=now_ms, onupdate=now_ms)


class Org(Timestamps, Base):
    __tablename__ = "orgs"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


class OrgQuota(Base):
    """An organisation's usage counters and its limit overrides (None: the instance default).

    The counters move in the same transaction as what they count, by a conditional UPDATE
    (quotas/repository.py), so concurrent writers can never take them past a limit."""

    __tablename__ = "org_quotas"
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"),
                                        primary_key=True)
    storage_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    records: Mapped[int] = mapped_column(BigInteger, default=0)
    files: Mapped[int] = mapped_column(BigInteger, default=0)
    max_storage_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    max_records: Mapped[int | None] = mapped_column(BigInteger, default=None)
    max_files: Mapped[int | None] = mapped_column(BigInteger, default=None)


class InstanceSecret(Base):
    """Server-wide secrets (e.g. the upload-URL signing key), shared by every replica."""

    __tablename__ = "instance_secrets"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


class ApiKey(Timestamps, Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    prefix: Mapped[str] = mapped_column(String(16))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    permissions: Mapped[list[str]] = mapped_column(default=list)
    # Limits the key to these datasets; None = all datasets of the org.
    datasets: Mapped[list[str] | None] = mapped_column(JSONType, default=None)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, default=None)


class File(Timestamps, Base):
    __tablename__ = "files"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    name: Mapped[str | None] = mapped_column(String(1024), default=None)
    description: Mapped[str | None] = mapped_column(Text, default=None)
    alias: Mapped[str | None] = mapped_column(String(200), default=None)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    visibility: Mapped[str] = mapped_column(String(16), default="private")
    # 'org' | 'user:{id}' | 'context:{key}:{value}'
    owner_scope: Mapped[str] = mapped_column(String(600), default="org")
    content_type: Mapped[str | None] = mapped_column(String(255), default=None)
    size: Mapped[int | None] = mapped_column(BigInteger, default=None)
    sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    blob_key: Mapped[str | None] = mapped_column(String(200), default=None)
    version: Mapped[int] = mapped_column(Integer, default=0)
    # The OpenAI surface's `purpose` (None: a file made elsewhere, shown as "assistants")
    # and `expires_after`, as an epoch-ms instant.
    purpose: Mapped[str | None] = mapped_column(String(32), default=None)
    expires_at: Mapped[int | None] = mapped_column(BigInteger, default=None)

    __table_args__ = (
        Index("ix_files_org_id_id", "org_id", "id"),
        # Aliases are unique per owner scope among what a caller sees (files/service.py).
        Index("ix_files_org_scope_alias", "org_id", "owner_scope", "alias"),
    )


class UploadTicket(Base):
    """One direct-to-source upload URL. Local blobs: a signed URL on this server, consumed
    by the PUT that uses it (blob_key is None). S3: a presigned PUT to `blob_key` in the
    bucket, consumed when the server confirms the object arrived (files/direct.py)."""

    __tablename__ = "upload_tickets"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    file_id: Mapped[str] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(1024), default=None)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    blob_key: Mapped[str | None] = mapped_column(String(80), default=None)
    created_at: Mapped[int | None] = mapped_column(BigInteger, default=None)


class Assistant(Timestamps, Base):
    __tablename__ = "assistants"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(String(1024), default=None)
    description: Mapped[str | None] = mapped_column(Text, default=None)
    instructions: Mapped[str | None] = mapped_column(Text, default=None)
    model: Mapped[str | None] = mapped_column(String(200), default=None)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    is_default: Mapped[bool] = mapped_column(default=False)
    # Informer-style id (`team:sales-assistant`) accepted wherever an assistant id is.
    alias: Mapped[str | None] = mapped_column(String(200), default=None)
    # Inconvo's user-context configuration: {status: unset|enabled|disabled,
    # fields: [{key, type}]}; None = unset.
    user_context_config: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)

    __table_args__ = (UniqueConstraint("org_id", "alias", name="uq_assistants_org_alias"),)


class Dataset(Timestamps, Base):
    __tablename__ = "datasets"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    name: Mapped[str | None] = mapped_column(String(1024), default=None)
    description: Mapped[str | None] = mapped_column(Text, default=None)
    alias: Mapped[str | None] = mapped_column(String(200), default=None)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    visibility: Mapped[str] = mapped_column(String(16), default="private")
    owner_scope: Mapped[str] = mapped_column(String(600), default="org")
    # recordMaxTokens, searchMaxRecords, separators, ... exactly as the wire names them.
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The embedder its vectors come from; a different configured embedder re-indexes it.
    embedding_model: Mapped[str | None] = mapped_column(String(200), default=None)
    embedding_dimension: Mapped[int | None] = mapped_column(Integer, default=None)
    # Bumped by every transaction that changes the dataset's records, so caches derived
    # from them (the SQLite vector matrix) know when they are stale.
    index_version: Mapped[int] = mapped_column(BigInteger, default=0)
    # Set on the dataset an agent keeps for one end-user or context scope (Inconvo API).
    assistant_id: Mapped[str | None] = mapped_column(
        ForeignKey("assistants.id", ondelete="CASCADE"), default=None)
    # A vector store's (OpenAI surface) `expires_after {anchor: last_active_at, days}`.
    expires_after_days: Mapped[int | None] = mapped_column(Integer, default=None)
    last_active_at: Mapped[int | None] = mapped_column(BigInteger, default=None)

    __table_args__ = (
        Index("ix_datasets_org_id_id", "org_id", "id"),
        Index("ix_datasets_org_scope_alias", "org_id", "owner_scope", "alias"),
        UniqueConstraint("assistant_id", "owner_scope", name="uq_datasets_assistant_scope"),
    )


class AssistantDataset(Timestamps, Base):
    """An assistant's knowledge of a dataset (Informer), optionally restricted by a filter
    that every record and table row the assistant reaches must match."""

    __tablename__ = "assistant_datasets"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    assistant_id: Mapped[str] = mapped_column(
        ForeignKey("assistants.id", ondelete="CASCADE"), index=True)
    dataset_id: Mapped[str] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    # The raw filter as the client sent it (None = every row); parsed with kit.filters.
    filter: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)

    __table_args__ = (
        UniqueConstraint("assistant_id", "dataset_id", name="uq_assistant_dataset"),
    )


class Attachment(Timestamps, Base):
    __tablename__ = "attachments"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    file_id: Mapped[str] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(16), default="source")
    sync_requested_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    synced_version: Mapped[int | None] = mapped_column(Integer, default=None)
    synced_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # A file's attributes in a vector store (OpenAI surface), which its search filters read.
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    # Chunking of this file alone: {recordMaxTokens, recordOverlapTokens}; None = dataset's.
    chunking: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)

    __table_args__ = (UniqueConstraint("dataset_id", "file_id", name="uq_attachment"),)


class FileBatch(Timestamps, Base):
    """Files added to a vector store together (OpenAI surface). Their status is derived from
    each file's sync state (sync/status.py), never stored, so counts cannot drift."""

    __tablename__ = "file_batches"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    dataset_id: Mapped[str] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    file_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    cancelled_at: Mapped[int | None] = mapped_column(BigInteger, default=None)


class Record(Timestamps, Base):
    __tablename__ = "records"
    # Integer surrogate so index adapters (FTS5 rowid, vector rows) can key on it cheaply.
    pk: Mapped[int] = mapped_column(IntPK, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    file_id: Mapped[str | None] = mapped_column(String(40), default=None)
    source: Mapped[str | None] = mapped_column(String(2048), default=None)
    text: Mapped[str] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    position: Mapped[int | None] = mapped_column(Integer, default=None)
    content_hash: Mapped[str | None] = mapped_column(String(64), default=None)

    __table_args__ = (
        Index("ix_records_dataset_id_id", "dataset_id", "id"),
        Index("ix_records_dataset_file_hash", "dataset_id", "file_id", "content_hash"),
    )


class RecordVector(Base):
    """A record's embedding (little-endian float32). pgvector replaces this on PostgreSQL."""

    __tablename__ = "record_vectors"
    pk: Mapped[int] = mapped_column(ForeignKey("records.pk", ondelete="CASCADE"),
                                    primary_key=True)
    dataset_id: Mapped[str] = mapped_column(String(40), index=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class Job(Timestamps, Base):
    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str | None] = mapped_column(String(40), default=None)
    kind: Mapped[str] = mapped_column(String(40))
    # Jobs with the same serial key never run at the same time (a dataset's syncs).
    serial_key: Mapped[str | None] = mapped_column(String(100), default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default="queued")  # queued|running|done|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    run_after: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    lease_owner: Mapped[str | None] = mapped_column(String(100), default=None)
    lease_token: Mapped[str | None] = mapped_column(String(40), default=None)
    lease_expires_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    error_code: Mapped[str | None] = mapped_column(String(40), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    # When a worker last took it: claims go to the organisation (and, within one, the serial
    # key) served least recently, so no backlog delays another tenant's jobs.
    claimed_at: Mapped[int | None] = mapped_column(BigInteger, default=None)

    __table_args__ = (
        Index("ix_jobs_state_run_after", "state", "run_after"),
        Index("ix_jobs_org_claimed", "org_id", "claimed_at"),
        Index("ix_jobs_serial_claimed", "serial_key", "claimed_at"),
    )


class Event(Base):
    __tablename__ = "events"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    dataset_id: Mapped[str | None] = mapped_column(String(40), default=None)
    file_id: Mapped[str | None] = mapped_column(String(40), default=None)
    type: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)

    __table_args__ = (
        Index("ix_events_org_id_id", "org_id", "id"),
        Index("ix_events_dataset_id_id", "dataset_id", "id"),
    )


class SqlTable(Timestamps, Base):
    """One table of a synced tabular file (one per XLSX sheet), as governed SQL reads it.

    Written by the sync in the transaction that replaces the file's records, so the catalog
    and the records always describe the same file version. The rows live in a columnar
    snapshot (Parquet) in the blob store under `blob_key`; `columns` lists
    `{"name", "type", "sqlType"}` in file order, `meta` the record meta every row of the
    table shares (fileName, fileType, sheet ...), so filters read the same fields as on
    records. Its SQL name is given at read time (`sql.catalog`), from `base_name`."""

    __tablename__ = "sql_tables"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    file_id: Mapped[str] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"),
                                         index=True)
    file_version: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)  # order of the table within its file
    base_name: Mapped[str] = mapped_column(String(200))
    source_table: Mapped[str] = mapped_column(String(1024), default="")
    columns: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    row_column: Mapped[str] = mapped_column(String(200))  # the hidden `row` number column
    row_count: Mapped[int] = mapped_column(BigInteger, default=0)
    blob_key: Mapped[str] = mapped_column(String(200))

    __table_args__ = (Index("ix_sql_tables_dataset_file", "dataset_id", "file_id"),)


class Webhook(Timestamps, Base):
    """An endpoint that receives the organisation's events, signed per Standard Webhooks.
    `events` lists the event types it wants (None: all of them)."""

    __tablename__ = "webhooks"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text, default=None)
    events: Mapped[list[str] | None] = mapped_column(JSONType, default=None)
    secret: Mapped[str] = mapped_column(String(100))


class WebhookDelivery(Timestamps, Base):
    """One event for one endpoint. Its id is the `webhook-id` header on every attempt, so a
    receiver can drop duplicates; `log` keeps each attempt {at, statusCode, error}."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    org_id: Mapped[str] = mapped_column(String(40))
    event_id: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|delivered|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    response_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    next_attempt_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    log: Mapped[list[Any]] = mapped_column(JSONType, default=list)

    __table_args__ = (Index("ix_webhook_deliveries_webhook_id_id", "webhook_id", "id"),)


class Conversation(Timestamps, Base):
    """An agent conversation (Inconvo) of one end-user, whose principal is fixed at creation
    (`user_identifier` + `user_context`)."""

    __tablename__ = "agent_conversations"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    assistant_id: Mapped[str] = mapped_column(ForeignKey("assistants.id", ondelete="CASCADE"))
    user_identifier: Mapped[str] = mapped_column(String(256))
    user_context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    title: Mapped[str | None] = mapped_column(String(200), default=None)

    __table_args__ = (Index("ix_agent_conversations_user", "assistant_id", "user_identifier",
                            "id"),)


class AgentResponse(Timestamps, Base):
    """One turn: the user's message, the agent's answer and the trace of its tool calls."""

    __tablename__ = "agent_responses"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("agent_conversations.id", ondelete="CASCADE"), index=True)
    input: Mapped[str] = mapped_column(Text)
    # {text, type, table?, chart?, sources}
    output: Mapped[dict[str, Any]] = mapped_column(default=dict)
    trace: Mapped[list[Any]] = mapped_column(JSONType, default=list)


class AgentFeedback(Timestamps, Base):
    __tablename__ = "agent_feedback"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    response_id: Mapped[str] = mapped_column(
        ForeignKey("agent_responses.id", ondelete="CASCADE"), index=True)
    rating: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str | None] = mapped_column(Text, default=None)
