"""/ui/configs: every config in scope, one config's history (who and why), a diff of any two versions."""

from __future__ import annotations

from typing import Any

from fastapi import Query, Request
from starlette.responses import Response

from ringfence.core import diff as structural
from ringfence.core.access import Action, in_scope, require
from ringfence.server.api.deps import services
from ringfence.server.ui import render
from ringfence.server.ui.deps import router, who

routes = router()
HISTORY = 200


@routes.get("/configs")
def list_configs(request: Request, prefix: str = "") -> Response:
    caller = who(request)
    require(caller.token, Action.READ)
    items: list[dict[str, Any]] = []
    with services(request).store.read() as reader:
        after = None
        while heads := reader.heads(prefix=prefix, after=after, limit=500, include_deleted=True):
            after = heads[-1].name
            for head in heads:
                if in_scope(caller.token, head.name):
                    latest = reader.latest_rollout(head.name)
                    items.append({"head": head, "rollout": latest})
            if len(items) >= 1000:
                break
    return render.page(request, "configs.html", caller, items=items, prefix=prefix)


def _version(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 10 else None


@routes.get("/configs/{name:path}")
def show(request: Request, name: str, frm: str | None = Query(None, alias="from"), to: str | None = None) -> Response:
    caller = who(request)
    configs = services(request).configs
    history = configs.history(caller.token, name, None, HISTORY)
    latest = history[0]
    old, new = _version(frm), _version(to)
    if new is None:
        new = latest.version
    if old is None:
        old = max(new - 1, 1)
    changes = configs.diff(caller.token, name, old, new) if old != new else []
    current = None if latest.deleted else configs.revision(caller.token, name, latest.version)
    with services(request).store.read() as reader:
        rollouts = reader.rollouts(config=name, limit=20)
    return render.page(request, "config.html", caller, name=name, history=history, current=current,
                       old=old, new=new, changes=[c.to_json() for c in changes],
                       summary=structural.summary(changes), rollouts=rollouts)
