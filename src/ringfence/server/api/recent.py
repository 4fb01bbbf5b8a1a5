"""/v1/changes: every config revision that reached an instance in a window of time."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ringfence.core.model import Token
from ringfence.server.api.deps import caller, services
from ringfence.server.problems import responses
from ringfence.server.recent import DEFAULT_SINCE

router = APIRouter(prefix="/v1", tags=["changes"])


class ReachedOut(BaseModel):
    config: str
    version: int
    from_version: int | None
    author: str | None
    message: str | None
    pushed_at: str | None
    deleted: bool
    rollout: dict[str, Any] | None = Field(description="id, state, stage, stage_name, stages, emergency")
    instances: int = Field(description="instances its rollout gave it")
    applied: int = Field(description="instances whose latest apply report says they run it")
    first_reached_at: str = Field(description="first time it reached an instance in the window")
    last_reached_at: str
    incidents: list[str] = Field(description="ids of incidents about its rollout")


class ChangesOut(BaseModel):
    since: str
    until: str
    service: str | None
    items: list[ReachedOut]


@router.get("/changes", response_model=ChangesOut, responses=responses(),
            summary="Config changes that reached instances in a window, newest first")
def changes(
    request: Request, token: Token = Depends(caller),
    since: str = Query(DEFAULT_SINCE, max_length=64, description="a duration back from now (30m, 2h) or an ISO time"),
    until: str | None = Query(None, max_length=64, description="the same forms; now when left out"),
    service: str | None = Query(None, max_length=200, description="only instances of this service"),
) -> JSONResponse:
    return JSONResponse(services(request).recent.list(token, since=since, until=until, service=service))
