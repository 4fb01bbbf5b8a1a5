"""Binding documents to config names and prefixes: JSON Schemas, and rollout policies.

Both kinds are versioned and audited like configs, use If-Match the same way, and
bind a config by the most specific live pattern. What differs is passed in: how
to check a document, and what a new binding would break among existing configs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ringfence.core.access import Action, require
from ringfence.core.canonical import content_hash
from ringfence.core.model import Binding, Token
from ringfence.core.names import check_pattern, matches, most_specific
from ringfence.core.validation import schema_problems
from ringfence.errors import NotFound, Problem, ValidationFailed
from ringfence.server.configs import Clock, check_expected, check_message
from ringfence.store.sql import SqlStore, Writer, candidate_patterns

Breakage = Callable[[Writer, str, Any], list[Problem]]


def schema_breakage(tx: Writer, pattern: str, schema: Any) -> list[Problem]:
    """Problems the configs `pattern` would govern already have under `schema`."""
    prefix = "" if pattern == "*" else pattern[:-1] if pattern.endswith("/*") else pattern
    live = {b.pattern for b in tx.bindings("schema")} | {pattern}
    problems: list[Problem] = []
    after = None
    while heads := tx.heads(prefix=prefix, after=after, limit=500):
        for head in heads:
            after = head.name
            governing = most_specific([p for p in candidate_patterns(head.name) if p in live], head.name)
            if not matches(pattern, head.name) or governing != pattern:
                continue
            current = tx.revision(head.name, head.version)
            assert current is not None
            for p in schema_problems(schema, current.value):
                problems.append(Problem(p.pointer, f"{head.name}: {p.message}", "schema"))
    return problems


class BindingService:
    def __init__(
        self, store: SqlStore, clock: Clock, *, kind: str, action: Action,
        check: Callable[[Any], object], breakage: Breakage | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.kind = kind
        self.action = action
        self.check = check
        self.breakage = breakage

    def get(self, token: Token, pattern: str, version: int | None = None) -> Binding:
        require(token, Action.READ)
        check_pattern(pattern)
        with self.store.read() as reader:
            binding = reader.binding(self.kind, pattern, version)
        if binding is None:
            which = f"version {version} of a {self.kind}" if version else f"a {self.kind}"
            raise NotFound(f"there is no {which} bound to {pattern!r}")
        return binding

    def live(self, token: Token) -> list[Binding]:
        require(token, Action.READ)
        with self.store.read() as reader:
            return reader.bindings(self.kind)

    def history(self, token: Token, pattern: str, limit: int) -> list[Binding]:
        require(token, Action.READ)
        check_pattern(pattern)
        with self.store.read() as reader:
            history = reader.binding_history(self.kind, pattern, limit=limit)
        if not history:
            raise NotFound(f"no {self.kind} was ever bound to {pattern!r}")
        return history

    def effective(self, token: Token, name: str) -> Binding:
        require(token, Action.READ, name)
        with self.store.read() as reader:
            binding = reader.binding_for(self.kind, name)
        if binding is None:
            raise NotFound(f"no {self.kind} binds {name!r}")
        return binding

    def bind(
        self, token: Token, pattern: str, document: Any, *, expected: int | None, message: str,
        force: bool = False,
    ) -> Binding:
        require(token, self.action, check_pattern(pattern), pattern=True)
        message = check_message(message)
        self.check(document)
        with self.store.write() as tx:
            current = tx.binding(self.kind, pattern)
            check_expected(f"the {self.kind} bound to {pattern!r}", current.version if current else None, expected)
            if self.breakage and not force:
                problems = self.breakage(tx, pattern, document)
                if problems:
                    raise ValidationFailed(
                        f"{len(problems)} problem(s) in configs {pattern!r} already holds; fix them "
                        "first, or bind anyway with force (their next push must then conform)",
                        problems,
                    )
            return self._commit(tx, token, pattern, document, current, message, "bind")

    def unbind(self, token: Token, pattern: str, *, expected: int | None, message: str) -> Binding:
        require(token, self.action, check_pattern(pattern), pattern=True)
        message = check_message(message)
        with self.store.write() as tx:
            current = tx.binding(self.kind, pattern)
            if current is None or current.deleted:
                raise NotFound(f"there is no {self.kind} bound to {pattern!r}")
            check_expected(f"the {self.kind} bound to {pattern!r}", current.version, expected)
            return self._commit(tx, token, pattern, None, current, message, "unbind")

    def _commit(
        self, tx: Writer, token: Token, pattern: str, document: Any, current: Binding | None,
        message: str, verb: str,
    ) -> Binding:
        new_hash = content_hash(document)
        if current and not current.deleted and document is not None and current.hash == new_hash:
            return current
        now = self.clock()
        binding = Binding(
            kind=self.kind, pattern=pattern, version=(current.version if current else 0) + 1, hash=new_hash,
            document=document, author=token.name, message=message, created_at=now, seq=tx.seq,
            deleted=document is None,
        )
        tx.insert_binding(binding)
        tx.append_event(
            seq=tx.seq, time=now, actor=token.name, action=f"{self.kind}.{verb}", subject=f"{self.kind}:{pattern}",
            message=message, before_hash=current.hash if current else None,
            after_hash=None if document is None else new_hash, details={"version": binding.version},
        )
        return binding
