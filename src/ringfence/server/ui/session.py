"""Dashboard sessions: a token checked once at login, then a random session id in a cookie.

The cookie holds only 256 random bits; the server keeps, by the id's SHA-256, which token
the session speaks for and its CSRF token. The bearer token itself never reaches the
cookie, the page or the log. Every request re-reads the token, so revoking it ends its
sessions at once. Logging out forgets the session on the server, not just in the browser.

Sessions live in the server process: a restart logs people out, and with several replicas
the load balancer must keep a browser on one replica (or people log in again).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from fastapi import Request
from starlette.responses import Response

from ringfence.core.model import Token
from ringfence.errors import Forbidden, RingfenceError
from ringfence.store.sql import SqlStore

COOKIE = "rf_session"
LOGIN_COOKIE = "rf_login"  # the login form's double-submit CSRF token, before any session exists
IDLE_SECONDS = 8 * 3600.0
MAX_SECONDS = 24 * 3600.0
MAX_SESSIONS = 10_000


class NotLoggedIn(RingfenceError):
    title = "Not logged in"


@dataclass
class Session:
    token_id: str
    csrf: str
    created: float
    seen: float


@dataclass(frozen=True)
class Caller:
    """Who is looking at the dashboard: the token (re-read on every request) and its session."""

    token: Token
    session: Session
    sid: str


def _key(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class Sessions:
    def __init__(self) -> None:
        self._items: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._now = time.monotonic

    def create(self, token: Token) -> str:
        sid = secrets.token_urlsafe(32)
        now = self._now()
        with self._lock:
            if len(self._items) >= MAX_SESSIONS:
                self._expire(now)
                if len(self._items) >= MAX_SESSIONS:  # still full: the oldest goes
                    del self._items[min(self._items, key=lambda k: self._items[k].seen)]
            self._items[_key(sid)] = Session(token.id, secrets.token_urlsafe(32), now, now)
        return sid

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        now = self._now()
        with self._lock:
            session = self._items.get(_key(sid))
            if session is None:
                return None
            if now - session.seen > IDLE_SECONDS or now - session.created > MAX_SECONDS:
                del self._items[_key(sid)]
                return None
            session.seen = now
            return session

    def drop(self, sid: str | None) -> None:
        if sid:
            with self._lock:
                self._items.pop(_key(sid), None)

    def _expire(self, now: float) -> None:
        for key, session in list(self._items.items()):
            if now - session.seen > IDLE_SECONDS or now - session.created > MAX_SECONDS:
                del self._items[key]


def sessions(request: Request) -> Sessions:
    return request.app.state.ui_sessions  # type: ignore[no-any-return]


def current(request: Request, store: SqlStore) -> Caller:
    """The logged-in caller, or NotLoggedIn. The token is read again: a revoked one logs out."""
    sid = request.cookies.get(COOKIE)
    session = sessions(request).get(sid)
    if session is None or sid is None:
        raise NotLoggedIn("log in with a token first")
    with store.read() as reader:
        token = reader.token(session.token_id)
    if token is None or not token.active:
        sessions(request).drop(sid)
        raise NotLoggedIn("the token of this session was revoked; log in with another one")
    return Caller(token, session, sid)


def check_csrf(session_token: str, form: dict[str, str]) -> None:
    given = form.get("csrf", "")
    if not given or not hmac.compare_digest(given.encode(), session_token.encode()):
        raise Forbidden("the form's CSRF token is missing or wrong: reload the page and try again")


def secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/ui", httponly=True, samesite="strict",
                        secure=secure(request))


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(name, path="/ui", httponly=True, samesite="strict", secure=secure(request))
