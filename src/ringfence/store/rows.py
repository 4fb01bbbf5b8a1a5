"""Conversions between database rows and the core's dataclasses."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from ringfence.core.fleet import Instance
from ringfence.core.model import AuditEvent, Binding, Revision, Role, Token
from ringfence.core.policy import policy_from_json
from ringfence.core.rollout import Rollout, StageOutcome, State, Verdict

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def to_us(moment: dt.datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return (moment - _EPOCH) // dt.timedelta(microseconds=1)


def from_us(us: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=us)


def revision(row: Any, *, with_value: bool = True) -> Revision:
    return Revision(
        name=row.name,
        version=row.version,
        hash=row.hash,
        value=json.loads(row.value) if with_value and row.value is not None else None,
        author=row.author,
        message=row.message,
        created_at=from_us(row.created_us),
        seq=row.seq,
        parent=row.parent,
        deleted=bool(row.deleted),
    )


def binding(row: Any) -> Binding:
    return Binding(
        kind=row.kind,
        pattern=row.pattern,
        version=row.version,
        hash=row.hash,
        document=json.loads(row.document) if row.document is not None else None,
        author=row.author,
        message=row.message,
        created_at=from_us(row.created_us),
        seq=row.seq,
        deleted=bool(row.deleted),
    )


def audit_event(row: Any) -> AuditEvent:
    return AuditEvent(
        id=row.id,
        seq=row.seq,
        time=from_us(row.time_us),
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        message=row.message,
        before_hash=row.before_hash,
        after_hash=row.after_hash,
        details=json.loads(row.details),
    )


def token(row: Any) -> Token:
    return Token(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        scopes=tuple(json.loads(row.scopes)),
        created_at=from_us(row.created_us),
        created_by=row.created_by,
        revoked_at=from_us(row.revoked_us) if row.revoked_us is not None else None,
    )


def instance(row: Any) -> Instance:
    return Instance(
        id=row.id, service=row.service, region=row.region, zone=row.zone, labels=json.loads(row.labels),
        configs=tuple(json.loads(row.configs)), sdk_version=row.sdk_version,
        registered_at=from_us(row.registered_us), last_seen=from_us(row.last_seen_us),
        started_at=from_us(row.started_us) if row.started_us is not None else None,
        stopped_at=from_us(row.stopped_us) if row.stopped_us is not None else None,
    )


def rollout(row: Any) -> Rollout:
    return Rollout(
        id=str(row.id), config=row.config, from_version=row.from_version, to_version=row.to_version,
        policy=policy_from_json(json.loads(row.policy)), created_at=from_us(row.created_us),
        created_by=row.created_by, emergency=bool(row.emergency), policy_source=row.policy_source,
        state=State(row.state), stage=row.stage,
        stage_started_at=from_us(row.stage_started_us) if row.stage_started_us is not None else None,
        reason=row.reason,
        outcomes=tuple(StageOutcome(o["stage"], o["how"], o["by"], o["reason"], dt.datetime.fromisoformat(o["at"]))
                       for o in json.loads(row.outcomes)),
        verdict=_verdict(json.loads(row.verdict)) if row.verdict else None,
    )


def _verdict(data: dict[str, Any]) -> Verdict:
    return Verdict(data["decision"], tuple(data["reasons"]), data["evidence"])


def rollout_values(rollout: Rollout) -> dict[str, Any]:
    """The columns a rollout's state lives in (not its id, creation time or seq)."""
    return {
        "config": rollout.config, "from_version": rollout.from_version, "to_version": rollout.to_version,
        "policy": json.dumps(rollout.policy.to_json(), sort_keys=True), "state": rollout.state.value,
        "stage": rollout.stage,
        "stage_started_us": to_us(rollout.stage_started_at) if rollout.stage_started_at else None,
        "reason": rollout.reason, "emergency": rollout.emergency, "created_by": rollout.created_by,
        "policy_source": rollout.policy_source,
        "outcomes": json.dumps(rollout.to_json()["outcomes"]),
        "verdict": json.dumps(rollout.to_json()["verdict"]) if rollout.verdict else None,
    }
