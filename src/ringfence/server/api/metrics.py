"""POST /v1/metrics: instances report their health, windows tagged with the revisions they ran.

Every instance posts here every 10 s; at 30,000 instances that is 3,000 requests a second.
Served in front of the routes (server/front.py) and documented by hand (`OPERATION`).
"""

from __future__ import annotations

import json
from typing import Any

import anyio.to_thread
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from ringfence.core.model import Token
from ringfence.core.reports import parse_report
from ringfence.errors import InvalidInput, Problem
from ringfence.server.ingest import Ingest
from ringfence.server.problems import ok, problem_response, responses

PATH = "/v1/metrics"

_COUNTS = {"type": "array", "items": {"type": "integer", "minimum": 0}}
_REVISIONS = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0},
              "description": "config name -> version the instance ran"}
REPORT_SCHEMA = {
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
                    "description": "windows the instance dropped since its last successful report"}}}
OPERATION: dict[str, Any] = {
    "tags": ["metrics"], "operationId": "report_metrics",
    "summary": "Health of one instance: windows and process events, tagged with the revisions it ran",
    "security": [{"HTTPBearer": []}],
    "requestBody": {"required": True, "content": {"application/json": {"schema": REPORT_SCHEMA}}},
    "responses": {**ok("queued; counts as a heartbeat", {
        "type": "object", "required": ["accepted"], "properties": {"accepted": {"type": "integer"}}}, 202),
        **responses(404, 413)},
}


def _forbid_constant(name: str) -> Any:
    raise InvalidInput(f"the request body holds {name}, which JSON does not allow",
                       [Problem("", f"{name} is not JSON", "request")])


class ReportIntake:
    """POST /v1/metrics, served by `Front`."""

    def __init__(self, ingest: Ingest, max_bytes: int) -> None:
        self.ingest = ingest
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send, token: Token) -> Response:
        raw = await self._body(receive)
        if raw is None:
            return problem_response(413, "Request too large", f"the request body is over the {self.max_bytes}-byte "
                                    "limit (RINGFENCE_MAX_BODY_BYTES); send fewer windows per report")
        try:
            body = json.loads(raw, parse_constant=_forbid_constant)
        except ValueError as exc:  # not JSON, or not UTF-8
            raise InvalidInput(f"the request body is not JSON: {exc}", [Problem("", "not JSON", "request")]) from None
        report = parse_report(body)
        if not self.ingest.knows(report.instance):
            await anyio.to_thread.run_sync(self.ingest.learn, report.instance)
        return JSONResponse({"accepted": self.ingest.accept(token, report)}, status_code=202)

    async def _body(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
