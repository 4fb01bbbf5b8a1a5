"""Health reports filed under rollout stages, and the traffic each revision served.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "observations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("rollout_id", sa.Integer, nullable=False),
        sa.Column("stage_started_us", sa.BigInteger, nullable=False),
        sa.Column("service", sa.String(200), nullable=False),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("received_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_observations_rollout_id_id", "observations", ["rollout_id", "id"])
    op.create_index("ix_observations_received_us", "observations", ["received_us"])
    op.create_table(
        "revision_traffic",
        sa.Column("rollout_id", sa.Integer, primary_key=True),
        sa.Column("instance_id", sa.String(200), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("requests", sa.BigInteger, nullable=False),
        sa.Column("errors", sa.BigInteger, nullable=False),
        sa.Column("first_us", sa.BigInteger, nullable=False),
        sa.Column("last_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("ringfence migrations only go forward; restore a backup to go back")
