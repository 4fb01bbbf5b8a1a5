"""/ui/fleet: instances by service, region, ring, revision and liveness, with propagation delays."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import Request
from starlette.responses import Response

from ringfence.core.access import Action, in_scope, require
from ringfence.server.api.deps import services
from ringfence.server.ui import render
from ringfence.server.ui.deps import router, who

routes = router()
MAX_SHOWN = 500  # rows in the table; the counts and delays above it cover everyone


@routes.get("/fleet")
def fleet(request: Request, config: str | None = None, service: str | None = None, region: str | None = None,
          liveness: str | None = None, fragment: str | None = None) -> Response:
    caller = who(request)
    require(caller.token, Action.READ)
    svc = services(request)
    found = svc.fleet.find(caller.token, service=service or None, region=region or None, zone=None, labels={},
                           liveness=liveness or None)
    now = svc.fleet.clock()
    with svc.store.read() as reader:
        names = [h.name for h in reader.heads(limit=1000) if in_scope(caller.token, h.name)]
        active = [r.config for r in reader.active_rollouts() if in_scope(caller.token, r.config)]
    chosen = config if config in names else (active[-1] if active else (names[0] if names else None))
    rings = svc.fleet.rings(caller.token, chosen, found) if chosen else {}
    applied: dict[str, tuple[int, Any]] = {}
    told: dict[str, Any] = {}
    if chosen is not None:
        with svc.store.read() as reader:
            applied = reader.applied_reports(chosen)
            told = reader.assigned_since_many(chosen, {i.id: applied[i.id][0] for i in found
                                                       if i.id in applied and i.id in rings})
    rows: list[dict[str, Any]] = []
    for instance in found:
        ring = rings.get(instance.id)
        report = applied.get(instance.id) if ring is not None else None
        since = told.get(instance.id)
        # Applied before it was told: it already ran that version (a rollback back to it, say); no
        # propagation to measure.
        delay = (report[1] - since).total_seconds() if report and since and report[1] >= since else None
        rows.append({"instance": instance, "liveness": svc.fleet.liveness(instance, now).value, "ring": ring,
                     "applied_at": report[1] if report else None, "delay": delay})
    by = {key: Counter(str(row[key] if key == "liveness" else getattr(row["instance"], key)) for row in rows)
          for key in ("service", "region", "liveness")}
    by["revision"] = Counter(f"v{row['ring']['version']}" for row in rows if row["ring"] and row["ring"]["version"])
    by["ring"] = Counter((row["ring"] or {}).get("ring") or "(none)" for row in rows if row["ring"])
    delays = sorted(row["delay"] for row in rows if row["delay"] is not None)
    template = "_fleet_table.html" if fragment else "fleet.html"
    return render.page(request, template, caller, rows=rows[:MAX_SHOWN], by=by, config=chosen, configs=names,
                       service=service or "", region=region or "", liveness=liveness or "", total=len(found),
                       delay_p50=delays[len(delays) // 2] if delays else None,
                       delay_max=delays[-1] if delays else None)
