"""Aliases are unique per owner scope among what a caller can see, not per organisation

The unique constraints (org_id, alias) of files and datasets made an alias held by an item
the caller cannot see (another end-user's, or outside a limited key's datasets) answer 409,
which confirmed that item exists. The services now check clashes among the items the
caller sees in the item's owner scope (kit/policy.py); the database keeps a plain index.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 23:20:00
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("files", "datasets"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"uq_{table}_org_alias", type_="unique")
            batch_op.create_index(f"ix_{table}_org_scope_alias",
                                  ["org_id", "owner_scope", "alias"], unique=False)


def downgrade() -> None:
    # Fails if two items of one org now share an alias: rename one of them first.
    for table in ("files", "datasets"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{table}_org_scope_alias")
            batch_op.create_unique_constraint(f"uq_{table}_org_alias", ["org_id", "alias"])
