"""/v1/stream (Server-Sent Events) and /v1/poll (long-poll): each instance's assignments, as they change.

See docs/stream.md for the protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from ringfence.core.access import Action, require
from ringfence.core.fleet import Instance
from ringfence.core.model import Token
from ringfence.errors import InvalidInput, NotFound, Problem
from ringfence.server.api.deps import caller, services
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


async def _instance(request: Request, token: Token, instance_id: str, register: dict[str, Any] | None) -> Instance:
    fleet = services(request).fleet
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


STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {"description": "text/event-stream: a snapshot, then updates and removals as they happen",
          "content": {"text/event-stream": {"schema": {"type": "string"}}}},
    503: {"description": "too many streams: retry after Retry-After seconds",
          "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}}


@router.get("/stream", responses={**responses(404), **STREAM_DOC},
            summary="Server-Sent Events: the revision of each config this instance must run, as it changes")
async def stream(
    request: Request, token: Token = Depends(caller),
    instance: str = Query(..., max_length=200, description="the instance's id"),
    have: str = Query("", max_length=100_000, description="name@version,... the client already runs"),
    service: str | None = Query(None, max_length=200, description="register while connecting (with the rest)"),
    region: str = Query("", max_length=100), zone: str = Query("", max_length=100),
    label: list[str] = Query([], description="name=value, repeatable"),
    configs: str = Query("", max_length=10_000, description="name patterns it reads, comma-separated"),
) -> Any:
    hub = services(request).hub
    if len(hub.subscribers) >= hub.max_subscribers:
        return problem_response(503, "Too many streams", "this server holds its maximum of streams; retry later "
                                "(or use /v1/poll)", headers={"Retry-After": "5"})
    # A reconnect (Last-Event-ID or not) gets a fresh snapshot: with `have`, values only for what it missed.
    known = _have(have)
    found = await _instance(request, token, instance, _registration(instance, service, region, zone, label, configs))
    return EventStream(hub, StreamSubscriber(found, token, hub), known)


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
    subscriber = Subscriber(await _instance(request, token, instance, None), token)
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
