"""drop the FTS5 table: SQLite lexical search is BM25 in memory (storage/index/terms.py)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 19:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS records_fts")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE records_fts USING fts5("
            "text, tokenize='porter unicode61 remove_diacritics 2')"
        )
        op.execute("INSERT INTO records_fts(rowid, text) SELECT pk, text FROM records")
