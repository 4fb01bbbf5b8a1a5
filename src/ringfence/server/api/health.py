"""/healthz (the process is up) and /readyz (it can reach its database), with no token; /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ringfence.core.access import Action, require
from ringfence.core.model import Token
from ringfence.server import metrics
from ringfence.server.api.deps import caller, services
from ringfence.server.problems import problem_response, responses
from ringfence.store.sql import StoreUnavailable

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/metrics", summary="Prometheus metrics (needs a token, as every endpoint but health)",
            responses={200: {"description": "Prometheus text format", "content": {"text/plain": {}}}, **responses()})
def prometheus_metrics(token: Token = Depends(caller)) -> Response:
    require(token, Action.READ)
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/readyz", summary="Readiness: the database answers",
            responses={503: {"description": "the database does not answer"}})
def readyz(request: Request) -> JSONResponse:
    try:
        with services(request).store.read() as reader:
            seq = reader.last_seq()
    except StoreUnavailable as exc:
        return problem_response(503, "Not ready", exc.detail)
    return JSONResponse({"status": "ready", "seq": seq})
