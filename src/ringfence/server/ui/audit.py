"""/ui/audit: the audit log, filtered by actor, action, subject and time, newest first."""

from __future__ import annotations

import datetime as dt

from fastapi import Request
from starlette.responses import Response

from ringfence.core.access import Action, require
from ringfence.core.model import AuditEvent
from ringfence.server.api.audit import visible
from ringfence.server.api.deps import services
from ringfence.server.ui import render
from ringfence.server.ui.deps import router, who

routes = router()
PAGE = 100


def _time(value: str | None) -> dt.datetime | None:
    """`2026-03-01T12:00` (a datetime-local field, UTC) or any ISO 8601 time; None when empty or bad."""
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@routes.get("/audit")
def audit(request: Request, actor: str = "", action: str = "", subject: str = "", since: str = "",
          until: str = "", before: str = "") -> Response:
    caller = who(request)
    require(caller.token, Action.READ_AUDIT)
    cursor = int(before) if before.isdigit() and len(before) < 19 else None
    items: list[AuditEvent] = []
    with services(request).store.read() as reader:
        while len(items) < PAGE:
            batch = reader.audit(subject=subject or None, actor=actor or None, action=action or None,
                                 since=_time(since), until=_time(until), before_id=cursor, limit=PAGE)
            for event in batch:
                cursor = event.id
                if visible(caller.token, event):
                    items.append(event)
                    if len(items) == PAGE:
                        break
            if len(batch) < PAGE:
                cursor = None
                break
    return render.page(request, "audit.html", caller, events=items, actor=actor, action=action, subject=subject,
                       since=since, until=until, next_before=cursor if len(items) == PAGE else None)
