"""What each instance reports it runs: its acknowledged revisions.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "applied",
        sa.Column("instance_id", sa.String(200), primary_key=True),
        sa.Column("config", sa.String(600), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("applied_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("ringfence migrations only go forward; restore a backup to go back")
