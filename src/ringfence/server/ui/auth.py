"""/ui/login and /ui/logout: a token in, a session cookie out; never the token in the cookie."""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from ringfence.errors import Forbidden, Unauthorized
from ringfence.server.api.deps import services
from ringfence.server.ui import render
from ringfence.server.ui.deps import posted, router
from ringfence.server.ui.session import (
    COOKIE,
    LOGIN_COOKIE,
    LONGEST,
    clear_cookie,
    sessions,
    set_cookie,
)

routes = router()


def _next(target: str | None) -> str:
    """Only a path of the dashboard: never another site (no open redirect)."""
    if target and target.startswith("/ui") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/rollouts"


def _login_page(request: Request, next_url: str, error: str = "", status: int = 200) -> Response:
    nonce = secrets.token_urlsafe(24)
    response = render.page(request, "login.html", None, status=status, login_csrf=nonce, next_url=next_url,
                           error=error)
    set_cookie(response, request, LOGIN_COOKIE, nonce, 600)
    return response


@routes.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    return _login_page(request, _next(next))


@routes.post("/login")
async def login(request: Request) -> Response:
    fields = await render.form(request)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    given = fields.get("csrf", "")
    if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        raise Forbidden("the login form expired or did not come from this site: reload it and try again")
    next_url = _next(fields.get("next"))
    tokens = services(request).tokens
    try:
        token = await run_in_threadpool(tokens.authenticate, fields.get("token", "").strip())
    except Unauthorized as exc:
        return _login_page(request, next_url, exc.detail, status=401)
    sid = await run_in_threadpool(sessions(request).create, token)
    response = RedirectResponse(next_url, status_code=303)
    set_cookie(response, request, COOKIE, sid, int(LONGEST.total_seconds()))
    clear_cookie(response, request, LOGIN_COOKIE)
    return response


@routes.post("/logout")
async def logout(request: Request) -> Response:
    caller, _ = await posted(request)
    await run_in_threadpool(sessions(request).drop, caller.sid)
    response = RedirectResponse("/ui/login", status_code=303)
    clear_cookie(response, request, COOKIE)
    return response
