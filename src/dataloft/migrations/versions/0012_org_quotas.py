"""org_quotas: per-organisation usage counters and limit overrides, backfilled from the data

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 23:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "org_quotas",
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("storage_bytes", sa.BigInteger(), nullable=False),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.Column("files", sa.BigInteger(), nullable=False),
        sa.Column("max_storage_bytes", sa.BigInteger(), nullable=True),
        sa.Column("max_records", sa.BigInteger(), nullable=True),
        sa.Column("max_files", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("org_id"),
    )
    # Usage so far, counted exactly as the counters will count from now on.
    op.execute(
        "INSERT INTO org_quotas (org_id, storage_bytes, records, files) "
        "SELECT o.id, "
        "COALESCE((SELECT SUM(f.size) FROM files f WHERE f.org_id = o.id "
        "AND f.blob_key IS NOT NULL), 0), "
        "(SELECT COUNT(*) FROM records r WHERE r.org_id = o.id), "
        "(SELECT COUNT(*) FROM files f WHERE f.org_id = o.id) FROM orgs o")


def downgrade() -> None:
    op.drop_table("org_quotas")
