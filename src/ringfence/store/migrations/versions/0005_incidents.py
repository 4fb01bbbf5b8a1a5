"""Incidents with their notes and exposure, webhooks and their delivery outbox.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("rollout_id", sa.Integer, nullable=True),
        sa.Column("config", sa.String(600), nullable=False),
        sa.Column("from_version", sa.Integer, nullable=True),
        sa.Column("to_version", sa.Integer, nullable=True),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("opened_us", sa.BigInteger, nullable=False),
        sa.Column("mitigated_us", sa.BigInteger, nullable=True),
        sa.Column("resolved_us", sa.BigInteger, nullable=True),
        sa.Column("opened_by", sa.String(200), nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
    )
    op.create_index("ix_incidents_state_id", "incidents", ["state", "id"])
    op.create_index("ix_incidents_config_id", "incidents", ["config", "id"])
    op.create_index("ix_incidents_rollout_id", "incidents", ["rollout_id"])
    op.create_table(
        "incident_notes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.Integer,
                  sa.ForeignKey("incidents.id", name="fk_incident_notes_incident_id_incidents"), nullable=False),
        sa.Column("time_us", sa.BigInteger, nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
    )
    op.create_index("ix_incident_notes_incident_id_id", "incident_notes", ["incident_id", "id"])
    op.create_table(
        "incident_exposure",
        sa.Column("incident_id", sa.Integer,
                  sa.ForeignKey("incidents.id", name="fk_incident_exposure_incident_id_incidents"),
                  primary_key=True),
        sa.Column("instance_id", sa.String(200), primary_key=True),
        sa.Column("service", sa.String(200), nullable=False),
        sa.Column("region", sa.String(100), nullable=False),
        sa.Column("stage", sa.Integer, nullable=False),
        sa.Column("assigned_us", sa.BigInteger, nullable=False),
        sa.Column("applied_us", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("events", sa.Text, nullable=False),
        sa.Column("configs", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("deleted_us", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("webhook_id", sa.String(40),
                  sa.ForeignKey("webhooks.id", name="fk_webhook_deliveries_webhook_id_webhooks"), nullable=False),
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_us", sa.BigInteger, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("delivered_us", sa.BigInteger, nullable=True),
        sa.Column("last_status", sa.Integer, nullable=True),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.Column("log", sa.Text, nullable=False),
    )
    op.create_index("ix_webhook_deliveries_state_next_attempt_us", "webhook_deliveries",
                    ["state", "next_attempt_us"])
    op.create_index("ix_webhook_deliveries_webhook_id_id", "webhook_deliveries", ["webhook_id", "id"])


def downgrade() -> None:
    raise NotImplementedError("ringfence migrations only go forward; restore a backup to go back")
