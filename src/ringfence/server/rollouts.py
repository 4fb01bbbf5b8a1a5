"""Rollouts over the store: started by a push, driven by the controller, steered by people.

Every change of rollout state happens in one write transaction that also appends its
audit events and the instances that received the new revision, so a crash between any
two steps leaves a state the controller resumes from.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any, Protocol

from ringfence.core import rollout as machine
from ringfence.core.access import Action, require
from ringfence.core.fleet import DEFAULT_GONE_AFTER, DEFAULT_SILENT_AFTER, Instance, Liveness, MemberStatus
from ringfence.core.model import Revision, Token
from ringfence.core.policy import DEFAULT_POLICY, parse_policy
from ringfence.core.rollout import Effect, Rollout, State, Verdict
from ringfence.core.targeting import chosen_by_placement, targets
from ringfence.errors import NotFound
from ringfence.server.changes import Changes
from ringfence.server.configs import Clock
from ringfence.server.incidents import IncidentService
from ringfence.store.sql import Reader, SqlStore, Writer


class VerdictSource(Protocol):
    """What the canary analysis implements: a verdict on a rollout's current stage."""

    def verdict(self, reader: Reader, rollout: Rollout, members: list[MemberStatus], now: dt.datetime) -> Verdict:
        ...


RETARGET_AFTER = dt.timedelta(seconds=30)


class SilenceVerdicts:
    """Liveness: fail when an instance on the new revision went silent (or gone), pass otherwise.
    The verdict of policies with `gate: bake`, and the first check before canary analysis
    (server/analysis.py). The state machine adds the minimum bake."""

    def __init__(self, silent_after: float = DEFAULT_SILENT_AFTER, gone_after: float = DEFAULT_GONE_AFTER) -> None:
        self.silent_after = silent_after
        self.gone_after = gone_after

    def verdict(self, reader: Reader, rollout: Rollout, members: list[MemberStatus], now: dt.datetime) -> Verdict:
        quiet = [m.id for m in members if m.liveness in (Liveness.SILENT, Liveness.GONE)]
        if quiet:
            return Verdict("fail", (f"{len(quiet)} instance(s) on the new revision went silent: "
                                    f"{', '.join(quiet[:5])}",), {"silent": quiet})
        return Verdict("pass", (f"all {len(members)} instance(s) on the new revision are alive",),
                       {"members": len(members)})


class RolloutService:
    incidents: IncidentService | None = None  # set by build_services

    def __init__(self, store: SqlStore, clock: Clock, verdicts: VerdictSource,
                 silent_after: float = DEFAULT_SILENT_AFTER, gone_after: float = DEFAULT_GONE_AFTER,
                 changes: Changes | None = None) -> None:
        self.store = store
        self.changes = changes or Changes()
        self._retargeted: dict[str, dt.datetime] = {}  # rollout id -> when its fleet is next placed again
        # Instances cannot report while the server is down; silence is counted from no earlier than
        # this process's start, so restarting the server never fails a rollout for it.
        self._judging_since = clock()
        self.clock = clock
        self.verdicts = verdicts
        self.silent_after = silent_after
        self.gone_after = gone_after

    # --- the push side ----------------------------------------------------------------
    def begin(self, tx: Writer, revision: Revision, actor: str, now: dt.datetime, *, emergency: bool) -> Rollout:
        """Start a rollout for a revision just stored, in the push's own transaction, so the
        canaries get the change without waiting for a controller tick."""
        previous = tx.latest_rollout(revision.name)
        # Configs from before rollouts existed: the fleet runs the version before this one.
        from_version = previous.fleet_version() if previous else revision.parent
        binding = tx.binding_for("policy", revision.name)
        policy = parse_policy(binding.document) if binding else DEFAULT_POLICY
        source = f"{binding.pattern}@{binding.version}" if binding else "default"
        rollout = Rollout(
            id="", config=revision.name, from_version=from_version, to_version=revision.version,
            policy=policy.emergency() if emergency else policy, created_at=now, created_by=actor,
            emergency=emergency, policy_source=source,
        )
        rollout = replace(rollout, id=str(tx.insert_rollout(rollout)))
        if previous is not None and previous.active:
            superseded, effects = machine.supersede(previous, rollout.id, now)
            tx.save_rollout(superseded, now)
            self._apply(tx, superseded, effects, now)
        started, effects = machine.start(rollout, now)
        tx.save_rollout(started, now)
        self._apply(tx, started, effects, now)
        return started

    def place(self, tx: Writer, instance: Instance, now: dt.datetime) -> None:
        """A newcomer joins the rollouts of the configs it reads, by the same rule as everyone.
        Only its own placement is computed here, so a thousand instances starting at once do
        not each scan the fleet; a `min_instances` top-up waits for the controller's next tick."""
        member = instance.member(alive=True)
        for rollout in tx.active_rollouts():
            if (rollout.state is State.RUNNING and instance.reads(rollout.config)
                    and chosen_by_placement(rollout.policy, rollout.stage, rollout.config, member)):
                tx.add_members(int(rollout.id), [instance.id], rollout.stage, now)

    # --- people -----------------------------------------------------------------------
    def steer(self, token: Token, rollout_id: int, name: str, reason: str) -> Rollout:
        with self.store.write() as tx:
            rollout = self._load(tx, rollout_id)
            require(token, Action.DECIDE if name == "promote" else Action.STEER, rollout.config)
            now = self.clock()
            changed, effects = machine.command(rollout, name, token.name, reason, now)
            tx.save_rollout(changed, now)
            self._apply(tx, changed, effects, now)
        self.changes.changed(changed.config)
        return changed

    # --- the controller ---------------------------------------------------------------
    def tick_all(self) -> int:
        """One controller pass: advance every running rollout. Returns how many changed."""
        with self.store.read() as reader:
            running = [r.id for r in reader.active_rollouts() if r.state is State.RUNNING]
        return sum(self.tick(int(rollout_id)) for rollout_id in running)

    def tick(self, rollout_id: int) -> bool:
        config, moved = self._tick(rollout_id)
        if moved:
            self.changes.changed(config)
        return moved

    def _tick(self, rollout_id: int) -> tuple[str, bool]:
        with self.store.write() as tx:
            rollout = self._load(tx, rollout_id)
            if rollout.state is not State.RUNNING:
                return rollout.config, False
            now = self.clock()
            joined = self._retarget(tx, rollout, now)
            members = tx.member_statuses(int(rollout.id), now, self.silent_after, self.gone_after,
                                         seen_at_least=self._judging_since)
            verdict = self.verdicts.verdict(tx, rollout, members, now)
            live = sum(1 for m in members if m.liveness is Liveness.ALIVE)
            changed, effects = machine.tick(rollout, verdict, now, live_members=live)
            # The verdict is kept for people to read; it is written only when it changes.
            changed = replace(changed, verdict=verdict) if changed.state is State.RUNNING else changed
            if changed != rollout:
                tx.save_rollout(changed, now)
                self._apply(tx, changed, effects, now)
            # Assignments move when members join or the state changes, not when only the verdict does.
            return rollout.config, joined > 0 or bool(effects)

    # --- reads ------------------------------------------------------------------------
    def get(self, token: Token, rollout_id: int) -> tuple[Rollout, dict[str, Any]]:
        with self.store.read() as reader:
            rollout = self._load(reader, rollout_id)
            require(token, Action.READ, rollout.config)
            members = reader.members(rollout_id)
            fleet = reader.readers_of(rollout.config)
            events = reader.audit(rollout_id=rollout_id, limit=500)
        now = self.clock()
        stages = []
        for index, stage in enumerate(rollout.policy.stages):
            on_new = sum(1 for stage_of in members.values() if stage_of == index)
            stages.append({**stage.to_json(), "index": index, "assigned": on_new})
        per_version: dict[str, int] = {}
        for instance in fleet:
            version = rollout.assigned(instance.id in members)
            key = "none" if version is None else str(version)  # none: a new config not there yet
            per_version[key] = per_version.get(key, 0) + 1
        liveness: dict[str, int] = {}
        for instance in fleet:
            state = instance.liveness(now, self.silent_after, self.gone_after).value
            liveness[state] = liveness.get(state, 0) + 1
        return rollout, {"stages": stages, "instances_per_version": per_version, "fleet": len(fleet),
                         "members": len(members), "liveness": liveness,
                         "events": [e.to_json() for e in reversed(events)]}

    # --- helpers ----------------------------------------------------------------------
    def _load(self, reader: Any, rollout_id: int) -> Rollout:
        rollout: Rollout | None = reader.rollout(rollout_id)
        if rollout is None:
            raise NotFound(f"there is no rollout {rollout_id}; `ringfence rollout list` shows them")
        return rollout

    def _retarget(self, tx: Writer, rollout: Rollout, now: dt.datetime) -> int:
        """Place the whole fleet again by the stage's rule, every RETARGET_AFTER: newcomers are
        placed as they register, but a `min_instances` top-up needs the fleet, and reading the
        fleet at every tick would cost a large fleet more than the tick itself."""
        due = self._retargeted.get(rollout.id)
        if due is not None and now < due:
            return 0
        self._retargeted[rollout.id] = now + RETARGET_AFTER
        return self._assign(tx, rollout, rollout.stage, now)

    def _assign(self, tx: Writer, rollout: Rollout, stage: int, now: dt.datetime) -> int:
        fleet = tx.readers_of(rollout.config)
        members = [i.member(i.liveness(now, self.silent_after, self.gone_after) is Liveness.ALIVE) for i in fleet]
        return tx.add_members(int(rollout.id), targets(rollout.policy, stage, rollout.config, members), stage, now)

    def _apply(self, tx: Writer, rollout: Rollout, effects: list[Effect], now: dt.datetime) -> None:
        for effect in effects:
            if isinstance(effect, machine.AssignStage):
                self._assign(tx, rollout, effect.stage, now)
            elif isinstance(effect, machine.Event):
                details = {**effect.details, "from_version": rollout.from_version, "to_version": rollout.to_version,
                           "policy": rollout.policy_source}
                tx.append_event(seq=tx.seq, time=now, actor=effect.actor, action=effect.action,
                                subject=rollout.config, message=effect.reason, details=details,
                                rollout_id=int(rollout.id))
            # RollBack needs no write: assignments derive from the rollout's state.
        if self.incidents is not None:
            # The incident an OpenIncident asks for, and the webhooks the events cause, commit with them.
            self.incidents.after_effects(tx, rollout, effects, now)
