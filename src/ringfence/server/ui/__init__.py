"""The dashboard at /ui: server-rendered pages over the same services and role checks as /v1.

    session    login with a token, a random session id in an HttpOnly SameSite=Strict cookie, CSRF
    render     Jinja2 pages and fragments, HTML errors, security headers (a strict CSP), forms
    charts     canary vs baseline from the filed observations, as inline SVG
    events     /ui/events: Server-Sent Events when a config changes, and a tick
    auth, configs, rollouts, fleet, incidents, audit: one module of routes per page
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from ringfence.server.api.deps import Services
from ringfence.server.ui import audit, auth, configs, events, fleet, incidents, rollouts
from ringfence.server.ui.charts import Charts
from ringfence.server.ui.render import HERE
from ringfence.server.ui.session import Sessions


def install(app: FastAPI, services: Services) -> None:
    app.state.ui_sessions = Sessions(services.store, services.fleet.clock)
    app.state.ui_charts = Charts()
    app.state.ui_broadcast = events.Broadcast()
    services.rollouts.changes.subscribe(app.state.ui_broadcast.changed)
    for module in (auth, configs, rollouts, fleet, incidents, audit, events):
        app.include_router(module.routes)
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")

    @app.get("/ui", include_in_schema=False)
    def home() -> Response:
        return RedirectResponse("/ui/rollouts", status_code=303)
