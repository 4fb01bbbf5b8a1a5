"""/ui/incidents: the list; one incident (timeline, evidence, blast radius, post-mortem draft); notes,
mitigation and resolution for the roles that may."""

from __future__ import annotations

from fastapi import Path, Request
from fastapi.concurrency import run_in_threadpool
from markdown_it import MarkdownIt
from starlette.responses import RedirectResponse, Response

from ringfence.core.access import Action, in_scope, may
from ringfence.core.postmortem import render as postmortem
from ringfence.errors import InvalidInput
from ringfence.server.api.deps import MAX_VERSION, services
from ringfence.server.ui import render
from ringfence.server.ui.deps import posted, router, who

routes = router()
IncidentId = Path(ge=1, le=MAX_VERSION)
# Raw HTML in the draft (which quotes people's messages and notes) is shown as text, never run.
_markdown = MarkdownIt("commonmark", {"html": False}).enable("table")


@routes.get("/incidents")
def list_incidents(request: Request, state: str | None = None, fragment: str | None = None) -> Response:
    caller = who(request)
    found = services(request).incidents.find(caller.token, state=state or None, config=None, before=None, limit=200)
    template = "_incidents_table.html" if fragment else "incidents.html"
    return render.page(request, template, caller, incidents=found, state=state or "")


@routes.get("/incidents/{incident_id}")
def show(request: Request, incident_id: int = IncidentId) -> Response:
    caller = who(request)
    report = services(request).incidents.report(caller.token, incident_id)
    draft = _markdown.render(postmortem(report))
    manage = may(caller.token, Action.MANAGE_INCIDENTS) and in_scope(caller.token, report.incident.config)
    return render.page(request, "incident.html", caller, report=report.to_json(), draft=render.markup(draft),
                       manage=manage)


@routes.post("/incidents/{incident_id}")
async def work(request: Request, incident_id: int = IncidentId) -> Response:
    """A note, a mitigation or a resolution: the same service and role checks as /v1/incidents."""
    caller, fields = await posted(request)
    incidents = services(request).incidents
    text = fields.get("text", "").strip() or None
    steps = {"note": incidents.note, "mitigate": incidents.mitigate, "resolve": incidents.resolve}
    step = steps.get(fields.get("do", ""))
    if step is None:
        raise InvalidInput("say what to do with the incident: note, mitigate or resolve")
    await run_in_threadpool(step, caller.token, incident_id, text)
    return RedirectResponse(f"/ui/incidents/{incident_id}", status_code=303)
