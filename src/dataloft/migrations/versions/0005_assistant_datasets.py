"""assistant dataset knowledge (Informer associations)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 17:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "assistant_datasets",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("assistant_id", sa.String(length=40), nullable=False),
        sa.Column("dataset_id", sa.String(length=40), nullable=False),
        sa.Column("filter", JSON, nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["assistant_id"], ["assistants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("assistant_id", "dataset_id", name="uq_assistant_dataset"),
    )
    with op.batch_alter_table("assistant_datasets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_assistant_datasets_assistant_id"), ["assistant_id"])
        batch_op.create_index(batch_op.f("ix_assistant_datasets_dataset_id"), ["dataset_id"])


def downgrade() -> None:
    op.drop_table("assistant_datasets")
