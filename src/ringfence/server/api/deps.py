"""What routes share: the services, the caller's token, strict JSON bodies, If-Match."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ringfence.core.documents import parse
from ringfence.core.model import Token
from ringfence.errors import InvalidInput, Problem
from ringfence.server.bindings import BindingService
from ringfence.server.configs import ConfigService
from ringfence.server.fleet import FleetService
from ringfence.server.incidents import IncidentService
from ringfence.server.ingest import Ingest
from ringfence.server.outbox import Sender
from ringfence.server.recent import RecentChanges
from ringfence.server.replicas import Replicas
from ringfence.server.rollouts import RolloutService
from ringfence.server.stream import Hub
from ringfence.server.tokens import TokenService
from ringfence.server.webhooks import WebhookService
from ringfence.store.sql import SqlStore

MAX_VERSION = 2**31 - 1  # versions are 32-bit integers in the database
MAX_ID = 2**63 - 1

bearer = HTTPBearer(auto_error=False, description="a ringfence token: `Authorization: Bearer rf_...`")


@dataclass
class Services:
    store: SqlStore
    configs: ConfigService
    schemas: BindingService
    tokens: TokenService
    policies: BindingService
    rollouts: RolloutService
    fleet: FleetService
    hub: Hub
    incidents: IncidentService
    webhooks: WebhookService
    sender: Sender
    recent: RecentChanges
    ingest: Ingest
    replicas: Replicas | None = None


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


async def caller(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> Token:
    tokens = services(request).tokens
    secret = credentials.credentials if credentials else None
    token = tokens.cached(secret)
    if token is None:
        token = await run_in_threadpool(tokens.authenticate, secret)
    return token


async def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, parsed strictly (no duplicate keys, no NaN)."""
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the request body is not UTF-8 text") from None
    document = parse(text, "json", source="request body")
    if not isinstance(document.value, dict):
        raise InvalidInput("the request body must be a JSON object",
                           [Problem("", "expected an object", "request")])
    return document.value


def version_field(body: dict[str, Any], name: str) -> int:
    value = field(body, name, int)
    if not 1 <= value <= MAX_VERSION:
        raise InvalidInput(f"{name!r} must be a version number from 1 to {MAX_VERSION}",
                           [Problem(f"/{name}", "out of range", "request")])
    return int(value)


def field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], *, required: bool = True) -> Any:
    if name not in body:
        if required:
            raise InvalidInput(f"the request body needs a {name!r} member",
                               [Problem(f"/{name}", "is required", "request")])
        return None
    value = body[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise InvalidInput(f"{name!r} must be {names}", [Problem(f"/{name}", f"expected {names}", "request")])
    return value


def if_match(request: Request) -> int | None:
    """The version named by `If-Match` (`3` or `"3"`), or None when absent."""
    header = request.headers.get("if-match")
    if header is None:
        return None
    text = header.strip().removeprefix("W/").strip('"')
    if not text.isdigit() or int(text) > MAX_VERSION:
        raise InvalidInput(
            f"If-Match must be the version you based the change on, e.g. If-Match: 3 (got {header[:40]!r})",
            [Problem("/headers/if-match", "expected a version number", "request")],
        )
    return int(text)


IF_MATCH_DOC = {
    "name": "If-Match", "in": "header", "required": False,
    "description": "The current version you based the change on; required when the target exists.",
    "schema": {"type": "string", "pattern": "^(W/)?\"?[0-9]+\"?$"},
}
