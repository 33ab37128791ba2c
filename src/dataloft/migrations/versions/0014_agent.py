"""the agent: conversations, responses with their trace, feedback; assistant alias and
user-context configuration

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 23:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


def _stamps() -> list[sa.Column[int]]:
    return [sa.Column("created_at", sa.BigInteger(), nullable=False),
            sa.Column("updated_at", sa.BigInteger(), nullable=False)]


def _org() -> sa.Column[str]:
    return sa.Column("org_id", sa.String(length=40), sa.ForeignKey("orgs.id", ondelete="CASCADE"),
                     nullable=False)


def upgrade() -> None:
    with op.batch_alter_table("assistants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("alias", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("user_context_config", JSONType, nullable=True))
        batch_op.create_unique_constraint("uq_assistants_org_alias", ["org_id", "alias"])
    op.create_table(
        "agent_conversations",
        sa.Column("id", sa.String(length=40), primary_key=True),
        _org(),
        sa.Column("assistant_id", sa.String(length=40),
                  sa.ForeignKey("assistants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_identifier", sa.String(length=256), nullable=False),
        sa.Column("user_context", JSONType, nullable=False),
        sa.Column("title", sa.String(length=200), nullable=True),
        *_stamps(),
    )
    op.create_index("ix_agent_conversations_user", "agent_conversations",
                    ["assistant_id", "user_identifier", "id"])
    op.create_table(
        "agent_responses",
        sa.Column("id", sa.String(length=40), primary_key=True),
        _org(),
        sa.Column("conversation_id", sa.String(length=40),
                  sa.ForeignKey("agent_conversations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("input", sa.Text(), nullable=False),
        sa.Column("output", JSONType, nullable=False),
        sa.Column("trace", JSONType, nullable=False),
        *_stamps(),
    )
    op.create_index("ix_agent_responses_conversation_id", "agent_responses",
                    ["conversation_id"])
    op.create_table(
        "agent_feedback",
        sa.Column("id", sa.String(length=40), primary_key=True),
        _org(),
        sa.Column("response_id", sa.String(length=40),
                  sa.ForeignKey("agent_responses.id", ondelete="CASCADE"), nullable=False),
        sa.Column("rating", sa.String(length=16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        *_stamps(),
    )
    op.create_index("ix_agent_feedback_response_id", "agent_feedback", ["response_id"])


def downgrade() -> None:
    op.drop_index("ix_agent_feedback_response_id", table_name="agent_feedback")
    op.drop_table("agent_feedback")
    op.drop_index("ix_agent_responses_conversation_id", table_name="agent_responses")
    op.drop_table("agent_responses")
    op.drop_index("ix_agent_conversations_user", table_name="agent_conversations")
    op.drop_table("agent_conversations")
    with op.batch_alter_table("assistants", schema=None) as batch_op:
        batch_op.drop_constraint("uq_assistants_org_alias", type_="unique")
        batch_op.drop_column("user_context_config")
        batch_op.drop_column("alias")
