"""Response shapes, for the OpenAPI document (handlers return plain JSON built by the core)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class RevisionOut(BaseModel):
    name: str
    version: int
    hash: str
    author: str
    message: str
    created_at: str = Field(description="ISO 8601, UTC")
    seq: int = Field(description="global change number; streams resume from it")
    parent: int | None
    deleted: bool
    value: Any = Field(None, description="the config's JSON value (absent in history listings)")


class ChangeOut(BaseModel):
    op: str = Field(description="add, remove or replace (RFC 6902)")
    path: str = Field(description="JSON pointer")
    value: Any = None
    old: Any = None


class RolloutOut(BaseModel):
    id: str
    config: str
    from_version: int | None
    to_version: int
    state: str = Field(description="pending, running, paused, completed, rolled_back, aborted or superseded")
    stage: int
    stage_name: str
    stage_started_at: str | None
    reason: str
    emergency: bool
    created_at: str
    created_by: str
    policy: dict[str, Any]
    policy_source: str = Field(description="the binding the policy came from, as payments/*@2, or default")
    outcomes: list[dict[str, Any]]
    verdict: dict[str, Any] | None = Field(None, description="the latest verdict: decision, reasons, evidence")


class PushOut(BaseModel):
    revision: RevisionOut
    changed: bool = Field(description="false when the value equals the current one: nothing stored")
    changes: list[ChangeOut]
    rollout: RolloutOut | None = Field(None, description="the rollout the new revision started")


class ConfigHeadOut(BaseModel):
    name: str
    version: int
    deleted: bool
    updated_at: str


class ConfigPage(BaseModel):
    items: list[ConfigHeadOut]
    next_cursor: str | None


class HistoryOut(BaseModel):
    items: list[RevisionOut]


class DiffOut(BaseModel):
    name: str
    from_version: int
    to_version: int
    changes: list[ChangeOut]
    summary: dict[str, int]


class ProblemItem(BaseModel):
    pointer: str
    message: str
    validator: str
    line: int | None = None
    column: int | None = None


class ValidateOut(BaseModel):
    name: str
    valid: bool
    problems: list[ProblemItem]
    changes: list[ChangeOut]
    current_version: int | None
    schema_pattern: str | None
    schema_version: int | None


class SchemaOut(BaseModel):
    pattern: str
    version: int
    hash: str
    schema_: Any = Field(None, alias="schema")
    author: str
    message: str
    created_at: str
    seq: int
    deleted: bool


class SchemaList(BaseModel):
    items: list[SchemaOut]


class AuditEventOut(BaseModel):
    id: int
    seq: int
    time: str
    actor: str
    action: str
    subject: str
    message: str
    before_hash: str | None
    after_hash: str | None
    details: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEventOut]
    next_before: int | None = Field(description="pass as `before` to get the next (older) page")


class TokenOut(BaseModel):
    id: str
    name: str
    role: str
    scopes: list[str]
    created_at: str
    created_by: str
    revoked_at: str | None


class TokenCreated(TokenOut):
    token: str = Field(description="the secret; shown only this once")


class TokenList(BaseModel):
    items: list[TokenOut]


class TokenCreate(BaseModel):
    role: str = Field(description="admin, approver, editor, viewer or sdk")
    scopes: list[str] = Field(default_factory=lambda: ["*"], description="name patterns, e.g. payments/*")
    name: str | None = Field(None, max_length=200, description="who or what holds it (shown in audit)")
