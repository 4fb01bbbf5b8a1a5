"""`ringfence schema`: bind, show, list the history of and unbind JSON Schemas."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ringfence.cli import output
from ringfence.cli.client import path
from ringfence.cli.exits import CliError, ExitCode
from ringfence.cli.files import load_schema
from ringfence.cli.state import api

app = typer.Typer(help="Bind JSON Schemas (2020-12) to config names or prefixes.", no_args_is_help=True)

Pattern = Annotated[str, typer.Argument(help="a config name, a prefix like 'payments/*', or '*'")]
JsonFlag = Annotated[bool, typer.Option("--json", help="print the server's JSON only")]


@app.command("set")
def set_schema(
    ctx: typer.Context,
    pattern: Pattern,
    schema_file: Annotated[str, typer.Argument(metavar="SCHEMA_FILE", help="JSON, YAML or TOML")],
    message: Annotated[str | None, typer.Option("--message", "-m", help="why")] = None,
    force: Annotated[bool, typer.Option(help="bind even if configs it governs break it")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Bind a schema; refused while configs it would govern break it, unless --force."""
    document = load_schema(schema_file)
    client = api(ctx)
    data = client.request(
        "PUT", path("/v1/schemas", pattern), params={"force": "true" if force else None},
        if_match=client.schema_version(pattern),
        body={"schema": document.value, "message": message or f"set from {schema_file}"},
    )
    if as_json:
        output.print_json(data)
        return
    output.say(f"schema for {pattern}: version {data['version']}", "bold")


@app.command("get")
def get_schema(
    ctx: typer.Context,
    pattern: Pattern,
    version: Annotated[int | None, typer.Option(min=1, help="an older version")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Print the schema bound to a pattern."""
    url = path("/v1/schemas", pattern) if version is None else path("/v1/schemas", pattern,
                                                                      "-/revisions", str(version))
    data = api(ctx).get(url)
    if as_json:
        output.print_json(data)
        return
    if data.get("deleted"):
        raise CliError(f"the schema for {pattern} was unset at version {data['version']}",
                       ExitCode.NOT_FOUND)
    typer.echo(json.dumps(data["schema"], indent=2, ensure_ascii=False))


@app.command("history")
def schema_history(ctx: typer.Context, pattern: Pattern, as_json: JsonFlag = False) -> None:
    """List the versions of a binding, newest first."""
    data = api(ctx).get(path("/v1/schemas", pattern, "-/revisions"))
    if as_json:
        output.print_json(data)
        return
    output.history_table(data["items"], f"schema {pattern}", "unset")


@app.command("unset")
def unset_schema(
    ctx: typer.Context,
    pattern: Pattern,
    message: Annotated[str, typer.Option("--message", "-m", help="why")],
    as_json: JsonFlag = False,
) -> None:
    """Unbind the schema (a tombstone version; history stays)."""
    client = api(ctx)
    data = client.request("DELETE", path("/v1/schemas", pattern), if_match=client.schema_version(pattern),
                          body={"message": message})
    if as_json:
        output.print_json(data)
        return
    output.say(f"schema for {pattern}: unset at version {data['version']}")
