"""`ringfence token` (admin: create, list, revoke) and `ringfence whoami`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ringfence.cli import output
from ringfence.cli.client import path
from ringfence.cli.state import api

app = typer.Typer(help="Manage API tokens (admin role).", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="print the server's JSON only")]
ROLES = "admin, approver, editor, viewer or sdk"


def _scopes(token: dict[str, Any]) -> str:
    return ", ".join(token.get("scopes", []))


@app.command("create")
def create(
    ctx: typer.Context,
    role: Annotated[str, typer.Option(help=ROLES)],
    scope: Annotated[list[str] | None, typer.Option(
        help="a name pattern it may touch, e.g. 'payments/*' (repeatable; default '*')")] = None,
    name: Annotated[str | None, typer.Option(help="who or what holds it (shown in audit)")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a token; its secret is printed this once and never again."""
    body: dict[str, Any] = {"role": role}
    if scope:
        body["scopes"] = scope
    if name:
        body["name"] = name
    data = api(ctx).request("POST", "/v1/tokens", body=body)
    if as_json:
        output.print_json(data)
        return
    output.say(f"created {data['id']} ({data['name']}): role {data['role']}, scopes {_scopes(data)}")
    output.say(data["token"], "bold")
    output.note("this secret is shown only now; store it (e.g. export RINGFENCE_TOKEN=...)")


@app.command("list")
def list_tokens(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List every token (never the secrets)."""
    data = api(ctx).get("/v1/tokens")
    if as_json:
        output.print_json(data)
        return
    output.table(
        ["id", "name", "role", "scopes", "created (UTC)", "by", "revoked (UTC)"],
        ([t["id"], t["name"], t["role"], _scopes(t), output.when(t["created_at"]), t["created_by"],
          output.when(t["revoked_at"]) if t.get("revoked_at") else ""] for t in data["items"]),
    )


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(metavar="ID", help="e.g. tok_0123456789ab")],
    as_json: JsonFlag = False,
) -> None:
    """Revoke a token: it stops working at once."""
    data = api(ctx).request("DELETE", path("/v1/tokens", token_id))
    if as_json:
        output.print_json(data)
        return
    output.say(f"revoked {data['id']} ({data['name']})")


def whoami(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Show which token the CLI uses: its name, role and scopes."""
    data = api(ctx).get("/v1/whoami")
    if as_json:
        output.print_json(data)
        return
    output.say(f"{data['name']} ({data['id']}): role {data['role']}, scopes {_scopes(data)}")
