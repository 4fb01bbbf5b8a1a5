"""What the top-level options leave for the commands: a client, made on first use.

Made lazily so that commands that never talk to the server (`validate`, `serve`)
neither read the client settings nor fail on a broken config file. `fetch_version`
is the read that `get`, `schema get` and `policy get` share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import typer

from ringfence.cli import output
from ringfence.cli.client import ApiClient, versioned
from ringfence.cli.exits import CliError, ExitCode
from ringfence.cli.settings import resolve


@dataclass
class State:
    url: str | None = None
    token: str | None = field(default=None, repr=False)
    client: ApiClient | None = None


def api(ctx: typer.Context) -> ApiClient:
    state = ctx.ensure_object(State)
    if state.client is None:
        state.client = ApiClient(resolve(state.url, state.token))
        ctx.call_on_close(state.client.close)
    return state.client


def fetch_version(ctx: typer.Context, collection: str, name: str, version: int | None, *, as_json: bool,
                  deleted: str) -> dict[str, Any] | None:
    """A stored version of a config or binding (the current one unless `version`), for `get`.

    None when --json has printed it already. A tombstone has no value to show, so it is
    a not-found error: `deleted` is its sentence, formatted with `{version}`.
    """
    data: dict[str, Any] = api(ctx).get(versioned(collection, name, version))
    if as_json:
        output.print_json(data)
        return None
    if data.get("deleted"):
        # replace, not format: a name the user typed may hold braces of its own.
        raise CliError(deleted.replace("{version}", str(data["version"])), ExitCode.NOT_FOUND)
    return data
