"""The fleet, rollouts and their members; audit events can point at a rollout.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("rollout_id", sa.Integer, nullable=True))
        batch.create_index("ix_audit_events_rollout_id", ["rollout_id", "id"])
    op.create_table(
        "instances",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("service", sa.String(200), nullable=False),
        sa.Column("region", sa.String(100), nullable=False),
        sa.Column("zone", sa.String(100), nullable=False),
        sa.Column("labels", sa.Text, nullable=False),
        sa.Column("configs", sa.Text, nullable=False),
        sa.Column("sdk_version", sa.String(50), nullable=False),
        sa.Column("started_us", sa.BigInteger, nullable=True),
        sa.Column("registered_us", sa.BigInteger, nullable=False),
        sa.Column("last_seen_us", sa.BigInteger, nullable=False),
        sa.Column("stopped_us", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_instances_service_region", "instances", ["service", "region"])
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("config", sa.String(600), nullable=False),
        sa.Column("from_version", sa.Integer, nullable=True),
        sa.Column("to_version", sa.Integer, nullable=False),
        sa.Column("policy", sa.Text, nullable=False),
        sa.Column("policy_source", sa.String(700), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("stage", sa.Integer, nullable=False),
        sa.Column("stage_started_us", sa.BigInteger, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("outcomes", sa.Text, nullable=False),
        sa.Column("verdict", sa.Text, nullable=True),
        sa.Column("emergency", sa.Boolean, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_rollouts_config_id", "rollouts", ["config", "id"])
    op.create_index("ix_rollouts_state", "rollouts", ["state"])
    op.create_table(
        "rollout_members",
        sa.Column("rollout_id", sa.Integer, sa.ForeignKey("rollouts.id", name="fk_rollout_members_rollout_id_rollouts"),
                  primary_key=True),
        sa.Column("instance_id", sa.String(200), primary_key=True),
        sa.Column("stage", sa.Integer, nullable=False),
        sa.Column("assigned_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("ringfence migrations only go forward; restore a backup to go back")
