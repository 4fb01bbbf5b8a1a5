"""The rollout state machine (ringfence.core.rollout): every transition of its docstring, and its errors."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest

from ringfence.core.policy import DEFAULT_POLICY, Policy, parse_policy
from ringfence.core.rollout import (
    COMMANDS,
    CONTROLLER,
    AssignStage,
    Effect,
    Event,
    IllegalTransition,
    OpenIncident,
    RollBack,
    Rollout,
    StageOutcome,
    State,
    Verdict,
    command,
    start,
    supersede,
    tick,
)
from ringfence.errors import Conflict, InvalidInput

T0 = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
POLICY = parse_policy({
    "stages": [
        {"name": "canary", "min_instances": 2, "percent": 1, "bake": {"min": "2m", "max": "10m"}},
        {"name": "early", "percent": 10, "bake": {"min": "5m", "max": "20m"}},
        {"name": "global", "percent": 100, "bake": {"min": "1m", "max": "5m"}},
    ],
})
PASS = Verdict("pass", ("error rate unchanged",), {"p": 0.4})
CONTINUE = Verdict("continue", ("not enough data",))
FAIL = Verdict("fail", ("error rate 4x baseline",), {"errors": 0.12})


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def new_rollout(policy: Policy = POLICY, **changes: Any) -> Rollout:
    return Rollout(id="r-1", config="payments/limits", from_version=6, to_version=7, policy=policy,
                   created_at=T0, created_by="alice", **changes)


def events(effects: list[Effect]) -> list[Event]:
    return [e for e in effects if isinstance(e, Event)]


def others(effects: list[Effect]) -> list[Effect]:
    return [e for e in effects if not isinstance(e, Event)]


def only_event(effects: list[Effect], rollout: Rollout) -> Event:
    (event,) = events(effects)
    assert event.details["rollout"] == rollout.id
    assert event.details["state"] == rollout.state.value
    return event


def running(stage: int = 0, started: float = 0.0, policy: Policy = POLICY) -> Rollout:
    rollout, _ = start(new_rollout(policy), at(0))
    for index in range(stage):
        rollout, _ = command(rollout, "promote", "bob", f"checked stage {index}", at(started))
    return replace(rollout, stage_started_at=at(started))


def paused(stage: int = 0) -> Rollout:
    rollout, _ = command(running(stage), "pause", "bob", "looking", at(30))
    return rollout


def terminal(state: State) -> Rollout:
    reached, _ = {
        State.COMPLETED: lambda r: command(running(2), "promote", "bob", "done", at(10)),
        State.ROLLED_BACK: lambda r: command(r, "rollback", "bob", "bad", at(10)),
        State.ABORTED: lambda r: command(r, "abort", "bob", "wrong file", at(10)),
        State.SUPERSEDED: lambda r: supersede(r, "r-2", at(10)),
    }[state](running(1))
    return reached


# --- start ------------------------------------------------------------------------------------------


def test_start_runs_stage_0_and_assigns_it_at_once() -> None:
    rollout, effects = start(new_rollout(), at(0))

    assert (rollout.state, rollout.stage, rollout.stage_started_at) == (State.RUNNING, 0, at(0))
    assert others(effects) == [AssignStage(0)]
    event = only_event(effects, rollout)
    assert (event.action, event.actor) == ("rollout.start", "alice")
    assert event.details["stage_name"] == "canary"


def test_an_emergency_start_is_marked_in_the_audit_log() -> None:
    rollout, effects = start(new_rollout(POLICY.emergency(), emergency=True), at(0))
    assert "emergency" in only_event(effects, rollout).reason


def test_start_twice_is_illegal() -> None:
    rollout, _ = start(new_rollout(), at(0))
    with pytest.raises(IllegalTransition, match="not pending"):
        start(rollout, at(1))


# --- tick ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [0, 1, 60, 119.9])
def test_a_pass_before_the_minimum_bake_does_nothing(seconds: float) -> None:
    rollout = running()
    assert tick(rollout, PASS, at(seconds), live_members=5) == (rollout, [])


def test_a_pass_after_the_minimum_bake_with_enough_live_members_advances() -> None:
    rollout = running()
    moved, effects = tick(rollout, PASS, at(120), live_members=2)

    assert (moved.state, moved.stage, moved.stage_started_at) == (State.RUNNING, 1, at(120))
    assert moved.outcomes == (StageOutcome(0, "pass", CONTROLLER, "error rate unchanged", at(120)),)
    assert others(effects) == [AssignStage(1)]
    event = only_event(effects, moved)
    assert (event.action, event.actor, event.details["from_stage"]) == ("rollout.pass", CONTROLLER, 0)
    assert event.details["evidence"]["verdict"] == "pass"
    assert event.details["evidence"]["p"] == 0.4


def test_the_next_stage_bakes_from_when_it_started() -> None:
    moved, _ = tick(running(), PASS, at(120), live_members=2)
    assert tick(moved, PASS, at(120 + 299), live_members=2) == (moved, [])
    again, effects = tick(moved, PASS, at(120 + 300), live_members=2)
    assert again.stage == 2 and others(effects) == [AssignStage(2)]


@pytest.mark.parametrize("live", [0, 1])
def test_a_pass_without_enough_live_members_holds(live: int) -> None:
    rollout = running()  # the canary needs 2
    assert tick(rollout, PASS, at(300), live_members=live) == (rollout, [])


def test_continue_keeps_baking() -> None:
    rollout = running()
    assert tick(rollout, CONTINUE, at(300), live_members=5) == (rollout, [])


def test_reaching_the_max_bake_without_a_pass_pauses_and_says_why() -> None:
    rollout = running()
    stopped, effects = tick(rollout, CONTINUE, at(600), live_members=5)

    assert stopped.state is State.PAUSED and stopped.stage == 0
    assert "max bake" in stopped.reason and "not enough data" in stopped.reason
    assert others(effects) == []
    event = only_event(effects, stopped)
    assert (event.action, event.actor, event.reason) == ("rollout.pause", CONTROLLER, stopped.reason)
    assert stopped.assigned(member=True) == 7  # paused is not rolled back


def test_too_few_live_members_until_the_max_bake_pauses_and_says_so() -> None:
    stopped, _ = tick(running(), PASS, at(600), live_members=1)
    assert stopped.state is State.PAUSED
    assert "max bake" in stopped.reason
    assert "only 1 live instance(s)" in stopped.reason and "needs 2" in stopped.reason


def test_a_pass_at_the_max_bake_still_advances() -> None:
    moved, _ = tick(running(), PASS, at(600), live_members=2)
    assert (moved.state, moved.stage) == (State.RUNNING, 1)


@pytest.mark.parametrize("seconds", [0, 119, 600])
def test_a_fail_rolls_back_and_opens_an_incident(seconds: float) -> None:
    ended, effects = tick(running(1), FAIL, at(seconds), live_members=5)

    assert ended.state is State.ROLLED_BACK
    assert "early" in ended.reason and "error rate 4x baseline" in ended.reason
    rollback, incident = others(effects)
    assert rollback == RollBack()
    assert isinstance(incident, OpenIncident)
    assert incident.reason == ended.reason and incident.evidence["errors"] == 0.12
    assert only_event(effects, ended).action == "rollout.rollback"
    assert ended.assigned(member=True) == 6 and ended.fleet_version() == 6


def test_a_fail_without_reasons_still_says_what_happened() -> None:
    ended, _ = tick(running(), Verdict("fail"), at(5), live_members=0)
    assert ended.state is State.ROLLED_BACK and "failed" in ended.reason


def test_a_fail_under_on_failure_pause_pauses_without_rolling_back_and_opens_an_incident() -> None:
    policy = replace(POLICY, on_failure="pause")
    stopped, effects = tick(running(policy=policy), FAIL, at(30), live_members=5)

    assert stopped.state is State.PAUSED
    assert "error rate 4x baseline" in stopped.reason
    (incident,) = others(effects)  # no RollBack: only the incident a regression always opens
    assert isinstance(incident, OpenIncident) and "error rate 4x baseline" in incident.reason
    assert incident.evidence["verdict"] == "fail"
    assert only_event(effects, stopped).action == "rollout.pause"
    assert stopped.assigned(member=True) == 7


@pytest.mark.parametrize("verdict", [PASS, CONTINUE, FAIL])
def test_ticks_do_nothing_unless_running(verdict: Verdict) -> None:
    for rollout in (new_rollout(), paused(), *(terminal(s) for s in (State.COMPLETED, State.ROLLED_BACK,
                                                                      State.ABORTED, State.SUPERSEDED))):
        assert tick(rollout, verdict, at(10_000), live_members=50) == (rollout, [])


def test_a_pass_on_the_last_stage_completes() -> None:
    rollout = running(2)
    done, effects = tick(rollout, PASS, at(60), live_members=2)

    assert done.state is State.COMPLETED
    assert [o.stage for o in done.outcomes] == [0, 1, 2]
    assert others(effects) == []  # nothing more to assign: everyone runs the new revision now
    assert [e.action for e in events(effects)] == ["rollout.pass", "rollout.complete"]
    assert all(e.details["rollout"] == "r-1" for e in events(effects))
    assert done.assigned(member=False) == 7 and done.fleet_version() == 7


# --- commands ---------------------------------------------------------------------------------------------


def test_pause_and_resume_restart_the_bake_clock() -> None:
    rollout = running()
    stopped, effects = command(rollout, "pause", "bob", "", at(100))
    assert stopped.state is State.PAUSED and stopped.reason == "paused by hand"
    assert only_event(effects, stopped).actor == "bob"
    assert others(effects) == []

    resumed, effects = command(stopped, "resume", "bob", "looks fine", at(200))
    assert (resumed.state, resumed.stage, resumed.stage_started_at, resumed.reason) == (
        State.RUNNING, 0, at(200), "")
    assert only_event(effects, resumed).action == "rollout.resume"
    assert others(effects) == []
    # 120 s after the start would have passed; 120 s after the resume is needed now.
    assert tick(resumed, PASS, at(250), live_members=5) == (resumed, [])
    assert tick(resumed, PASS, at(320), live_members=5)[0].stage == 1


@pytest.mark.parametrize("reason", ["", "   ", "\n"])
def test_promote_needs_a_reason(reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        command(running(), "promote", "bob", reason, at(1))
    assert "reason" in caught.value.detail
    assert [p.pointer for p in caught.value.problems] == ["/reason"]


@pytest.mark.parametrize("source", ["running", "paused"])
def test_promote_records_who_and_why(source: str) -> None:
    rollout = running() if source == "running" else paused()
    moved, effects = command(rollout, "promote", "bob", "  verified by hand ", at(40))

    assert (moved.state, moved.stage, moved.stage_started_at) == (State.RUNNING, 1, at(40))
    assert moved.outcomes == (StageOutcome(0, "promote", "bob", "verified by hand", at(40)),)
    assert others(effects) == [AssignStage(1)]
    event = only_event(effects, moved)
    assert (event.action, event.actor, event.reason) == ("rollout.promote", "bob", "verified by hand")


def test_promote_on_the_last_stage_completes() -> None:
    done, effects = command(running(2), "promote", "bob", "ship it", at(1))
    assert done.state is State.COMPLETED
    assert done.outcomes[-1] == StageOutcome(2, "promote", "bob", "ship it", at(1))
    assert [e.action for e in events(effects)] == ["rollout.promote", "rollout.complete"]


@pytest.mark.parametrize("source", ["pending", "running", "paused"])
def test_abort_returns_everyone_to_the_previous_revision_without_an_incident(source: str) -> None:
    rollout = {"pending": new_rollout, "running": lambda: running(1), "paused": lambda: paused(1)}[source]()
    ended, effects = command(rollout, "abort", "bob", "wrong file", at(50))

    assert (ended.state, ended.reason) == (State.ABORTED, "wrong file")
    assert others(effects) == [RollBack()]
    event = only_event(effects, ended)
    assert (event.action, event.actor, event.reason) == ("rollout.abort", "bob", "wrong file")
    assert ended.assigned(member=True) == 6 == ended.assigned(member=False)


@pytest.mark.parametrize("source", ["pending", "running", "paused"])
def test_rollback_returns_everyone_and_opens_an_incident(source: str) -> None:
    rollout = {"pending": new_rollout, "running": lambda: running(1), "paused": lambda: paused(1)}[source]()
    ended, effects = command(rollout, "rollback", "bob", "latency up", at(50))

    assert (ended.state, ended.reason) == (State.ROLLED_BACK, "latency up")
    assert others(effects) == [RollBack(), OpenIncident("latency up", {})]
    event = only_event(effects, ended)
    assert (event.action, event.actor) == ("rollout.rollback", "bob")
    assert ended.assigned(member=True) == 6


@pytest.mark.parametrize("name", ["abort", "rollback"])
def test_abort_and_rollback_need_a_reason(name: str) -> None:
    with pytest.raises(InvalidInput, match="reason"):
        command(running(), name, "bob", " ", at(1))


@pytest.mark.parametrize(("name", "source"), [
    ("pause", "paused"), ("pause", "pending"), ("resume", "running"), ("resume", "pending"), ("promote", "pending"),
])
def test_a_command_the_active_state_does_not_allow_is_a_clear_conflict(name: str, source: str) -> None:
    rollout = {"pending": new_rollout, "running": running, "paused": paused}[source]()
    with pytest.raises(IllegalTransition) as caught:
        command(rollout, name, "bob", "because", at(1))
    assert isinstance(caught.value, Conflict)  # 409 at the API
    assert name in caught.value.detail and source in caught.value.detail and "r-1" in caught.value.detail


def test_an_unknown_command_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="use one of pause, resume, promote, abort, rollback"):
        command(running(), "restart", "bob", "x", at(1))


@pytest.mark.parametrize("state", [State.COMPLETED, State.ROLLED_BACK, State.ABORTED, State.SUPERSEDED])
@pytest.mark.parametrize("name", COMMANDS)
def test_terminal_states_accept_no_command(state: State, name: str) -> None:
    rollout = terminal(state)
    assert rollout.state is state
    with pytest.raises(IllegalTransition) as caught:
        command(rollout, name, "bob", "a reason", at(99))
    assert isinstance(caught.value, Conflict)
    assert state.value in caught.value.detail and name in caught.value.detail
    assert ("new revision" in caught.value.detail) is (state is State.COMPLETED)
    with pytest.raises(IllegalTransition):
        start(rollout, at(99))


def test_going_back_after_completion_points_to_a_new_push() -> None:
    with pytest.raises(IllegalTransition, match=r"push .*new revision, canaried"):
        command(terminal(State.COMPLETED), "rollback", "bob", "oops", at(1))


# --- supersede ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["pending", "running", "paused"])
def test_a_newer_push_supersedes_an_active_rollout(source: str) -> None:
    rollout = {"pending": new_rollout, "running": lambda: running(1), "paused": lambda: paused(1)}[source]()
    ended, effects = supersede(rollout, "r-2", at(60))

    assert ended.state is State.SUPERSEDED and "r-2" in ended.reason
    assert others(effects) == []  # the newer rollout decides what instances run
    event = only_event(effects, ended)
    assert (event.action, event.details["by"]) == ("rollout.supersede", "r-2")
    assert ended.assigned(member=True) == 6


@pytest.mark.parametrize("state", [State.COMPLETED, State.ROLLED_BACK, State.ABORTED, State.SUPERSEDED])
def test_supersede_leaves_finished_rollouts_alone(state: State) -> None:
    rollout = terminal(state)
    assert supersede(rollout, "r-9", at(500)) == (rollout, [])


# --- what instances run --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("rollout", "member", "outsider", "fleet"), [
    pytest.param(new_rollout(), 7, 6, 6, id="pending"),
    pytest.param(running(1), 7, 6, 6, id="running"),
    pytest.param(paused(1), 7, 6, 6, id="paused"),
    pytest.param(terminal(State.COMPLETED), 7, 7, 7, id="completed"),
    pytest.param(terminal(State.ROLLED_BACK), 6, 6, 6, id="rolled_back"),
    pytest.param(terminal(State.ABORTED), 6, 6, 6, id="aborted"),
    pytest.param(terminal(State.SUPERSEDED), 6, 6, 6, id="superseded"),
])
def test_assigned_and_fleet_version_per_state(rollout: Rollout, member: int, outsider: int, fleet: int) -> None:
    assert rollout.assigned(member=True) == member
    assert rollout.assigned(member=False) == outsider
    assert rollout.fleet_version() == fleet


def test_a_brand_new_config_has_nothing_to_fall_back_to() -> None:
    rollout, _ = start(replace(new_rollout(), from_version=None), at(0))
    assert rollout.assigned(member=True) == 7
    assert rollout.assigned(member=False) is None
    ended, _ = command(rollout, "abort", "bob", "not yet", at(1))
    assert ended.assigned(member=True) is None


def test_a_whole_default_rollout_by_passes_alone() -> None:
    rollout, _ = start(new_rollout(DEFAULT_POLICY), at(0))
    now = 0.0
    for stage in DEFAULT_POLICY.stages:
        assert tick(rollout, PASS, at(now + stage.bake_min - 1), live_members=1) == (rollout, [])
        now += stage.bake_min
        rollout, _ = tick(rollout, PASS, at(now), live_members=1)
    assert rollout.state is State.COMPLETED
    assert [(o.stage, o.how) for o in rollout.outcomes] == [(i, "pass") for i in range(4)]
