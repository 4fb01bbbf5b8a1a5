"""`ringfence changes`: every config change that reached an instance recently. The first question
in every incident: what changed?"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ringfence.cli import output
from ringfence.cli.rollout_view import version
from ringfence.cli.state import api


def _rollout(item: dict[str, Any]) -> str:
    rollout = item.get("rollout")
    if not rollout:
        return "(no rollout)"
    return f"{rollout['id']} {rollout['state']} at {rollout['stage'] + 1}/{rollout['stages']} {rollout['stage_name']}"


def changes(
    ctx: typer.Context,
    since: Annotated[str, typer.Option(help="how far back: a duration (30m, 2h, 1.5h) or an ISO 8601 time")] = "1h",
    until: Annotated[str | None, typer.Option(help="the end of the window, in the same forms (default now)")] = None,
    service: Annotated[str | None, typer.Option(help="only changes that reached instances of this service")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the server's JSON only")] = False,
) -> None:
    """List every config change that reached at least one instance in the window, newest first: who
    made it and why, its rollout's state and stage, and how many instances got it."""
    data = api(ctx).get("/v1/changes", since=since, until=until, service=service)
    if as_json:
        output.print_json(data)
        return
    scope = f" of {data['service']}" if data.get("service") else ""
    title = f"changes that reached instances{scope} from {output.when(data['since'])} to {output.when(data['until'])}"
    output.table(
        ["last reached (UTC)", "config", "versions", "author", "message", "rollout", "instances", "applied",
         "incidents"],
        ([output.when(i["last_reached_at"]), i["config"], f"{version(i.get('from_version'))} → v{i['version']}",
          i.get("author") or "", i.get("message") or "", _rollout(i), i["instances"], i["applied"],
          ", ".join(i.get("incidents", []))] for i in data["items"]),
        title=title,
    )
    if not data["items"]:
        output.note("no change reached an instance in that window")
