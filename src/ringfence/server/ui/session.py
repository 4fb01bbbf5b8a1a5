"""Dashboard sessions: a token checked once at login, then a random session id in a cookie.

The cookie holds only 256 random bits; the database keeps, by the id's SHA-256, which token
the session speaks for and its CSRF token. The bearer token itself never reaches the
cookie, the page or the log. Every request re-reads the token, so revoking it ends its
sessions at once. Logging out forgets the session on the server, not just in the browser.
Sessions are in the database, so every replica knows them and a restart logs no one out.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request
from starlette.responses import Response

from ringfence.core.model import Token
from ringfence.errors import Forbidden, RingfenceError
from ringfence.store.sessions import UiSession
from ringfence.store.sql import SqlStore

COOKIE = "rf_session"
LOGIN_COOKIE = "rf_login"  # the login form's double-submit CSRF token, before any session exists
IDLE = dt.timedelta(hours=8)
LONGEST = dt.timedelta(hours=24)
MAX_PER_TOKEN = 20  # sessions one token may hold: logging in past that ends its oldest
TOUCH_EVERY = dt.timedelta(minutes=1)  # how stale `seen` may get: a write per page view would be waste


class NotLoggedIn(RingfenceError):
    title = "Not logged in"


@dataclass(frozen=True)
class Caller:
    """Who is looking at the dashboard: the token (re-read on every request) and its session."""

    token: Token
    session: UiSession
    sid: str


def _key(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class Sessions:
    def __init__(self, store: SqlStore, clock: Callable[[], dt.datetime]) -> None:
        self.store = store
        self.clock = clock

    def create(self, token: Token) -> str:
        sid = secrets.token_urlsafe(32)
        now = self.clock()
        with self.store.write(sequenced=False) as tx:
            tx.prune_ui_sessions(idle_since=now - IDLE, created_before=now - LONGEST)
            tx.add_ui_session(_key(sid), UiSession(token.id, secrets.token_urlsafe(32), now, now))
            tx.keep_newest_ui_sessions(token.id, MAX_PER_TOKEN)
        return sid

    def get(self, sid: str | None) -> UiSession | None:
        found = self.find(sid)
        return None if found is None else found[0]

    def find(self, sid: str | None) -> tuple[UiSession, Token | None] | None:
        """The live session of this id and the token it speaks for (None once deleted), in one read."""
        if not sid:
            return None
        key = _key(sid)
        now = self.clock()
        with self.store.read() as reader:
            session = reader.ui_session(key)
            token = reader.token(session.token_id) if session is not None else None
        if session is None:
            return None
        if now - session.seen > IDLE or now - session.created > LONGEST:
            self.drop(sid)
            return None
        if now - session.seen > TOUCH_EVERY:
            with self.store.write(sequenced=False) as tx:
                tx.touch_ui_session(key, now)
        return session, token

    def drop(self, sid: str | None) -> None:
        if sid:
            with self.store.write(sequenced=False) as tx:
                tx.drop_ui_session(_key(sid))


def sessions(request: Request) -> Sessions:
    return request.app.state.ui_sessions  # type: ignore[no-any-return]


def current(request: Request) -> Caller:
    """The logged-in caller, or NotLoggedIn. The token is read again: a revoked one logs out."""
    sid = request.cookies.get(COOKIE)
    found = sessions(request).find(sid)
    if found is None or sid is None:
        raise NotLoggedIn("log in with a token first")
    session, token = found
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
