"""Configs, revisions, schemas, audit events and tokens.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seq_counter",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.execute("INSERT INTO seq_counter (id, value) VALUES (1, 0)")
    op.create_table(
        "configs",
        sa.Column("name", sa.String(600), primary_key=True),
        sa.Column("current_version", sa.Integer, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "revisions",
        sa.Column("name", sa.String(600), sa.ForeignKey("configs.name", name="fk_revisions_name_configs"),
                  primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("hash", sa.String(80), nullable=False),
        sa.Column("value", sa.Text, nullable=True),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("parent", sa.Integer, nullable=True),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("seq", name="uq_revisions_seq"),
    )
    op.create_table(
        "schemas",
        sa.Column("pattern", sa.String(600), primary_key=True),
        sa.Column("current_version", sa.Integer, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
    )
    op.create_table(
        "schema_revisions",
        sa.Column("pattern", sa.String(600),
                  sa.ForeignKey("schemas.pattern", name="fk_schema_revisions_pattern_schemas"),
                  primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("hash", sa.String(80), nullable=False),
        sa.Column("schema", sa.Text, nullable=True),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("seq", name="uq_schema_revisions_seq"),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("time_us", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("subject", sa.String(600), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("before_hash", sa.String(80), nullable=True),
        sa.Column("after_hash", sa.String(80), nullable=True),
        sa.Column("details", sa.Text, nullable=False),
    )
    op.create_index("ix_audit_events_subject_id", "audit_events", ["subject", "id"])
    op.create_index("ix_audit_events_actor_id", "audit_events", ["actor", "id"])
    op.create_index("ix_audit_events_time_us", "audit_events", ["time_us"])
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("secret_hash", sa.String(80), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("revoked_us", sa.BigInteger, nullable=True),
        sa.UniqueConstraint("secret_hash", name="uq_tokens_secret_hash"),
    )


def downgrade() -> None:
    for table in ("tokens", "audit_events", "schema_revisions", "schemas", "revisions", "configs",
                  "seq_counter"):
        op.drop_table(table)
