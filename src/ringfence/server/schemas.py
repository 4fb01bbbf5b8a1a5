"""Binding JSON Schemas to config names and prefixes; bindings are versioned and audited."""

from __future__ import annotations

from typing import Any

from ringfence.core.access import Action, require
from ringfence.core.canonical import content_hash
from ringfence.core.model import SchemaRevision, Token
from ringfence.core.names import check_pattern, matches, most_specific
from ringfence.core.validation import check_schema, schema_problems
from ringfence.errors import NotFound, Problem, ValidationFailed
from ringfence.server.configs import Clock, check_expected, check_message
from ringfence.store.sql import SqlStore, Writer, candidate_patterns


def violations(tx: Writer, pattern: str, schema: Any) -> list[Problem]:
    """Problems the configs now governed by `pattern` would have under `schema`."""
    prefix = "" if pattern == "*" else pattern[:-1] if pattern.endswith("/*") else pattern
    live = {s.pattern for s in tx.schema_bindings()} | {pattern}
    problems: list[Problem] = []
    after = None
    while True:
        heads = tx.heads(prefix=prefix, after=after, limit=500)
        if not heads:
            return problems
        for head in heads:
            after = head.name
            governing = most_specific([p for p in candidate_patterns(head.name) if p in live], head.name)
            if not matches(pattern, head.name) or governing != pattern:
                continue
            current = tx.revision(head.name, head.version)
            assert current is not None
            for p in schema_problems(schema, current.value):
                problems.append(Problem(p.pointer, f"{head.name}: {p.message}", "schema"))


class SchemaService:
    def __init__(self, store: SqlStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def get(self, token: Token, pattern: str, version: int | None = None) -> SchemaRevision:
        require(token, Action.READ)
        check_pattern(pattern)
        with self.store.read() as reader:
            schema = reader.schema(pattern, version)
        if schema is None:
            which = f"version {version} of the schema" if version else "a schema"
            raise NotFound(f"there is no {which} bound to {pattern!r}")
        return schema

    def bindings(self, token: Token) -> list[SchemaRevision]:
        require(token, Action.READ)
        with self.store.read() as reader:
            return reader.schema_bindings()

    def history(self, token: Token, pattern: str, limit: int) -> list[SchemaRevision]:
        require(token, Action.READ)
        check_pattern(pattern)
        with self.store.read() as reader:
            history = reader.schema_history(pattern, limit=limit)
        if not history:
            raise NotFound(f"no schema was ever bound to {pattern!r}")
        return history

    def effective(self, token: Token, name: str) -> SchemaRevision:
        require(token, Action.READ, name)
        with self.store.read() as reader:
            schema = reader.schema_for(name)
        if schema is None:
            raise NotFound(f"no schema binds {name!r}")
        return schema

    def bind(
        self, token: Token, pattern: str, schema: Any, *, expected: int | None, message: str,
        force: bool = False,
    ) -> SchemaRevision:
        require(token, Action.BIND_SCHEMA, check_pattern(pattern), pattern=True)
        message = check_message(message)
        check_schema(schema)
        with self.store.write() as tx:
            current = tx.schema(pattern)
            check_expected(f"the schema bound to {pattern!r}", current.version if current else None, expected)
            if not force:
                problems = violations(tx, pattern, schema)
                if problems:
                    raise ValidationFailed(
                        f"{len(problems)} problem(s) in configs {pattern!r} already holds; fix them "
                        "first, or bind anyway with force (their next push must then conform)",
                        problems,
                    )
            return self._commit(tx, token, pattern, schema, current, message, "schema.bind")

    def unbind(self, token: Token, pattern: str, *, expected: int | None, message: str) -> SchemaRevision:
        require(token, Action.BIND_SCHEMA, check_pattern(pattern), pattern=True)
        message = check_message(message)
        with self.store.write() as tx:
            current = tx.schema(pattern)
            if current is None or current.deleted:
                raise NotFound(f"there is no schema bound to {pattern!r}")
            check_expected(f"the schema bound to {pattern!r}", current.version if current else None, expected)
            return self._commit(tx, token, pattern, None, current, message, "schema.unbind")

    def _commit(
        self, tx: Writer, token: Token, pattern: str, schema: Any, current: SchemaRevision | None,
        message: str, action: str,
    ) -> SchemaRevision:
        new_hash = content_hash(schema)
        if current and not current.deleted and schema is not None and current.hash == new_hash:
            return current
        now = self.clock()
        seq = tx.seq
        revision = SchemaRevision(
            pattern=pattern, version=(current.version if current else 0) + 1, hash=new_hash,
            schema=schema, author=token.name, message=message, created_at=now, seq=seq,
            deleted=schema is None,
        )
        tx.insert_schema(revision)
        tx.append_event(
            seq=seq, time=now, actor=token.name, action=action, subject=f"schema:{pattern}",
            message=message, before_hash=current.hash if current else None,
            after_hash=None if schema is None else new_hash, details={"version": revision.version},
        )
        return revision
