"""Paths served in front of the framework's routes, for the requests every instance makes.

A metric report every 10 s and a stream held open for the process's life, from every
instance: for these two paths FastAPI's routing, dependency injection and middleware cost
more than the work itself (CPU per report, and memory per open stream: each layer keeps a
frame alive for as long as the stream lasts). `Front` serves them with the same token
check and the same problem documents as every other endpoint; the OpenAPI schema
documents them by hand.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio.to_thread
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ringfence.core.model import Token
from ringfence.errors import RingfenceError
from ringfence.server.problems import error_response, problem_response
from ringfence.server.tokens import TokenService

log = logging.getLogger("ringfence.server")

# Returns the response to send, or None when it sent one itself (a stream).
Handler = Callable[[Scope, Receive, Send, Token], Awaitable[Response | None]]


def header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


class Front:
    def __init__(self, app: ASGIApp, tokens: TokenService, routes: dict[tuple[str, str], Handler]) -> None:
        self.app = app
        self.tokens = tokens
        self.routes = routes
        self.paths = {path for _, path in routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        handler = self.routes.get((scope["method"], scope["path"]))
        try:
            if handler is None:
                allowed = ", ".join(sorted(m for m, p in self.routes if p == scope["path"]))
                response: Response | None = problem_response(405, "Method not allowed", f"{scope['path']} takes "
                                                             f"{allowed}", headers={"Allow": allowed})
            else:
                response = await handler(scope, receive, send, await self._token(scope))
        except RingfenceError as exc:
            response = error_response(exc)
        except Exception:  # never a traceback to the client; the log has it (no headers: no token)
            log.exception("unexpected error on %s %s", scope["method"], scope["path"])
            response = problem_response(500, "Internal error", "the server hit an unexpected error; it is logged")
        if response is not None:
            await response(scope, receive, send)

    async def _token(self, scope: Scope) -> Token:
        scheme, _, secret = header(scope, b"authorization").partition(" ")
        secret = secret.strip() if scheme.lower() == "bearer" else ""
        token = self.tokens.cached(secret)
        if token is None:
            token = await anyio.to_thread.run_sync(self.tokens.authenticate, secret)
        return token
