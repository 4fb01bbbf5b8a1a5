"""What the top-level options leave for the commands: a client, made on first use.

Made lazily so that commands that never talk to the server (`validate`, `serve`)
neither read the client settings nor fail on a broken config file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import typer

from ringfence.cli.client import ApiClient
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
