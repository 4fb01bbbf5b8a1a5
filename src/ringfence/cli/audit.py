"""`ringfence audit`: who did what to what, when; newest first."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ringfence.cli import output
from ringfence.cli.state import api


def _version(event: dict[str, Any]) -> str:
    version = event.get("details", {}).get("version")
    return "" if version is None else str(version)


def audit(
    ctx: typer.Context,
    subject: Annotated[str | None, typer.Option(help="e.g. payments/limits or schema:payments/*")] = None,
    actor: Annotated[str | None, typer.Option(help="token name")] = None,
    action: Annotated[str | None, typer.Option(help="e.g. config.push, schema.bind")] = None,
    since: Annotated[str | None, typer.Option(help="ISO 8601 time; UTC when no offset")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="print the server's JSON only")] = False,
) -> None:
    """List audit events, newest first."""
    data = api(ctx).get("/v1/audit", subject=subject, actor=actor, action=action, since=since,
                        limit=limit)
    if as_json:
        output.print_json(data)
        return
    output.table(
        ["when (UTC)", "actor", "action", "subject", "version", "message"],
        ([output.when(e["time"]), e["actor"], e["action"], e["subject"], _version(e), e["message"]]
         for e in data["items"]),
    )
