"""Reading and changing stored configs: get, history, diff, revert, delete, and the list."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ringfence.cli import output
from ringfence.cli.client import path
from ringfence.cli.exits import CliError, ExitCode
from ringfence.cli.formats import FORMATS, render
from ringfence.cli.rollouts import announce
from ringfence.cli.state import api, fetch_version

JsonFlag = Annotated[bool, typer.Option("--json", help="print the server's JSON only")]
Name = Annotated[str, typer.Argument(help="config name, e.g. payments/limits")]
Message = Annotated[str, typer.Option("--message", "-m", help="why: kept in history and audit")]


def get(
    ctx: typer.Context,
    name: Name,
    version: Annotated[int | None, typer.Option(min=1, help="an older version")] = None,
    fmt: Annotated[str, typer.Option("--format", help="json, yaml or toml")] = "json",
    as_json: JsonFlag = False,
) -> None:
    """Print a config's value (the current version unless --version)."""
    if fmt not in FORMATS:
        raise typer.BadParameter(f"{fmt!r}; use one of {', '.join(FORMATS)}", param_hint="--format")
    revision = fetch_version(ctx, "/v1/configs", name, version, as_json=as_json,
                             deleted=f"version {{version}} of {name} is its deletion; it has no value")
    if revision is None:
        return
    # Plain write, no Rich: the output is a file someone may redirect and push back.
    typer.echo(render(revision["value"], fmt), nl=False)


def history(
    ctx: typer.Context,
    name: Name,
    limit: Annotated[int, typer.Option(min=1, max=500, help="how many versions, newest first")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """List a config's versions, newest first."""
    data = api(ctx).get(path("/v1/configs", name, "-/revisions"), limit=limit)
    if as_json:
        output.print_json(data)
        return
    output.history_table(data["items"], name, "deleted")


def diff(
    ctx: typer.Context,
    name: Name,
    v1: Annotated[int, typer.Argument(min=1, help="the older version")],
    v2: Annotated[int, typer.Argument(min=1, help="the newer version")],
    as_json: JsonFlag = False,
) -> None:
    """Show what changed between two versions, one line per JSON pointer."""
    data = api(ctx).get(path("/v1/configs", name, "-/diff"), **{"from": v1, "to": v2})
    if as_json:
        output.print_json(data)
        return
    if not data["changes"]:
        output.say(f"{name}: versions {v1} and {v2} have the same value")
        return
    counts = ", ".join(f"{n} {kind}" for kind, n in data["summary"].items() if n)
    output.say(f"{name}: version {v1} → {v2} ({counts})", "bold")
    output.print_diff(data["changes"])


def revert(
    ctx: typer.Context,
    name: Name,
    to: Annotated[int, typer.Option("--to", min=1, help="the version whose value to restore")],
    message: Message,
    as_json: JsonFlag = False,
) -> None:
    """Make a new version with the value of an older one (history is kept)."""
    client = api(ctx)
    result: dict[str, Any] = client.request(
        "POST", path("/v1/configs", name, "-/revert"), if_match=client.head_version(name),
        body={"to": to, "message": message},
    )
    if as_json:
        output.print_json(result)
        return
    version = result["revision"]["version"]
    if not result.get("changed"):
        output.say(f"{name}: already has the value of version {to}; unchanged at version {version}")
        return
    output.say(f"{name}: version {version}, with the value of version {to}", "bold")
    output.print_diff(result.get("changes", []))
    # Going back is a change like any other: it is canaried too, so say which rollout carries it.
    announce(result.get("rollout"))


def delete(ctx: typer.Context, name: Name, message: Message, as_json: JsonFlag = False) -> None:
    """Delete a config: a tombstone version is stored and its history stays."""
    client = api(ctx)
    expected = client.head_version(name)
    if expected is None:
        raise CliError(f"config {name!r} does not exist", ExitCode.NOT_FOUND)
    result = client.request("DELETE", path("/v1/configs", name), if_match=expected, body={"message": message})
    if as_json:
        output.print_json(result)
        return
    output.say(f"{name}: deleted at version {result['revision']['version']}")


def list_configs(
    ctx: typer.Context,
    prefix: Annotated[str, typer.Option(help="only names starting with this")] = "",
    as_json: JsonFlag = False,
) -> None:
    """List the configs your token can read, by name."""
    client = api(ctx)
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = client.get("/v1/configs", prefix=prefix or None, cursor=cursor, limit=1000)
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    if as_json:
        output.print_json({"items": items})
        return
    output.table(["name", "version", "updated (UTC)"],
                 ([c["name"], c["version"], output.when(c["updated_at"])] for c in items))
