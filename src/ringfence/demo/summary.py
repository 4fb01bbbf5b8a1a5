"""The numbers at the end of the story (the `--json` document and the table), and whether the
story happened: the healthy change completed, the bad one was rolled back with an incident, and
only canaries ever ran it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ringfence.cli.incident_view import duration
from ringfence.demo.narration import stage_times
from ringfence.demo.scenario import InstanceSpec


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return round((dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds(), 1)


def _event_time(rollout: dict[str, Any], action: str) -> str | None:
    return next((e["time"] for e in rollout.get("events", []) if e["action"] == action), None)


def fleet_summary(specs: Sequence[InstanceSpec], processes: int) -> dict[str, Any]:
    return {"instances": len(specs), "processes": processes,
            "services": sorted({s.service for s in specs}), "regions": sorted({s.region for s in specs}),
            "canaries": [s.id for s in specs if s.canary]}


def rollout_summary(rollout: dict[str, Any]) -> dict[str, Any]:
    """State, versions and time per stage of one rollout, from `GET /v1/rollouts/{id}`."""
    times = stage_times(rollout)
    reached, stages = 0, []
    for stage in rollout.get("stages", []):
        reached += stage.get("assigned", 0)
        index = stage["index"]
        row: dict[str, Any] = {"name": stage["name"]}
        if index < len(times) or index == rollout["stage"]:
            row["instances"] = reached  # with those of the stages before: stages are cumulative
        if index < len(times):
            outcome = rollout["outcomes"][index]
            row.update(outcome=outcome["how"], by=outcome["by"], seconds=round(times[index], 1))
        elif index == rollout["stage"] and rollout["state"] != "completed":
            ended = _event_time(rollout, "rollout.rollback") or _event_time(rollout, "rollout.pause")
            started = rollout.get("stage_started_at") or rollout["created_at"]
            row.update(outcome=rollout["state"], by="controller", seconds=_seconds(started, ended))
        stages.append(row)
    ended = rollout["outcomes"][-1]["at"] if rollout["state"] == "completed" and rollout.get("outcomes") else (
        _event_time(rollout, "rollout.rollback"))
    return {"rollout": str(rollout["id"]), "from_version": rollout["from_version"],
            "to_version": rollout["to_version"], "state": rollout["state"], "stage": rollout["stage_name"],
            "reason": rollout.get("reason") or "", "seconds": _seconds(rollout["created_at"], ended),
            "stages": stages}


def blast_summary(incident: dict[str, Any], canaries: Sequence[str]) -> dict[str, Any]:
    blast = incident.get("blast_radius") or {}
    members = sorted(m["instance"] for m in blast.get("members", []))
    return {"instances": blast.get("instances", 0), "members": members,
            "canaries_only": bool(members) and set(members) <= set(canaries),
            "services": blast.get("services", {}), "regions": blast.get("regions", {}),
            "requests": blast.get("requests"), "errors": blast.get("errors"),
            "instance_seconds": blast.get("instance_seconds"), "longest_seconds": blast.get("longest_seconds")}


def incident_summary(incident: dict[str, Any], canaries: Sequence[str]) -> dict[str, Any]:
    blast = incident.get("blast_radius") or {}
    return {"id": str(incident["id"]), "severity": incident["severity"], "state": incident["state"],
            "opened_by": incident["opened_by"],
            "time_to_detect_seconds": _seconds(blast.get("first_exposed_at"), incident["opened_at"]),
            "blast_radius": blast_summary(incident, canaries)}


def problems(summary: dict[str, Any]) -> list[str]:
    """Why the story did not happen, one sentence each; empty when it did."""
    found = []
    healthy, bad = summary.get("healthy"), summary.get("bad")
    if healthy and healthy["state"] != "completed":
        found.append(f"the healthy change did not complete: rollout {healthy['rollout']} is {healthy['state']} at "
                     f"stage {healthy['stage']}: {healthy['reason']}")
    if bad and bad["state"] != "rolled_back":
        found.append(f"the bad change was not caught: rollout {bad['rollout']} is {bad['state']} at stage "
                     f"{bad['stage']}" + (f": {bad['reason']}" if bad["reason"] else ""))
    incident = (bad or {}).get("incident")
    if bad and bad["state"] == "rolled_back" and not incident:
        found.append(f"rollout {bad['rollout']} was rolled back but no incident was found for it")
    if incident:
        blast = incident["blast_radius"]
        if not blast["instances"]:
            found.append(f"incident {incident['id']} names no instance that ran the bad revision")
        elif not blast["canaries_only"]:
            beyond = sorted(set(blast["members"]) - set(summary["fleet"]["canaries"]))
            found.append(f"the bad revision reached instances beyond the canaries: {', '.join(beyond)}")
    return found


def _how(row: dict[str, Any]) -> Text:
    outcome = row.get("outcome")
    if outcome is None:
        return Text("not reached", style="dim")
    words = {"pass": "passed", "promote": f"promoted by {row.get('by')}",
             "rolled_back": "failed: rolled back", "paused": "paused"}.get(outcome, outcome)
    return Text(words, style="red" if outcome in ("rolled_back", "paused") else "green")


def _time(seconds: float | None) -> str:
    return "—" if seconds is None else duration(seconds)


def table(summary: dict[str, Any]) -> RenderableType:
    stages = Table(title="time per stage", title_justify="left", header_style="bold", box=box.SIMPLE_HEAD)
    for column in ("change", "stage", "instances on it", "outcome", "time"):
        stages.add_column(column)
    for key, label in (("healthy", "healthy"), ("bad", "bad")):
        rollout = summary.get(key)
        if not rollout:
            continue
        name = f"{label} v{rollout['from_version']} → v{rollout['to_version']}"
        for index, row in enumerate(rollout["stages"]):
            stages.add_row(name if index == 0 else "", row["name"], str(row.get("instances", "")),
                           _how(row), _time(row.get("seconds")))
        stages.add_row("", Text("total", style="bold"), "", Text(rollout["state"].replace("_", " "), style="bold"),
                       _time(rollout.get("seconds")), end_section=True)
    facts = Table(title="the bad change", title_justify="left", show_header=False, box=box.SIMPLE_HEAD)
    facts.add_column(style="bold")
    facts.add_column()
    incident = (summary.get("bad") or {}).get("incident")
    if incident:
        blast = incident["blast_radius"]
        canaries = len(summary["fleet"]["canaries"])
        facts.add_row("incident", f"{incident['id']} ({incident['severity']}, {incident['state']}, opened by "
                                  f"{incident['opened_by']})")
        facts.add_row("time to detect", f"{_time(incident['time_to_detect_seconds'])} from the first instance "
                                        "running it to the incident")
        facts.add_row("time to roll back", f"{_time(summary['bad'].get('seconds'))} from the push")
        who = f"only the {canaries} canaries" if blast["canaries_only"] else "not only canaries"
        facts.add_row("blast radius", f"{blast['instances']} of {summary['fleet']['instances']} instances ({who}), "
                                      f"{_time(blast.get('instance_seconds'))} instance-time")
        measured = blast.get("requests")
        facts.add_row("requests on it", "not measured" if measured is None else
                      f"{measured:,} served, {blast.get('errors') or 0:,} failed")
    facts.add_row("wall time", _time(summary.get("wall_seconds")))
    return Group(stages, facts)
