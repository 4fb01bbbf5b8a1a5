"""The dashboard's sessions and headers over plain HTTP against a real server: no browser needed."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ringfence.server.ui.events import RECHECK
from ringfence.testing.server import ServerProcess

ADMIN = "rf_dashboard_http_admin_secret"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("dashboard-http")
    with ServerProcess(f"sqlite:///{root / 'ringfence.db'}", admin_token=ADMIN, log_path=root / "server.log") as p:
        yield p


def hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no hidden field {name}"
    return found.group(1)


@contextlib.contextmanager
def login(server: ServerProcess, token: str, next_url: str = "/ui/rollouts") -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=10) as browser:
        form = browser.get("/ui/login")
        answer = browser.post("/ui/login", data={"csrf": hidden(form.text, "csrf"), "token": token,
                                                  "next": next_url})
        assert answer.status_code == 303, answer.text
        yield browser


def test_pages_need_a_session_and_say_so_as_a_browser_expects(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as anonymous:
        page = anonymous.get("/ui/configs?prefix=a")
        assert page.status_code == 303 and page.headers["location"] == "/ui/login?next=%2Fui%2Fconfigs%3Fprefix%3Da"
        assert anonymous.get("/ui/rollouts?fragment=1").status_code == 401
        assert anonymous.get("/ui/events").status_code == 401
        assert anonymous.post("/ui/logout", data={"csrf": "x"}).status_code == 401
        # A bearer token is not a session: the dashboard never takes the API's credentials.
        assert anonymous.get("/ui/audit", headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 303


def test_login_needs_its_own_csrf_token_and_returns_only_to_the_dashboard(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as browser:
        assert browser.post("/ui/login", data={"token": ADMIN}).status_code == 403
        form = browser.get("/ui/login")
        answer = browser.post("/ui/login", data={"csrf": hidden(form.text, "csrf"), "token": ADMIN,
                                                  "next": "https://evil.example/"}, follow_redirects=False)
        assert answer.headers["location"] == "/ui/rollouts"
        cookie = next(h for h in answer.headers.get_list("set-cookie") if h.startswith("rf_session="))
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
        assert ADMIN not in cookie


def test_pages_carry_a_strict_content_security_policy(server: ServerProcess) -> None:
    with login(server, ADMIN) as browser:
        page = browser.get("/ui/rollouts")
        assert page.status_code == 200
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        assert browser.get("/ui/static/app.js").status_code == 200
        assert browser.get("/ui/rollouts/999").status_code == 404
        assert browser.get("/ui/rollouts/1/explode").status_code == 404


def test_a_session_outlives_a_server_restart(server: ServerProcess) -> None:
    with login(server, ADMIN) as browser:
        assert browser.get("/ui/audit").status_code == 200
        server.kill()  # kill -9: nothing in the process survives
        server.start()
        page = browser.get("/ui/audit")
        assert page.status_code == 200 and "audit" in page.text.lower()
        form = browser.get("/ui/rollouts")
        assert browser.post("/ui/logout", data={"csrf": hidden(form.text, "csrf")}).status_code == 303
        assert browser.get("/ui/audit").status_code == 303  # logged out everywhere, not just in this browser


def test_a_malformed_page_address_gets_an_error_page_not_a_problem_document(server: ServerProcess) -> None:
    with login(server, ADMIN) as browser:
        for path in ("/ui/rollouts/abc", "/ui/incidents/-3"):
            answer = browser.get(path)
            assert answer.status_code == 404, path
            assert answer.headers["content-type"].startswith("text/html")
            assert "Not found" in answer.text and "Traceback" not in answer.text


def test_revoking_the_token_ends_its_sessions(server: ServerProcess) -> None:
    with server.client() as api:
        created = api.post("/v1/tokens", json={"role": "viewer", "scopes": ["*"], "name": "short-lived"}).json()
    with login(server, created["token"]) as browser:
        assert browser.get("/ui/audit").status_code == 200
        with server.client() as api:
            api.delete(f"/v1/tokens/{created['id']}").raise_for_status()
        assert browser.get("/ui/audit").status_code == 303


def test_revoking_the_token_ends_its_open_live_updates(server: ServerProcess) -> None:
    with server.client() as api:
        created = api.post("/v1/tokens", json={"role": "viewer", "scopes": ["*"], "name": "watcher"}).json()
    with login(server, created["token"]) as browser, browser.stream("GET", "/ui/events",
                                                                     timeout=RECHECK + 10) as events:
        assert events.status_code == 200
        lines = events.iter_lines()
        assert next(lines).startswith("retry:")
        with server.client() as api:
            api.delete(f"/v1/tokens/{created['id']}").raise_for_status()
        started = time.monotonic()
        for _ in lines:  # ticks go on until the stream re-reads the token, then it ends
            assert time.monotonic() - started < RECHECK + 5, "the stream outlived its revoked token"
        assert time.monotonic() - started < RECHECK + 5


def test_live_updates_name_only_the_configs_in_the_tokens_scope(server: ServerProcess) -> None:
    with server.client() as api:
        scoped = api.post("/v1/tokens", json={"role": "viewer", "scopes": ["seen/*"], "name": "scoped"}).json()
    with login(server, scoped["token"]) as browser, browser.stream("GET", "/ui/events", timeout=20) as events:
        lines = events.iter_lines()
        assert next(lines).startswith("retry:")
        with server.client() as api:
            api.put("/v1/configs/hidden/secret-project", json={"value": 1, "message": "m"}).raise_for_status()
            api.put("/v1/configs/seen/limits", json={"value": 1, "message": "m"}).raise_for_status()
        seen = []
        for line in lines:
            if line.startswith("data:") and "config" in line:
                seen.append(line)
                if "seen/limits" in line:
                    break
        assert not [line for line in seen if "hidden/" in line], seen


def test_a_form_too_large_is_refused(server: ServerProcess) -> None:
    with login(server, ADMIN) as browser:
        answer = browser.post("/ui/logout", content=b"csrf=" + b"x" * 70_000,
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert answer.status_code == 413


@pytest.mark.postgres
def test_a_session_made_on_one_replica_works_on_another(postgres_server: Any, tmp_path: Path) -> None:
    url = postgres_server.create_database()
    with ServerProcess(url, admin_token=ADMIN, log_path=tmp_path / "a.log") as first, \
            ServerProcess(url, admin_token=ADMIN, log_path=tmp_path / "b.log") as second:
        with login(first, ADMIN) as browser:
            cookie = browser.cookies.get("rf_session")
        assert cookie
        with httpx.Client(base_url=second.url, cookies={"rf_session": cookie}, follow_redirects=False,
                          timeout=10) as behind_the_balancer:
            page = behind_the_balancer.get("/ui/rollouts")
            assert page.status_code == 200  # no login again, no session affinity needed
            # and the CSRF token the other replica handed out works here too
            answer = behind_the_balancer.post("/ui/logout", data={"csrf": hidden(page.text, "csrf")})
            assert answer.status_code == 303
        with httpx.Client(base_url=first.url, cookies={"rf_session": cookie}, follow_redirects=False,
                          timeout=10) as back:
            assert back.get("/ui/rollouts").status_code == 303  # logged out on the first replica too
