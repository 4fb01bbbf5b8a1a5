"""One contract suite for every store backend: the same behaviour on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import itertools
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from ringfence.core.canonical import canonical_json, content_hash
from ringfence.core.model import Role, Token
from ringfence.core.policy import parse_policy
from ringfence.core.rollout import Rollout, State
from ringfence.errors import Conflict, Forbidden, NotFound, PreconditionRequired, Unauthorized, ValidationFailed
from ringfence.server.app import build_services
from ringfence.server.settings import Settings
from ringfence.store.sql import SqlStore

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


class FakeClock:
    """Time only moves when a test moves it."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(seconds=1)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def svc(store: SqlStore, clock: FakeClock):  # type: ignore[no-untyped-def]
    return build_services(store, Settings(), clock)


def token(role: Role = Role.ADMIN, scopes: tuple[str, ...] = ("*",), name: str = "alice") -> Token:
    return Token("tok_test", name, role, scopes, dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "test")


ADMIN = token()


def count(store: SqlStore) -> tuple[int, int]:
    with store.read() as reader:
        return reader.revision_count(), reader.last_seq()


def test_push_stores_versioned_revisions_with_author_reason_and_hash(svc, clock) -> None:
    first = svc.configs.push(ADMIN, "payments/limits", {"card": 100}, expected=None, message="first")
    second = svc.configs.push(ADMIN, "payments/limits", {"card": 200}, expected=1, message="raise")
    assert (first.revision.version, second.revision.version) == (1, 2)
    assert second.revision.parent == 1
    assert second.revision.author == "alice"
    assert second.revision.message == "raise"
    assert second.revision.hash == content_hash({"card": 200})
    assert second.revision.seq > first.revision.seq
    assert [c.to_json() for c in second.changes] == [
        {"op": "replace", "path": "/card", "value": 200, "old": 100}
    ]
    current = svc.configs.current(ADMIN, "payments/limits")
    assert current.value == {"card": 200}
    assert current.created_at == second.revision.created_at
    assert [r.version for r in svc.configs.history(ADMIN, "payments/limits", None, 10)] == [2, 1]


def test_unchanged_push_stores_nothing(svc, store) -> None:
    svc.configs.push(ADMIN, "a/b", {"x": 1}, expected=None, message="m")
    before = count(store)
    result = svc.configs.push(ADMIN, "a/b", {"x": 1}, expected=1, message="again")
    assert not result.changed
    assert result.revision.version == 1
    assert count(store) == before


def test_every_write_appends_an_audit_event_in_the_same_transaction(svc, store) -> None:
    pushed = svc.configs.push(ADMIN, "a/b", {"x": 1}, expected=None, message="why")
    with store.read() as reader:
        [event] = reader.audit(subject="a/b", action="config.push")
        [started] = reader.audit(subject="a/b", action="rollout.start")
    assert (event.actor, event.action, event.message) == ("alice", "config.push", "why")
    assert event.after_hash == pushed.revision.hash
    assert event.before_hash is None
    assert event.seq == pushed.revision.seq
    assert pushed.rollout is not None
    assert started.seq == event.seq, "the push starts its rollout in the same transaction"
    assert started.details["rollout"] == pushed.rollout.id


def test_stale_or_missing_expected_version_is_a_conflict_and_stores_nothing(svc, store) -> None:
    svc.configs.push(ADMIN, "a/b", {"x": 1}, expected=None, message="m")
    svc.configs.push(ADMIN, "a/b", {"x": 2}, expected=1, message="m")
    before = count(store)
    with pytest.raises(Conflict) as stale:
        svc.configs.push(ADMIN, "a/b", {"x": 3}, expected=1, message="m")
    assert stale.value.current_version == 2
    with pytest.raises(PreconditionRequired) as missing:
        svc.configs.push(ADMIN, "a/b", {"x": 3}, expected=None, message="m")
    assert missing.value.current_version == 2
    assert count(store) == before


def test_validation_failure_reports_every_problem_and_stores_nothing(svc, store) -> None:
    schema = {"type": "object", "properties": {"card": {"type": "integer", "maximum": 1000},
                                               "currency": {"enum": ["EUR", "USD"]}}, "required": ["card"]}
    svc.schemas.bind(ADMIN, "payments/*", schema, expected=None, message="limits schema")
    before = count(store)
    with pytest.raises(ValidationFailed) as failed:
        svc.configs.push(ADMIN, "payments/limits", {"card": 5000, "currency": "GBP"}, expected=None, message="m")
    assert [p.pointer for p in failed.value.problems] == ["/card", "/currency"]
    assert count(store) == before
    with store.read() as reader:
        assert reader.head("payments/limits") is None


def test_most_specific_schema_binding_wins_and_bindings_are_versioned(svc) -> None:
    svc.schemas.bind(ADMIN, "*", {"type": "object"}, expected=None, message="objects")
    svc.schemas.bind(ADMIN, "payments/*", {"type": "object", "required": ["card"]}, expected=None, message="p")
    svc.schemas.bind(ADMIN, "payments/limits", {"type": "object", "required": ["limit"]}, expected=None, message="l")
    assert svc.schemas.effective(ADMIN, "payments/limits").pattern == "payments/limits"
    assert svc.schemas.effective(ADMIN, "payments/fees").pattern == "payments/*"
    assert svc.schemas.effective(ADMIN, "search/ranking").pattern == "*"
    svc.configs.push(ADMIN, "payments/limits", {"limit": 1}, expected=None, message="m")
    with pytest.raises(ValidationFailed):
        svc.configs.push(ADMIN, "payments/fees", {"limit": 1}, expected=None, message="m")
    svc.schemas.bind(ADMIN, "payments/*", {"type": "object"}, expected=1, message="relax")
    assert [s.version for s in svc.schemas.history(ADMIN, "payments/*", 10)] == [2, 1]
    svc.schemas.unbind(ADMIN, "payments/limits", expected=1, message="drop")
    assert svc.schemas.effective(ADMIN, "payments/limits").pattern == "payments/*"


def test_binding_a_schema_that_current_configs_break_is_refused_unless_forced(svc) -> None:
    svc.configs.push(ADMIN, "payments/limits", {"card": 5000}, expected=None, message="m")
    strict = {"type": "object", "properties": {"card": {"maximum": 1000}}}
    with pytest.raises(ValidationFailed) as refused:
        svc.schemas.bind(ADMIN, "payments/*", strict, expected=None, message="strict")
    assert refused.value.problems[0].pointer == "/card"
    assert "payments/limits" in refused.value.problems[0].message
    bound = svc.schemas.bind(ADMIN, "payments/*", strict, expected=None, message="strict", force=True)
    assert bound.version == 1


def test_delete_leaves_a_tombstone_and_history(svc) -> None:
    svc.configs.push(ADMIN, "a/b", {"x": 1}, expected=None, message="m")
    tombstone = svc.configs.delete(ADMIN, "a/b", expected=1, message="gone").revision
    assert tombstone.deleted and tombstone.version == 2
    with pytest.raises(NotFound, match="deleted at version 2"):
        svc.configs.current(ADMIN, "a/b")
    assert svc.configs.revision(ADMIN, "a/b", 1).value == {"x": 1}
    again = svc.configs.push(ADMIN, "a/b", {"x": 5}, expected=2, message="back")
    assert again.revision.version == 3


def test_revert_makes_a_new_revision_with_old_content(svc) -> None:
    for i, expected in enumerate([None, 1, 2], start=1):
        svc.configs.push(ADMIN, "a/b", {"x": i}, expected=expected, message=f"v{i}")
    reverted = svc.configs.revert(ADMIN, "a/b", 1, expected=3, message="back to known good")
    assert reverted.revision.version == 4
    assert reverted.revision.value == {"x": 1}
    with pytest.raises(NotFound, match="no version 9"):
        svc.configs.revert(ADMIN, "a/b", 9, expected=4, message="m")


def test_roles_and_scopes_are_enforced(svc) -> None:
    editor = token(Role.EDITOR, ("payments/*",), "bob")
    svc.configs.push(editor, "payments/limits", {"x": 1}, expected=None, message="m")
    with pytest.raises(Forbidden, match="outside this token's scopes"):
        svc.configs.push(editor, "search/ranking", {"x": 1}, expected=None, message="m")
    with pytest.raises(Forbidden):
        svc.configs.push(token(Role.VIEWER), "payments/limits", {"x": 2}, expected=1, message="m")
    with pytest.raises(Forbidden):
        svc.tokens.create(editor, "admin", ["*"])


def test_tokens_are_stored_hashed_and_revocable(svc, store) -> None:
    secret, created = svc.tokens.create(ADMIN, "editor", ["payments/*"], "ci-bot")
    assert svc.tokens.authenticate(secret).name == "ci-bot"
    with store.read() as reader:
        stored = reader.connection.execute(text("SELECT * FROM tokens")).all()
    assert secret not in json.dumps([list(map(str, row)) for row in stored])
    svc.tokens.revoke(ADMIN, created.id)
    with pytest.raises(Unauthorized, match="revoked") as revoked:
        svc.tokens.authenticate(secret)
    assert secret not in str(revoked.value)


def test_audit_filters_by_subject_actor_action_and_time(svc, store, clock) -> None:
    bob = token(Role.EDITOR, ("*",), "bob")
    svc.configs.push(ADMIN, "a/one", {"x": 1}, expected=None, message="m")
    middle = clock.now + dt.timedelta(milliseconds=500)
    svc.configs.push(bob, "a/two", {"x": 1}, expected=None, message="m")
    svc.configs.delete(bob, "a/two", expected=1, message="m")
    with store.read() as reader:
        assert [e.action for e in reader.audit(actor="bob") if e.action.startswith("config.")] == [
            "config.delete", "config.push"]
        assert [e.action for e in reader.audit(subject="a/two")] == [
            "rollout.start", "rollout.supersede", "config.delete", "rollout.start", "config.push"]
        assert [e.subject for e in reader.audit(action="config.push", since=middle)] == ["a/two"]
        assert [e.subject for e in reader.audit(action="config.push", until=middle)] == ["a/one"]


def test_seq_strictly_increases_across_all_kinds_of_write(svc, store) -> None:
    seqs = [
        svc.configs.push(ADMIN, "a/b", {"x": 1}, expected=None, message="m").revision.seq,
        svc.schemas.bind(ADMIN, "a/*", {"type": "object"}, expected=None, message="m").seq,
        svc.configs.push(ADMIN, "a/c", {"x": 1}, expected=None, message="m").revision.seq,
    ]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    with store.read() as reader:
        assert reader.last_seq() == seqs[-1]


_names = (f"round/trip-{i}" for i in itertools.count())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=json_values)
def test_a_revision_round_trips_through_the_store_unchanged(svc, value) -> None:  # type: ignore[no-untyped-def]
    name = next(_names)
    pushed = svc.configs.push(ADMIN, name, value, expected=None, message="m")
    read = svc.configs.revision(ADMIN, name, pushed.revision.version)
    assert canonical_json(read.value) == canonical_json(value)
    assert read.hash == content_hash(value) == pushed.revision.hash


def test_the_last_active_admin_token_cannot_be_revoked(svc) -> None:
    secret = svc.tokens.bootstrap(None)
    admin = svc.tokens.authenticate(secret)
    with pytest.raises(Conflict, match="last active admin"):
        svc.tokens.revoke(admin, admin.id)
    _, second = svc.tokens.create(admin, "admin", ["*"], "second-admin")
    assert svc.tokens.revoke(admin, admin.id).revoked_at is not None
    with pytest.raises(Unauthorized):
        svc.tokens.authenticate(secret)
    assert second.active


def test_a_revoked_token_stops_working_at_once_even_when_recently_verified(svc) -> None:
    secret, created = svc.tokens.create(ADMIN, "viewer", ["*"], "dashboard")
    assert svc.tokens.authenticate(secret).id == created.id
    assert svc.tokens.cached(secret) is not None
    svc.tokens.revoke(ADMIN, created.id)
    assert svc.tokens.cached(secret) is None
    with pytest.raises(Unauthorized, match="revoked"):
        svc.tokens.authenticate(secret)


@pytest.mark.parametrize("instances", [5, 150])  # a few instances are looked up by id, many by one scan
def test_when_each_instance_was_told_its_revision_is_read_in_one_go(store: SqlStore, instances: int) -> None:
    t0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
    policy = parse_policy({"stages": [{"name": "canary", "percent": 10}, {"name": "global"}]})
    rollout = Rollout(id="", config="shop/limits", from_version=1, to_version=2, policy=policy, created_at=t0,
                      created_by="alice", state=State.RUNNING, stage=0, stage_started_at=t0)
    ids = [f"i-{n:04d}" for n in range(instances)]
    with store.write() as tx:
        rollout_id = tx.insert_rollout(rollout)
        tx.add_members(rollout_id, ids[:2], 0, t0 + dt.timedelta(seconds=5))
        tx.add_members(rollout_id, ids[2:3], 0, t0 + dt.timedelta(seconds=9))
    # members were told v2 when they joined; the rest still run v1, as they have since the rollout began
    asked = {i: (2 if n < 3 else 1) for n, i in enumerate(ids)}
    asked[ids[-1]] = 2   # not a member: the rollout does not tell it to run v2
    with store.read() as reader:
        many = reader.assigned_since_many("shop/limits", asked)
        one_by_one = {i: reader.assigned_since("shop/limits", v, i) for i, v in asked.items()}
        assert reader.assigned_since_many("other/config", asked) == {}
    assert many == {i: at for i, at in one_by_one.items() if at is not None}
    assert many[ids[0]] == many[ids[1]] == t0 + dt.timedelta(seconds=5)
    assert many[ids[2]] == t0 + dt.timedelta(seconds=9)
    assert many[ids[3]] == t0
    assert ids[-1] not in many
