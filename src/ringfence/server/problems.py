"""The one place where errors become RFC 9457 problem documents (`application/problem+json`).

    {"type": "urn:ringfence:problem:conflict", "title": "Conflict", "status": 409,
     "detail": "payments/limits is at version 5, not 4: ...", "current_version": 5,
     "errors": [{"pointer": "/limits/card", "message": "...", "validator": "schema"}]}
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ringfence.core import pointer as jp
from ringfence.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionRequired,
    Problem,
    RingfenceError,
    Unauthorized,
)
from ringfence.store.sql import StoreUnavailable

log = logging.getLogger("ringfence.server")
MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "urn:ringfence:problem:"

STATUS: list[tuple[type[RingfenceError], int]] = [
    (PreconditionRequired, 428),
    (Conflict, 409),
    (NotFound, 404),
    (Unauthorized, 401),
    (Forbidden, 403),
    (StoreUnavailable, 503),
    (InvalidInput, 422),
]


def problem_response(
    status: int, title: str, detail: str, *, errors: list[Problem] | None = None,
    headers: dict[str, str] | None = None, **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + title.lower().replace(" ", "-"),
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = [_problem_json(p) for p in errors]
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _problem_json(problem: Problem) -> dict[str, Any]:
    out: dict[str, Any] = {"pointer": problem.pointer, "message": problem.message,
                           "validator": problem.validator}
    if problem.line is not None:
        out["line"] = problem.line
    if problem.column is not None:
        out["column"] = problem.column
    return out


def status_for(exc: RingfenceError) -> int:
    return next((status for kind, status in STATUS if isinstance(exc, kind)), 400)


async def _ringfence_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RingfenceError)
    return error_response(exc)


def error_response(exc: RingfenceError) -> JSONResponse:
    status = status_for(exc)
    headers = {"WWW-Authenticate": 'Bearer realm="ringfence"'} if status == 401 else None
    return problem_response(
        status, exc.title, exc.detail, errors=list(getattr(exc, "problems", ())) or None,
        headers=headers, current_version=getattr(exc, "current_version", None),
    )


async def _request_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        location = [str(part) for part in error.get("loc", ())]
        problems.append(Problem(jp.join(location), str(error.get("msg", "invalid")), "request"))
    first = problems[0] if problems else Problem("", "invalid request", "request")
    return problem_response(422, "Invalid request", f"{first.pointer}: {first.message}", errors=problems)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    titles = {400: "Bad request", 404: "Not found", 405: "Method not allowed", 413: "Request too large"}
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return problem_response(exc.status_code, titles.get(exc.status_code, "HTTP error"), detail,
                            headers=getattr(exc, "headers", None))


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # Never the traceback to the client; the log has it (without headers, so no token).
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return problem_response(500, "Internal error", "the server hit an unexpected error; it is logged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RingfenceError, _ringfence_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "current_version": {"type": "integer"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["pointer", "message", "validator"],
                "properties": {
                    "pointer": {"type": "string"},
                    "message": {"type": "string"},
                    "validator": {"type": "string"},
                    "line": {"type": "integer"},
                    "column": {"type": "integer"},
                },
            },
        },
    },
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the problem documents a route can return."""
    descriptions = {
        400: "Bad request", 401: "Missing or invalid token", 403: "Outside the token's role or scope",
        404: "Not found", 409: "Conflict with the current version", 413: "Request body too large",
        422: "Invalid input", 428: "If-Match required", 503: "Database unavailable",
    }
    return {
        status: {"description": descriptions[status],
                 "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
        for status in sorted({400, 401, 403, 404, 413, 422, 503, *statuses})
    }


def ok(description: str, schema: dict[str, Any], status: int = 200) -> dict[int | str, dict[str, Any]]:
    """An OpenAPI `responses` entry for a JSON success body described by a JSON Schema."""
    return {status: {"description": description, "content": {"application/json": {"schema": schema}}}}


def listing(item: dict[str, Any]) -> dict[str, Any]:
    """The schema of `{"items": [...]}`, the shape of every list the API returns."""
    return {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": item}}}
