"""The ASGI application: routes, error mapping, body limit, services over one store."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ringfence import __version__
from ringfence.core.access import Action
from ringfence.core.policy import parse_policy
from ringfence.core.validation import check_schema
from ringfence.plugins import load_validators
from ringfence.server import problems
from ringfence.server.analysis import AnalysisVerdicts
from ringfence.server.api import (
    audit,
    bindings,
    configs,
    fleet,
    health,
    incidents,
    metrics,
    recent,
    rollouts,
    stream,
    tokens,
    webhooks,
)
from ringfence.server.api.deps import Services
from ringfence.server.bindings import BindingService, schema_breakage
from ringfence.server.changes import Changes
from ringfence.server.configs import Clock, ConfigService
from ringfence.server.controller import Controller
from ringfence.server.fleet import FleetService
from ringfence.server.front import Front
from ringfence.server.incidents import IncidentService
from ringfence.server.ingest import Ingest
from ringfence.server.limits import BodyLimit
from ringfence.server.outbox import Sender
from ringfence.server.recent import RecentChanges
from ringfence.server.replicas import Replicas
from ringfence.server.rollouts import RolloutService, SilenceVerdicts
from ringfence.server.settings import Settings
from ringfence.server.stream import Hub
from ringfence.server.tokens import TokenService
from ringfence.server.ui import install as install_ui
from ringfence.server.webhooks import WebhookService
from ringfence.store.sql import SqlStore


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def build_services(store: SqlStore, settings: Settings, clock: Clock = utc_now) -> Services:
    validators = load_validators(settings.disabled_validators)
    silent, gone = settings.instance_silent_after, settings.instance_gone_after
    changes = Changes()
    hub = Hub(store, settings.max_streams)
    changes.subscribe(hub.changed)
    replicas = Replicas(store, hub.changed) if store.dialect == "postgresql" else None
    if replicas is not None:
        changes.subscribe(replicas.publish)
    rollouts = RolloutService(store, clock, AnalysisVerdicts(SilenceVerdicts(silent, gone)), silent, gone, changes)
    # Webhooks: events queue deliveries in their own transaction; the sender wakes after commits.
    webhooks = WebhookService(store, clock)
    sender = Sender(store, clock, timeout=settings.webhook_timeout, backoff=settings.webhook_backoff,
                    max_backoff=settings.webhook_max_backoff, max_attempts=settings.webhook_max_attempts)
    webhooks.on_commit(sender.wake)
    changes.subscribe(lambda _config: sender.wake())  # a rollback's deliveries commit with the rollout
    rollouts.incidents = IncidentService(store, clock, webhooks)
    return Services(
        store=store,
        hub=hub,
        incidents=rollouts.incidents,
        webhooks=webhooks,
        sender=sender,
        recent=RecentChanges(store, clock),
        replicas=replicas,
        configs=ConfigService(store, validators, clock, on_revision=rollouts.begin, changes=changes),
        policies=BindingService(store, clock, kind="policy", action=Action.DECIDE, check=parse_policy),
        rollouts=rollouts,
        fleet=FleetService(store, clock, silent, gone, on_register=rollouts.place),
        schemas=BindingService(store, clock, kind="schema", action=Action.BIND_SCHEMA, check=check_schema,
                               breakage=schema_breakage),
        tokens=TokenService(store, clock),
        ingest=Ingest(store, clock, dt.timedelta(seconds=settings.observation_retention)),
    )


def create_app(services: Services, settings: Settings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Blocking work (database calls) runs in worker threads. Past a few, more threads only
        # fight over the GIL and the single SQLite writer; requests queue in the event loop instead.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.worker_threads
        services.hub.bind(asyncio.get_running_loop())
        if services.replicas is not None:
            services.replicas.start()
        controller = Controller(services.rollouts, services.store, settings.controller_interval)
        if settings.controller_interval > 0:
            controller.start()
        services.sender.start()
        services.ingest.start()
        try:
            yield
        finally:
            services.sender.stop()
            services.ingest.stop()
            if settings.controller_interval > 0:
                controller.stop()
            if services.replicas is not None:
                services.replicas.stop()
            services.hub.close()

    app = FastAPI(
        lifespan=lifespan,
        title="ringfence",
        version=__version__,
        description="Validated, versioned configuration, rolled out ring by ring.",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.services = services
    problems.install(app)
    for router in (health.router, configs.router, bindings.schemas, bindings.policies, rollouts.router,
                   fleet.router, stream.router, audit.router, tokens.router, incidents.router,
                   webhooks.router, recent.router):
        app.include_router(router)
    install_ui(app, services)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = problems.PROBLEM_SCHEMA
            # Served in front of the routes (server/front.py), so documented here.
            schema["paths"][metrics.PATH] = {"post": metrics.OPERATION}
            schema["paths"][stream.STREAM_PATH] = {"get": stream.STREAM_OPERATION}
            # Request validation errors are problem documents too, not FastAPI's default shape.
            for path in schema["paths"].values():
                for operation in path.values():
                    if "422" in operation.get("responses", {}):
                        operation["responses"]["422"] = problems.responses()[422]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(Front, tokens=services.tokens, routes={
        ("POST", metrics.PATH): metrics.ReportIntake(services.ingest, settings.max_body_bytes),
        ("GET", stream.STREAM_PATH): stream.StreamIntake(services.hub, services.fleet)})
    return app
