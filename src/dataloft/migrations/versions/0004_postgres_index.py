"""postgres index: tsvector + pgvector table of the PostgreSQL index adapter

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 09:00:00.000000

PostgreSQL only (storage/index/postgres.py owns it); on SQLite this revision is a no-op.
`embedding` has no fixed dimension: HNSW indexes are partial expression indexes, one per
dimension (`record_index_hnsw_{d}`). The one for 256 (the default embedder) is built here;
the adapter builds others on demand (CREATE INDEX CONCURRENTLY, outside any transaction).
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

DEFAULT_DIMENSION = 256


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # A no-op when the extension exists; creating it needs a superuser (vector is untrusted).
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.execute(
        "CREATE TABLE record_index ("
        " pk BIGINT PRIMARY KEY REFERENCES records(pk) ON DELETE CASCADE,"
        " dataset_id VARCHAR(40) NOT NULL,"
        " tsv tsvector NOT NULL,"
        " embedding vector NULL)"
    )
    # Ranking reads every matching row's tsvector: keep rows inline and uncompressed up to
    # a page (decompressing or fetching TOASTed tsvectors made lexical search ~8x slower);
    # past that, compress the tsvector before moving it out of line.
    op.execute("ALTER TABLE record_index SET (toast_tuple_target = 8160)")
    op.execute("ALTER TABLE record_index ALTER COLUMN tsv SET STORAGE MAIN")
    op.execute("CREATE INDEX record_index_tsv ON record_index USING gin (tsv)")
    op.execute("CREATE INDEX record_index_dataset_id ON record_index (dataset_id)")
    d = DEFAULT_DIMENSION
    op.execute(
        f"CREATE INDEX IF NOT EXISTS record_index_hnsw_{d} ON record_index "
        f"USING hnsw ((embedding::vector({d})) vector_cosine_ops) "
        f"WHERE vector_dims(embedding) = {d}"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TABLE IF EXISTS record_index")  # drops its indexes, lazy ones included
