"""Conversions between database rows and the core's dataclasses."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from ringfence.core.model import AuditEvent, Binding, Revision, Role, Token

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
