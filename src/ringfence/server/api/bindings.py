"""/v1/schemas and /v1/policies: documents bound to a name or prefix, versioned and audited.

One router factory serves both kinds; `/v1/configs/{name}/-/schema` and `/-/policy`
say what binds a given config now.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ringfence.core.model import Binding, Token
from ringfence.server.api.deps import (
    IF_MATCH_DOC,
    MAX_VERSION,
    Services,
    caller,
    field,
    if_match,
    json_object,
    services,
)
from ringfence.server.bindings import BindingService
from ringfence.server.problems import listing, ok, responses


def _response(binding: Binding, status: int = 200) -> JSONResponse:
    return JSONResponse(binding.to_json(), status_code=status, headers={"ETag": f'"{binding.version}"'})


def binding_router(
    kind: str, plural: str, service: Callable[[Services], BindingService], document_doc: dict[str, Any],
) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=[plural])
    item = {
        "type": "object",
        "required": ["pattern", "version", "hash", "author", "message", "created_at", "seq", "deleted"],
        "properties": {
            "pattern": {"type": "string"}, "version": {"type": "integer"}, "hash": {"type": "string"},
            kind: document_doc, "author": {"type": "string"}, "message": {"type": "string"},
            "created_at": {"type": "string"}, "seq": {"type": "integer"}, "deleted": {"type": "boolean"},
        },
    }
    one, many = ok(f"a {kind} binding", item), ok(f"{kind} bindings", listing(item))
    bind_body = {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": [kind, "message"],
        "properties": {kind: document_doc, "message": {"type": "string", "minLength": 1}}}}}}
    unbind_body = {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}}}}}

    def of(request: Request) -> BindingService:
        return service(services(request))

    @router.get(f"/{plural}", responses={**responses(), **many}, summary=f"Every live {kind} binding",
                operation_id=f"list_{plural}")
    def list_live(request: Request, token: Token = Depends(caller)) -> JSONResponse:
        return JSONResponse({"items": [b.to_json() for b in of(request).live(token)]})

    @router.get(f"/configs/{{name:path}}/-/{kind}", responses={**responses(), **one}, tags=["configs"],
                summary=f"The {kind} that binds a config now (most specific wins)",
                operation_id=f"effective_{kind}")
    def effective(request: Request, name: str, token: Token = Depends(caller)) -> JSONResponse:
        return _response(of(request).effective(token, name))

    @router.get(f"/{plural}/{{pattern:path}}/-/revisions/{{version}}", responses={**responses(), **one},
                summary=f"One version of a {kind} binding", operation_id=f"get_{kind}_version")
    def one_version(
        request: Request, pattern: str, version: int = Path(ge=1, le=MAX_VERSION), token: Token = Depends(caller)
    ) -> JSONResponse:
        return _response(of(request).get(token, pattern, version))

    @router.get(f"/{plural}/{{pattern:path}}/-/revisions", responses={**responses(), **many},
                summary=f"History of a {kind} binding, newest first", operation_id=f"{kind}_history")
    def history(
        request: Request, pattern: str, token: Token = Depends(caller), limit: int = Query(50, ge=1, le=500)
    ) -> JSONResponse:
        return JSONResponse({"items": [b.to_json() for b in of(request).history(token, pattern, limit)]})

    @router.get(f"/{plural}/{{pattern:path}}", responses={**responses(), **one},
                summary=f"The {kind} bound to a pattern", operation_id=f"get_{kind}")
    def get(request: Request, pattern: str, token: Token = Depends(caller)) -> JSONResponse:
        return _response(of(request).get(token, pattern))

    @router.put(f"/{plural}/{{pattern:path}}", status_code=201,
                responses={**responses(409, 428), 201: one[200]}, operation_id=f"bind_{kind}",
                openapi_extra={"requestBody": bind_body, "parameters": [
                    IF_MATCH_DOC,
                    {"name": "force", "in": "query", "required": False, "schema": {"type": "boolean"},
                     "description": "bind even if configs it governs do not conform (schemas)"}]},
                summary=f"Bind a {kind} to a name or prefix")
    async def bind(request: Request, pattern: str, token: Token = Depends(caller)) -> JSONResponse:
        body = await json_object(request)
        document, message = field(body, kind, object), field(body, "message", str)
        force = request.query_params.get("force", "false").lower() in ("1", "true", "yes")
        expected = if_match(request)
        binding = await run_in_threadpool(
            of(request).bind, token, pattern, document, expected=expected, message=message, force=force
        )
        return _response(binding, 201)

    @router.delete(f"/{plural}/{{pattern:path}}", responses={**responses(404, 409, 428), **one},
                   openapi_extra={"requestBody": unbind_body, "parameters": [IF_MATCH_DOC]},
                   summary=f"Unbind the {kind} (a tombstone version; history stays)", operation_id=f"unbind_{kind}")
    async def unbind(request: Request, pattern: str, token: Token = Depends(caller)) -> JSONResponse:
        body = await json_object(request)
        message = field(body, "message", str)
        expected = if_match(request)
        binding = await run_in_threadpool(of(request).unbind, token, pattern, expected=expected, message=message)
        return _response(binding)

    return router


schemas = binding_router("schema", "schemas", lambda s: s.schemas, {"description": "a JSON Schema (2020-12)"})
policies = binding_router("policy", "policies", lambda s: s.policies, {
    "type": "object", "description": "a rollout policy: stages (rings) with selectors, bakes and min_instances"})
