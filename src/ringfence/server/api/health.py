"""/healthz (the process is up) and /readyz (it can reach its database). No token needed."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ringfence.server.api.deps import services
from ringfence.server.problems import problem_response
from ringfence.store.sql import StoreUnavailable

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the database answers",
            responses={503: {"description": "the database does not answer"}})
def readyz(request: Request) -> JSONResponse:
    try:
        with services(request).store.read() as reader:
            seq = reader.last_seq()
    except StoreUnavailable as exc:
        return problem_response(503, "Not ready", exc.detail)
    return JSONResponse({"status": "ready", "seq": seq})
