"""/v1/stream (Server-Sent Events) and /v1/poll (long-poll): each instance's assignments, as they change.

See docs/stream.md for the protocol. The stream is served in front of the routes
(server/front.py) and documented by hand (`STREAM_OPERATION`).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from ringfence.core.access import Action, require
from ringfence.core.fleet import Instance
from ringfence.core.model import Token
from ringfence.errors import InvalidInput, NotFound, Problem
from ringfence.server.api.deps import caller, services
from ringfence.server.fleet import FleetService
from ringfence.server.problems import ok, problem_response, responses
from ringfence.server.stream import Hub, StreamSubscriber, Subscriber, body, sse

router = APIRouter(prefix="/v1", tags=["stream"])


def _have(text: str) -> dict[str, int]:
    """`payments/limits@3,search/ranking@7`: what the client already runs."""
    have: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, version = item.rpartition("@")
        if not sep or not version.isdigit():
            raise InvalidInput(f"have={item!r} must look like name@version",
                               [Problem("/query/have", "expected name@version, comma-separated", "request")])
        have[name] = int(version)
    return have


async def _instance(fleet: FleetService, token: Token, instance_id: str, register: dict[str, Any] | None) -> Instance:
    require(token, Action.READ)
    if register is not None:
        return await run_in_threadpool(fleet.register, token, register)
    try:
        return await run_in_threadpool(fleet.get, token, instance_id)
    except NotFound:
        raise NotFound(f"instance {instance_id!r} is not registered: register it first (POST /v1/instances), "
                       "or pass service= (and region, zone, label, configs) to register while connecting") from None


class EventStream(Response):
    """The response of one stream: the snapshot, then whatever the hub writes to it, until
    the client goes. Lighter than a StreamingResponse: no generator, no task group, no
    task per message; the request's own task only waits for the disconnect."""

    media_type = "text/event-stream"

    def __init__(self, hub: Hub, subscriber: StreamSubscriber, have: dict[str, int]) -> None:
        # Not Response.__init__: it would set an empty body and with it `content-length: 0`.
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        self.hub = hub
        self.subscriber = subscriber
        self.have = have

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Attached before the snapshot is read: a change committed meanwhile waits in `pending`
        # and goes out right after the snapshot unless the snapshot already holds it.
        self.hub.attach(self.subscriber)
        try:
            first = await run_in_threadpool(self.hub.snapshot, self.subscriber, self.have)
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            await send(body(sse("snapshot", first, first["seq"])))
            self.subscriber.send = send
            self.hub.flush(self.subscriber)
            while (await receive())["type"] != "http.disconnect":
                pass
        finally:
            self.hub.detach(self.subscriber)


def _registration(instance: str, service: str | None, region: str, zone: str, label: list[str],
                  configs: str) -> dict[str, Any] | None:
    if service is None:
        return None
    labels = dict(item.partition("=")[::2] for item in label)
    patterns = [c.strip() for c in configs.split(",") if c.strip()] or None
    return {"id": instance, "service": service, "region": region, "zone": zone, "labels": labels,
            "configs": patterns}


STREAM_PATH = "/v1/stream"
_LIMITS = {"instance": 200, "have": 100_000, "service": 200, "region": 100, "zone": 100, "configs": 10_000}
_PARAMS = [
    ("instance", True, "the instance's id"),
    ("have", False, "name@version,... the client already runs"),
    ("service", False, "register while connecting (with the rest)"),
    ("region", False, ""), ("zone", False, ""),
    ("configs", False, "name patterns it reads, comma-separated"),
]
STREAM_OPERATION: dict[str, Any] = {
    "tags": ["stream"], "operationId": "stream",
    "summary": "Server-Sent Events: the revision of each config this instance must run, as it changes",
    "security": [{"HTTPBearer": []}],
    "parameters": [
        *({"name": name, "in": "query", "required": required, "description": text,
           "schema": {"type": "string", "maxLength": _LIMITS[name]}} for name, required, text in _PARAMS),
        {"name": "label", "in": "query", "required": False, "description": "name=value, repeatable",
         "schema": {"type": "array", "items": {"type": "string"}}}],
    "responses": {
        200: {"description": "text/event-stream: a snapshot, then updates and removals as they happen",
              "content": {"text/event-stream": {"schema": {"type": "string"}}}},
        503: {"description": "too many streams: retry after Retry-After seconds",
              "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
        **responses(404)},
}


class StreamIntake:
    """GET /v1/stream, served by `Front`: a stream is held for the life of the process, and
    every layer of the framework would keep a frame alive for as long."""

    def __init__(self, hub: Hub, fleet: FleetService) -> None:
        self.hub = hub
        self.fleet = fleet

    async def __call__(self, scope: Scope, receive: Receive, send: Send, token: Token) -> Response | None:
        if len(self.hub.subscribers) >= self.hub.max_subscribers:
            return problem_response(503, "Too many streams", "this server holds its maximum of streams; retry "
                                    "later (or use /v1/poll)", headers={"Retry-After": "5"})
        query = _query(scope)
        instance = query.get("instance", [""])[-1]
        if not instance:
            raise InvalidInput("instance is required: the instance's id",
                               [Problem("/query/instance", "required", "request")])
        one = {name: query.get(name, [""])[-1] for name in ("have", "region", "zone", "configs")}
        service = query["service"][-1] if "service" in query else None
        # A reconnect (Last-Event-ID or not) gets a fresh snapshot: with `have`, values only for what it missed.
        known = _have(one["have"])
        found = await _instance(self.fleet, token, instance, _registration(
            instance, service, one["region"], one["zone"], query.get("label", []), one["configs"]))
        await EventStream(self.hub, StreamSubscriber(found, token, self.hub), known)(scope, receive, send)
        return None


def _query(scope: Scope) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True):
        limit = _LIMITS.get(name)
        if limit is not None and len(value) > limit:
            raise InvalidInput(f"{name} is longer than {limit} characters",
                               [Problem(f"/query/{name}", f"at most {limit} characters", "request")])
        found.setdefault(name, []).append(value)
    return found


@router.get("/poll", responses={**responses(404), **ok("the assignments, when they differ from `have` or when "
                                                       "`wait` ran out", {"type": "object"})},
            summary="Long-poll for clients that cannot stream")
async def poll(
    request: Request, token: Token = Depends(caller),
    instance: str = Query(..., max_length=200), have: str = Query("", max_length=100_000),
    wait: float = Query(30.0, ge=0, le=60, description="seconds to wait for a change"),
) -> JSONResponse:
    hub = services(request).hub
    known = _have(have)
    subscriber = Subscriber(await _instance(services(request).fleet, token, instance, None), token)
    hub.attach(subscriber)
    try:
        current = await run_in_threadpool(hub.snapshot, subscriber, known)
        if {n: c["version"] for n, c in current["configs"].items()} == known and wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(subscriber.changed.wait(), timeout=wait)
            current = await run_in_threadpool(hub.snapshot, subscriber, known)
    finally:
        hub.detach(subscriber)
    return JSONResponse(current)
