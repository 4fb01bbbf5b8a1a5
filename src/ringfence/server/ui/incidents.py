"""/ui/incidents: the list, and one incident: timeline, evidence, blast radius, post-mortem draft."""

from __future__ import annotations

from fastapi import Path, Request
from markdown_it import MarkdownIt
from starlette.responses import Response

from ringfence.core.postmortem import render as postmortem
from ringfence.server.api.deps import MAX_VERSION, services
from ringfence.server.ui import render
from ringfence.server.ui.deps import router, who

routes = router()
# Raw HTML in the draft (which quotes people's messages and notes) is shown as text, never run.
_markdown = MarkdownIt("commonmark", {"html": False}).enable("table")


@routes.get("/incidents")
def list_incidents(request: Request, state: str | None = None, fragment: str | None = None) -> Response:
    caller = who(request)
    found = services(request).incidents.find(caller.token, state=state or None, config=None, before=None, limit=200)
    template = "_incidents_table.html" if fragment else "incidents.html"
    return render.page(request, template, caller, incidents=found, state=state or "")


@routes.get("/incidents/{incident_id}")
def show(request: Request, incident_id: int = Path(ge=1, le=MAX_VERSION)) -> Response:
    caller = who(request)
    report = services(request).incidents.report(caller.token, incident_id)
    draft = _markdown.render(postmortem(report))
    return render.page(request, "incident.html", caller, report=report.to_json(), draft=render.markup(draft))
