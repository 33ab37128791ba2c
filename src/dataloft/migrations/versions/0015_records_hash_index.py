"""records: the (dataset, file) index gains content_hash, so a re-sync's per-batch lookup of
reusable vectors reads only the batch's hashes instead of every record of the file (which
made a re-sync of a big file quadratic)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 10:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("records") as batch_op:
        # The new index leads with the old one's columns, so it serves its queries too.
        batch_op.create_index("ix_records_dataset_file_hash",
                              ["dataset_id", "file_id", "content_hash"], unique=False)
        batch_op.drop_index("ix_records_dataset_file")


def downgrade() -> None:
    with op.batch_alter_table("records") as batch_op:
        batch_op.create_index("ix_records_dataset_file", ["dataset_id", "file_id"], unique=False)
        batch_op.drop_index("ix_records_dataset_file_hash")
