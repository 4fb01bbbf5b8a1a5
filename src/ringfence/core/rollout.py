"""The rollout state machine: (rollout, input, now) -> (rollout, effects). Pure.

    pending ──start──▶ running(0) ──pass after min bake──▶ running(1) … ──▶ completed
                          │  ▲                    │
               pause/max  │  │ resume             │ fail (on_failure: rollback) or `rollback`
               bake/fail  ▼  │                    ▼
      (fail: + incident) paused ──abort──▶ aborted      rolled_back (+ incident)

    any active state ──newer push of the same config──▶ superseded

Rules people rely on:
- A stage is left only by a `pass` after its minimum bake with enough live instances, or
  by a human `promote` with a reason. Reaching the maximum bake without a pass pauses
  (no data, or too little, is never a pass).
- `abort` returns every instance to the previous revision; `rollback` does the same and
  opens an incident (the automatic path on a failed verdict uses it). A failed verdict under
  `on_failure: pause` pauses instead, and opens an incident too.
- Terminal states (completed, rolled_back, aborted, superseded) accept no command; going
  back after completion is a new push, canaried like any change.
- A newer push supersedes an active rollout and starts its own at the canary stage, from
  the revision the fleet ran before either: a newer revision never skips the canary.
- `resume` restarts the stage's bake clock: what a human looked at deserves a fresh bake.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Literal

from ringfence.core.policy import Policy
from ringfence.errors import Conflict, InvalidInput, Problem


class State(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"
    SUPERSEDED = "superseded"


ACTIVE = frozenset({State.PENDING, State.RUNNING, State.PAUSED})
Decision = Literal["pass", "fail", "continue"]
CONTROLLER = "controller"


class IllegalTransition(Conflict):
    title = "Illegal transition"


@dataclass(frozen=True)
class Verdict:
    """What the analysis says about the current stage; the state machine never computes it."""

    decision: Decision
    reasons: tuple[str, ...] = ()
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StageOutcome:
    """How a stage was left: by a `pass`, or by a person's `promote` with a reason."""

    stage: int
    how: Literal["pass", "promote"]
    by: str
    reason: str
    at: dt.datetime


@dataclass(frozen=True)
class Rollout:
    id: str
    config: str
    from_version: int | None  # what the fleet ran before; None for a brand-new config
    to_version: int
    policy: Policy
    created_at: dt.datetime
    created_by: str
    emergency: bool = False
    policy_source: str = "default"  # the binding it came from, as `payments/*@2`
    state: State = State.PENDING
    stage: int = 0
    stage_started_at: dt.datetime | None = None
    reason: str = ""  # why it is paused or ended
    outcomes: tuple[StageOutcome, ...] = ()
    verdict: Verdict | None = None  # the latest verdict on the current stage, as the controller saw it

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def last_stage(self) -> bool:
        return self.stage == len(self.policy.stages) - 1

    def fleet_version(self) -> int | None:
        """The revision instances outside the rollout's members run."""
        return self.to_version if self.state is State.COMPLETED else self.from_version

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "config": self.config, "from_version": self.from_version, "to_version": self.to_version,
            "state": self.state.value, "stage": self.stage, "stage_name": self.policy.stages[self.stage].name,
            "stage_started_at": self.stage_started_at.isoformat() if self.stage_started_at else None,
            "reason": self.reason, "emergency": self.emergency, "created_at": self.created_at.isoformat(),
            "created_by": self.created_by, "policy": self.policy.to_json(), "policy_source": self.policy_source,
            "outcomes": [{"stage": o.stage, "how": o.how, "by": o.by, "reason": o.reason, "at": o.at.isoformat()}
                         for o in self.outcomes],
            "verdict": None if self.verdict is None else {
                "decision": self.verdict.decision, "reasons": list(self.verdict.reasons),
                "evidence": self.verdict.evidence},
        }

    def assigned(self, member: bool) -> int | None:
        """The revision an instance must run, given whether it is one of the rollout's members."""
        if self.state is State.COMPLETED or (self.active and member):
            return self.to_version
        return self.from_version


# --- effects ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """An audit entry: every transition has one."""

    action: str
    actor: str
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AssignStage:
    """Give the new revision to every instance the stage targets (members only ever grow)."""

    stage: int


@dataclass(frozen=True)
class RollBack:
    """Every instance back to the previous revision."""


@dataclass(frozen=True)
class OpenIncident:
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)


Effect = Event | AssignStage | RollBack | OpenIncident


# --- transitions --------------------------------------------------------------------------


def start(rollout: Rollout, now: dt.datetime) -> tuple[Rollout, list[Effect]]:
    if rollout.state is not State.PENDING:
        raise IllegalTransition(f"rollout {rollout.id} is {rollout.state.value}, not pending")
    started = replace(rollout, state=State.RUNNING, stage=0, stage_started_at=now)
    return started, [AssignStage(0), _event(started, "rollout.start", rollout.created_by,
                                           "emergency change" if rollout.emergency else "")]


def tick(rollout: Rollout, verdict: Verdict, now: dt.datetime, *, live_members: int) -> tuple[Rollout, list[Effect]]:
    """Advance a running rollout by the clock and the latest verdict."""
    if rollout.state is not State.RUNNING or rollout.stage_started_at is None:
        return rollout, []
    stage = rollout.policy.stages[rollout.stage]
    elapsed = (now - rollout.stage_started_at).total_seconds()
    evidence = {"verdict": verdict.decision, "reasons": list(verdict.reasons), **verdict.evidence}
    if verdict.decision == "fail":
        reason = "; ".join(verdict.reasons) or "the analysis failed the stage"
        if rollout.policy.on_failure == "pause":
            # A regression is an incident whether the policy rolls it back or leaves it to a person.
            halted, effects = _pause(rollout, CONTROLLER, f"stage {stage.name} failed: {reason}", evidence)
            return halted, [OpenIncident(halted.reason, evidence), *effects]
        return _roll_back(rollout, CONTROLLER, f"stage {stage.name} failed: {reason}", evidence)
    enough = live_members >= stage.min_instances
    if verdict.decision == "pass" and elapsed >= stage.bake_min and enough:
        return _advance(rollout, StageOutcome(rollout.stage, "pass", CONTROLLER, "; ".join(verdict.reasons), now),
                        now, evidence)
    if elapsed >= stage.bake_max:
        why = (f"only {live_members} live instance(s), the stage needs {stage.min_instances}" if not enough
               else "; ".join(verdict.reasons) or "no pass yet")
        return _pause(rollout, CONTROLLER, f"stage {stage.name} reached its max bake without a pass: {why}", evidence)
    return rollout, []


Command = Literal["pause", "resume", "promote", "abort", "rollback"]
COMMANDS: tuple[Command, ...] = ("pause", "resume", "promote", "abort", "rollback")
ALLOWED_FROM: dict[str, frozenset[State]] = {
    "pause": frozenset({State.RUNNING}),
    "resume": frozenset({State.PAUSED}),
    "promote": frozenset({State.RUNNING, State.PAUSED}),
    "abort": ACTIVE,
    "rollback": ACTIVE,
}


def command(rollout: Rollout, name: str, actor: str, reason: str, now: dt.datetime) -> tuple[Rollout, list[Effect]]:
    """A person's decision. Raises IllegalTransition when the state does not allow it."""
    reason = reason.strip()
    if name not in ALLOWED_FROM:
        raise InvalidInput(f"unknown rollout command {name!r}; use one of {', '.join(COMMANDS)}")
    if rollout.state not in ALLOWED_FROM[name]:
        raise IllegalTransition(
            f"cannot {name} rollout {rollout.id}: it is {rollout.state.value}"
            + ("; to go back, push (or `ringfence revert`) a new revision, canaried like any change"
               if rollout.state is State.COMPLETED else "")
        )
    if name in ("promote", "abort", "rollback") and not reason:
        raise InvalidInput(f"{name} needs a reason", [Problem("/reason", "must not be empty", "request")])
    if name == "pause":
        return _pause(rollout, actor, reason or "paused by hand", {})
    if name == "resume":
        resumed = replace(rollout, state=State.RUNNING, stage_started_at=now, reason="")
        return resumed, [_event(resumed, "rollout.resume", actor, reason)]
    if name == "promote":
        resumed = replace(rollout, state=State.RUNNING)
        return _advance(resumed, StageOutcome(rollout.stage, "promote", actor, reason, now), now, {})
    if name == "abort":
        ended = replace(rollout, state=State.ABORTED, reason=reason)
        return ended, [RollBack(), _event(ended, "rollout.abort", actor, reason)]
    return _roll_back(rollout, actor, reason, {})


def supersede(rollout: Rollout, by: str, now: dt.datetime) -> tuple[Rollout, list[Effect]]:
    if not rollout.active:
        return rollout, []
    ended = replace(rollout, state=State.SUPERSEDED, reason=f"superseded by rollout {by}")
    return ended, [_event(ended, "rollout.supersede", CONTROLLER, ended.reason, {"by": by})]


def _event(rollout: Rollout, action: str, actor: str, reason: str, details: dict[str, Any] | None = None) -> Event:
    stage = rollout.policy.stages[rollout.stage].name
    return Event(action, actor, reason, {"rollout": rollout.id, "stage": rollout.stage, "stage_name": stage,
                                         "state": rollout.state.value, **(details or {})})


def _advance(rollout: Rollout, outcome: StageOutcome, now: dt.datetime,
             evidence: dict[str, Any]) -> tuple[Rollout, list[Effect]]:
    outcomes = (*rollout.outcomes, outcome)
    verb = "promote" if outcome.how == "promote" else "pass"
    if rollout.last_stage:
        done = replace(rollout, state=State.COMPLETED, outcomes=outcomes, reason="")
        return done, [_event(done, f"rollout.{verb}", outcome.by, outcome.reason, {"evidence": evidence}),
                      _event(done, "rollout.complete", outcome.by, "")]
    moved = replace(rollout, stage=rollout.stage + 1, stage_started_at=now, outcomes=outcomes, reason="")
    return moved, [AssignStage(moved.stage),
                   _event(moved, f"rollout.{verb}", outcome.by, outcome.reason,
                          {"from_stage": rollout.stage, "evidence": evidence})]


def _pause(rollout: Rollout, actor: str, reason: str, evidence: dict[str, Any]) -> tuple[Rollout, list[Effect]]:
    paused = replace(rollout, state=State.PAUSED, reason=reason)
    return paused, [_event(paused, "rollout.pause", actor, reason, {"evidence": evidence} if evidence else {})]


def _roll_back(rollout: Rollout, actor: str, reason: str, evidence: dict[str, Any]) -> tuple[Rollout, list[Effect]]:
    ended = replace(rollout, state=State.ROLLED_BACK, reason=reason)
    return ended, [RollBack(), OpenIncident(reason, evidence),
                   _event(ended, "rollout.rollback", actor, reason, {"evidence": evidence} if evidence else {})]
