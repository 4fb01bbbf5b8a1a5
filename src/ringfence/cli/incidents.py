"""`ringfence incident`: list, show, open, note, mitigate, resolve, and the post-mortem draft."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from ringfence.cli import output
from ringfence.cli.client import path
from ringfence.cli.incident_view import list_row, show_view, summary
from ringfence.cli.state import api
from ringfence.core.incident import IncidentState, Severity

app = typer.Typer(help="Incidents: what a rolled-back change leaves behind, and what people did about it.",
                  no_args_is_help=True)

IncidentId = Annotated[int, typer.Argument(min=1, metavar="ID", help="incident id (`ringfence incident list`)")]
JsonFlag = Annotated[bool, typer.Option("--json", help="print the server's JSON only")]


def _url(incident_id: int | str, *rest: str) -> str:
    return path("/v1/incidents", str(incident_id), *rest)


def _done(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        output.print_json(data)
    else:
        output.say(summary(data), "bold")


@app.command("list")
def list_incidents(
    ctx: typer.Context,
    state: Annotated[IncidentState | None, typer.Option(help="only incidents in this state")] = None,
    config: Annotated[str | None, typer.Option(help="only incidents about this config")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    as_json: JsonFlag = False,
) -> None:
    """List incidents, newest first."""
    data = api(ctx).get("/v1/incidents", state=state.value if state else None, config=config, limit=limit)
    if as_json:
        output.print_json(data)
        return
    output.table(["id", "severity", "state", "change", "rollout", "opened (UTC)", "by", "summary"],
                 (list_row(i) for i in data["items"]))


@app.command("show")
def show(ctx: typer.Context, incident_id: IncidentId, as_json: JsonFlag = False) -> None:
    """Show an incident: the change and its diff, the blast radius, the evidence and the timeline."""
    data = api(ctx).get(_url(incident_id))
    if as_json:
        output.print_json(data)
        return
    output.stdout.print(show_view(data))


@app.command("open")
def open_incident(
    ctx: typer.Context,
    summary_text: Annotated[str, typer.Option("--summary", "-s", help="what is wrong, in a sentence")],
    rollout: Annotated[int | None, typer.Option(min=1, help="the rollout that caused it")] = None,
    config: Annotated[str | None, typer.Option(help="without --rollout: the config concerned")] = None,
    severity: Annotated[Severity, typer.Option(help="sev1 (worst) to sev4")] = Severity.SEV3,
    as_json: JsonFlag = False,
) -> None:
    """Open an incident by hand, about a rollout or a config."""
    if rollout is None and config is None:
        raise typer.BadParameter("name the rollout (--rollout ID) or the config (--config NAME)",
                                 param_hint="'--rollout'")
    body: dict[str, Any] = {"summary": summary_text, "severity": severity.value}
    if rollout is not None:
        body["rollout_id"] = rollout
    if config is not None:
        body["config"] = config
    _done(api(ctx).request("POST", "/v1/incidents", body=body), as_json)


@app.command("note")
def note(ctx: typer.Context, incident_id: IncidentId,
         text: Annotated[str, typer.Argument(help="the note, kept on the incident's timeline")],
         as_json: JsonFlag = False) -> None:
    """Add a note to an incident's timeline."""
    data = api(ctx).request("POST", _url(incident_id, "notes"), body={"text": text})
    if as_json:
        output.print_json(data)
        return
    output.say(f"noted on incident {incident_id} at {output.when(data['time'])}")


@app.command("mitigate")
def mitigate(ctx: typer.Context, incident_id: IncidentId,
             note_text: Annotated[str, typer.Option("--note", "-n", help="how it was mitigated")] = "",
             as_json: JsonFlag = False) -> None:
    """Mark an open incident mitigated: the harm has stopped (a rollback does this by itself)."""
    _done(api(ctx).request("POST", _url(incident_id, "mitigate"), body={"text": note_text or None}), as_json)


@app.command("resolve")
def resolve(ctx: typer.Context, incident_id: IncidentId,
            note_text: Annotated[str, typer.Option("--note", "-n", help="how it was resolved (required)")],
            as_json: JsonFlag = False) -> None:
    """Resolve an incident, with a note saying how."""
    _done(api(ctx).request("POST", _url(incident_id, "resolve"), body={"text": note_text}), as_json)


@app.command("postmortem")
def postmortem(ctx: typer.Context, incident_id: IncidentId) -> None:
    """Print the post-mortem draft in Markdown (redirect it to a file to edit it)."""
    text = api(ctx).request("GET", _url(incident_id, "postmortem"), text=True)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()
