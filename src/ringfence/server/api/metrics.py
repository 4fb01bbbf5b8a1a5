"""/v1/metrics: instances report their health, windows tagged with the revisions they ran."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ringfence.core.model import Token
from ringfence.core.reports import parse_report
from ringfence.errors import InvalidInput, Problem
from ringfence.server.api.deps import caller, services
from ringfence.server.problems import ok, responses

router = APIRouter(prefix="/v1", tags=["metrics"])

_COUNTS = {"type": "array", "items": {"type": "integer", "minimum": 0}}
_REVISIONS = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0},
              "description": "config name -> version the instance ran"}
REPORT_BODY = {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["instance"], "properties": {
        "instance": {"type": "string", "minLength": 1, "maxLength": 200},
        "windows": {"type": "array", "maxItems": 1000, "items": {
            "type": "object", "required": ["start", "end", "requests", "errors"], "properties": {
                "start": {"type": "number", "description": "Unix seconds"},
                "end": {"type": "number", "description": "Unix seconds; after start, by at most an hour"},
                "revisions": _REVISIONS,
                "requests": {"type": "integer", "minimum": 0},
                "errors": {"type": "integer", "minimum": 0, "description": "at most requests"},
                "latency_ms": {"type": "object", "required": ["le", "counts"], "properties": {
                    "le": {"type": "array", "items": {"type": "number"}, "minItems": 1, "maxItems": 64,
                           "description": "ascending bucket bounds in ms"},
                    "counts": {**_COUNTS, "description": "len(le) + 1 counts (the last: above every bound), "
                                                         "summing to requests"}}},
                "gauges": {"type": "object", "additionalProperties": {"type": "number"}, "maxProperties": 64}}}},
        "events": {"type": "array", "maxItems": 1000, "items": {
            "type": "object", "required": ["at", "event"], "properties": {
                "at": {"type": "number", "description": "Unix seconds"},
                "event": {"enum": ["start", "crash", "stop"]}, "revisions": _REVISIONS}}},
        "dropped": {"type": "integer", "minimum": 0,
                    "description": "windows the instance dropped since its last successful report"}}}}}}


def _forbid_constant(name: str) -> Any:
    raise InvalidInput(f"the request body holds {name}, which JSON does not allow",
                       [Problem("", f"{name} is not JSON", "request")])


@router.post("/metrics", status_code=202, responses={**responses(404), **ok("queued", {
    "type": "object", "required": ["accepted"], "properties": {"accepted": {"type": "integer"}}}, 202)},
             openapi_extra={"requestBody": REPORT_BODY},
             summary="Health of one instance: windows and process events, tagged with the revisions it ran")
async def report(request: Request, token: Token = Depends(caller)) -> JSONResponse:
    # Every instance posts here every few seconds: the body is parsed with the plain JSON
    # decoder and checked by hand, and a known instance's report is queued without a thread hop.
    raw = await request.body()
    try:
        body = json.loads(raw, parse_constant=_forbid_constant)
    except ValueError as exc:  # not JSON, or not UTF-8
        raise InvalidInput(f"the request body is not JSON: {exc}", [Problem("", "not JSON", "request")]) from None
    parsed = parse_report(body)
    ingest = services(request).ingest
    if not ingest.knows(parsed.instance):
        await run_in_threadpool(ingest.learn, parsed.instance)
    return JSONResponse({"accepted": ingest.accept(token, parsed)}, status_code=202)
