"""Dataclasses of the vocabulary in DESIGN §2 that this layer knows about."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Role(StrEnum):
    """What a token may do; see `ringfence.core.access` for the exact rules."""

    VIEWER = "viewer"      # read configs, history, diffs, schemas and the audit log in scope
    EDITOR = "editor"      # + push, revert, delete configs, bind schemas; pause, resume, abort, roll back
    APPROVER = "approver"  # + promote rollouts past their analysis, bind rollout policies
    ADMIN = "admin"        # everything, including tokens
    SDK = "sdk"            # what a service instance needs: register, read its configs in scope


@dataclass(frozen=True, slots=True)
class Revision:
    """One immutable version of a config. A tombstone (`deleted`) has no value."""

    name: str
    version: int
    hash: str
    value: Any
    author: str
    message: str
    created_at: dt.datetime
    seq: int
    parent: int | None = None
    deleted: bool = False

    def to_json(self, *, with_value: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "hash": self.hash,
            "author": self.author,
            "message": self.message,
            "created_at": self.created_at.isoformat(),
            "seq": self.seq,
            "parent": self.parent,
            "deleted": self.deleted,
        }
        if with_value:
            out["value"] = self.value
        return out


@dataclass(frozen=True, slots=True)
class Binding:
    """One version of a document bound to a name pattern: a schema, or a rollout policy.

    Bindings are versioned and audited like configs; the most specific live one binds a
    config. A tombstone (`deleted`) unbinds the pattern.
    """

    kind: str  # "schema" or "policy"
    pattern: str
    version: int
    hash: str
    document: Any
    author: str
    message: str
    created_at: dt.datetime
    seq: int
    deleted: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "pattern": self.pattern,
            "version": self.version,
            "hash": self.hash,
            self.kind: self.document,
            "author": self.author,
            "message": self.message,
            "created_at": self.created_at.isoformat(),
            "seq": self.seq,
            "deleted": self.deleted,
        }


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One entry of the append-only audit log: who did what to what, when and why."""

    id: int
    seq: int
    time: dt.datetime
    actor: str
    action: str
    subject: str
    message: str = ""
    before_hash: str | None = None
    after_hash: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "seq": self.seq,
            "time": self.time.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "message": self.message,
            "before_hash": self.before_hash,
            "after_hash": self.after_hash,
            "details": self.details,
        }


@dataclass(frozen=True, slots=True)
class Token:
    """A bearer token as stored: never the secret, only its hash."""

    id: str
    name: str
    role: Role
    scopes: tuple[str, ...]
    created_at: dt.datetime
    created_by: str
    revoked_at: dt.datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role.value,
            "scopes": list(self.scopes),
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }
