"""`ringfence fleet`: the registered instances, filtered, with their liveness."""

from __future__ import annotations

from typing import Annotated

import typer

from ringfence.cli import output
from ringfence.cli.state import api
from ringfence.core.fleet import Liveness


def _labels(items: list[str]) -> list[str]:
    # Refused here with exit 2 (a bad command line), not sent to come back as a 422.
    for item in items:
        name, sep, _ = item.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{item!r} must look like name=value", param_hint="'--label'")
    return items


def fleet(
    ctx: typer.Context,
    service: Annotated[str | None, typer.Option(help="only this service")] = None,
    region: Annotated[str | None, typer.Option(help="only this region")] = None,
    zone: Annotated[str | None, typer.Option(help="only this zone")] = None,
    label: Annotated[list[str] | None, typer.Option(
        "--label", metavar="NAME=VALUE", help="only instances with this label; repeat for several")] = None,
    liveness: Annotated[Liveness | None, typer.Option(help="only instances in this liveness state")] = None,
    config: Annotated[str | None, typer.Option(
        help="only instances reading this config, with the revision each runs and its ring")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the server's JSON only")] = False,
) -> None:
    """List the instances that run the SDK: where they are, their labels, whether they are alive, and
    with --config, which revision of it each one runs and the ring that gave it."""
    data = api(ctx).get("/v1/instances", service=service, region=region, zone=zone, config=config,
                        label=_labels(label or []) or None, liveness=liveness.value if liveness else None)
    if as_json:
        output.print_json(data)
        return
    columns = ["id", "service", "region", "zone", "labels", "liveness", "last seen (UTC)"]
    if config:
        columns[5:5] = ["revision", "ring"]
    rows = []
    for i in data["items"]:
        row = [i["id"], i["service"], i["region"], i["zone"],
               ", ".join(f"{k}={v}" for k, v in sorted(i["labels"].items())), i["liveness"],
               output.when(i["last_seen"])]
        if config:
            assigned = i["assignment"]
            row[5:5] = [f"v{assigned['version']}" if assigned["version"] else "none", assigned["ring"] or "baseline"]
        rows.append(row)
    output.table(columns, rows, title=config)
