"""/v1/audit: the append-only log of every change, filtered by subject, actor, action and time."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from ringfence.core.access import Action, covers_pattern, in_scope, may, require
from ringfence.core.model import AuditEvent, Token
from ringfence.server.api.deps import MAX_ID, caller, services
from ringfence.server.api.models import AuditPage
from ringfence.server.problems import responses

router = APIRouter(prefix="/v1", tags=["audit"])


def visible(token: Token, event: AuditEvent) -> bool:
    """Scoped tokens see events about what lies in their scopes; tokens and webhooks are admin business."""
    kind, _, rest = event.subject.partition(":")
    if kind == "token" and rest:
        return may(token, Action.MANAGE_TOKENS)
    if kind == "webhook" and rest:
        return may(token, Action.MANAGE_WEBHOOKS)
    if kind in ("schema", "policy") and rest:
        return covers_pattern(token, rest)
    return in_scope(token, event.subject)


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment


@router.get("/audit", response_model=AuditPage, responses=responses(), summary="Audit events, newest first")
def audit(
    request: Request,
    token: Token = Depends(caller),
    subject: str | None = Query(None, max_length=600, description="e.g. payments/limits"),
    actor: str | None = Query(None, max_length=200),
    action: str | None = Query(None, max_length=100, description="e.g. config.push"),
    since: dt.datetime | None = Query(None, description="ISO 8601; UTC when no offset is given"),
    until: dt.datetime | None = Query(None),
    before: int | None = Query(None, ge=1, le=MAX_ID, description="next_before of the previous page"),
    limit: int = Query(100, ge=1, le=1000),
) -> JSONResponse:
    require(token, Action.READ_AUDIT)
    items: list[AuditEvent] = []
    cursor = before
    with services(request).store.read() as reader:
        while len(items) < limit:
            batch = reader.audit(subject=subject, actor=actor, action=action, since=_utc(since),
                                 until=_utc(until), before_id=cursor, limit=limit)
            for event in batch:
                cursor = event.id
                if visible(token, event):
                    items.append(event)
                    if len(items) == limit:
                        break
            if len(batch) < limit:
                cursor = None
                break
    return JSONResponse({"items": [e.to_json() for e in items],
                         "next_before": cursor if len(items) == limit else None})
