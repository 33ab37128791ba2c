"""embeddings and vectors

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 14:48:41.566988
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "record_vectors",
        sa.Column("pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("dataset_id", sa.String(length=40), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["pk"], ["records.pk"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("pk"),
    )
    with op.batch_alter_table("record_vectors", schema=None) as batch_op:
        batch_op.create_index("ix_record_vectors_dataset_id", ["dataset_id"], unique=False)
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("embedding_model", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("embedding_dimension", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("index_version", sa.BigInteger(), nullable=False,
                                      server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_column("index_version")
        batch_op.drop_column("embedding_dimension")
        batch_op.drop_column("embedding_model")
    with op.batch_alter_table("record_vectors", schema=None) as batch_op:
        batch_op.drop_index("ix_record_vectors_dataset_id")
    op.drop_table("record_vectors")
