"""Rendering: the Jinja2 environment, pages and fragments, HTML errors, security headers, forms."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ringfence.errors import RingfenceError
from ringfence.server.problems import status_for
from ringfence.server.ui.session import Caller, NotLoggedIn

HERE = Path(__file__).parent
MAX_FORM_BYTES = 64 * 1024
HEADERS = {
    # Nothing inline, nothing from elsewhere: the dashboard runs in closed networks, and an
    # injected script would have nowhere to load from and no inline handler to run.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _ago(moment: Any, now: dt.datetime | None = None) -> str:
    if moment is None:
        return "—"
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    seconds = ((now or dt.datetime.now(dt.UTC)) - moment).total_seconds()
    return duration(abs(seconds)) + (" ago" if seconds >= 0 else " ahead")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _when(moment: Any) -> str:
    if moment is None:
        return "—"
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    return str(moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def _percent(value: Any) -> str:
    return "—" if value is None else f"{float(value) * 100:.2f}%"


env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                  trim_blocks=True, lstrip_blocks=True)
env.filters.update(ago=_ago, when=_when, pretty=_pretty, percent=_percent, duration=duration,
                   urlpart=lambda s: quote(str(s), safe="/"))


def page(request: Request, template: str, caller: Caller | None, status: int = 200, **context: Any) -> HTMLResponse:
    html = env.get_template(template).render(request=request, me=caller.token if caller else None,
                                             csrf=caller.session.csrf if caller else "", **context)
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def markup(html: str) -> Markup:
    """HTML the server built itself (charts, rendered Markdown): never user text as it is."""
    return Markup(html)


async def form(request: Request) -> dict[str, str]:
    """A urlencoded form body, first value of each field."""
    raw = await request.body()
    if len(raw) > MAX_FORM_BYTES:
        raise _TooLarge(f"a form is at most {MAX_FORM_BYTES} bytes")
    try:
        fields = parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {k: v[0] for k, v in fields.items()}


class _TooLarge(RingfenceError):
    title = "Form too large"


class UiRoute(APIRoute):
    """Errors as pages, not problem documents; no session sends the browser to the login form."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except NotLoggedIn:
                if request.method == "GET" and request.query_params.get("fragment") is None \
                        and request.url.path != "/ui/events":
                    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    return RedirectResponse(f"/ui/login?next={quote(target, safe='')}", status_code=303)
                return HTMLResponse("log in first", status_code=401, headers=HEADERS)
            except RingfenceError as exc:
                status = 413 if isinstance(exc, _TooLarge) else status_for(exc)
                return page(request, "error.html", None, status=status, title=exc.title, detail=exc.detail)
            except RequestValidationError as exc:
                # A page address that cannot name anything (/ui/rollouts/abc) is a page that does not exist.
                errors = exc.errors()
                where = [str(part) for part in errors[0].get("loc", ())] if errors else []
                detail = f"{' '.join(where[1:]) or 'request'}: {errors[0].get('msg', 'invalid')}" if errors \
                    else "invalid request"
                if where[:1] == ["path"]:
                    return page(request, "error.html", None, status=404, title="Not found", detail=detail)
                return page(request, "error.html", None, status=400, title="Bad request", detail=detail)

        return route
