"""/v1/schemas: bind a JSON Schema to a name or prefix; versioned and audited."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ringfence.core.model import Token
from ringfence.server.api.deps import IF_MATCH_DOC, MAX_VERSION, caller, field, if_match, json_object, services
from ringfence.server.api.models import SchemaList, SchemaOut
from ringfence.server.problems import responses

router = APIRouter(prefix="/v1", tags=["schemas"])

BIND_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {
        "type": "object", "required": ["schema", "message"],
        "properties": {"schema": {"description": "a JSON Schema (2020-12)"},
                       "message": {"type": "string", "minLength": 1}},
    }}},
}
UNBIND_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {
        "type": "object", "required": ["message"], "properties": {"message": {"type": "string"}},
    }}},
}


def _response(schema: object, status: int = 200) -> JSONResponse:
    data = schema.to_json()  # type: ignore[attr-defined]
    return JSONResponse(data, status_code=status, headers={"ETag": f'"{data["version"]}"'})


@router.get("/schemas", response_model=SchemaList, responses=responses(), summary="Every live binding")
def list_schemas(request: Request, token: Token = Depends(caller)) -> JSONResponse:
    return JSONResponse({"items": [s.to_json() for s in services(request).schemas.bindings(token)]})


@router.get("/configs/{name:path}/-/schema", response_model=SchemaOut, responses=responses(404),
            tags=["configs"], summary="The schema that binds a config now (most specific wins)")
def effective_schema(request: Request, name: str, token: Token = Depends(caller)) -> JSONResponse:
    return _response(services(request).schemas.effective(token, name))


@router.get("/schemas/{pattern:path}/-/revisions/{version}", response_model=SchemaOut,
            responses=responses(404), summary="One version of a binding")
def schema_version(
    request: Request, pattern: str, version: int = Path(ge=1, le=MAX_VERSION), token: Token = Depends(caller)
) -> JSONResponse:
    return _response(services(request).schemas.get(token, pattern, version))


@router.get("/schemas/{pattern:path}/-/revisions", response_model=SchemaList, responses=responses(404),
            summary="History of a binding, newest first")
def schema_history(
    request: Request, pattern: str, token: Token = Depends(caller), limit: int = Query(50, ge=1, le=500)
) -> JSONResponse:
    items = services(request).schemas.history(token, pattern, limit)
    return JSONResponse({"items": [s.to_json() for s in items]})


@router.get("/schemas/{pattern:path}", response_model=SchemaOut, responses=responses(404),
            summary="The schema bound to a pattern")
def get_schema(request: Request, pattern: str, token: Token = Depends(caller)) -> JSONResponse:
    return _response(services(request).schemas.get(token, pattern))


@router.put("/schemas/{pattern:path}", response_model=SchemaOut, responses=responses(409, 428),
            status_code=201,
            openapi_extra={"requestBody": BIND_BODY, "parameters": [
                IF_MATCH_DOC,
                {"name": "force", "in": "query", "required": False, "schema": {"type": "boolean"},
                 "description": "bind even if configs it governs do not conform"}]},
            summary="Bind a schema to a name or prefix; refused if current configs break it")
async def bind_schema(request: Request, pattern: str, token: Token = Depends(caller)) -> JSONResponse:
    body = await json_object(request)
    schema, message = field(body, "schema", (dict, bool)), field(body, "message", str)
    force = request.query_params.get("force", "false").lower() in ("1", "true", "yes")
    expected = if_match(request)
    revision = await run_in_threadpool(
        services(request).schemas.bind, token, pattern, schema, expected=expected, message=message,
        force=force,
    )
    return _response(revision, 201)


@router.delete("/schemas/{pattern:path}", response_model=SchemaOut, responses=responses(404, 409, 428),
               openapi_extra={"requestBody": UNBIND_BODY, "parameters": [IF_MATCH_DOC]},
               summary="Unbind the schema (a tombstone version; history stays)")
async def unbind_schema(request: Request, pattern: str, token: Token = Depends(caller)) -> JSONResponse:
    body = await json_object(request)
    message = field(body, "message", str)
    expected = if_match(request)
    revision = await run_in_threadpool(
        services(request).schemas.unbind, token, pattern, expected=expected, message=message
    )
    return _response(revision)
