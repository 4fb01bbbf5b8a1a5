"""`ringfence rollout`: list rollouts, watch one, and steer it (pause, resume, promote, abort, rollback).

The server decides what a command may do in each state; an illegal one is a 409
whose sentence the error boundary prints (exit 5), so nothing is checked twice here.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.live import Live

from ringfence.cli import output
from ringfence.cli.client import path
from ringfence.cli.rollout_view import is_active, list_row, started_line, status_view, summary
from ringfence.cli.state import api
from ringfence.core.rollout import State

app = typer.Typer(help="Follow and steer rollouts: the rings a pushed revision walks through.",
                  no_args_is_help=True)

REFRESH_SECONDS = 1.0
INTERRUPTED = 130  # what shells report for a process ended by Ctrl-C (128 + SIGINT)
RolloutId = Annotated[int, typer.Argument(min=1, metavar="ID", help="rollout id (`ringfence rollout list`)")]
JsonFlag = Annotated[bool, typer.Option("--json", help="print the server's JSON only")]
# Module-level: with postponed annotations, Typer resolves these names in the module's globals.
Reason = Annotated[str, typer.Option(help="why: kept in the audit log")]
OptionalReason = Annotated[str, typer.Option(help="why: kept in the audit log (optional)")]


def _url(rollout_id: int | str, *rest: str) -> str:
    return path("/v1/rollouts", str(rollout_id), *rest)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def announce(rollout: dict[str, Any] | None) -> None:
    """After a change is stored: which rollout carries it, through which rings."""
    if rollout:
        output.say(started_line(rollout, rollout.get("policy_source")), "cyan")


@app.command("list")
def list_rollouts(
    ctx: typer.Context,
    state: Annotated[State | None, typer.Option(help="only rollouts in this state")] = None,
    config: Annotated[str | None, typer.Option(help="only rollouts of this config")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    as_json: JsonFlag = False,
) -> None:
    """List rollouts, newest first."""
    data = api(ctx).get("/v1/rollouts", state=state.value if state else None, config=config, limit=limit)
    if as_json:
        output.print_json(data)
        return
    output.table(["id", "config", "versions", "state", "stage", "started (UTC)", "by"],
                 (list_row(r) for r in data["items"]))


def _poll(fetch: Callable[[], dict[str, Any]], data: dict[str, Any]) -> dict[str, Any]:
    """Fetch every second until the rollout ends; returns its last state."""
    while is_active(data):
        time.sleep(REFRESH_SECONDS)
        data = fetch()
    return data


def _live(fetch: Callable[[], dict[str, Any]], data: dict[str, Any]) -> dict[str, Any]:
    """_poll, redrawing the view in place each time (the bake clock moves even when nothing else does)."""
    # Not transient: the last frame stays on screen as the record of how it ended.
    with Live(status_view(data, _now()), console=output.stdout, auto_refresh=False) as live:
        while is_active(data):
            time.sleep(REFRESH_SECONDS)
            data = fetch()
            live.update(status_view(data, _now()), refresh=True)
    return data


@app.command("status")
def status(
    ctx: typer.Context,
    rollout_id: RolloutId,
    watch: Annotated[bool, typer.Option("--watch", help="refresh every second until the rollout ends")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Show a rollout: a bar per stage, the bake clock, instances per version, recent events."""
    client = api(ctx)

    def fetch() -> dict[str, Any]:
        result: dict[str, Any] = client.get(_url(rollout_id))
        return result

    # Piped output or --json has nothing to animate: only the final state is printed.
    animate = watch and not as_json and output.stdout.is_terminal
    try:
        data = fetch()
        data = (_live if animate else _poll)(fetch, data) if watch else data
    except KeyboardInterrupt:
        # Ctrl-C is how one stops watching: no "Aborted!", no traceback.
        raise typer.Exit(INTERRUPTED) from None
    if as_json:
        output.print_json(data)
    elif not animate:
        output.stdout.print(status_view(data, _now()))


def _steer(ctx: typer.Context, command: str, rollout_id: int, reason: str, as_json: bool) -> None:
    data = api(ctx).request("POST", _url(rollout_id, command), body={"reason": reason})
    if as_json:
        output.print_json(data)
        return
    output.say(summary(data), "bold")


def _steering(command: str, help_text: str, *, reason_required: bool) -> None:
    """Register `rollout COMMAND ID --reason R`; a decision that skips or ends a stage needs a reason,
    so for those Typer refuses the command line without one (exit 2) before anything is sent."""
    if reason_required:
        def required(ctx: typer.Context, rollout_id: RolloutId, reason: Reason, as_json: JsonFlag = False) -> None:
            _steer(ctx, command, rollout_id, reason, as_json)
        app.command(command, help=help_text)(required)
    else:
        def optional(ctx: typer.Context, rollout_id: RolloutId, reason: OptionalReason = "",
                     as_json: JsonFlag = False) -> None:
            _steer(ctx, command, rollout_id, reason, as_json)
        app.command(command, help=help_text)(optional)


_steering("pause", "Hold a running rollout at its stage; nothing advances until resume.", reason_required=False)
_steering("resume", "Continue a paused rollout; the stage's bake clock starts again.", reason_required=False)
_steering("promote", "Advance to the next stage now, without waiting for a pass.", reason_required=True)
_steering("abort", "Stop the rollout and return every instance to the previous revision.", reason_required=True)
_steering("rollback", "Like abort, and also open an incident.", reason_required=True)
