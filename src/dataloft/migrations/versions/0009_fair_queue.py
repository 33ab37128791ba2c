"""jobs.claimed_at: claims go to the organisation (and serial key) served least recently

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 21:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_at", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_jobs_org_claimed", ["org_id", "claimed_at"], unique=False)
        batch_op.create_index("ix_jobs_serial_claimed", ["serial_key", "claimed_at"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_serial_claimed")
        batch_op.drop_index("ix_jobs_org_claimed")
        batch_op.drop_column("claimed_at")
