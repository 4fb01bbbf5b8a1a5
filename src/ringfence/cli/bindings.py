"""What `ringfence schema` and `ringfence policy` share: documents bound to a name or prefix.

The server keeps both in one versioned binding store (`/v1/schemas`, `/v1/policies`), so
set, get, history and unset are the same commands; a `Kind` says what differs: how its
file is checked locally, how `get` prints it, and whether `set` can be forced.
"""

# No `from __future__ import annotations` here: the commands are built inside
# binding_app, and Typer must read their annotations, which use the kind's metavar,
# when they are defined rather than later from this module's globals.

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from ringfence.cli import output
from ringfence.cli.client import path
from ringfence.cli.state import api, fetch_version
from ringfence.core.documents import Document

Pattern = Annotated[str, typer.Argument(help="a config name, a prefix like 'payments/*', or '*'")]
JsonFlag = Annotated[bool, typer.Option("--json", help="print the server's JSON only")]
Message = Annotated[str | None, typer.Option("--message", "-m", help="why")]


@dataclass(frozen=True)
class Kind:
    word: str                         # "schema": the key of the document in the body, and in messages
    collection: str                   # "schemas": the URL segment
    load: Callable[[str], Document]   # parse and check a file here, so mistakes show with their lines
    render: Callable[[Any], str]      # how `get` prints the document
    file_metavar: str
    set_help: str
    force_help: str | None = None     # `set --force` exists only for kinds the server can force

    def url(self, pattern: str, *rest: str) -> str:
        return path(f"/v1/{self.collection}", pattern, *rest)


def _bind(ctx: typer.Context, kind: Kind, pattern: str, filename: str, message: str | None, as_json: bool,
          force: bool = False) -> None:
    document = kind.load(filename)
    client = api(ctx)
    # If-Match names the version being replaced (none when never bound), so a concurrent change is refused.
    data = client.request(
        "PUT", kind.url(pattern), params={"force": "true" if force else None},
        if_match=client.binding_version(kind.collection, pattern),
        body={kind.word: document.value, "message": message or f"set from {filename}"},
    )
    if as_json:
        output.print_json(data)
        return
    output.say(f"{kind.word} for {pattern}: version {data['version']}", "bold")


def binding_app(kind: Kind, help_text: str) -> typer.Typer:
    """The `kind` sub-command group: set, get, history, unset."""
    app = typer.Typer(help=help_text, no_args_is_help=True)
    file_help = "JSON, YAML or TOML"

    if kind.force_help is None:
        def set_plain(ctx: typer.Context, pattern: Pattern,
                      filename: Annotated[str, typer.Argument(metavar=kind.file_metavar, help=file_help)],
                      message: Message = None, as_json: JsonFlag = False) -> None:
            _bind(ctx, kind, pattern, filename, message, as_json)
        app.command("set", help=kind.set_help)(set_plain)
    else:
        def set_forceable(ctx: typer.Context, pattern: Pattern,
                          filename: Annotated[str, typer.Argument(metavar=kind.file_metavar, help=file_help)],
                          message: Message = None,
                          force: Annotated[bool, typer.Option(help=kind.force_help)] = False,
                          as_json: JsonFlag = False) -> None:
            _bind(ctx, kind, pattern, filename, message, as_json, force)
        app.command("set", help=kind.set_help)(set_forceable)

    @app.command("get", help=f"Print the {kind.word} bound to a pattern.")
    def get(
        ctx: typer.Context,
        pattern: Pattern,
        version: Annotated[int | None, typer.Option(min=1, help="an older version")] = None,
        as_json: JsonFlag = False,
    ) -> None:
        data = fetch_version(ctx, f"/v1/{kind.collection}", pattern, version, as_json=as_json,
                             deleted=f"the {kind.word} for {pattern} was unset at version {{version}}")
        if data is None:
            return
        # Plain write, no Rich: the output is a file someone may redirect and set again.
        typer.echo(kind.render(data[kind.word]), nl=False)

    @app.command("history", help="List the versions of a binding, newest first.")
    def history(ctx: typer.Context, pattern: Pattern, as_json: JsonFlag = False) -> None:
        data = api(ctx).get(kind.url(pattern, "-/revisions"))
        if as_json:
            output.print_json(data)
            return
        output.history_table(data["items"], f"{kind.word} {pattern}", "unset")

    @app.command("unset", help=f"Unbind the {kind.word} (a tombstone version; history stays).")
    def unset(
        ctx: typer.Context,
        pattern: Pattern,
        message: Annotated[str, typer.Option("--message", "-m", help="why")],
        as_json: JsonFlag = False,
    ) -> None:
        client = api(ctx)
        data = client.request("DELETE", kind.url(pattern), if_match=client.binding_version(kind.collection, pattern),
                              body={"message": message})
        if as_json:
            output.print_json(data)
            return
        output.say(f"{kind.word} for {pattern}: unset at version {data['version']}")

    return app
