"""The schema of the database, written once for SQLite and PostgreSQL.

Times are integer microseconds since the Unix epoch (UTC): exact, sortable, and
the same on both databases. JSON values are stored as canonical JSON text, so
what comes back is byte-for-byte what was hashed.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# One row. Every write transaction takes the next number by updating it, which
# also serialises writers: commit order is seq order, so a stream that resumes
# after seq N can never miss a change that committed later with a smaller seq.
seq_counter = Table(
    "seq_counter",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("value", BigInteger, nullable=False),
)

configs = Table(
    "configs",
    metadata,
    Column("name", String(600), primary_key=True),
    Column("current_version", Integer, nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
)

revisions = Table(
    "revisions",
    metadata,
    Column("name", String(600), ForeignKey("configs.name"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("hash", String(80), nullable=False),
    Column("value", Text, nullable=True),
    Column("deleted", Boolean, nullable=False),
    Column("author", String(200), nullable=False),
    Column("message", Text, nullable=False),
    Column("parent", Integer, nullable=True),
    Column("created_us", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False, unique=True),
)

# Documents bound to name patterns (kind "schema" or "policy"), versioned like configs.
bindings = Table(
    "bindings",
    metadata,
    Column("kind", String(20), primary_key=True),
    Column("pattern", String(600), primary_key=True),
    Column("current_version", Integer, nullable=False),
    Column("deleted", Boolean, nullable=False),
)

binding_revisions = Table(
    "binding_revisions",
    metadata,
    Column("kind", String(20), primary_key=True),
    Column("pattern", String(600), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("hash", String(80), nullable=False),
    Column("document", Text, nullable=True),
    Column("deleted", Boolean, nullable=False),
    Column("author", String(200), nullable=False),
    Column("message", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
    ForeignKeyConstraint(["kind", "pattern"], ["bindings.kind", "bindings.pattern"]),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("seq", BigInteger, nullable=False),
    Column("time_us", BigInteger, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("subject", String(600), nullable=False),
    Column("message", Text, nullable=False),
    Column("before_hash", String(80), nullable=True),
    Column("after_hash", String(80), nullable=True),
    Column("details", Text, nullable=False),
    Column("rollout_id", Integer, nullable=True),
    Index("ix_audit_events_subject_id", "subject", "id"),
    Index("ix_audit_events_rollout_id", "rollout_id", "id"),
    Index("ix_audit_events_actor_id", "actor", "id"),
    Index("ix_audit_events_time_us", "time_us"),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("secret_hash", String(80), nullable=False),
    Column("role", String(20), nullable=False),
    Column("scopes", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("revoked_us", BigInteger, nullable=True),
    UniqueConstraint("secret_hash"),
)

# Dashboard sessions, by the SHA-256 of the random id in the browser's cookie (never the id
# itself): which token a session speaks for, and its CSRF token. In the database so that every
# replica knows them and a restart logs no one out.
ui_sessions = Table(
    "ui_sessions",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("token_id", String(40), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("seen_us", BigInteger, nullable=False),
    Index("ix_ui_sessions_seen_us", "seen_us"),
)

# The fleet: every service instance that registered, and when it was last heard from.
instances = Table(
    "instances",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("service", String(200), nullable=False),
    Column("region", String(100), nullable=False),
    Column("zone", String(100), nullable=False),
    Column("labels", Text, nullable=False),
    Column("configs", Text, nullable=False),  # the name patterns it reads
    Column("sdk_version", String(50), nullable=False),
    Column("started_us", BigInteger, nullable=True),
    Column("registered_us", BigInteger, nullable=False),
    Column("last_seen_us", BigInteger, nullable=False),
    Column("stopped_us", BigInteger, nullable=True),
    Index("ix_instances_service_region", "service", "region"),
)

rollouts = Table(
    "rollouts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("config", String(600), nullable=False),
    Column("from_version", Integer, nullable=True),
    Column("to_version", Integer, nullable=False),
    Column("policy", Text, nullable=False),
    Column("policy_source", String(700), nullable=False),
    Column("state", String(20), nullable=False),
    Column("stage", Integer, nullable=False),
    Column("stage_started_us", BigInteger, nullable=True),
    Column("reason", Text, nullable=False),
    Column("outcomes", Text, nullable=False),
    Column("verdict", Text, nullable=True),
    Column("emergency", Boolean, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Index("ix_rollouts_config_id", "config", "id"),
    Index("ix_rollouts_state", "state"),
)

# Instances that received a rollout's new revision. Insert-only: membership never shrinks
# while the rollout runs, so an instance never flips back and forth between revisions.
rollout_members = Table(
    "rollout_members",
    metadata,
    Column("rollout_id", Integer, ForeignKey("rollouts.id"), primary_key=True),
    Column("instance_id", String(200), primary_key=True),
    Column("stage", Integer, nullable=False),
    Column("assigned_us", BigInteger, nullable=False),
)

# What each instance reports it actually runs (it acknowledges every revision it applies).
applied = Table(
    "applied",
    metadata,
    Column("instance_id", String(200), primary_key=True),
    Column("config", String(600), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("applied_us", BigInteger, nullable=False),
)

# Health windows and process events of the instances in a running rollout, in the shape
# of formats/observations.md (`record` is one such line), each filed under the rollout stage
# (by its start) and service it belongs to. Whichever replica received a report writes it;
# the controller reads them in id order. Kept for a bounded time (observation_retention).
observations = Table(
    "observations",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("rollout_id", Integer, nullable=False),
    Column("stage_started_us", BigInteger, nullable=False),
    Column("service", String(200), nullable=False),
    Column("record", Text, nullable=False),
    Column("received_us", BigInteger, nullable=False),
    Index("ix_observations_rollout_id_id", "rollout_id", "id"),
    Index("ix_observations_received_us", "received_us"),
)

# What each instance served on each revision a rollout handed out: the blast radius of a bad one.
revision_traffic = Table(
    "revision_traffic",
    metadata,
    Column("rollout_id", Integer, primary_key=True),
    Column("instance_id", String(200), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("requests", BigInteger, nullable=False),
    Column("errors", BigInteger, nullable=False),
    Column("first_us", BigInteger, nullable=False),
    Column("last_us", BigInteger, nullable=False),
)

# Incidents: what a rolled-back (or hand-reported) change leaves behind. A rollout's incident
# is written in the rollback's own transaction; `rollout_id` is null for one opened by hand
# about no rollout. `evidence` is JSON (the verdict with its per-metric details).
incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rollout_id", Integer, nullable=True),
    Column("config", String(600), nullable=False),
    Column("from_version", Integer, nullable=True),
    Column("to_version", Integer, nullable=True),
    Column("severity", String(10), nullable=False),
    Column("summary", Text, nullable=False),
    Column("state", String(20), nullable=False),
    Column("opened_us", BigInteger, nullable=False),
    Column("mitigated_us", BigInteger, nullable=True),
    Column("resolved_us", BigInteger, nullable=True),
    Column("opened_by", String(200), nullable=False),
    Column("evidence", Text, nullable=False),
    Index("ix_incidents_state_id", "state", "id"),
    Index("ix_incidents_config_id", "config", "id"),
    Index("ix_incidents_rollout_id", "rollout_id"),
)

incident_notes = Table(
    "incident_notes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False),
    Column("time_us", BigInteger, nullable=False),
    Column("author", String(200), nullable=False),
    Column("kind", String(20), nullable=False),  # note, mitigate or resolve
    Column("text", Text, nullable=False),
    Index("ix_incident_notes_incident_id_id", "incident_id", "id"),
)

# Who ran the bad revision, as the incident found it when it opened: `applied` keeps only each
# instance's latest report, which the rollback's own re-apply overwrites moments later.
incident_exposure = Table(
    "incident_exposure",
    metadata,
    Column("incident_id", Integer, ForeignKey("incidents.id"), primary_key=True),
    Column("instance_id", String(200), primary_key=True),
    Column("service", String(200), nullable=False),
    Column("region", String(100), nullable=False),
    Column("stage", Integer, nullable=False),
    Column("assigned_us", BigInteger, nullable=False),
    Column("applied_us", BigInteger, nullable=True),
)

# Webhook subscriptions. The secret must sign every delivery, so unlike a token's it is kept
# as is (never logged, never returned after creation); a deleted webhook keeps its row.
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("url", Text, nullable=False),
    Column("events", Text, nullable=False),  # JSON list of event types
    Column("configs", Text, nullable=False),  # JSON list of name patterns
    Column("description", Text, nullable=False),
    Column("secret", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("deleted_us", BigInteger, nullable=True),
)

# The outbox: one row per (event, webhook), written in the event's own transaction, so a
# crash can delay a delivery but never lose it. `log` is JSON: every attempt's outcome.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("webhook_id", String(40), ForeignKey("webhooks.id"), nullable=False),
    Column("event_id", String(40), nullable=False),
    Column("event", String(40), nullable=False),
    Column("payload", Text, nullable=False),
    Column("state", String(20), nullable=False),  # pending, delivered, failed or cancelled
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_us", BigInteger, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("delivered_us", BigInteger, nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("last_error", Text, nullable=False),
    Column("log", Text, nullable=False),
    Index("ix_webhook_deliveries_state_next_attempt_us", "state", "next_attempt_us"),
    Index("ix_webhook_deliveries_webhook_id_id", "webhook_id", "id"),
)
