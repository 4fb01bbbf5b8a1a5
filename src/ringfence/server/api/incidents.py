"""/v1/incidents: list, read (timeline, evidence, blast radius), open by hand, note, mitigate,
resolve, and the post-mortem draft in Markdown."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from ringfence.core.incident import MAX_TEXT, IncidentState
from ringfence.core.model import Token
from ringfence.server.api.deps import MAX_VERSION, caller, services
from ringfence.server.problems import responses

router = APIRouter(prefix="/v1", tags=["incidents"])
STATES = "^(" + "|".join(s.value for s in IncidentState) + ")$"
MARKDOWN = "text/markdown; charset=utf-8"
IncidentId = Path(ge=1, le=MAX_VERSION, description="the incident's id")


class IncidentOut(BaseModel):
    id: str
    config: str
    rollout_id: str | None
    from_version: int | None
    to_version: int | None
    severity: str = Field(description="sev1 (worst) to sev4")
    summary: str
    state: str = Field(description="open, mitigated or resolved")
    opened_at: str
    opened_by: str
    mitigated_at: str | None
    resolved_at: str | None
    evidence: dict[str, Any] = Field(description="the verdict that failed, with its per-metric details")


class IncidentList(BaseModel):
    items: list[IncidentOut]


class BlastRadiusOut(BaseModel):
    instances: int = Field(description="instances given the bad revision")
    reported_applied: int = Field(description="of which reported applying it")
    services: dict[str, int]
    regions: dict[str, int]
    first_exposed_at: str | None
    until: str | None = Field(description="when the exposure ended (the rollback); null while it goes on")
    instance_seconds: float
    longest_seconds: float
    requests: int | None = Field(description="served on the bad revision; null when not measured")
    errors: int | None = Field(description="errors among them; null when not measured")
    measured: bool
    members: list[dict[str, Any]] = Field(description="each instance: since, until, seconds, requests, errors")


class IncidentReportOut(IncidentOut):
    rollout: dict[str, Any] | None
    revisions: dict[str, Any] = Field(description="`from` and `to`: author, message, time, hash (no values)")
    changes: list[dict[str, Any]] = Field(description="the diff from `from` to `to`, as JSON Patch operations")
    timeline: list[dict[str, Any]] = Field(description="push, rollout events, incident changes and notes, in order")
    blast_radius: BlastRadiusOut
    notes: list[dict[str, Any]]


class NoteOut(BaseModel):
    id: int
    time: str
    author: str
    kind: str = Field(description="note, mitigate or resolve")
    text: str


class IncidentCreate(BaseModel):
    summary: str = Field(max_length=MAX_TEXT, description="what is wrong, in a sentence")
    severity: Literal["sev1", "sev2", "sev3", "sev4"] = "sev3"
    rollout_id: int | None = Field(None, ge=1, le=MAX_VERSION, description="the rollout that caused it, if known")
    config: str | None = Field(None, max_length=600, description="without rollout_id: the config concerned")
    from_version: int | None = Field(None, ge=1, le=MAX_VERSION)
    to_version: int | None = Field(None, ge=1, le=MAX_VERSION)


class NoteIn(BaseModel):
    text: str = Field(max_length=MAX_TEXT)


class OptionalNoteIn(BaseModel):
    text: str | None = Field(None, max_length=MAX_TEXT)


@router.get("/incidents", response_model=IncidentList, responses=responses(), summary="Incidents, newest first")
def list_incidents(
    request: Request, token: Token = Depends(caller),
    state: str | None = Query(None, pattern=STATES), config: str | None = Query(None, max_length=600),
    before: int | None = Query(None, ge=1, le=MAX_VERSION), limit: int = Query(100, ge=1, le=1000),
) -> JSONResponse:
    found = services(request).incidents.find(token, state=state, config=config, before=before, limit=limit)
    return JSONResponse({"items": [i.to_json() for i in found]})


@router.post("/incidents", response_model=IncidentOut, status_code=201, responses=responses(404),
             summary="Open an incident by hand, about a rollout or a config")
async def open_incident(request: Request, body: IncidentCreate, token: Token = Depends(caller)) -> JSONResponse:
    incident = await run_in_threadpool(services(request).incidents.open, token, body.model_dump())
    return JSONResponse(incident.to_json(), status_code=201)


@router.get("/incidents/{incident_id}", response_model=IncidentReportOut, responses=responses(404),
            summary="An incident: the change and its diff, timeline, evidence, blast radius, notes")
def get_incident(request: Request, incident_id: int = IncidentId, token: Token = Depends(caller)) -> JSONResponse:
    return JSONResponse(services(request).incidents.report(token, incident_id).to_json())


@router.post("/incidents/{incident_id}/notes", response_model=NoteOut, status_code=201, responses=responses(404),
             summary="Add a note to an incident's timeline")
async def add_note(request: Request, body: NoteIn, incident_id: int = IncidentId,
                   token: Token = Depends(caller)) -> JSONResponse:
    note = await run_in_threadpool(services(request).incidents.note, token, incident_id, body.text)
    return JSONResponse(note.to_json(), status_code=201)


@router.post("/incidents/{incident_id}/mitigate", response_model=IncidentOut, responses=responses(404, 409),
             summary="Mark an open incident mitigated (the harm has stopped), with an optional note")
async def mitigate(request: Request, body: OptionalNoteIn, incident_id: int = IncidentId,
                   token: Token = Depends(caller)) -> JSONResponse:
    incident = await run_in_threadpool(services(request).incidents.mitigate, token, incident_id, body.text)
    return JSONResponse(incident.to_json())


@router.post("/incidents/{incident_id}/resolve", response_model=IncidentOut, responses=responses(404, 409),
             summary="Resolve an incident, with a note saying how")
async def resolve(request: Request, body: NoteIn, incident_id: int = IncidentId,
                  token: Token = Depends(caller)) -> JSONResponse:
    incident = await run_in_threadpool(services(request).incidents.resolve, token, incident_id, body.text)
    return JSONResponse(incident.to_json())


@router.get("/incidents/{incident_id}/postmortem", response_class=Response, responses={
    **responses(404), 200: {"description": "the post-mortem draft", "content": {MARKDOWN.split(";")[0]: {
        "schema": {"type": "string"}}}}}, summary="The post-mortem draft, in Markdown")
def postmortem(request: Request, incident_id: int = IncidentId, token: Token = Depends(caller)) -> Response:
    return Response(services(request).incidents.postmortem(token, incident_id), media_type=MARKDOWN)
