"""Incidents over the store: opened by a rollback or a failed stage's halt in its own transaction,
or by hand; noted, mitigated and resolved by people; read with their timeline, evidence and
blast radius.

Every change of an incident writes an audit event (`incident.open`, `incident.mitigate`,
`incident.resolve`) and the webhook deliveries it causes in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from ringfence.core import incident as model
from ringfence.core import rollout as machine
from ringfence.core.access import Action, in_scope, require
from ringfence.core.diff import diff
from ringfence.core.incident import Exposure, Incident, IncidentReport, IncidentState, Note, RolloutSummary, Severity
from ringfence.core.model import Revision, Token
from ringfence.core.names import check_name
from ringfence.core.postmortem import render
from ringfence.core.rollout import Effect, Rollout, State
from ringfence.errors import InvalidInput, NotFound, Problem
from ringfence.server.configs import Clock
from ringfence.server.webhooks import WebhookService
from ringfence.store.sql import Reader, SqlStore, Writer

# (reader, rollout) -> instance id -> (requests, errors) served on the rollout's new revision, or
# None when nothing measured that rollout's traffic.
TrafficSource = Callable[[Reader, Rollout], Mapping[str, tuple[int, int]] | None]
ENDED = ("rollout.rollback", "rollout.abort", "rollout.supersede")
MAX_TIMELINE_EVENTS = 2000


def served_on(reader: Reader, rollout: Rollout) -> Mapping[str, tuple[int, int]] | None:
    """What each instance served on the rollout's new revision, as metric ingestion added it up;
    None when no instance reported any traffic on it (not measured, rather than zero)."""
    served = [t for t in reader.traffic(int(rollout.id)) if t.version == rollout.to_version]
    return {t.instance_id: (t.requests, t.errors) for t in served} if served else None


class IncidentService:
    def __init__(self, store: SqlStore, clock: Clock, webhooks: WebhookService,
                 traffic: TrafficSource | None = served_on) -> None:
        self.store = store
        self.clock = clock
        self.webhooks = webhooks
        self.traffic = traffic

    # --- what a rollout's transaction calls -----------------------------------------------
    def after_effects(self, tx: Writer, rollout: Rollout, effects: list[Effect], now: dt.datetime) -> None:
        """Open the incident a rollback or halt asks for, and queue the webhooks its events cause."""
        actor = next((e.actor for e in effects if isinstance(e, machine.Event)), machine.CONTROLLER)
        rolled_back = any(isinstance(e, machine.RollBack) for e in effects)
        opened: Incident | None = None
        for effect in effects:
            if isinstance(effect, machine.OpenIncident):
                opened = self._open_for_rollout(tx, rollout, effect, actor, now, rolled_back=rolled_back)
        if rolled_back and opened is None:  # an abort: an incident someone opened is mitigated by it
            for incident in tx.incidents(rollout_id=int(rollout.id), state=IncidentState.OPEN.value):
                self._mitigate(tx, incident, actor, f"rollout {rollout.id} ended: {rollout.reason}", now)
        for effect in effects:
            if not isinstance(effect, machine.Event):
                continue
            data = {"rollout": _rollout_data(rollout), "actor": effect.actor, "reason": effect.reason,
                    "incident_id": opened.id if opened else None}
            if effect.action == "rollout.rollback":
                self.webhooks.emit(tx, "rollout.rolled_back", rollout.config, data, now)
            elif effect.action == "rollout.pause" and effect.actor == machine.CONTROLLER:
                # Halted by the controller (a failed stage under `on_failure: pause`, or its max bake).
                self.webhooks.emit(tx, "rollout.halted", rollout.config,
                                   {**data, "evidence": effect.details.get("evidence", {})}, now)

    def _open_for_rollout(self, tx: Writer, rollout: Rollout, effect: machine.OpenIncident, actor: str,
                          now: dt.datetime, *, rolled_back: bool) -> Incident:
        # Someone may have opened one by hand already: the rollback mitigates that one.
        for existing in tx.incidents(rollout_id=int(rollout.id), state=IncidentState.OPEN.value):
            if rolled_back:
                return self._mitigate(tx, existing, actor, f"rolled back: {effect.reason}", now)
            return existing
        automatic = actor == machine.CONTROLLER
        evidence = effect.evidence
        if not evidence and rollout.verdict is not None:  # a person's rollback: what the analysis said last
            evidence = {"latest_verdict": _verdict_evidence(rollout)}
        verb = "rolled back" if rolled_back else "halted"
        how = "automatically" if automatic else f"by {actor}"
        incident = Incident(
            id="", config=rollout.config, rollout_id=rollout.id, from_version=rollout.from_version,
            to_version=rollout.to_version, severity=Severity.SEV2 if automatic else Severity.SEV3,
            summary=f"{rollout.config} v{rollout.to_version} was {verb} {how}: {effect.reason}",
            state=IncidentState.OPEN, opened_at=now, opened_by=actor, evidence=evidence,
        )
        if rolled_back:
            incident = model.mitigate(incident, now)  # the rollback is the mitigation
        return self._insert(tx, incident, now)

    def _insert(self, tx: Writer, incident: Incident, now: dt.datetime) -> Incident:
        incident = replace(incident, id=str(tx.insert_incident(incident)))
        rollout_id = int(incident.rollout_id) if incident.rollout_id else None
        if rollout_id is not None and incident.to_version is not None:
            # `applied` keeps only each instance's latest report, which the rollback soon overwrites.
            tx.record_exposure(int(incident.id), tx.rollout_exposure(rollout_id, incident.config,
                                                                     incident.to_version))
        tx.append_event(seq=tx.seq, time=now, actor=incident.opened_by, action="incident.open",
                        subject=incident.config, message=incident.summary, rollout_id=rollout_id,
                        details={"incident": incident.id, "rollout": incident.rollout_id,
                                 "severity": incident.severity.value, "state": incident.state.value,
                                 "evidence": incident.evidence})
        self.webhooks.emit(tx, "incident.opened", incident.config, {"incident": incident.to_json()}, now)
        return incident

    def _mitigate(self, tx: Writer, incident: Incident, actor: str, text: str, now: dt.datetime) -> Incident:
        mitigated = model.mitigate(incident, now)
        tx.save_incident(mitigated)
        tx.add_incident_note(int(incident.id), Note(0, now, actor, "mitigate", text))
        self._event(tx, mitigated, actor, "incident.mitigate", text, now)
        self.webhooks.emit(tx, "incident.mitigated", mitigated.config, {"incident": mitigated.to_json()}, now)
        return mitigated

    def _event(self, tx: Writer, incident: Incident, actor: str, action: str, text: str, now: dt.datetime) -> None:
        tx.append_event(seq=tx.seq, time=now, actor=actor, action=action, subject=incident.config, message=text,
                        rollout_id=int(incident.rollout_id) if incident.rollout_id else None,
                        details={"incident": incident.id, "state": incident.state.value})

    # --- people -------------------------------------------------------------------------
    def open(self, token: Token, body: dict[str, Any]) -> Incident:
        """An incident opened by hand, about a rollout (`rollout_id`) or about a config."""
        summary = model.check_text(body.get("summary"), "summary", "/summary")
        severity = model.check_severity(body.get("severity", Severity.SEV3.value))
        rollout_id = _optional_id(body.get("rollout_id"), "/rollout_id")
        before: int | None
        after: int | None
        with self.store.write() as tx:
            now = self.clock()
            if rollout_id is not None:
                rollout = tx.rollout(rollout_id)
                if rollout is None:
                    raise NotFound(f"there is no rollout {rollout_id}; `ringfence rollout list` shows them")
                require(token, Action.MANAGE_INCIDENTS, rollout.config)
                config, before, after = rollout.config, rollout.from_version, rollout.to_version
                evidence = _verdict_evidence(rollout)
            else:
                if not isinstance(body.get("config"), str):
                    raise InvalidInput("an incident opened by hand names a rollout_id or a config",
                                       [Problem("/config", "is required without rollout_id", "request")])
                config = check_name(body["config"])
                require(token, Action.MANAGE_INCIDENTS, config)
                before = _optional_version(body.get("from_version"), "/from_version")
                after = _optional_version(body.get("to_version"), "/to_version")
                for version in (before, after):
                    if version is not None and tx.revision(config, version) is None:
                        raise NotFound(f"{config} has no version {version}")
                evidence = {}
            incident = Incident(
                id="", config=config, rollout_id=None if rollout_id is None else str(rollout_id),
                from_version=before, to_version=after, severity=severity, summary=summary,
                state=IncidentState.OPEN, opened_at=now, opened_by=token.name, evidence=evidence,
            )
            incident = self._insert(tx, incident, now)
        self.webhooks.committed()
        return incident

    def note(self, token: Token, incident_id: int, text: Any) -> Note:
        text = model.check_text(text, "text", "/text")
        with self.store.write() as tx:
            incident = self._load(tx, incident_id)
            require(token, Action.MANAGE_INCIDENTS, incident.config)
            note = Note(0, self.clock(), token.name, "note", text)
            return replace(note, id=tx.add_incident_note(incident_id, note))

    def mitigate(self, token: Token, incident_id: int, text: Any) -> Incident:
        text = model.check_text(text, "text", "/text", required=False) or "mitigated"
        with self.store.write() as tx:
            incident = self._load(tx, incident_id)
            require(token, Action.MANAGE_INCIDENTS, incident.config)
            mitigated = self._mitigate(tx, incident, token.name, text, self.clock())
        self.webhooks.committed()
        return mitigated

    def resolve(self, token: Token, incident_id: int, text: Any) -> Incident:
        text = model.check_text(text, "text", "/text")
        with self.store.write() as tx:
            incident = self._load(tx, incident_id)
            require(token, Action.MANAGE_INCIDENTS, incident.config)
            now = self.clock()
            resolved = model.resolve(incident, now)
            tx.save_incident(resolved)
            tx.add_incident_note(incident_id, Note(0, now, token.name, "resolve", text))
            self._event(tx, resolved, token.name, "incident.resolve", text, now)
            self.webhooks.emit(tx, "incident.resolved", resolved.config, {"incident": resolved.to_json()}, now)
        self.webhooks.committed()
        return resolved

    # --- reads --------------------------------------------------------------------------
    def find(self, token: Token, *, state: str | None, config: str | None, before: int | None,
             limit: int) -> list[Incident]:
        require(token, Action.READ_INCIDENTS)
        with self.store.read() as reader:
            found = reader.incidents(state=state, config=config, before=before, limit=limit)
        return [i for i in found if in_scope(token, i.config)]

    def report(self, token: Token, incident_id: int) -> IncidentReport:
        with self.store.read() as reader:
            incident = self._load(reader, incident_id)
            require(token, Action.READ_INCIDENTS, incident.config)
            rollout = reader.rollout(int(incident.rollout_id)) if incident.rollout_id else None
            before = _revision(reader, incident.config, incident.from_version)
            after = _revision(reader, incident.config, incident.to_version)
            events = list(reversed(reader.audit(rollout_id=int(rollout.id), limit=MAX_TIMELINE_EVENTS))) \
                if rollout else []
            notes = reader.incident_notes(incident_id)
            exposures = self._exposures(reader, incident, rollout)
            traffic = self.traffic(reader, rollout) if self.traffic is not None and rollout is not None else None
        now = self.clock()
        ended = next((e.time for e in reversed(events) if e.action in ENDED), None)
        base = before.value if before is not None and not before.deleted else {}
        changes = diff(base, after.value) if after is not None else []
        return IncidentReport(
            incident=incident,
            rollout=_summary(rollout) if rollout else None,
            before=before, after=after, changes=changes,
            timeline=model.timeline(incident, revision=after, events=events, notes=notes),
            blast=model.blast_radius(exposures, until=ended, now=now, traffic=traffic),
            notes=notes, now=now,
        )

    def postmortem(self, token: Token, incident_id: int) -> str:
        return render(self.report(token, incident_id))

    # --- helpers ------------------------------------------------------------------------
    def _load(self, reader: Reader, incident_id: int) -> Incident:
        incident = reader.incident(incident_id)
        if incident is None:
            raise NotFound(f"there is no incident {incident_id}; `ringfence incident list` shows them")
        return incident

    def _exposures(self, reader: Reader, incident: Incident, rollout: Rollout | None) -> list[Exposure]:
        """Who ran the bad revision: the record made when the incident opened, plus members that
        joined since (an incident opened by hand on a rollout still running), plus, for a rollout
        that completed, every other instance reading the config (they got it at completion)."""
        found = {e.instance_id: e for e in reader.incident_exposure(int(incident.id))}
        if rollout is None or incident.to_version is None or rollout.to_version != incident.to_version:
            return list(found.values())
        for live in reader.rollout_exposure(int(rollout.id), rollout.config, rollout.to_version):
            known = found.get(live.instance_id)
            if known is None or (known.applied_at is None and live.applied_at is not None):
                found[live.instance_id] = live
        if rollout.state is State.COMPLETED:
            completed = next((o.at for o in reversed(rollout.outcomes)), rollout.created_at)
            applied = reader.applied_versions(rollout.config)
            for instance in reader.readers_of(rollout.config):
                if instance.id not in found:
                    found[instance.id] = Exposure(
                        instance.id, instance.service, instance.region, len(rollout.policy.stages) - 1, completed,
                        completed if applied.get(instance.id) == rollout.to_version else None)
        return list(found.values())


def _revision(reader: Reader, config: str, version: int | None) -> Revision | None:
    return reader.revision(config, version) if version is not None else None


def _summary(rollout: Rollout) -> RolloutSummary:
    return RolloutSummary(rollout.id, rollout.state.value, rollout.stage, rollout.policy.stages[rollout.stage].name,
                          len(rollout.policy.stages), rollout.policy_source, rollout.reason)


def _rollout_data(rollout: Rollout) -> dict[str, Any]:
    data = rollout.to_json()
    data.pop("policy", None)  # the stages are the receiver's business only by name
    data["stages"] = [s.name for s in rollout.policy.stages]
    return data


def _verdict_evidence(rollout: Rollout) -> dict[str, Any]:
    if rollout.verdict is None:
        return {}
    return {"verdict": rollout.verdict.decision, "reasons": list(rollout.verdict.reasons), **rollout.verdict.evidence}


def _optional_id(value: Any, pointer: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int | str) or isinstance(value, bool) or not str(value).isdigit() \
            or not 1 <= int(value) <= 2**31 - 1:
        raise InvalidInput(f"{pointer[1:]} must be a rollout id", [Problem(pointer, "expected an id", "request")])
    return int(value)


def _optional_version(value: Any, pointer: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 2**31 - 1:
        raise InvalidInput(f"{pointer[1:]} must be a version number",
                           [Problem(pointer, "expected a version number", "request")])
    return value
