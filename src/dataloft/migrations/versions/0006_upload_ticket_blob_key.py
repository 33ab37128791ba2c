"""upload tickets remember the bucket key of a direct-to-bucket upload

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("upload_tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("blob_key", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("created_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("upload_tickets", schema=None) as batch_op:
        batch_op.drop_column("created_at")
        batch_op.drop_column("blob_key")
