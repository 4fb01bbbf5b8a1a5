"""/v1/configs: list, read, push, delete, history, diff, revert; /v1/validate.

A config name contains slashes, so sub-resources hang off a `/-/` separator that
no name can contain (segments start with a letter or digit), as GitLab does:
`/v1/configs/payments/limits/-/revisions/3`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ringfence.core import diff as structural
from ringfence.core.access import Action, in_scope, require
from ringfence.core.model import Revision, Token
from ringfence.server.api.deps import (
    IF_MATCH_DOC,
    MAX_VERSION,
    caller,
    field,
    if_match,
    json_object,
    services,
    version_field,
)
from ringfence.server.api.models import ConfigPage, DiffOut, HistoryOut, PushOut, RevisionOut, ValidateOut
from ringfence.server.configs import PushResult
from ringfence.server.problems import responses

router = APIRouter(prefix="/v1", tags=["configs"])

PUSH_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {
        "type": "object", "required": ["value", "message"],
        "properties": {"value": {"description": "the config: any JSON value"},
                       "message": {"type": "string", "minLength": 1, "description": "why"},
                       "emergency": {"type": "boolean", "description": "admins only: short bakes, same rings"}},
    }}},
}
MESSAGE_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {
        "type": "object", "required": ["message"],
        "properties": {"message": {"type": "string", "minLength": 1}},
    }}},
}
REVERT_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {
        "type": "object", "required": ["to", "message"],
        "properties": {"to": {"type": "integer", "minimum": 1, "maximum": MAX_VERSION},
                       "message": {"type": "string", "minLength": 1}},
    }}},
}
VALIDATE_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {
        "type": "object", "required": ["name", "value"],
        "properties": {"name": {"type": "string"}, "value": {"description": "any JSON value"}},
    }}},
}


def revision_json(revision: Revision, *, with_value: bool = True) -> dict[str, Any]:
    return revision.to_json(with_value=with_value and not revision.deleted)


def revision_response(revision: Revision, status: int = 200, **extra: Any) -> JSONResponse:
    body = {"revision": revision_json(revision), **extra} if extra else revision_json(revision)
    return JSONResponse(body, status_code=status, headers={"ETag": f'"{revision.version}"'})


def push_response(result: PushResult) -> JSONResponse:
    return revision_response(
        result.revision, 201 if result.changed else 200,
        changed=result.changed, changes=[c.to_json() for c in result.changes],
        rollout=result.rollout.to_json() if result.rollout else None,
    )


@router.get("/configs", response_model=ConfigPage, responses=responses(),
            summary="List configs (names in scope), by name, with an optional prefix")
def list_configs(
    request: Request,
    token: Token = Depends(caller),
    prefix: str = Query("", max_length=600, description="only names starting with this"),
    cursor: str | None = Query(None, max_length=600, description="next_cursor of the previous page"),
    limit: int = Query(100, ge=1, le=1000),
) -> JSONResponse:
    require(token, Action.READ)
    items: list[dict[str, Any]] = []
    after, exhausted = cursor, False
    with services(request).store.read() as reader:
        while len(items) < limit and not exhausted:
            heads = reader.heads(prefix=prefix, after=after, limit=limit)
            exhausted = len(heads) < limit
            for head in heads:
                after = head.name
                if in_scope(token, head.name):
                    items.append({"name": head.name, "version": head.version, "deleted": head.deleted,
                                  "updated_at": head.updated_at.isoformat()})
                    if len(items) == limit:
                        break
    return JSONResponse({"items": items, "next_cursor": after if len(items) == limit else None})


@router.get("/configs/{name:path}/-/revisions/{version}", responses=responses(404, 400),
            response_model=RevisionOut, summary="One version of a config")
def get_revision(
    request: Request, name: str, version: int = Path(ge=1, le=MAX_VERSION), token: Token = Depends(caller)
) -> JSONResponse:
    return revision_response(services(request).configs.revision(token, name, version))


@router.get("/configs/{name:path}/-/revisions", responses=responses(404), response_model=HistoryOut,
            summary="History of a config, newest first")
def history(
    request: Request, name: str, token: Token = Depends(caller),
    before: int | None = Query(None, ge=1, le=MAX_VERSION, description="only versions older than this"),
    limit: int = Query(50, ge=1, le=500),
) -> JSONResponse:
    items = services(request).configs.history(token, name, before, limit)
    return JSONResponse({"items": [revision_json(r, with_value=False) for r in items]})


@router.get("/configs/{name:path}/-/diff", responses=responses(404), response_model=DiffOut,
            summary="Structural diff between two versions (JSON Patch operations)")
def diff(
    request: Request, name: str, token: Token = Depends(caller),
    from_version: int = Query(..., alias="from", ge=1, le=MAX_VERSION),
    to_version: int = Query(..., alias="to", ge=1, le=MAX_VERSION),
) -> JSONResponse:
    changes = services(request).configs.diff(token, name, from_version, to_version)
    return JSONResponse({"name": name, "from_version": from_version, "to_version": to_version,
                         "changes": [c.to_json() for c in changes], "summary": structural.summary(changes)})


@router.post("/configs/{name:path}/-/revert", responses=responses(404, 409, 428), response_model=PushOut,
             status_code=201, openapi_extra={"requestBody": REVERT_BODY, "parameters": [IF_MATCH_DOC]},
             summary="Make a new version with the content of an older one")
async def revert(request: Request, name: str, token: Token = Depends(caller)) -> JSONResponse:
    body = await json_object(request)
    to, message = version_field(body, "to"), field(body, "message", str)
    expected = if_match(request)
    result = await run_in_threadpool(
        services(request).configs.revert, token, name, to, expected=expected, message=message
    )
    return push_response(result)


@router.get("/configs/{name:path}", responses=responses(404), response_model=RevisionOut,
            summary="The current version of a config")
def get_config(request: Request, name: str, token: Token = Depends(caller)) -> JSONResponse:
    return revision_response(services(request).configs.current(token, name))


@router.put("/configs/{name:path}", responses=responses(409, 428), response_model=PushOut, status_code=201,
            openapi_extra={"requestBody": PUSH_BODY, "parameters": [IF_MATCH_DOC]},
            summary="Push a new version (validated; If-Match required when the config exists)")
async def put_config(request: Request, name: str, token: Token = Depends(caller)) -> JSONResponse:
    body = await json_object(request)
    value, message = field(body, "value", object), field(body, "message", str)
    emergency = field(body, "emergency", bool, required=False) or False
    expected = if_match(request)
    result = await run_in_threadpool(
        services(request).configs.push, token, name, value, expected=expected, message=message, emergency=emergency
    )
    return push_response(result)


@router.delete("/configs/{name:path}", responses=responses(404, 409, 428), response_model=PushOut,
               openapi_extra={"requestBody": MESSAGE_BODY, "parameters": [IF_MATCH_DOC]},
               summary="Delete a config: a tombstone version; history stays")
async def delete_config(request: Request, name: str, token: Token = Depends(caller)) -> JSONResponse:
    body = await json_object(request)
    message = field(body, "message", str)
    expected = if_match(request)
    result = await run_in_threadpool(
        services(request).configs.delete, token, name, expected=expected, message=message
    )
    return push_response(result)


@router.post("/validate", responses=responses(), response_model=ValidateOut,
             openapi_extra={"requestBody": VALIDATE_BODY},
             summary="Validate a value and diff it against the current version; stores nothing")
async def validate(request: Request, token: Token = Depends(caller)) -> JSONResponse:
    body = await json_object(request)
    name, value = field(body, "name", str), field(body, "value", object)
    check = await run_in_threadpool(services(request).configs.check, token, name, value)
    return JSONResponse({
        "name": name, "valid": not check.problems,
        "problems": [{"pointer": p.pointer, "message": p.message, "validator": p.validator}
                     for p in check.problems],
        "changes": [c.to_json() for c in check.changes],
        "current_version": check.current_version,
        "schema_pattern": check.schema.pattern if check.schema else None,
        "schema_version": check.schema.version if check.schema else None,
    })
