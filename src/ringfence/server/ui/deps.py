"""What the dashboard's routes share: their router, the logged-in caller, checked forms."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from ringfence.server.ui import render
from ringfence.server.ui.session import Caller, check_csrf, current


def router() -> APIRouter:
    return APIRouter(prefix="/ui", route_class=render.UiRoute, include_in_schema=False)


def who(request: Request) -> Caller:
    """The logged-in caller (sync routes run in worker threads)."""
    return current(request)


async def posted(request: Request) -> tuple[Caller, dict[str, str]]:
    """The caller and the fields of a form they posted, its CSRF token checked."""
    caller = await run_in_threadpool(who, request)
    fields = await render.form(request)
    check_csrf(caller.session.csrf, fields)
    return caller, fields
