"""/ui/rollouts: the list, one rollout live (stages, instances, charts, verdict), and its actions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import Path, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from ringfence.core.access import Action, in_scope, may
from ringfence.core.model import Token
from ringfence.core.rollout import COMMANDS, Rollout, State
from ringfence.errors import NotFound
from ringfence.server.api.deps import MAX_ID, services
from ringfence.server.ui import charts, render
from ringfence.server.ui.deps import posted, router, who

routes = router()
RolloutId = Path(ge=1, le=MAX_ID)
NEEDS_REASON = frozenset({"promote", "abort", "rollback"})
ALLOWED_FROM = {
    "pause": {State.RUNNING}, "resume": {State.PAUSED}, "promote": {State.RUNNING, State.PAUSED},
    "abort": {State.PENDING, State.RUNNING, State.PAUSED}, "rollback": {State.PENDING, State.RUNNING, State.PAUSED},
}
WHAT = {
    "pause": "Stop the rollout where it is: no stage passes until someone resumes it.",
    "resume": "Carry on from this stage; its bake starts again.",
    "promote": "Move to the next stage now, past the analysis. Approvers only; a reason is required.",
    "abort": "End the rollout and send every instance back to the previous revision.",
    "rollback": "End the rollout, send every instance back to the previous revision and open an incident.",
}


def actions(token: Token, rollout: Rollout) -> list[str]:
    """The commands this caller may give this rollout now (none for a viewer)."""
    if not in_scope(token, rollout.config):
        return []
    return [name for name in COMMANDS if rollout.state in ALLOWED_FROM[name]
            and may(token, Action.DECIDE if name == "promote" else Action.STEER)]


@routes.get("/rollouts")
def list_rollouts(request: Request, state: str | None = None, fragment: str | None = None) -> Response:
    caller = who(request)
    with services(request).store.read() as reader:
        found = reader.rollouts(state=state or None, limit=200)
    items = [r for r in found if in_scope(caller.token, r.config)]
    template = "_rollouts_table.html" if fragment else "rollouts.html"
    return render.page(request, template, caller, rollouts=items, state=state or "", progress=charts.progress)


def _live(request: Request, token: Token, rollout_id: int) -> dict[str, Any]:
    svc = services(request)
    rollout, view = svc.rollouts.get(token, rollout_id)
    cache: charts.Charts = request.app.state.ui_charts
    with svc.store.read() as reader:
        series = cache.series(reader, rollout_id)
    settings = rollout.policy.analysis_settings(rollout.stage)
    now = dt.datetime.now(dt.UTC)
    baked = (now - rollout.stage_started_at).total_seconds() if rollout.stage_started_at else None
    members_new = sum(s["assigned"] for s in view["stages"])
    return {"rollout": rollout, "view": view, "panels": charts.panels(series, settings),
            "bar": render.markup(charts.progress(view["stages"], rollout.stage, rollout.state.value)),
            "actions": actions(token, rollout), "baked": baked, "on_old": max(view["fleet"] - members_new, 0),
            "settings": settings}


@routes.get("/rollouts/{rollout_id}")
def show(request: Request, rollout_id: int = RolloutId, fragment: str | None = None) -> Response:
    caller = who(request)
    template = "_rollout_live.html" if fragment else "rollout.html"
    return render.page(request, template, caller, **_live(request, caller.token, rollout_id))


def _command(name: str) -> str:
    if name not in COMMANDS:
        raise NotFound(f"there is no rollout action {name!r}; the actions are {', '.join(COMMANDS)}")
    return name


@routes.get("/rollouts/{rollout_id}/{name}")
def confirm(request: Request, name: str, rollout_id: int = RolloutId) -> Response:
    caller = who(request)
    rollout, _ = services(request).rollouts.get(caller.token, rollout_id)
    return render.page(request, "confirm.html", caller, rollout=rollout, name=_command(name),
                       what=WHAT[name], needs_reason=name in NEEDS_REASON, allowed=name in actions(caller.token,
                                                                                                   rollout))


@routes.post("/rollouts/{rollout_id}/{name}")
async def command(request: Request, name: str, rollout_id: int = RolloutId) -> Response:
    caller, fields = await posted(request)
    reason = fields.get("reason", "").strip()
    # The same service and role checks as POST /v1/rollouts/{id}/{name}, audited the same way.
    await run_in_threadpool(services(request).rollouts.steer, caller.token, rollout_id, _command(name), reason)
    return RedirectResponse(f"/ui/rollouts/{rollout_id}", status_code=303)
