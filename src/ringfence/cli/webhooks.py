"""`ringfence webhook` (admin): subscribe URLs to events, remove them, see their deliveries."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ringfence.cli import output
from ringfence.cli.client import path
from ringfence.cli.state import api

app = typer.Typer(help="Webhooks (admin role): POST signed JSON to your URLs on rollbacks, halts and incidents.",
                  no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="print the server's JSON only")]
WebhookId = Annotated[str, typer.Argument(metavar="ID", help="e.g. wh_0123456789abcdef")]
EVENTS = "rollout.halted, rollout.rolled_back, incident.opened, incident.mitigated, incident.resolved"


def _row(webhook: dict[str, Any]) -> list[Any]:
    return [webhook["id"], webhook["url"], ", ".join(webhook["events"]), ", ".join(webhook["configs"]),
            output.when(webhook["created_at"]), webhook["created_by"], webhook.get("description", "")]


@app.command("add")
def add(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="where to POST, http:// or https://")],
    event: Annotated[list[str] | None, typer.Option(help=f"an event to send (repeatable; default all): {EVENTS}")]
    = None,
    config: Annotated[list[str] | None, typer.Option(
        help="only events about configs matching this pattern, e.g. 'payments/*' (repeatable; default '*')")] = None,
    description: Annotated[str, typer.Option(help="what it is for")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Add a webhook; its signing secret is printed this once and never again."""
    body: dict[str, Any] = {"url": url, "description": description}
    if event:
        body["events"] = event
    if config:
        body["configs"] = config
    data = api(ctx).request("POST", "/v1/webhooks", body=body)
    if as_json:
        output.print_json(data)
        return
    output.say(f"added {data['id']}: {data['url']} on {', '.join(data['events'])}")
    output.say(data["secret"], "bold")
    output.note("this signing secret is shown only now; give it to the receiver to check X-Ringfence-Signature")


@app.command("list")
def list_webhooks(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List webhooks (never their secrets)."""
    data = api(ctx).get("/v1/webhooks")
    if as_json:
        output.print_json(data)
        return
    output.table(["id", "url", "events", "configs", "created (UTC)", "by", "description"],
                 (_row(w) for w in data["items"]))


@app.command("remove")
def remove(ctx: typer.Context, webhook_id: WebhookId, as_json: JsonFlag = False) -> None:
    """Remove a webhook; deliveries it still had pending are cancelled."""
    data = api(ctx).request("DELETE", path("/v1/webhooks", webhook_id))
    if as_json:
        output.print_json(data)
        return
    output.say(f"removed {data['id']} ({data['url']})")


@app.command("deliveries")
def deliveries(
    ctx: typer.Context, webhook_id: WebhookId,
    state: Annotated[str | None, typer.Option(help="pending, delivered, failed or cancelled")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """A webhook's deliveries, newest first: state, attempts, the last status or error."""
    data = api(ctx).get(path("/v1/webhooks", webhook_id, "deliveries"), state=state, limit=limit)
    if as_json:
        output.print_json(data)
        return
    output.table(
        ["id", "event", "event id", "state", "attempts", "last status", "last error", "created (UTC)", "next (UTC)"],
        ([d["id"], d["event"], d["event_id"], d["state"], d["attempts"], d.get("last_status") or "",
          d.get("last_error") or "", output.when(d["created_at"]),
          output.when(d["next_attempt_at"]) if d.get("next_attempt_at") else ""] for d in data["items"]),
    )
