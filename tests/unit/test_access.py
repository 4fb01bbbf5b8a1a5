"""Roles, actions and namespace scopes (ringfence.core.access)."""

from __future__ import annotations

import datetime as dt

import pytest

from ringfence.core.access import Action, covers_pattern, in_scope, may, require
from ringfence.core.model import Role, Token
from ringfence.errors import Forbidden

CREATED = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def token(role: Role, *scopes: str) -> Token:
    return Token(
        id=f"tok-{role.value}",
        name=f"{role.value} token",
        role=role,
        scopes=scopes or ("*",),
        created_at=CREATED,
        created_by="admin@example.com",
    )


# Written out in full, independently of the code's table: this is the contract.
ALLOWED = {
    Role.VIEWER: {Action.READ, Action.READ_AUDIT, Action.READ_INCIDENTS},
    Role.EDITOR: {Action.READ, Action.READ_AUDIT, Action.WRITE, Action.BIND_SCHEMA, Action.STEER,
                  Action.READ_INCIDENTS, Action.MANAGE_INCIDENTS},
    Role.APPROVER: {Action.READ, Action.READ_AUDIT, Action.WRITE, Action.BIND_SCHEMA, Action.STEER, Action.DECIDE,
                    Action.READ_INCIDENTS, Action.MANAGE_INCIDENTS},
    Role.ADMIN: {
        Action.READ, Action.READ_AUDIT, Action.WRITE, Action.BIND_SCHEMA, Action.STEER, Action.DECIDE,
        Action.REGISTER, Action.EMERGENCY, Action.MANAGE_TOKENS, Action.READ_INCIDENTS, Action.MANAGE_INCIDENTS,
        Action.MANAGE_WEBHOOKS,
    },
    Role.SDK: {Action.READ, Action.REGISTER},
}


def test_the_matrix_covers_every_role_and_action() -> None:
    assert set(ALLOWED) == set(Role)
    assert ALLOWED[Role.ADMIN] == set(Action)


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", list(Action))
def test_role_action_matrix(role: Role, action: Action) -> None:
    allowed = action in ALLOWED[role]
    assert may(token(role), action) is allowed
    if allowed:
        require(token(role), action, "payments/limits")
    else:
        with pytest.raises(Forbidden) as caught:
            require(token(role), action, "payments/limits")
        assert role.value in caught.value.detail
        assert action.value.replace("_", " ") in caught.value.detail


def test_viewer_cannot_write() -> None:
    with pytest.raises(Forbidden, match="the viewer role may not write"):
        require(token(Role.VIEWER), Action.WRITE, "payments/limits")


def test_editor_cannot_manage_tokens() -> None:
    with pytest.raises(Forbidden, match="the editor role may not manage tokens"):
        require(token(Role.EDITOR), Action.MANAGE_TOKENS)


@pytest.mark.parametrize("action", [a for a in Action if a not in (Action.READ, Action.REGISTER)])
def test_sdk_can_only_read_and_register(action: Action) -> None:
    sdk = token(Role.SDK, "payments/*")
    require(sdk, Action.READ, "payments/limits")
    require(sdk, Action.REGISTER)
    with pytest.raises(Forbidden, match="the sdk role may not"):
        require(sdk, action, "payments/limits")


def test_admin_can_do_everything_everywhere() -> None:
    admin = token(Role.ADMIN, "*")
    for action in Action:
        require(admin, action, "any/config")
        require(admin, action, "*", pattern=True)


# --- scopes -------------------------------------------------------------------------------

SCOPED = token(Role.EDITOR, "payments/*", "billing/invoices")


@pytest.mark.parametrize(
    ("name", "inside"),
    [
        ("payments/limits", True),
        ("payments/eu/limits", True),
        ("billing/invoices", True),
        ("payments", False),  # `payments/*` is below payments, not payments itself
        ("payments-eu/limits", False),
        ("billing/other", False),
        ("billing", False),
    ],
)
def test_in_scope(name: str, inside: bool) -> None:
    assert in_scope(SCOPED, name) is inside


@pytest.mark.parametrize(
    ("pattern", "covered"),
    [
        ("payments/*", True),
        ("payments/eu/*", True),
        ("payments/limits", True),
        ("billing/invoices", True),
        ("billing/*", False),  # wider than the one billing config in scope
        ("*", False),
        ("search/*", False),
    ],
)
def test_covers_pattern(pattern: str, covered: bool) -> None:
    assert covers_pattern(SCOPED, pattern) is covered


def test_a_token_without_scopes_reaches_nothing() -> None:
    empty = Token("t", "empty", Role.ADMIN, (), CREATED, "admin")
    assert not in_scope(empty, "payments/limits")
    assert not covers_pattern(empty, "payments/*")
    with pytest.raises(Forbidden, match=r"outside this token's scopes \(none\)"):
        require(empty, Action.READ, "payments/limits")


def test_require_out_of_scope_names_the_subject_and_the_scopes() -> None:
    with pytest.raises(Forbidden) as caught:
        require(SCOPED, Action.WRITE, "search/ranking")
    assert "'search/ranking'" in caught.value.detail
    assert "payments/*" in caught.value.detail
    assert "billing/invoices" in caught.value.detail


def test_require_with_a_pattern_checks_that_the_scopes_cover_it() -> None:
    # Binding a schema to billing/* would reach configs outside the token's scopes.
    with pytest.raises(Forbidden, match=r"'billing/\*' is outside this token's scopes"):
        require(SCOPED, Action.BIND_SCHEMA, "billing/*", pattern=True)
    with pytest.raises(Forbidden):
        require(SCOPED, Action.BIND_SCHEMA, "*", pattern=True)
    require(SCOPED, Action.BIND_SCHEMA, "payments/eu/*", pattern=True)
    require(SCOPED, Action.BIND_SCHEMA, "billing/invoices", pattern=True)


def test_role_is_checked_before_scope() -> None:
    # A viewer asking to write outside its scopes learns about the role first.
    viewer = token(Role.VIEWER, "payments/*")
    with pytest.raises(Forbidden, match="role may not write"):
        require(viewer, Action.WRITE, "search/ranking")


def test_require_without_subject_checks_only_the_role() -> None:
    require(token(Role.ADMIN, "payments/*"), Action.MANAGE_TOKENS)
    require(token(Role.VIEWER, "payments/*"), Action.READ_AUDIT)


# --- the token as stored ------------------------------------------------------------------


def test_token_json_and_revocation() -> None:
    live = token(Role.SDK, "payments/*")
    assert live.active
    assert live.to_json() == {
        "id": "tok-sdk",
        "name": "sdk token",
        "role": "sdk",
        "scopes": ["payments/*"],
        "created_at": "2026-01-02T03:04:05+00:00",
        "created_by": "admin@example.com",
        "revoked_at": None,
    }
    revoked = Token(
        live.id, live.name, live.role, live.scopes, live.created_at, live.created_by,
        revoked_at=CREATED + dt.timedelta(days=1),
    )
    assert not revoked.active
    assert revoked.to_json()["revoked_at"] == "2026-01-03T03:04:05+00:00"
    assert not {"hash", "secret", "token"} & live.to_json().keys()
