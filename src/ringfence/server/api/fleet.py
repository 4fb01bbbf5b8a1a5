"""/v1/instances: register, heartbeat, deregister, list; each instance's assignments."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from ringfence.core.model import Token
from ringfence.errors import InvalidInput, Problem
from ringfence.server.api.deps import caller, json_object, services
from ringfence.server.problems import listing, ok, responses

router = APIRouter(prefix="/v1", tags=["fleet"])

INSTANCE = {"type": "object", "required": ["id", "service", "liveness"], "properties": {
    "id": {"type": "string"}, "service": {"type": "string"}, "region": {"type": "string"},
    "zone": {"type": "string"}, "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    "configs": {"type": "array", "items": {"type": "string"}}, "sdk_version": {"type": "string"},
    "started_at": {"type": ["string", "null"]}, "registered_at": {"type": "string"},
    "last_seen": {"type": "string"}, "liveness": {"enum": ["alive", "silent", "gone", "stopped"]}}}
ONE = ok("an instance", INSTANCE)
REGISTER_BODY = {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["id", "service"], "properties": {
        "id": {"type": "string", "description": "stable for the life of the process"},
        "service": {"type": "string"}, "region": {"type": "string"}, "zone": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "configs": {"type": "array", "items": {"type": "string"}, "description": "name patterns it reads"},
        "sdk_version": {"type": "string"}, "started_at": {"type": "string", "description": "ISO 8601"}}}}}}
ASSIGNMENTS = ok("the revision of each config this instance must run now", {
    "type": "object", "required": ["instance", "items"],
    "properties": {"instance": {"type": "string"}, "items": {"type": "array", "items": {"type": "object"}}}})


@router.post("/instances", responses={**responses(), **ONE}, openapi_extra={"requestBody": REGISTER_BODY},
             summary="Register an instance (or update its registration)")
async def register(request: Request, token: Token = Depends(caller)) -> JSONResponse:
    body = await json_object(request)
    fleet = services(request).fleet
    instance = await run_in_threadpool(fleet.register, token, body)
    return JSONResponse(fleet.to_json(instance, fleet.clock()))


@router.post("/instances/{instance_id}/heartbeat", responses={**responses(404), **ONE}, summary="I am alive")
def heartbeat(request: Request, instance_id: str, token: Token = Depends(caller)) -> JSONResponse:
    fleet = services(request).fleet
    return JSONResponse(fleet.to_json(fleet.heartbeat(token, instance_id), fleet.clock()))


APPLIED_BODY = {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["applied"], "properties": {"applied": {"type": "array", "items": {
        "type": "object", "required": ["name", "version"],
        "properties": {"name": {"type": "string"}, "version": {"type": "integer"},
                       "applied_at": {"type": "string", "description": "ISO 8601; now when left out"}}}}}}}}}


@router.post("/instances/{instance_id}/applied", responses={**responses(404), **ok("recorded", {
    "type": "object", "required": ["recorded"], "properties": {"recorded": {"type": "integer"}}})},
             openapi_extra={"requestBody": APPLIED_BODY},
             summary="The instance reports the revisions it applied (measures propagation)")
async def applied(request: Request, instance_id: str, token: Token = Depends(caller)) -> JSONResponse:
    body = await json_object(request)
    recorded = await run_in_threadpool(services(request).fleet.acknowledge, token, instance_id, body.get("applied"))
    return JSONResponse({"recorded": recorded})


@router.delete("/instances/{instance_id}", status_code=204, responses=responses(404),
               summary="A clean shutdown: the instance leaves the fleet without counting as silent")
def deregister(request: Request, instance_id: str, token: Token = Depends(caller)) -> Response:
    services(request).fleet.deregister(token, instance_id)
    return Response(status_code=204)


@router.get("/instances", responses={**responses(), **ok("instances", listing(INSTANCE))},
            summary="The fleet, filtered")
def list_instances(
    request: Request, token: Token = Depends(caller),
    service: str | None = Query(None, max_length=200), region: str | None = Query(None, max_length=100),
    zone: str | None = Query(None, max_length=100),
    label: list[str] = Query([], description="name=value, repeatable"),
    liveness: str | None = Query(None, pattern="^(alive|silent|gone|stopped)$"),
    config: str | None = Query(None, max_length=600,
                               description="only instances reading it, each with its revision and ring"),
) -> JSONResponse:
    labels = {}
    for item in label:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InvalidInput(f"label filter {item!r} must look like name=value",
                               [Problem("/query/label", "expected name=value", "request")])
        labels[name] = value
    fleet = services(request).fleet
    found = fleet.find(token, service=service, region=region, zone=zone, labels=labels, liveness=liveness)
    now = fleet.clock()
    if config is None:
        return JSONResponse({"items": [fleet.to_json(i, now) for i in found]})
    rings = fleet.rings(token, config, found)
    return JSONResponse({"items": [{**fleet.to_json(i, now), "assignment": rings[i.id]}
                                   for i in found if i.id in rings]})


@router.get("/instances/{instance_id}", responses={**responses(404), **ONE}, summary="One instance")
def get_instance(request: Request, instance_id: str, token: Token = Depends(caller)) -> JSONResponse:
    fleet = services(request).fleet
    instance = fleet.get(token, instance_id)
    with services(request).store.read() as reader:
        applied = reader.applied(instance_id)
    return JSONResponse({**fleet.to_json(instance, fleet.clock()), "applied": {
        name: {"version": version, "applied_at": when.isoformat()} for name, (version, when) in applied.items()}})


@router.get("/instances/{instance_id}/assignments", responses={**responses(404), **ASSIGNMENTS},
            summary="The revision of each config this instance must run now")
def assignments(request: Request, instance_id: str, token: Token = Depends(caller)) -> JSONResponse:
    items = services(request).fleet.assignments(token, instance_id)
    return JSONResponse({"instance": instance_id, "items": items})
