"""Dashboard sessions in the database, so every replica knows them and a restart keeps them.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ui_sessions",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("token_id", sa.String(40), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("seen_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_ui_sessions_seen_us", "ui_sessions", ["seen_us"])


def downgrade() -> None:
    raise NotImplementedError("ringfence migrations only go forward; restore a backup to go back")
