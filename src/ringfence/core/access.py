"""Who may do what: roles and namespace scopes, as pure rules."""

from __future__ import annotations

from enum import StrEnum

from ringfence.core.model import Role, Token
from ringfence.core.names import covers, matches
from ringfence.errors import Forbidden


class Action(StrEnum):
    READ = "read"                  # configs, revisions, diffs, schemas
    READ_AUDIT = "read_audit"
    WRITE = "write"                # push, revert, delete configs
    BIND_SCHEMA = "bind_schema"
    STEER = "steer"                # pause, resume, abort or roll back a rollout: toward safety
    DECIDE = "decide"              # promote a rollout past its analysis; bind rollout policies
    REGISTER = "register"          # an instance joining the fleet and reporting in
    EMERGENCY = "emergency"        # push with short bakes (the rings still run)
    MANAGE_TOKENS = "manage_tokens"
    READ_INCIDENTS = "read_incidents"  # incidents, their blast radius and post-mortems
    MANAGE_INCIDENTS = "manage_incidents"  # open incidents by hand, add notes, mitigate, resolve
    MANAGE_WEBHOOKS = "manage_webhooks"


_ALLOWED: dict[Role, frozenset[Action]] = {
    Role.VIEWER: frozenset({Action.READ, Action.READ_AUDIT, Action.READ_INCIDENTS}),
    Role.EDITOR: frozenset({Action.READ, Action.READ_AUDIT, Action.WRITE, Action.BIND_SCHEMA, Action.STEER,
                            Action.READ_INCIDENTS, Action.MANAGE_INCIDENTS}),
    Role.APPROVER: frozenset(
        {Action.READ, Action.READ_AUDIT, Action.WRITE, Action.BIND_SCHEMA, Action.STEER, Action.DECIDE,
         Action.READ_INCIDENTS, Action.MANAGE_INCIDENTS}
    ),
    Role.ADMIN: frozenset(Action),
    Role.SDK: frozenset({Action.READ, Action.REGISTER}),
}


def may(token: Token, action: Action) -> bool:
    return action in _ALLOWED[token.role]


def in_scope(token: Token, name: str) -> bool:
    """True when `name` (a config name) lies inside one of the token's scopes."""
    return any(matches(scope, name) for scope in token.scopes)


def covers_pattern(token: Token, pattern: str) -> bool:
    """True when every config `pattern` can bind lies inside one of the token's scopes."""
    return any(covers(scope, pattern) for scope in token.scopes)


def require(token: Token, action: Action, subject: str | None = None, *, pattern: bool = False) -> None:
    """Raise Forbidden unless `token` may do `action` on `subject` (a name or a pattern)."""
    if not may(token, action):
        raise Forbidden(f"the {token.role.value} role may not {action.value.replace('_', ' ')}")
    if subject is None:
        return
    allowed = covers_pattern(token, subject) if pattern else in_scope(token, subject)
    if not allowed:
        scopes = ", ".join(token.scopes) or "none"
        raise Forbidden(f"{subject!r} is outside this token's scopes ({scopes})")
