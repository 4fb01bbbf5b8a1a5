"""Incidents, the pure part: lifecycle, blast radius, timeline, and the post-mortem draft."""

from __future__ import annotations

import datetime as dt

import pytest

from ringfence.core.diff import diff
from ringfence.core.incident import (
    BlastRadius,
    Exposure,
    Incident,
    IncidentReport,
    IncidentState,
    Note,
    RolloutSummary,
    Severity,
    blast_radius,
    mitigate,
    resolve,
    timeline,
)
from ringfence.core.model import AuditEvent, Revision
from ringfence.core.postmortem import render
from ringfence.errors import Conflict

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def incident(**changes: object) -> Incident:
    base = Incident(id="7", config="shop/limits", rollout_id="3", from_version=4, to_version=5,
                    severity=Severity.SEV2, summary="shop/limits v5 was rolled back automatically: errors x4",
                    state=IncidentState.OPEN, opened_at=at(600), opened_by="controller",
                    evidence={"verdict": "fail", "reasons": ["error rate 4x baseline"]})
    return Incident(**{**base.__dict__, **changes})  # type: ignore[arg-type]


EXPOSURES = [
    Exposure("i-1", "checkout", "eu-west", 0, assigned_at=at(0), applied_at=at(2)),
    Exposure("i-2", "payments", "us-east", 0, assigned_at=at(0), applied_at=None),  # never reported
    Exposure("i-3", "checkout", "eu-west", 1, assigned_at=at(300), applied_at=at(301)),
]


# --- lifecycle ------------------------------------------------------------------------------


def test_mitigate_then_resolve_keeps_both_times() -> None:
    mitigated = mitigate(incident(), at(700))
    resolved = resolve(mitigated, at(900))
    assert (resolved.state, resolved.mitigated_at, resolved.resolved_at) == (IncidentState.RESOLVED, at(700), at(900))


def test_resolving_an_open_incident_mitigates_it_at_the_same_time() -> None:
    resolved = resolve(incident(), at(900))
    assert resolved.mitigated_at == resolved.resolved_at == at(900)


def test_nothing_moves_backwards() -> None:
    with pytest.raises(Conflict, match="already mitigated"):
        mitigate(mitigate(incident(), at(700)), at(800))
    with pytest.raises(Conflict, match="already resolved"):
        resolve(resolve(incident(), at(700)), at(800))


# --- blast radius ---------------------------------------------------------------------------


def test_each_instance_is_exposed_from_its_apply_report_or_else_its_assignment_until_the_rollback() -> None:
    blast = blast_radius(EXPOSURES, until=at(600), now=at(5000))
    by_id = {i.instance_id: i for i in blast.instances}
    assert by_id["i-1"].seconds == 598 and by_id["i-1"].since == at(2)
    assert by_id["i-2"].seconds == 600 and by_id["i-2"].since == at(0)  # told at 0, never reported
    assert by_id["i-3"].seconds == 299
    assert blast.instance_seconds == 598 + 600 + 299 and blast.longest == 600
    assert blast.reported == 2 and blast.first == at(0) and blast.until == at(600)
    assert blast.by("service") == {"checkout": 2, "payments": 1}
    assert blast.by("region") == {"eu-west": 2, "us-east": 1}


def test_without_a_rollback_the_exposure_runs_until_now() -> None:
    blast = blast_radius(EXPOSURES[:1], until=None, now=at(1002))
    assert blast.instances[0].seconds == 1000 and blast.instances[0].until is None
    assert blast.to_json()["until"] is None


def test_requests_and_errors_are_not_measured_without_a_traffic_source() -> None:
    blast = blast_radius(EXPOSURES, until=at(600), now=at(600))
    assert (blast.requests, blast.errors, blast.measured) == (None, None, False)
    assert all(i.requests is None and i.errors is None for i in blast.instances)
    assert blast.to_json()["requests"] is None


def test_a_traffic_source_gives_the_requests_and_errors_served_on_the_bad_revision() -> None:
    traffic = {"i-1": (1000, 40), "i-3": (500, 25), "i-9": (7, 7)}  # i-9 was not exposed: not counted
    blast = blast_radius(EXPOSURES, until=at(600), now=at(600), traffic=traffic)
    assert (blast.requests, blast.errors, blast.measured, blast.measured_instances) == (1500, 65, True, 2)
    by_id = {i.instance_id: i for i in blast.instances}
    assert (by_id["i-1"].requests, by_id["i-1"].errors) == (1000, 40)
    assert (by_id["i-2"].requests, by_id["i-2"].errors) == (None, None)  # not measured is not zero


def test_a_traffic_source_that_measured_none_of_them_measured_nothing() -> None:
    blast = blast_radius(EXPOSURES, until=at(600), now=at(600), traffic={"i-9": (7, 7)})
    assert (blast.requests, blast.errors, blast.measured) == (None, None, False)


def test_an_empty_blast_radius() -> None:
    blast = blast_radius([], until=at(1), now=at(2))
    assert blast.instances == () and blast.first is None and blast.instance_seconds == 0


def test_an_exposure_never_counts_negative_time() -> None:
    late = Exposure("i-4", "checkout", "eu-west", 0, assigned_at=at(0), applied_at=at(700))
    assert blast_radius([late], until=at(600), now=at(800)).instances[0].seconds == 0


# --- timeline -------------------------------------------------------------------------------


def revision() -> Revision:
    return Revision("shop/limits", 5, "sha256:x", {"card": 5000}, "alice", "raise the card limit", at(-10), 40, 4)


def event(seconds: float, action: str, actor: str = "controller", message: str = "") -> AuditEvent:
    return AuditEvent(int(seconds) + 1, 1, at(seconds), actor, action, "shop/limits", message,
                      details={"stage": 0, "stage_name": "canary", "rollout": "3", "evidence": {"big": "x"}})


def test_the_timeline_holds_the_push_the_rollout_the_incident_and_the_notes_in_order() -> None:
    closed = resolve(mitigate(incident(), at(600)), at(1200))
    notes = [Note(1, at(900), "bob", "note", "checked the dashboards"), Note(2, at(1200), "bob", "resolve", "fixed")]
    events = [event(0, "rollout.start", "alice"), event(300, "rollout.pass"),
              event(600, "rollout.rollback", message="stage canary failed"),
              event(600, "incident.open")]  # the incident's own entries come from its record
    entries = timeline(closed, revision=revision(), events=events, notes=notes)
    assert [e.action for e in entries] == ["config.push", "rollout.start", "rollout.pass", "rollout.rollback",
                                           "incident.open", "incident.mitigate", "note", "incident.resolve"]
    assert [e.time for e in entries] == sorted(e.time for e in entries)
    assert entries[0].text == "shop/limits v5 pushed: raise the card limit" and entries[0].actor == "alice"
    assert "v4" in entries[5].text  # the rollback sent everyone back to v4
    assert "evidence" not in entries[3].details  # the evidence has its own place


def test_a_mitigation_by_hand_is_told_by_its_note_once() -> None:
    mitigated = mitigate(incident(), at(700))
    notes = [Note(1, at(700), "bob", "mitigate", "drained eu-west")]
    entries = timeline(mitigated, revision=None, events=[], notes=notes)
    assert [(e.action, e.text) for e in entries] == [("incident.open", mitigated.summary),
                                                       ("incident.mitigate", "drained eu-west")]


# --- post-mortem ----------------------------------------------------------------------------


def report(blast: BlastRadius | None = None, **changes: object) -> IncidentReport:
    closed = mitigate(incident(**changes), at(600))
    before = Revision("shop/limits", 4, "sha256:y", {"card": 1000, "atm": 200}, "carol", "v4", at(-1000), 30, 3)
    after = revision()
    return IncidentReport(
        incident=closed,
        rollout=RolloutSummary("3", "rolled_back", 1, "early", 4, "shop/*@2", "stage early failed"),
        before=before, after=after, changes=diff(before.value, after.value),
        timeline=timeline(closed, revision=after, events=[event(0, "rollout.start", "alice")],
                          notes=[Note(1, at(650), "bob", "note", "a | pipe\nand a newline")]),
        blast=blast or blast_radius(EXPOSURES, until=at(600), now=at(700)),
        notes=[Note(1, at(650), "bob", "note", "a | pipe\nand a newline")], now=at(700),
    )


def test_the_postmortem_has_every_section_the_diff_and_the_timeline() -> None:
    text = render(report())
    for heading in ("# Post-mortem: incident 7", "## Summary", "## Impact", "## Detection", "## Timeline",
                    "## What changed", "## Action items", "## Notes"):
        assert heading in text
    assert "shop/limits v4 → v5" in text
    assert "```diff\n- /atm: 200\n- /card: 1000\n+ /card: 5000\n```" in text
    assert "| 2026-03-01 11:59:50 | alice | config.push | shop/limits v5 pushed: raise the card limit |" in text
    assert "| 2026-03-01 12:00:00 | alice | rollout.start |" in text
    assert "rolled_back at stage 2/4 `early`" in text
    assert "**3 instance(s)** were given v5; 2 reported applying it." in text
    assert "Requests and errors served on v5: not measured." in text
    assert "error rate 4x baseline" in text and "canary analysis (fail verdict)" in text
    assert "Time to detect (first exposure to incident): 10m 0s." in text


def test_text_from_people_cannot_break_a_table() -> None:
    text = render(report())
    assert "a \\| pipe and a newline" in text
    for line in text.splitlines():
        if line.startswith("| ") and "pipe" in line:
            assert line.count(" | ") == 3  # four cells, none split


def test_measured_traffic_is_in_the_impact() -> None:
    blast = blast_radius(EXPOSURES, until=at(600), now=at(700), traffic={"i-1": (10_000, 250)})
    text = render(report(blast))
    assert "Requests served on v5: 10,000, of which 250 errors (2.50%) (measured on 1 of 3 instances)." in text


def test_metrics_of_the_verdict_are_a_table() -> None:
    evidence = {"verdict": "fail", "reasons": ["errors up"], "metrics": {
        "error_rate": {"verdict": "fail", "canary": 0.04, "baseline": 0.01, "unit": "",
                       "effect": {"ratio": 4.0, "low": 3.1, "high": 5.2}, "rule": "upper bound above tolerance"}},
        "stage": "early"}
    text = render(report(evidence=evidence))
    assert "| error_rate | fail | 0.04 | 0.01 | x4 (3.1 to 5.2) | upper bound above tolerance |" in text
    assert '"stage": "early"' in text


def test_an_incident_without_a_revision_or_exposure_still_renders() -> None:
    bare = Incident("9", "shop/limits", None, None, None, Severity.SEV4, "odd latency", IncidentState.OPEN, at(0),
                    "bob")
    text = render(IncidentReport(bare, None, None, None, [], timeline(bare, revision=None, events=[], notes=[]),
                                 blast_radius([], until=None, now=at(5)), [], at(5)))
    assert "# Post-mortem: incident 9 — shop/limits" in text
    assert "No instance was given the bad revision." in text
    assert "No revision is attached to this incident." in text
    assert "Reported by bob" in text
