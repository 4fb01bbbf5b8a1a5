"""/v1/tokens (admin only) and /v1/whoami."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ringfence.core.model import Token
from ringfence.server.api.deps import caller, services
from ringfence.server.api.models import TokenCreate, TokenCreated, TokenList, TokenOut
from ringfence.server.problems import responses

router = APIRouter(prefix="/v1", tags=["tokens"])


@router.get("/whoami", response_model=TokenOut, responses=responses(), summary="The calling token")
def whoami(token: Token = Depends(caller)) -> JSONResponse:
    return JSONResponse(token.to_json())


@router.post("/tokens", response_model=TokenCreated, status_code=201, responses=responses(),
             summary="Create a token; the secret is in the response, once")
async def create_token(request: Request, body: TokenCreate, token: Token = Depends(caller)) -> JSONResponse:
    secret, created = await run_in_threadpool(
        services(request).tokens.create, token, body.role, body.scopes, body.name
    )
    return JSONResponse({**created.to_json(), "token": secret}, status_code=201)


@router.get("/tokens", response_model=TokenList, responses=responses(), summary="Every token (no secrets)")
def list_tokens(request: Request, token: Token = Depends(caller)) -> JSONResponse:
    return JSONResponse({"items": [t.to_json() for t in services(request).tokens.list(token)]})


@router.delete("/tokens/{token_id}", response_model=TokenOut, responses=responses(404, 409),
               summary="Revoke a token")
def revoke_token(request: Request, token_id: str, token: Token = Depends(caller)) -> JSONResponse:
    return JSONResponse(services(request).tokens.revoke(token, token_id).to_json())
