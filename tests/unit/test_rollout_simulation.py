"""Rollouts driven in simulated time: random histories keep the invariants people rely on, and the
default policy walks a 200-instance fleet ring by ring exactly as the policy says (issue 3 acceptance)."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ringfence.core.policy import DEFAULT_POLICY, Policy, parse_policy
from ringfence.core.rollout import (
    ACTIVE,
    COMMANDS,
    AssignStage,
    Effect,
    Event,
    IllegalTransition,
    OpenIncident,
    RollBack,
    Rollout,
    State,
    Verdict,
    command,
    start,
    supersede,
    tick,
)
from ringfence.core.targeting import Member, placement, targets
from ringfence.errors import InvalidInput

T0 = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
CONFIG = "payments/limits"
OLD, NEW = 41, 42
TERMINAL = frozenset(State) - ACTIVE
ALLOWED = {
    "pause": {State.RUNNING},
    "resume": {State.PAUSED},
    "promote": {State.RUNNING, State.PAUSED},
    "abort": set(ACTIVE),
    "rollback": set(ACTIVE),
}
NEEDS_REASON = {"promote", "abort", "rollback"}
REGIONS = ("eu-west", "us-east", "ap-south")
SERVICES = ("checkout", "search")


def make_fleet(n: int, prefix: str = "i-") -> list[Member]:
    return [Member(f"{prefix}{i:03d}", service=SERVICES[i % 2], region=REGIONS[i % 3], zone="abc"[i % 3],
                   labels={"canary": "true" if i % 20 == 0 else "false", "team": "pay"}) for i in range(n)]


@dataclass
class Controller:
    """What the server's controller does with the core: keep the member set, apply effects."""

    policy: Policy
    fleet: list[Member]
    rollout: Rollout = field(init=False)
    members: set[str] = field(default_factory=set)
    now: dt.datetime = T0
    log: list[Effect] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rollout = Rollout(id="r-7", config=CONFIG, from_version=OLD, to_version=NEW, policy=self.policy,
                               created_at=T0, created_by="alice")

    def apply(self, result: tuple[Rollout, list[Effect]]) -> list[Effect]:
        self.rollout, effects = result
        for effect in effects:
            if isinstance(effect, AssignStage):
                self.members |= targets(self.policy, effect.stage, CONFIG, self.fleet)
        self.log.extend(effects)
        return effects

    def join(self, newcomers: list[Member]) -> None:
        """An instance that joins mid-rollout is placed by the same rule as the rest."""
        self.fleet = self.fleet + newcomers
        if self.rollout.active and self.rollout.state is not State.PENDING:
            self.members |= targets(self.policy, self.rollout.stage, CONFIG, self.fleet)

    def live_members(self) -> int:
        return sum(1 for m in self.fleet if m.alive and m.id in self.members)

    def revisions(self) -> dict[str, int | None]:
        return {m.id: self.rollout.assigned(member=m.id in self.members) for m in self.fleet}

    def on_new(self) -> set[str]:
        return {i for i, version in self.revisions().items() if version == NEW}


# --- invariants over random histories -----------------------------------------------------------------


def check_invariants(before: Rollout, after: Rollout, effects: list[Effect], ctl: Controller) -> None:
    stages = after.policy.stages
    # (1) every stage left was left by a pass after its bake or a promote with a reason, in order.
    assert [o.stage for o in after.outcomes] == list(range(len(after.outcomes)))
    if after.state is State.COMPLETED:
        # (3) completed: every stage has its outcome.
        assert len(after.outcomes) == len(stages)
    else:
        assert len(after.outcomes) == after.stage
    for outcome in after.outcomes:
        assert outcome.how == "pass" or (outcome.how == "promote" and outcome.reason.strip() and outcome.by)
    assert after.outcomes[: len(before.outcomes)] == before.outcomes  # history is append-only
    for new in after.outcomes[len(before.outcomes):]:
        if new.how == "pass":
            assert before.state is State.RUNNING and before.stage_started_at is not None
            assert (new.at - before.stage_started_at).total_seconds() >= stages[new.stage].bake_min
    # Stages only move forward, one at a time, each announced by an AssignStage.
    assigned = [e.stage for e in effects if isinstance(e, AssignStage)]
    if after.stage != before.stage:
        assert after.stage == before.stage + 1 and after.state is State.RUNNING
        assert assigned == [after.stage]
    elif after.state is State.RUNNING and before.state is State.PENDING:
        assert assigned == [0]
    else:
        assert assigned == []
    # (4) terminal states never change again.
    if before.state in TERMINAL:
        assert after == before and effects == []
    # Every change leaves an audit event naming the rollout; no change, no effects.
    if after != before:
        audit = [e for e in effects if isinstance(e, Event)]
        assert audit and all(e.details["rollout"] == after.id for e in audit)
    else:
        assert effects == []
    ended_by_rollback = before.state in ACTIVE and after.state in (State.ROLLED_BACK, State.ABORTED)
    assert any(isinstance(e, RollBack) for e in effects) == ended_by_rollback
    halted_by_a_fail = (before.state is State.RUNNING and after.state is State.PAUSED
                        and after.reason.startswith(f"stage {stages[before.stage].name} failed"))
    assert any(isinstance(e, OpenIncident) for e in effects) == (
        (before.state in ACTIVE and after.state is State.ROLLED_BACK) or halted_by_a_fail)
    # (2) what each instance must run.
    revisions = ctl.revisions()
    if after.state in (State.ROLLED_BACK, State.ABORTED, State.SUPERSEDED):
        assert after.assigned(member=True) == OLD == after.fleet_version()
        assert set(revisions.values()) <= {OLD}
    elif after.state is State.COMPLETED:
        assert set(revisions.values()) <= {NEW}
    else:
        assert revisions == {i: NEW if i in ctl.members else OLD for i in revisions}
        if after.state is not State.PENDING:
            assert targets(after.policy, after.stage, CONFIG, ctl.fleet) <= ctl.members


def step(ctl: Controller, action: tuple[Any, ...]) -> None:
    before = ctl.rollout
    kind = action[0]
    effects: list[Effect] = []
    if kind == "tick":
        _, decision, seconds, live = action
        ctl.now += dt.timedelta(seconds=seconds)
        effects = ctl.apply(tick(before, Verdict(decision, ("simulated",)), ctl.now, live_members=live))
    elif kind == "start":
        if before.state is State.PENDING:
            effects = ctl.apply(start(before, ctl.now))
        else:
            with pytest.raises(IllegalTransition):
                start(before, ctl.now)
    elif kind == "supersede":
        effects = ctl.apply(supersede(before, "r-8", ctl.now))
    else:
        _, name, reason = action
        if before.state not in ALLOWED[name]:
            with pytest.raises(IllegalTransition):
                command(before, name, "bob", reason, ctl.now)
        elif name in NEEDS_REASON and not reason.strip():
            with pytest.raises(InvalidInput):
                command(before, name, "bob", reason, ctl.now)
        else:
            effects = ctl.apply(command(before, name, "bob", reason, ctl.now))
    check_invariants(before, ctl.rollout, effects, ctl)


TICKS = st.tuples(st.just("tick"), st.sampled_from(["pass", "pass", "continue", "fail"]),
                  st.sampled_from([0, 1, 10, 30, 60, 120, 300, 600, 1800]), st.integers(0, 4))
PASSES = st.tuples(st.just("tick"), st.just("pass"), st.sampled_from([10, 300, 1800]), st.just(50))
COMMAND_ACTIONS = st.tuples(st.just("cmd"), st.sampled_from(COMMANDS),
                            st.sampled_from(["", "  ", "verified by hand", "verified by hand"]))
# Mostly the clock and verdicts, often a person, rarely a newer push: histories that get somewhere.
ACTIONS = st.integers(0, 99).flatmap(
    lambda n: TICKS if n < 50 else PASSES if n < 75 else COMMAND_ACTIONS if n < 97
    else st.just(("start",)) if n < 98 else st.just(("supersede",))
)


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    stages = []
    for i in range(draw(st.integers(1, 4))):
        low, high = sorted(draw(st.lists(st.sampled_from([0, 10, 60, 300, 900]), min_size=2, max_size=2)))
        stages.append({
            "name": f"ring-{i}", "percent": draw(st.sampled_from([1, 5, 10, 50, 100])),
            "min_instances": draw(st.integers(0, 3)), "bake": {"min": low, "max": high},
            "select": draw(st.sampled_from([{}, {"labels": {"canary": "true"}}, {"region": ["eu-west"]}])),
        })
    return parse_policy({"stages": stages, "on_failure": draw(st.sampled_from(["rollback", "pause"]))})


SIM = settings(max_examples=200, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SIM
@given(st.one_of(st.just(DEFAULT_POLICY), st.just(DEFAULT_POLICY.emergency()), policies()),
       st.sampled_from([True, True, True, False]), st.lists(ACTIONS, min_size=5, max_size=60))
def test_random_histories_keep_the_rollout_invariants(policy: Policy, started: bool,
                                                      actions: list[tuple[Any, ...]]) -> None:
    ctl = Controller(policy, make_fleet(30))
    if started:
        step(ctl, ("start",))
    for action in actions:
        step(ctl, action)


@SIM
@given(policies(), st.lists(st.sampled_from([10, 60, 300]), min_size=1, max_size=30))
def test_passes_alone_complete_after_the_bakes_and_never_sooner(policy: Policy, steps: list[int]) -> None:
    ctl = Controller(policy, make_fleet(30))
    ctl.apply(start(ctl.rollout, ctl.now))
    for seconds in steps:
        step(ctl, ("tick", "pass", seconds, 30))
    assert ctl.rollout.state in (State.RUNNING, State.COMPLETED)  # passes with enough instances never pause
    elapsed = (ctl.now - T0).total_seconds()
    passed = len(ctl.rollout.outcomes)
    assert elapsed >= sum(s.bake_min for s in policy.stages[:passed])
    if ctl.rollout.state is State.COMPLETED:
        assert ctl.on_new() == {m.id for m in ctl.fleet}


# --- the acceptance simulation: default policy, 200 instances, simulated time ---------------------------------

TICK = dt.timedelta(seconds=10)
FLEET = make_fleet(200)


def run(policy: Policy, *, fleet: list[Member] = FLEET, verdicts: dict[int, str] | None = None,
        joins: dict[int, list[Member]] | None = None, until: int = 3000) -> tuple[Controller, list[dict[str, Any]]]:
    """Tick every 10 s with `pass` (or verdicts[second]) until the rollout ends; record every step."""
    ctl = Controller(policy, list(fleet))
    ctl.apply(start(ctl.rollout, ctl.now))  # the push starts stage 0 at once
    history = [{"t": 0, "state": ctl.rollout.state, "stage": ctl.rollout.stage, "on_new": ctl.on_new()}]
    while ctl.rollout.active and (ctl.now - T0).total_seconds() < until:
        ctl.now += TICK
        second = int((ctl.now - T0).total_seconds())
        if joins and second in joins:
            ctl.join(joins[second])
        before = ctl.rollout
        decision = (verdicts or {}).get(second, "pass")
        effects = ctl.apply(tick(before, Verdict(decision, (f"{decision} at {second}s",)), ctl.now,
                                 live_members=ctl.live_members()))
        check_invariants(before, ctl.rollout, effects, ctl)
        history.append({"t": second, "state": ctl.rollout.state, "stage": ctl.rollout.stage,
                        "on_new": ctl.on_new(), "effects": effects})
    return ctl, history


def check_rings(policy: Policy, fleet: list[Member], history: list[dict[str, Any]]) -> None:
    """At every step: exactly the instances the stage targets run the new revision, the set only grows,
    and each stage is left at the first tick after its minimum bake."""
    previous: set[str] = set()
    for row in history:
        if row["state"] is State.COMPLETED:
            assert row["on_new"] == {m.id for m in fleet}
        else:
            assert row["state"] is State.RUNNING
            assert row["on_new"] == targets(policy, row["stage"], CONFIG, fleet)
        assert previous <= row["on_new"], f"an instance lost the new revision at {row['t']}s"
        previous = row["on_new"]
    stage_at: dict[int, int] = {}
    for row in history:
        stage_at.setdefault(row["stage"], row["t"])
    done = next(row["t"] for row in history if row["state"] is State.COMPLETED)
    left_at = [stage_at[i] for i in range(1, len(policy.stages))] + [done]
    for index, stage in enumerate(policy.stages):
        # Left at the first 10 s tick on or after the minimum bake: not sooner, not later.
        baked = left_at[index] - stage_at[index]
        assert baked >= stage.bake_min
        assert baked == max(10, math.ceil(stage.bake_min / 10) * 10)
    assert done >= sum(s.bake_min for s in policy.stages)


def test_the_default_policy_walks_200_instances_ring_by_ring() -> None:
    ctl, history = run(DEFAULT_POLICY)

    assert ctl.rollout.state is State.COMPLETED
    check_rings(DEFAULT_POLICY, FLEET, history)
    # Stage by stage, the share of the fleet on the new revision is what the policy says.
    counts = {row["stage"]: len(row["on_new"]) for row in history if row["state"] is State.RUNNING}
    assert 1 <= counts[0] <= 6  # 1% of 200, at least one instance
    assert 10 <= counts[1] <= 35  # ~10%
    assert 75 <= counts[2] <= 125  # ~50%
    assert counts[3] == 200
    assert len(history[-1]["on_new"]) == 200
    # Passes every 10 s, bakes of 5 min: the stages change at 300, 600, 900 s, done at 1200 s.
    bakes = [s.bake_min for s in DEFAULT_POLICY.stages]
    changes = [row["t"] for prev, row in itertools.pairwise(history)
               if row["stage"] != prev["stage"] or row["state"] is not prev["state"]]
    assert changes == [sum(bakes[: i + 1]) for i in range(4)]
    assert (ctl.now - T0).total_seconds() == sum(bakes)
    assert [o.how for o in ctl.rollout.outcomes] == ["pass"] * 4
    actions = Counter(e.action for e in ctl.log if isinstance(e, Event))
    assert actions == {"rollout.start": 1, "rollout.pass": 4, "rollout.complete": 1}
    assert [e.stage for e in ctl.log if isinstance(e, AssignStage)] == [0, 1, 2, 3]


def test_nothing_advances_before_the_minimum_bake_even_with_passes_every_tick() -> None:
    _, history = run(DEFAULT_POLICY)
    for row in history:
        if row["t"] < DEFAULT_POLICY.stages[0].bake_min:
            assert row["stage"] == 0 and len(row["on_new"]) <= 6


@pytest.mark.parametrize("policy", [
    pytest.param(DEFAULT_POLICY.emergency(), id="emergency"),
    pytest.param(parse_policy({"stages": [
        {"name": "canary", "select": {"labels": {"canary": "true"}}, "min_instances": 1,
         "bake": {"min": "2m", "max": "10m"}},
        {"name": "early", "percent": 10, "bake": {"min": "5m", "max": "20m"}},
        {"name": "eu", "select": {"region": ["eu-west"]}, "bake": {"min": "10m", "max": "30m"}},
        {"name": "global", "percent": 100},
    ]}), id="issue-example"),
])
def test_other_policies_walk_the_fleet_as_their_rings_say(policy: Policy) -> None:
    ctl, history = run(policy, until=10_000)
    assert ctl.rollout.state is State.COMPLETED
    check_rings(policy, FLEET, history)
    assert len(policy.stages) == len({row["stage"] for row in history})  # no stage skipped


def test_instances_that_join_mid_rollout_are_placed_by_the_same_rule() -> None:
    joiners = {350: make_fleet(6, prefix="late-a-"), 700: make_fleet(6, prefix="late-b-"),
               1010: make_fleet(6, prefix="late-c-")}
    ctl, history = run(DEFAULT_POLICY, joins=joiners)
    assert ctl.rollout.state is State.COMPLETED

    everyone = FLEET + [m for group in joiners.values() for m in group]
    previous: set[str] = set()
    for row in history:
        fleet_now = FLEET + [m for t, group in joiners.items() if t <= row["t"] for m in group]
        if row["state"] is State.RUNNING:
            assert row["on_new"] == targets(DEFAULT_POLICY, row["stage"], CONFIG, fleet_now)
            percent = DEFAULT_POLICY.stages[row["stage"]].percent
            for joined_at, group in joiners.items():
                if joined_at <= row["t"]:
                    for m in group:
                        # A newcomer runs the new revision iff its place is under the stage's share.
                        assert (m.id in row["on_new"]) == (placement(CONFIG, m.id) < percent / 100)
        assert previous <= row["on_new"]
        previous = row["on_new"]
    assert history[-1]["on_new"] == {m.id for m in everyone}
    # Joining did not delay the rollout.
    assert (ctl.now - T0).total_seconds() == sum(s.bake_min for s in DEFAULT_POLICY.stages)


def test_a_fail_at_stage_1_returns_everyone_to_the_previous_revision() -> None:
    ctl, history = run(DEFAULT_POLICY, verdicts={450: "fail"})

    assert ctl.rollout.state is State.ROLLED_BACK
    assert (ctl.rollout.stage, history[-1]["t"]) == (1, 450)
    before_fail = history[-2]
    assert before_fail["stage"] == 1 and 10 <= len(before_fail["on_new"]) <= 35
    assert before_fail["on_new"] == targets(DEFAULT_POLICY, 1, CONFIG, FLEET)
    assert history[-1]["on_new"] == set()
    assert set(ctl.revisions().values()) == {OLD}
    incidents = [e for e in ctl.log if isinstance(e, OpenIncident)]
    assert len(incidents) == 1 and "fail at 450s" in incidents[0].reason
    assert sum(isinstance(e, RollBack) for e in ctl.log) == 1
    # Nothing moves again: later ticks and commands leave everyone on the previous revision.
    frozen = ctl.rollout
    later = T0 + dt.timedelta(hours=2)
    assert tick(frozen, Verdict("pass"), later, live_members=200) == (frozen, [])
    with pytest.raises(IllegalTransition):
        command(frozen, "promote", "bob", "force it", later)
    assert set(ctl.revisions().values()) == {OLD}


def test_a_fail_under_on_failure_pause_keeps_the_canaries_until_a_person_decides() -> None:
    policy = Policy(DEFAULT_POLICY.stages, on_failure="pause")
    ctl, history = run(policy, verdicts={450: "fail"}, until=460)
    assert ctl.rollout.state is State.PAUSED
    assert history[-1]["on_new"] == targets(policy, 1, CONFIG, FLEET)
    before = ctl.rollout
    ctl.apply(command(before, "abort", "bob", "not worth it", ctl.now))
    assert ctl.rollout.state is State.ABORTED
    assert set(ctl.revisions().values()) == {OLD}
