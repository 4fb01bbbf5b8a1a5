"""Schemas and rollout policies share one versioned binding table, told apart by `kind`.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bindings",
        sa.Column("kind", sa.String(20), primary_key=True),
        sa.Column("pattern", sa.String(600), primary_key=True),
        sa.Column("current_version", sa.Integer, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
    )
    op.create_table(
        "binding_revisions",
        sa.Column("kind", sa.String(20), primary_key=True),
        sa.Column("pattern", sa.String(600), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("hash", sa.String(80), nullable=False),
        sa.Column("document", sa.Text, nullable=True),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(["kind", "pattern"], ["bindings.kind", "bindings.pattern"],
                                name="fk_binding_revisions_kind_bindings"),
    )
    op.execute("INSERT INTO bindings (kind, pattern, current_version, deleted) "
               "SELECT 'schema', pattern, current_version, deleted FROM schemas")
    op.execute("INSERT INTO binding_revisions (kind, pattern, version, hash, document, deleted, author, message, "
               "created_us, seq) SELECT 'schema', pattern, version, hash, schema, deleted, author, message, "
               "created_us, seq FROM schema_revisions")
    op.drop_table("schema_revisions")
    op.drop_table("schemas")


def downgrade() -> None:
    raise NotImplementedError("ringfence migrations only go forward; restore a backup to go back")
