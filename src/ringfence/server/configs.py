"""Pushing, reading, reverting and deleting configs: the core's rules applied over the store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ringfence.core import diff as structural
from ringfence.core.access import Action, require
from ringfence.core.canonical import content_hash
from ringfence.core.documents import json_problems
from ringfence.core.model import Binding, Revision, Token
from ringfence.core.names import check_name
from ringfence.core.rollout import Rollout
from ringfence.core.validation import Validator, compile_schema, validate
from ringfence.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PreconditionRequired,
    Problem,
    ValidationFailed,
)
from ringfence.server.changes import Changes
from ringfence.store.sql import Reader, SqlStore, Writer

Clock = Callable[[], dt.datetime]


class RevisionHook(Protocol):
    def __call__(self, tx: Writer, revision: Revision, actor: str, now: dt.datetime, *,
                 emergency: bool) -> Rollout: ...
TOMBSTONE_HASH = content_hash(None)


@dataclass(frozen=True)
class PushResult:
    revision: Revision
    changes: list[structural.Change]
    changed: bool  # False when the value equals the current one: nothing was stored
    rollout: Rollout | None = None  # the rollout the new revision started


@dataclass(frozen=True)
class Check:
    """What `push` would do, without doing it."""

    name: str
    problems: list[Problem]
    changes: list[structural.Change]
    current_version: int | None
    schema: Binding | None = None


def check_message(message: str) -> str:
    message = (message or "").strip()
    if not message:
        raise InvalidInput(
            "a change needs a reason: give a message (ringfence push -m \"why\")",
            [Problem("/message", "must not be empty", "request")],
        )
    return message


def check_expected(subject: str, current: int | None, expected: int | None) -> None:
    """Make sure the writer knew the current version (optimistic concurrency)."""
    if current is None:
        if expected not in (None, 0):
            raise Conflict(f"{subject} does not exist, but the write expected version {expected}", 0)
        return
    if expected is None:
        raise PreconditionRequired(
            f"{subject} already exists at version {current}: send If-Match: {current} "
            "so a concurrent change cannot be overwritten",
            current,
        )
    if expected != current:
        raise Conflict(
            f"{subject} is at version {current}, not {expected}: someone changed it since you "
            "read it; fetch it, reapply your change and retry",
            current,
        )


class ConfigService:
    def __init__(self, store: SqlStore, validators: Sequence[Validator], clock: Clock,
                 on_revision: RevisionHook | None = None, changes: Changes | None = None) -> None:
        self.store = store
        self.changes = changes or Changes()
        self.validators = list(validators)
        self.clock = clock
        # Called in the write transaction of every new revision: rollouts start there, so a
        # change is never stored without the rollout that carries it to the fleet.
        self.on_revision = on_revision
        self._schemas: dict[str, Any] = {}  # schema hash -> compiled validator

    # --- reads -----------------------------------------------------------------------
    def current(self, token: Token, name: str) -> Revision:
        require(token, Action.READ, check_name(name))
        with self.store.read() as reader:
            revision = reader.current(name)
        if revision is None:
            raise NotFound(f"config {name!r} does not exist")
        if revision.deleted:
            raise NotFound(f"config {name!r} was deleted at version {revision.version}")
        return revision

    def revision(self, token: Token, name: str, version: int) -> Revision:
        require(token, Action.READ, check_name(name))
        with self.store.read() as reader:
            revision = reader.revision(name, version)
            if revision is None:
                head = reader.head(name)
        if revision is None:
            if head is None:
                raise NotFound(f"config {name!r} does not exist")
            raise NotFound(f"config {name!r} has no version {version} (versions 1 to {head.version})")
        return revision

    def history(self, token: Token, name: str, before: int | None, limit: int) -> list[Revision]:
        require(token, Action.READ, check_name(name))
        with self.store.read() as reader:
            if reader.head(name) is None:
                raise NotFound(f"config {name!r} does not exist")
            return reader.history(name, before=before, limit=limit)

    def diff(self, token: Token, name: str, old: int, new: int) -> list[structural.Change]:
        a, b = self.revision(token, name, old), self.revision(token, name, new)
        return structural.diff(a.value, b.value)

    # --- checks ----------------------------------------------------------------------
    def problems(self, reader: Reader, name: str, value: Any) -> tuple[list[Problem], Binding | None]:
        problems = json_problems(value)
        if problems:
            return problems, None
        schema = reader.binding_for("schema", name)
        return validate(name, value, self._compiled(schema) if schema else None, self.validators), schema

    def _compiled(self, schema: Binding) -> Any:
        compiled = self._schemas.get(schema.hash)
        if compiled is None:
            if len(self._schemas) >= 256:
                self._schemas.clear()
            compiled = self._schemas[schema.hash] = compile_schema(schema.document)
        return compiled

    def check(self, token: Token, name: str, value: Any) -> Check:
        require(token, Action.READ, check_name(name))
        with self.store.read() as reader:
            problems, schema = self.problems(reader, name, value)
            current = reader.current(name)
        base = current.value if current and not current.deleted else {}
        return Check(name, problems, structural.diff(base, value), current.version if current else None,
                     schema)

    # --- writes ----------------------------------------------------------------------
    def push(
        self, token: Token, name: str, value: Any, *, expected: int | None, message: str,
        action: str = "config.push", details: dict[str, Any] | None = None, emergency: bool = False,
    ) -> PushResult:
        require(token, Action.WRITE, check_name(name))
        if emergency:
            require(token, Action.EMERGENCY)
        message = check_message(message)
        with self.store.write() as tx:
            current = tx.current(name)
            version = current.version if current else None
            check_expected(name, version, expected)
            problems, schema = self.problems(tx, name, value)
            if problems:
                raise ValidationFailed(
                    f"{name} has {len(problems)} problem(s); nothing was stored: "
                    f"{problems[0].pointer or '(root)'}: {problems[0].message}",
                    problems,
                )
            live = current is not None and not current.deleted
            new_hash = content_hash(value)
            base = current.value if live and current else {}
            changes = structural.diff(base, value)
            if live and current and current.hash == new_hash:
                return PushResult(current, [], changed=False)
            now = self.clock()
            seq = tx.seq
            revision = Revision(
                name=name, version=(version or 0) + 1, hash=new_hash, value=value,
                author=token.name, message=message, created_at=now, seq=seq, parent=version,
            )
            tx.insert_revision(revision)
            tx.append_event(
                seq=seq, time=now, actor=token.name, action=action, subject=name, message=message,
                before_hash=current.hash if current else None, after_hash=new_hash,
                details={"version": revision.version, "parent": version,
                         "schema": f"{schema.pattern}@{schema.version}" if schema else None,
                         "changes": structural.summary(changes), "emergency": emergency, **(details or {})},
            )
            rollout = self.on_revision(tx, revision, token.name, now, emergency=emergency) if self.on_revision else None
        self.changes.changed(name)
        return PushResult(revision, changes, changed=True, rollout=rollout)

    def revert(self, token: Token, name: str, to: int, *, expected: int | None, message: str) -> PushResult:
        target = self.revision(token, name, to)
        if target.deleted:
            raise InvalidInput(f"version {to} of {name} is a deletion; revert to a version with content")
        return self.push(
            token, name, target.value, expected=expected, message=message,
            action="config.revert", details={"reverted_to": to},
        )

    def delete(self, token: Token, name: str, *, expected: int | None, message: str) -> PushResult:
        require(token, Action.WRITE, check_name(name))
        message = check_message(message)
        with self.store.write() as tx:
            current = tx.current(name)
            if current is None:
                raise NotFound(f"config {name!r} does not exist")
            check_expected(name, current.version, expected)
            if current.deleted:
                raise Conflict(f"config {name!r} is already deleted (version {current.version})",
                               current.version)
            now = self.clock()
            seq = tx.seq
            tombstone = Revision(
                name=name, version=current.version + 1, hash=TOMBSTONE_HASH, value=None,
                author=token.name, message=message, created_at=now, seq=seq,
                parent=current.version, deleted=True,
            )
            tx.insert_revision(tombstone)
            tx.append_event(
                seq=seq, time=now, actor=token.name, action="config.delete", subject=name,
                message=message, before_hash=current.hash, after_hash=None,
                details={"version": tombstone.version, "parent": current.version},
            )
            # A deletion reaches the fleet ring by ring too.
            rollout = self.on_revision(tx, tombstone, token.name, now, emergency=False) if self.on_revision else None
        self.changes.changed(name)
        return PushResult(tombstone, structural.diff(current.value, None), changed=True, rollout=rollout)
