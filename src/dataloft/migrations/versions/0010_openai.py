"""the OpenAI-compatible surface: file purpose and expiry, vector-store expiry and activity,
attributes and chunking of a file in a store, file batches

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 21:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.add_column(sa.Column("purpose", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("expires_at", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_after_days", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("last_active_at", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attributes", JSONType, nullable=True))
        batch_op.add_column(sa.Column("chunking", JSONType, nullable=True))
    op.create_table(
        "file_batches",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("org_id", sa.String(length=40),
                  sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("dataset_id", sa.String(length=40),
                  sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("file_ids", JSONType, nullable=False),
        sa.Column("cancelled_at", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_file_batches_dataset_id", "file_batches", ["dataset_id"])


def downgrade() -> None:
    op.drop_index("ix_file_batches_dataset_id", table_name="file_batches")
    op.drop_table("file_batches")
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.drop_column("chunking")
        batch_op.drop_column("attributes")
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_column("last_active_at")
        batch_op.drop_column("expires_after_days")
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
        batch_op.drop_column("purpose")
