"""What the terminal shows while the story unfolds: chapters, steps, a live view of each rollout
(a bar per stage, the bake clock, the verdict and its reasons as they come), the incident.

Everything shown is read from the public API (`GET /v1/rollouts/{id}`, `GET /v1/incidents/{id}`);
the views of `ringfence rollout status` and `ringfence incident show` are reused where they fit.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markdown import Markdown
from rich.padding import Padding
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from ringfence.cli import incident_view, output
from ringfence.cli.rollout_view import clock, is_active, versions

POLL_SECONDS = 0.5
MOVING = frozenset({"pending", "running"})  # paused waits for a person: the demo stops following there
REASONS_SHOWN = 6
BAR_WIDTH = 24
_DECISION_STYLE = {"pass": "green", "fail": "bold red", "continue": "yellow"}


def _seconds_between(start: str | None, end: str | dt.datetime | None) -> float:
    if not start or not end:
        return 0.0
    stop = dt.datetime.fromisoformat(end) if isinstance(end, str) else end
    return max(0.0, (stop - dt.datetime.fromisoformat(start)).total_seconds())


def stage_times(rollout: dict[str, Any]) -> list[float]:
    """Seconds each finished stage took: from the push (or the previous stage's end) to its outcome."""
    times, start = [], rollout["created_at"]
    for outcome in rollout.get("outcomes", []):
        times.append(_seconds_between(start, outcome["at"]))
        start = outcome["at"]
    return times


def _stage_rows(rollout: dict[str, Any], now: dt.datetime) -> Table:
    grid = Table.grid(padding=(0, 1))
    fleet = max(1, int(rollout.get("fleet", 0)))
    taken = stage_times(rollout)
    reached = 0
    for stage in rollout.get("stages", []):
        index, bake = stage["index"], stage["bake"]
        reached += stage.get("assigned", 0)
        current = index == rollout["stage"]
        if index < len(taken):
            outcome = rollout["outcomes"][index]
            how = "passed" if outcome["how"] == "pass" else f"{outcome['how']}d by {outcome['by']}"
            words, style, done = f"{reached}/{fleet} instances · {how} after {clock(taken[index])}", "green", 1.0
        elif current and rollout["state"] == "running":
            elapsed = _seconds_between(rollout.get("stage_started_at"), now)
            words = (f"{reached}/{fleet} instances · bake {clock(elapsed)} "
                     f"(min {clock(bake['min'])}, max {clock(bake['max'])})")
            style, done = "cyan", min(1.0, elapsed / max(bake["max"], 1e-9))
        elif current:
            words, style, done = f"{reached}/{fleet} instances · {rollout['state'].replace('_', ' ')}", "red", 1.0
        else:
            words, style, done = "not reached" if not is_active(rollout) else "waiting", "dim", 0.0
        bar = ProgressBar(total=1000, completed=int(done * 1000), width=BAR_WIDTH, complete_style=style,
                          finished_style=style)
        marker = "▶" if current and is_active(rollout) else " "
        grid.add_row(Text(marker), Text(f"{stage['name']:<10}", style="bold" if current else ""), bar, Text(words))
    return grid


def _verdict(rollout: dict[str, Any]) -> RenderableType:
    verdict = rollout.get("verdict")
    if not verdict or not is_active(rollout):
        return Text("")
    line = Text("verdict: ")
    line.append(verdict["decision"], style=_DECISION_STYLE.get(verdict["decision"], ""))
    reasons = [Text(f"  {reason}", style="dim", no_wrap=True, overflow="ellipsis")
               for reason in verdict.get("reasons", [])[:REASONS_SHOWN]]
    more = len(verdict.get("reasons", [])) - REASONS_SHOWN
    if more > 0:
        reasons.append(Text(f"  … {more} more", style="dim"))
    return Group(line, *reasons)


def rollout_view(rollout: dict[str, Any], now: dt.datetime) -> RenderableType:
    head = Text(f"rollout {rollout['id']}  {rollout['config']} {versions(rollout)}  ", style="bold")
    head.append(rollout["state"].replace("_", " "),
                style={"completed": "green", "rolled_back": "red"}.get(rollout["state"], "cyan"))
    return Group(head, _stage_rows(rollout, now), _verdict(rollout))


class Narrator:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.live = console.is_terminal

    # --- words ------------------------------------------------------------------------
    def title(self, text: str, subtitle: str) -> None:
        self.console.print(Panel(Text(subtitle), title=Text(text, style="bold"), expand=False))

    def chapter(self, number: int, title: str, text: str) -> None:
        self.console.print()
        self.console.print(Rule(Text(f"{number}. {title}", style="bold"), align="left"))
        self.console.print(Text(text, style="italic"))

    def section(self, title: str) -> None:
        self.console.print()
        self.console.print(Rule(Text(title), style="dim", align="left"))

    def step(self, text: str, style: str = "green", mark: str = "✓") -> None:
        line = Text(f" {mark} ", style=style)
        line.append(text)
        self.console.print(line)

    def note(self, text: str) -> None:
        self.console.print(Text(f"   {text}", style="dim"))

    def lines(self, lines: Iterable[RenderableType]) -> None:
        for line in lines:
            self.console.print(Padding(line, (0, 0, 0, 5)))

    def show(self, renderable: RenderableType) -> None:
        self.console.print(Padding(renderable, (0, 0, 0, 3)))

    def diff(self, changes: Sequence[dict[str, Any]]) -> None:
        self.lines(output.diff_lines(changes))

    def markdown(self, text: str) -> None:
        self.console.print(Padding(Markdown(text), (0, 2, 0, 3)))

    def keep(self, url: str, admin_token: str) -> None:
        self.section("still running (--keep): Ctrl-C stops the fleet and the server")
        self.step(f"dashboard: {url}/ui")
        self.step(f"admin token: {admin_token}")
        self.note(f"or the CLI: RINGFENCE_URL={url} RINGFENCE_TOKEN={admin_token} ringfence rollout list")

    # --- a rollout, live ----------------------------------------------------------------
    def follow(self, fetch: Callable[[], dict[str, Any]], timeout: float) -> dict[str, Any]:
        """Poll a rollout until it ends, or waits for a person (paused), or `timeout` passes; print
        each stage's outcome as it happens and, at the end, how it ended."""
        rollout = fetch()
        printed = 0
        deadline = time.monotonic() + timeout
        live = Live(rollout_view(rollout, _now()), console=self.console, transient=True, auto_refresh=False) \
            if self.live else None
        if live:
            live.start()
        try:
            while True:
                printed = self._outcomes(rollout, printed)
                if live:
                    live.update(rollout_view(rollout, _now()), refresh=True)
                if rollout["state"] not in MOVING or time.monotonic() > deadline:
                    break
                time.sleep(POLL_SECONDS)
                rollout = fetch()
        finally:
            if live:
                live.stop()
        self._ending(rollout)
        self.show(rollout_view(rollout, _now()))
        return rollout

    def _outcomes(self, rollout: dict[str, Any], printed: int) -> int:
        """Print the stage outcomes not printed yet; returns how many are printed."""
        outcomes = rollout.get("outcomes", [])
        taken = stage_times(rollout)
        for index in range(printed, len(outcomes)):
            outcome, name = outcomes[index], rollout["policy"]["stages"][index]["name"]
            how = "passed" if outcome["how"] == "pass" else f"was {outcome['how']}d by {outcome['by']}"
            self.step(f"stage {name} {how} after {clock(taken[index])}")
            self._reasons(outcome.get("reason", ""))
        return len(outcomes)

    def _ending(self, rollout: dict[str, Any]) -> None:
        state, name = rollout["state"], rollout["stage_name"]
        if state == "rolled_back":
            elapsed = _seconds_between(rollout.get("stage_started_at") or rollout["created_at"],
                                       _last_event_time(rollout) or _now())
            self.step(f"stage {name} failed after {clock(elapsed)}: rolled back automatically", "bold red", "✗")
            self._reasons(rollout.get("reason", ""))
        elif state in MOVING:
            self.step(f"still {state} at stage {name} when the demo stopped waiting", "yellow", "!")
        elif state != "completed":
            self.step(f"{state.replace('_', ' ')} at stage {name}", "yellow", "!")
            self._reasons(rollout.get("reason", ""))

    def _reasons(self, reason: str) -> None:
        # Verdict reasons are joined with "; " in an outcome or a rollback's reason.
        text = reason.split(": ", 1)[1] if reason.startswith("stage ") and ": " in reason else reason
        for part in [p for p in text.split("; ") if p]:
            self.console.print(Text(f"     {part}", style="dim"))


def _last_event_time(rollout: dict[str, Any]) -> str | None:
    events = rollout.get("events") or []
    return str(events[-1]["time"]) if events else None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def incident_panel(incident: dict[str, Any]) -> RenderableType:
    return incident_view.show_view(incident)
