"""The `ringfence` command: the Typer app, its global options, and the one error boundary."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from ringfence.cli import (
    analyze,
    audit,
    changes,
    configs,
    demo,
    fleet,
    incidents,
    output,
    policies,
    push,
    rollouts,
    schemas,
    tokens,
    validate,
    webhooks,
)
from ringfence.cli.client import ApiError
from ringfence.cli.exits import EPILOG, CliError, ExitCode, for_status
from ringfence.cli.state import State
from ringfence.errors import RingfenceError

app = typer.Typer(
    name="ringfence",
    help="Validated, versioned configuration, rolled out ring by ring.",
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=False,
    # Locals in a traceback would include the token; errors are caught in run() anyway.
    pretty_exceptions_show_locals=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option(
        help="server URL (else env RINGFENCE_URL, else `url` in ~/.config/ringfence/cli.toml, "
             "else http://127.0.0.1:8750)", show_default=False)] = None,
    token: Annotated[str | None, typer.Option(
        help="API token (else env RINGFENCE_TOKEN, else `token` in that file)",
        show_default=False)] = None,
) -> None:
    ctx.obj = State(url, token)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on (env RINGFENCE_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (env RINGFENCE_PORT)")] = None,
    db: Annotated[str | None, typer.Option(
        help="database URL, sqlite:///file.db or postgresql://... (env RINGFENCE_DB)")] = None,
) -> None:
    """Run the ringfence server (needs the server extra)."""
    try:
        from ringfence.server.main import serve as run_server
        from ringfence.server.settings import Settings
    except ImportError:
        output.error("the server needs the server extra: pip install 'ringfence[server]'")
        raise typer.Exit(ExitCode.USAGE) from None
    run_server(Settings.load(host=host, port=port, db=db))


app.command("push")(push.push)
app.command("get")(configs.get)
app.command("history")(configs.history)
app.command("diff")(configs.diff)
app.command("revert")(configs.revert)
app.command("delete")(configs.delete)
app.command("configs")(configs.list_configs)
app.command("validate")(validate.validate_command)
app.command("analyze")(analyze.analyze_command)
app.command("audit")(audit.audit)
app.command("whoami")(tokens.whoami)
app.command("fleet")(fleet.fleet)
app.command("changes")(changes.changes)
app.command("demo")(demo.demo)
app.add_typer(schemas.app, name="schema")
app.add_typer(policies.app, name="policy")
app.add_typer(rollouts.app, name="rollout")
app.add_typer(tokens.app, name="token")
app.add_typer(incidents.app, name="incident")
app.add_typer(webhooks.app, name="webhook")


def run() -> None:
    """The console script: every expected failure becomes one sentence on stderr and an exit code."""
    try:
        app()
    except ApiError as exc:
        output.api_error(exc)
        sys.exit(for_status(exc.status))
    except CliError as exc:
        output.error(exc.message)
        output.print_problems(exc.details)
        sys.exit(exc.code)
    except RingfenceError as exc:
        output.error(exc.detail)
        sys.exit(ExitCode.INVALID)
    except Exception as exc:
        if os.environ.get("RINGFENCE_DEBUG"):
            raise
        output.error(f"unexpected {type(exc).__name__}: {exc} (set RINGFENCE_DEBUG=1 for the traceback)")
        sys.exit(ExitCode.INVALID)


if __name__ == "__main__":
    run()
