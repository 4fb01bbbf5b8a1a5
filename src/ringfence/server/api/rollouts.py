"""/v1/rollouts: list, inspect, and steer (pause, resume, promote, abort, rollback)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ringfence.core.access import Action, in_scope, require
from ringfence.core.model import Token
from ringfence.core.rollout import COMMANDS, State
from ringfence.server.api.deps import MAX_ID, caller, field, json_object, services
from ringfence.server.api.models import RolloutOut
from ringfence.server.problems import listing, ok, responses

router = APIRouter(prefix="/v1", tags=["rollouts"])
REASON_BODY = {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "properties": {"reason": {"type": "string", "description": "required for promote, abort "
                                                                                   "and rollback"}}}}}}
STATES = "^(" + "|".join(s.value for s in State) + ")$"


@router.get("/rollouts", responses={**responses(), **ok("rollouts, newest first",
                                                         listing({"$ref": "#/components/schemas/RolloutOut"}))},
            summary="Rollouts, newest first")
def list_rollouts(
    request: Request, token: Token = Depends(caller),
    state: str | None = Query(None, pattern=STATES), config: str | None = Query(None, max_length=600),
    before: int | None = Query(None, ge=1, le=MAX_ID), limit: int = Query(100, ge=1, le=1000),
) -> JSONResponse:
    require(token, Action.READ)
    with services(request).store.read() as reader:
        found = reader.rollouts(state=state, config=config, before=before, limit=limit)
    return JSONResponse({"items": [r.to_json() for r in found if in_scope(token, r.config)]})


@router.get("/rollouts/{rollout_id}", response_model=RolloutOut, responses=responses(404),
            summary="A rollout: state, stages, instances per revision, events")
def get_rollout(request: Request, rollout_id: int = Path(ge=1, le=MAX_ID),
                token: Token = Depends(caller)) -> JSONResponse:
    rollout, view = services(request).rollouts.get(token, rollout_id)
    return JSONResponse({**rollout.to_json(), **view})


def _steer(name: str) -> None:
    @router.post(f"/rollouts/{{rollout_id}}/{name}", response_model=RolloutOut, responses=responses(404, 409),
                 openapi_extra={"requestBody": REASON_BODY}, summary=f"{name.capitalize()} a rollout",
                 operation_id=f"{name}_rollout")
    async def steer(request: Request, rollout_id: int = Path(ge=1, le=MAX_ID),
                    token: Token = Depends(caller)) -> JSONResponse:
        body = await json_object(request)
        reason = field(body, "reason", str, required=False) or ""
        rollout = await run_in_threadpool(services(request).rollouts.steer, token, rollout_id, name, reason)
        return JSONResponse(rollout.to_json())


for _command in COMMANDS:
    _steer(_command)
