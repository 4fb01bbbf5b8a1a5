"""Incidents: what a failed change leaves behind. Pure records, the blast radius, the timeline.

    open ──mitigate──▶ mitigated ──resolve──▶ resolved
      └─────────────────resolve─────────────────▲

- A rollback opens its incident already mitigated: sending every instance back to the previous
  revision is the mitigation. An incident opened by hand, or by a halt that left the canaries on
  the new revision, stays open until someone mitigates or resolves it (or the rollout is rolled
  back). Resolving implies mitigated: a resolved incident always has both times.
- The blast radius is computed from data, never guessed: which instances were given the bad
  revision (and when each reported applying it), for how long, and the requests and errors they
  served on it when a traffic source measured them (`None`, "not measured", otherwise).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from ringfence.core.diff import Change
from ringfence.core.model import AuditEvent, Revision
from ringfence.errors import Conflict, InvalidInput, Problem


class Severity(StrEnum):
    SEV1 = "sev1"  # customers broadly hurt
    SEV2 = "sev2"  # a part of the fleet or of the traffic hurt: the default of a failed canary
    SEV3 = "sev3"  # little or no customer impact: the default of a rollback by hand
    SEV4 = "sev4"  # worth a record and a look


class IncidentState(StrEnum):
    OPEN = "open"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"


NOTE_KINDS = ("note", "mitigate", "resolve")
MAX_TEXT = 10_000


def check_severity(value: Any, pointer: str = "/severity") -> Severity:
    try:
        return Severity(value)
    except ValueError:
        choices = ", ".join(s.value for s in Severity)
        raise InvalidInput(f"severity must be one of {choices}, not {value!r}",
                           [Problem(pointer, f"expected one of {choices}", "request")]) from None


def check_text(value: Any, what: str, pointer: str, *, required: bool = True) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string", [Problem(pointer, "expected a string", "request")])
    if required and not text:
        raise InvalidInput(f"{what} must not be empty", [Problem(pointer, "must not be empty", "request")])
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"{what} is longer than {MAX_TEXT} characters",
                           [Problem(pointer, f"at most {MAX_TEXT} characters", "request")])
    return text


@dataclass(frozen=True)
class Incident:
    id: str
    config: str
    rollout_id: str | None
    from_version: int | None
    to_version: int | None
    severity: Severity
    summary: str
    state: IncidentState
    opened_at: dt.datetime
    opened_by: str
    mitigated_at: dt.datetime | None = None
    resolved_at: dt.datetime | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "config": self.config, "rollout_id": self.rollout_id,
            "from_version": self.from_version, "to_version": self.to_version, "severity": self.severity.value,
            "summary": self.summary, "state": self.state.value, "opened_at": self.opened_at.isoformat(),
            "opened_by": self.opened_by, "mitigated_at": _iso(self.mitigated_at),
            "resolved_at": _iso(self.resolved_at), "evidence": self.evidence,
        }


def mitigate(incident: Incident, now: dt.datetime) -> Incident:
    if incident.state is not IncidentState.OPEN:
        raise Conflict(f"incident {incident.id} is already {incident.state.value}")
    return replace(incident, state=IncidentState.MITIGATED, mitigated_at=now)


def resolve(incident: Incident, now: dt.datetime) -> Incident:
    if incident.state is IncidentState.RESOLVED:
        raise Conflict(f"incident {incident.id} is already resolved")
    return replace(incident, state=IncidentState.RESOLVED, resolved_at=now, mitigated_at=incident.mitigated_at or now)


@dataclass(frozen=True)
class Note:
    id: int
    time: dt.datetime
    author: str
    kind: str  # note, mitigate or resolve
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "time": self.time.isoformat(), "author": self.author, "kind": self.kind,
                "text": self.text}


# --- blast radius ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Exposure:
    """One instance given the bad revision: by which stage, when, and when it said it applied it."""

    instance_id: str
    service: str
    region: str
    stage: int
    assigned_at: dt.datetime
    applied_at: dt.datetime | None = None  # None: it never reported applying it


@dataclass(frozen=True)
class ExposedInstance:
    instance_id: str
    service: str
    region: str
    stage: int
    assigned_at: dt.datetime
    applied_at: dt.datetime | None
    since: dt.datetime  # when it applied it, else when it was told to
    until: dt.datetime | None  # None: it still runs it
    seconds: float
    requests: int | None
    errors: int | None

    def to_json(self) -> dict[str, Any]:
        return {"instance": self.instance_id, "service": self.service, "region": self.region, "stage": self.stage,
                "assigned_at": self.assigned_at.isoformat(), "applied_at": _iso(self.applied_at),
                "since": self.since.isoformat(), "until": _iso(self.until), "seconds": round(self.seconds, 3),
                "requests": self.requests, "errors": self.errors}


@dataclass(frozen=True)
class BlastRadius:
    """Who ran the bad revision, for how long, and what they served on it.

    `requests` and `errors` are None until a traffic source measures them: never a guess.
    """

    instances: tuple[ExposedInstance, ...]
    until: dt.datetime | None  # when the exposure ended (the rollback), None while it goes on
    requests: int | None = None  # summed over the instances measured
    errors: int | None = None
    measured_instances: int = 0

    @property
    def reported(self) -> int:
        """How many instances reported applying the revision (the rest were told to)."""
        return sum(1 for i in self.instances if i.applied_at is not None)

    @property
    def instance_seconds(self) -> float:
        return sum(i.seconds for i in self.instances)

    @property
    def longest(self) -> float:
        return max((i.seconds for i in self.instances), default=0.0)

    @property
    def first(self) -> dt.datetime | None:
        return min((i.since for i in self.instances), default=None)

    @property
    def measured(self) -> bool:
        return self.requests is not None

    def by(self, attribute: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for instance in self.instances:
            key = str(getattr(instance, attribute))
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))

    def to_json(self) -> dict[str, Any]:
        return {
            "instances": len(self.instances), "reported_applied": self.reported,
            "services": self.by("service"), "regions": self.by("region"),
            "first_exposed_at": _iso(self.first), "until": _iso(self.until),
            "instance_seconds": round(self.instance_seconds, 3), "longest_seconds": round(self.longest, 3),
            "requests": self.requests, "errors": self.errors, "measured": self.measured,
            "measured_instances": self.measured_instances,
            "members": [i.to_json() for i in self.instances],
        }


def blast_radius(
    exposures: Iterable[Exposure], *, until: dt.datetime | None, now: dt.datetime,
    traffic: Mapping[str, tuple[int, int]] | None = None,
) -> BlastRadius:
    """The blast radius of a bad revision.

    Each instance ran it from when it reported applying it (or, when it never reported, from
    when it was told to: an upper bound) until `until` (the rollback) or `now`. `traffic` maps
    an instance id to the (requests, errors) it served on the bad revision. An instance it does
    not name was not measured (None), which is not the same as serving nothing; the totals add
    up the instances measured, and stay None when none was.
    """
    end = until or now
    exposed = []
    for e in sorted(exposures, key=lambda x: (x.assigned_at, x.instance_id)):
        since = e.applied_at or e.assigned_at
        served = traffic.get(e.instance_id) if traffic is not None else None
        exposed.append(ExposedInstance(
            e.instance_id, e.service, e.region, e.stage, e.assigned_at, e.applied_at, since, until,
            max(0.0, (end - since).total_seconds()),
            served[0] if served else None, served[1] if served else None,
        ))
    measured = [i for i in exposed if i.requests is not None]
    if not measured:
        return BlastRadius(tuple(exposed), until)
    return BlastRadius(tuple(exposed), until, sum(i.requests or 0 for i in measured),
                       sum(i.errors or 0 for i in measured), len(measured))


# --- timeline ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEntry:
    time: dt.datetime
    actor: str
    action: str  # config.push, rollout.*, incident.open|mitigate|resolve, or note
    text: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"time": self.time.isoformat(), "actor": self.actor, "action": self.action, "text": self.text,
                "details": self.details}


def timeline(incident: Incident, *, revision: Revision | None, events: Iterable[AuditEvent],
             notes: Iterable[Note]) -> list[TimelineEntry]:
    """Every event of the incident in time order: the push of the bad revision, what happened to
    its rollout (the audit log), the incident's own opening, mitigation and resolution, and notes."""
    entries: list[tuple[int, TimelineEntry]] = []  # (rank among equal times, entry)
    if revision is not None:
        entries.append((0, TimelineEntry(revision.created_at, revision.author, "config.push",
                                         f"{revision.name} v{revision.version} pushed: {revision.message}",
                                         {"version": revision.version, "hash": revision.hash})))
    for event in events:
        if event.action.startswith("incident."):  # this incident's own record tells these
            continue
        entries.append((1, TimelineEntry(event.time, event.actor, event.action, event.message,
                                         _event_details(event))))
    entries.append((2, TimelineEntry(incident.opened_at, incident.opened_by, "incident.open",
                                     incident.summary, {"severity": incident.severity.value})))
    said = {n.kind for n in notes}
    for note in notes:
        action = "note" if note.kind == "note" else f"incident.{note.kind}"
        entries.append((3, TimelineEntry(note.time, note.author, action, note.text)))
    # A rollback mitigates without a note; resolving an open incident mitigates it with the resolve.
    if incident.mitigated_at is not None and "mitigate" not in said and incident.mitigated_at != incident.resolved_at:
        entries.append((2, TimelineEntry(incident.mitigated_at, incident.opened_by, "incident.mitigate",
                                         _mitigation(incident))))
    entries.sort(key=lambda item: (item[1].time, item[0]))
    return [entry for _, entry in entries]


def _mitigation(incident: Incident) -> str:
    if incident.rollout_id is None:
        return "mitigated"
    back = "the previous revision" if incident.from_version is None else f"v{incident.from_version}"
    return f"rolled back: every instance sent back to {back}"


def _event_details(event: AuditEvent) -> dict[str, Any]:
    keep = ("stage", "stage_name", "state", "from_stage", "by")
    return {k: event.details[k] for k in keep if k in event.details}


# --- the whole record ----------------------------------------------------------------------


@dataclass(frozen=True)
class RolloutSummary:
    """What an incident shows of its rollout."""

    id: str
    state: str
    stage: int
    stage_name: str
    stages: int
    policy_source: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state, "stage": self.stage, "stage_name": self.stage_name,
                "stages": self.stages, "policy_source": self.policy_source, "reason": self.reason}


@dataclass(frozen=True)
class IncidentReport:
    """An incident with everything needed to read it: the change, its rollout, the blast radius."""

    incident: Incident
    rollout: RolloutSummary | None
    before: Revision | None  # the revision the fleet ran before (None: a brand-new config)
    after: Revision | None  # the bad one
    changes: Sequence[Change]
    timeline: Sequence[TimelineEntry]
    blast: BlastRadius
    notes: Sequence[Note]
    now: dt.datetime

    def to_json(self) -> dict[str, Any]:
        return {
            **self.incident.to_json(),
            "rollout": self.rollout.to_json() if self.rollout else None,
            "revisions": {"from": _revision(self.before), "to": _revision(self.after)},
            "changes": [c.to_json() for c in self.changes],
            "timeline": [t.to_json() for t in self.timeline],
            "blast_radius": self.blast.to_json(),
            "notes": [n.to_json() for n in self.notes],
        }


def _revision(revision: Revision | None) -> dict[str, Any] | None:
    return None if revision is None else revision.to_json(with_value=False)


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment else None
