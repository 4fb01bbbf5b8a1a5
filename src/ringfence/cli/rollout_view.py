"""How a rollout looks on a terminal: one line for push, a table row, the live status view.

Pure functions of the server's JSON (and the time, for the bake clock), so the same
view serves `rollout status` once and every refresh of `--watch`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ringfence.cli import output
from ringfence.core.rollout import ACTIVE, State

RECENT_EVENTS = 5
BAR_WIDTH = 30
_STATE_STYLE = {
    State.PENDING: "cyan", State.RUNNING: "cyan", State.PAUSED: "yellow", State.COMPLETED: "green",
    State.ROLLED_BACK: "red", State.ABORTED: "red", State.SUPERSEDED: "dim",
}


def is_active(rollout: dict[str, Any]) -> bool:
    return State(rollout["state"]) in ACTIVE


def version(number: int | str | None) -> str:
    """`v3`; a rollout of a brand-new config comes from no version at all."""
    return "none" if number in (None, "none") else f"v{number}"


def versions(rollout: dict[str, Any]) -> str:
    return f"{version(rollout['from_version'])} → {version(rollout['to_version'])}"


def stage_names(rollout: dict[str, Any]) -> str:
    return " → ".join(stage["name"] for stage in rollout["policy"]["stages"])


def started_line(rollout: dict[str, Any], policy_source: str | None) -> str:
    """What a push prints: `rollout 7 started: canary → early → global (policy payments/*@2)`."""
    source = f" (policy {policy_source})" if policy_source else ""
    emergency = " [emergency: short bakes]" if rollout.get("emergency") else ""
    return f"rollout {rollout['id']} started: {stage_names(rollout)}{source}{emergency}"


def summary(rollout: dict[str, Any]) -> str:
    """One line after a command: `rollout 7 (payments/limits v2 → v3): paused at stage 1/4 canary: why`."""
    total = len(rollout["policy"]["stages"])
    line = (f"rollout {rollout['id']} ({rollout['config']} {versions(rollout)}): {rollout['state']} "
            f"at stage {rollout['stage'] + 1}/{total} {rollout['stage_name']}")
    return line + (f": {rollout['reason']}" if rollout.get("reason") else "")


def list_row(rollout: dict[str, Any]) -> list[Any]:
    return [rollout["id"], rollout["config"], versions(rollout), rollout["state"], rollout["stage_name"],
            output.when(rollout["created_at"]), rollout["created_by"]]


def clock(seconds: float) -> str:
    """`0:42`, `12:05`, `1:02:03`: a bake clock reads like a stopwatch."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _elapsed(rollout: dict[str, Any], now: dt.datetime) -> float:
    started = rollout.get("stage_started_at")
    if not started:
        return 0.0
    # Never negative: the server's clock may run a little ahead of this machine's.
    return max(0.0, (now - dt.datetime.fromisoformat(started)).total_seconds())


def _stage_row(rollout: dict[str, Any], stage: dict[str, Any], reached: int, now: dt.datetime) -> list[Any]:
    """Name, bar and words for one stage; `reached` is how many instances it holds with those before it."""
    index, current, state = stage["index"], rollout["stage"], State(rollout["state"])
    fleet = rollout.get("fleet", 0)
    counts = f"{reached}/{fleet} instances"
    bake = stage["bake"]
    if state is State.COMPLETED or index < current:
        outcome = next((o for o in rollout.get("outcomes", []) if o["stage"] == index), None)
        how = ("promoted by " + outcome["by"] + (f": {outcome['reason']}" if outcome["reason"] else "")
               if outcome and outcome["how"] == "promote" else "passed")
        words, style, done = f"{counts} · {how}", "green", reached
    elif index == current and state is State.RUNNING:
        words = (f"{counts} · bake {clock(_elapsed(rollout, now))} "
                 f"(min {clock(bake['min'])}, max {clock(bake['max'])})")
        style, done = "cyan", reached
    elif index == current:
        # Paused, or ended here: the bake clock means nothing until a resume restarts it.
        words, style, done = f"{counts} · {state.value}", _STATE_STYLE[state], reached
    else:
        plan = f"{stage['percent']:g}% · bake min {clock(bake['min'])}, max {clock(bake['max'])}"
        words, style, done = f"{'pending' if is_active(rollout) else 'not reached'} · {plan}", "dim", 0
    bar = ProgressBar(total=max(fleet, 1), completed=min(done, max(fleet, 1)), width=BAR_WIDTH,
                      complete_style=style, finished_style=style)
    marker = "▶" if index == current and is_active(rollout) else " "
    return [Text(marker), Text(stage["name"], style="bold" if index == current else ""), bar, Text(words)]


def _per_version(rollout: dict[str, Any]) -> str:
    counts = rollout.get("instances_per_version", {})
    shown = ", ".join(f"{version(v)}: {n}" for v, n in sorted(counts.items(), key=lambda item: item[0]))
    alive = ", ".join(f"{state} {n}" for state, n in sorted(rollout.get("liveness", {}).items()))
    return f"instances: {shown or 'none'} (fleet {rollout.get('fleet', 0)}{': ' + alive if alive else ''})"


def _events(events: Sequence[dict[str, Any]]) -> Table:
    grid = Table(title="recent events", title_justify="left", header_style="bold", box=box.SIMPLE_HEAD)
    for column in ("when (UTC)", "actor", "action", "reason"):
        grid.add_column(column, overflow="fold")
    for event in events[-RECENT_EVENTS:]:
        grid.add_row(Text(output.when(event["time"])), Text(event["actor"]), Text(event["action"]),
                     Text(event.get("message") or ""))
    return grid


def status_view(rollout: dict[str, Any], now: dt.datetime) -> RenderableType:
    """The whole status: header, one bar per stage, instances per version, recent events."""
    state = State(rollout["state"])
    header = Text(f"rollout {rollout['id']}  {rollout['config']}  {versions(rollout)}  ", style="bold")
    header.append(state.value, style=_STATE_STYLE[state])
    if rollout.get("emergency"):
        header.append("  emergency", style="red")
    parts: list[RenderableType] = [header]
    if rollout.get("reason"):
        parts.append(Text(f"reason: {rollout['reason']}"))
    if rollout.get("verdict") and state is State.RUNNING:
        verdict = rollout["verdict"]
        style = {"pass": "green", "fail": "red"}.get(verdict["decision"], "yellow")
        line = Text("verdict: ")
        line.append(verdict["decision"], style=style)
        line.append("  " + "; ".join(verdict["reasons"]))
        parts.append(line)
    stages = Table.grid(padding=(0, 1))
    reached = 0
    for stage in rollout.get("stages", []):
        # Stages are cumulative: a stage holds its own instances and every earlier stage's.
        reached += stage.get("assigned", 0)
        stages.add_row(*_stage_row(rollout, stage, reached, now))
    parts += [stages, Text(_per_version(rollout))]
    if rollout.get("events"):
        parts.append(_events(rollout["events"]))
    return Group(*parts)
