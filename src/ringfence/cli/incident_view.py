"""How an incident looks on a terminal: a list row, a one-line summary, and the full view.

Pure functions of the server's JSON, like rollout_view: the same view serves `incident show`
and the tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ringfence.cli import output
from ringfence.cli.rollout_view import version

MEMBERS_SHOWN = 20
NOT_MEASURED = "not measured"
_STATE_STYLE = {"open": "red", "mitigated": "yellow", "resolved": "green"}
_SEVERITY_STYLE = {"sev1": "bold red", "sev2": "red", "sev3": "yellow", "sev4": ""}


def change(incident: Mapping[str, Any]) -> str:
    """`shop/limits v4 → v5`, or the config alone when no revision is named."""
    if incident.get("to_version") is None:
        return str(incident["config"])
    return f"{incident['config']} {version(incident.get('from_version'))} → {version(incident['to_version'])}"


def list_row(incident: Mapping[str, Any]) -> list[Any]:
    return [incident["id"], incident["severity"], incident["state"], change(incident),
            incident.get("rollout_id") or "", output.when(incident["opened_at"]), incident["opened_by"],
            incident["summary"]]


def summary(incident: Mapping[str, Any]) -> str:
    """One line after a command: `incident 3 (shop/limits v4 → v5): mitigated, sev2`."""
    return f"incident {incident['id']} ({change(incident)}): {incident['state']}, {incident['severity']}"


def duration(seconds: float) -> str:
    whole = int(seconds)
    if whole < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes}m"


def _measured(value: Any) -> str:
    return NOT_MEASURED if value is None else f"{value:,}"


def _blast(blast: Mapping[str, Any]) -> list[RenderableType]:
    if not blast.get("instances"):
        return [Text("blast radius: no instance was given the bad revision")]
    counts = ", ".join(f"{k} {v}" for k, v in blast.get("services", {}).items())
    until = output.when(blast["until"]) if blast.get("until") else "now (still running it)"
    lines: list[RenderableType] = [
        Text(f"blast radius: {blast['instances']} instance(s) ({counts}); {blast['reported_applied']} reported "
             f"applying it", style="bold"),
        Text(f"  exposed from {output.when(blast['first_exposed_at'])} to {until}; "
             f"{duration(blast['instance_seconds'])} instance-time, {duration(blast['longest_seconds'])} at the "
             "longest"),
        Text(f"  requests {_measured(blast.get('requests'))}, errors {_measured(blast.get('errors'))}"
             + (f" (measured on {blast.get('measured_instances')} of {blast['instances']} instances)"
                if blast.get("measured") else "")),
    ]
    members: Sequence[Mapping[str, Any]] = blast.get("members", [])
    grid = Table(header_style="bold", box=box.SIMPLE_HEAD)
    for column in ("instance", "service", "region", "stage", "since (UTC)", "for", "requests", "errors"):
        grid.add_column(column, overflow="fold")
    for member in members[:MEMBERS_SHOWN]:
        since = output.when(member["since"]) + ("" if member.get("applied_at") else " (told)")
        grid.add_row(*(Text(str(cell)) for cell in (
            member["instance"], member["service"], member["region"], member["stage"] + 1, since,
            duration(member["seconds"]), "—" if member.get("requests") is None else member["requests"],
            "—" if member.get("errors") is None else member["errors"])))
    lines.append(grid)
    if len(members) > MEMBERS_SHOWN:
        lines.append(Text(f"  …and {len(members) - MEMBERS_SHOWN} more (--json lists them all)"))
    return lines


def _evidence(evidence: Mapping[str, Any]) -> list[RenderableType]:
    if not evidence:
        return [Text("evidence: none recorded")]
    parts: list[RenderableType] = []
    head = Text("evidence: ", style="bold")
    if evidence.get("verdict"):
        head.append(str(evidence["verdict"]), style="red" if evidence["verdict"] == "fail" else "")
    parts.append(head)
    for reason in evidence.get("reasons", []) or []:
        parts.append(Text(f"  - {reason}"))
    metrics = evidence.get("metrics")
    if isinstance(metrics, Mapping) and metrics:
        grid = Table(header_style="bold", box=box.SIMPLE_HEAD)
        for column in ("metric", "verdict", "canary", "baseline", "rule"):
            grid.add_column(column, overflow="fold")
        for name, metric in sorted(metrics.items()):
            if isinstance(metric, Mapping):
                grid.add_row(*(Text("" if cell is None else str(cell)) for cell in (
                    name, metric.get("verdict"), metric.get("canary"), metric.get("baseline"), metric.get("rule"))))
        parts.append(grid)
    services = evidence.get("services")
    if isinstance(services, Mapping) and services:
        parts.append(_per_service(services))
    rest = {k: v for k, v in evidence.items() if k not in ("verdict", "reasons", "metrics", "services")}
    if rest:
        parts.append(Text("  " + output.compact(rest)))
    return parts


def _value(value: Any, unit: Any) -> str:
    """A metric's value in its unit: `0.04%`, `241 ms`, `435.1`."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return ""
    if unit == "fraction":
        return f"{value * 100:.{2 if value >= 0.001 or value == 0 else 3}f}%"
    return f"{value:.0f} ms" if unit == "ms" else f"{round(value, 1):g}"


def _ratio(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.2f}"


def _effect(effect: Any) -> str:
    if not isinstance(effect, Mapping) or not isinstance(effect.get("ratio"), int | float):
        return ""
    low, high = effect.get("low"), effect.get("high")
    bounds = f" ({_ratio(low)}-{_ratio(high)})" if isinstance(low, int | float) and isinstance(high, int | float) \
        else ""
    return f"x{_ratio(effect['ratio'])}{bounds}"


def _per_service(services: Mapping[str, Any]) -> Table:
    """The server's verdict evidence: per service, per metric, canary against baseline."""
    grid = Table(header_style="bold", box=box.SIMPLE_HEAD)
    for column in ("service", "metric", "verdict", "canary", "baseline", "effect", "rule"):
        grid.add_column(column, overflow="fold")
    for service, result in sorted(services.items()):
        found = result.get("metrics") if isinstance(result, Mapping) else None
        for name, metric in sorted((found or {}).items()):
            if not isinstance(metric, Mapping):
                continue
            verdict = str(metric.get("verdict") or "")
            style = {"fail": "red", "pass": "green"}.get(verdict, "")
            grid.add_row(Text(service), Text(name), Text(verdict, style=style),
                         Text(_value(metric.get("canary"), metric.get("unit"))),
                         Text(_value(metric.get("baseline"), metric.get("unit"))),
                         Text(_effect(metric.get("effect"))), Text(str(metric.get("rule") or "")))
    return grid


def _timeline(entries: Sequence[Mapping[str, Any]]) -> Table:
    grid = Table(title="timeline", title_justify="left", header_style="bold", box=box.SIMPLE_HEAD)
    for column in ("when (UTC)", "who", "what", "details"):
        grid.add_column(column, overflow="fold")
    for entry in entries:
        grid.add_row(Text(output.when(entry["time"])), Text(entry["actor"]), Text(entry["action"]),
                     Text(entry.get("text") or ""))
    return grid


def show_view(incident: Mapping[str, Any]) -> RenderableType:
    header = Text(f"incident {incident['id']}  ", style="bold")
    header.append(incident["severity"], style=_SEVERITY_STYLE.get(incident["severity"], ""))
    header.append("  ")
    header.append(incident["state"], style=_STATE_STYLE.get(incident["state"], ""))
    header.append(f"  {change(incident)}")
    parts: list[RenderableType] = [header, Text(incident["summary"])]
    times = f"opened {output.when(incident['opened_at'])} by {incident['opened_by']}"
    for name in ("mitigated", "resolved"):
        if incident.get(f"{name}_at"):
            times += f" · {name} {output.when(incident[f'{name}_at'])}"
    parts.append(Text(times))
    rollout = incident.get("rollout")
    if rollout:
        parts.append(Text(f"rollout {rollout['id']} (policy {rollout['policy_source']}): {rollout['state']} at "
                          f"stage {rollout['stage'] + 1}/{rollout['stages']} {rollout['stage_name']}"))
    after = (incident.get("revisions") or {}).get("to")
    if after:
        parts.append(Text(f"change: v{after['version']} by {after['author']} at {output.when(after['created_at'])}: "
                          f"{after['message']}"))
    if incident.get("changes"):
        parts.extend(Text("  ") + line for line in output.diff_lines(incident["changes"]))
    parts.extend(_blast(incident.get("blast_radius", {})))
    parts.extend(_evidence(incident.get("evidence", {})))
    parts.append(_timeline(incident.get("timeline", [])))
    return Group(*parts)
