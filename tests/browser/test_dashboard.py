"""The dashboard in a real browser, during a demo-like run: login, live updates, actions and roles.

The tests share one server and fleet (conftest.py) and run in file order: the good change,
the pause, and the bad change build the history the last test walks every page of.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.browser.demo import CONFIG, FLAGS, Demo, wait_for

RINGFENCE = Path(sys.executable).with_name("ringfence")
LIVE = "section.rollout"


def shot(page: Any, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def cli(demo: Demo, *args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": str(RINGFENCE.parent), "RINGFENCE_URL": demo.url, "RINGFENCE_TOKEN": demo.tokens["admin"],
           "XDG_CONFIG_HOME": str(tmp), "NO_COLOR": "1", "HOME": str(tmp)}
    return subprocess.run([str(RINGFENCE), *args], env=env, capture_output=True, text=True, timeout=60)


def test_login_sets_a_session_cookie_never_the_token_and_logout_ends_it(session: Any, demo: Demo,
                                                                       artifacts: Path) -> None:
    watched = session()
    page = watched.page
    watched.goto("/ui/rollouts")
    assert "/ui/login" in page.url, "no session: the login form"
    page.fill("#token", "rf_not_a_real_token")
    page.click("button[type=submit]")
    assert "not valid" in page.inner_text("[role=alert]")
    shot(page, artifacts, "login-refused")
    assert [e for e in watched.errors if "401" not in e] == []  # the refused login answers 401, as it should
    watched.errors.clear()

    watched.login(demo.tokens["editor"])
    cookies = {c["name"]: c for c in watched.context.cookies()}
    cookie = cookies["rf_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert demo.tokens["editor"] not in cookie["value"]
    assert "editor" in page.inner_text("header")

    page.click("text=Log out")
    page.wait_for_url("**/ui/login")
    # The old cookie is forgotten by the server too, not only by the browser.
    watched.context.add_cookies([{**cookie}])
    watched.goto("/ui/rollouts")
    assert "/ui/login" in page.url
    assert not watched.errors, watched.errors


def test_a_stage_change_appears_without_a_reload(session: Any, demo: Demo, artifacts: Path) -> None:
    watched = session()
    page = watched.page
    watched.login(demo.tokens["admin"])
    rollout = demo.push(CONFIG, {"timeout_ms": 400}, "a little tighter")
    watched.goto(f"/ui/rollouts/{rollout['id']}")
    assert page.get_attribute(LIVE, "data-stage") == "0"
    page.evaluate("window.__sameDocument = true")
    # The controller passes the canary stage on the analysis (or, on a machine too busy for the
    # analysis to decide within the bake, a person promotes it); the page hears it over /ui/events.
    try:
        wait_for(lambda: demo.rollout(rollout["id"])["stage"] >= 1, timeout=30)
    except AssertionError:
        with demo.api() as api:
            api.post(f"/v1/rollouts/{rollout['id']}/promote", json={"reason": "the analysis was too slow"})
    page.wait_for_selector(f'{LIVE}[data-stage="1"], {LIVE}[data-state="completed"]', timeout=6_000)
    assert page.evaluate("window.__sameDocument") is True, "the page was not reloaded"
    assert page.locator(".charts svg.chart").count() == 4  # two services, error rate and p99 each
    assert page.locator("polyline.line-canary").count() == 4
    assert page.locator("polyline.line-tolerance").count() == 4
    shot(page, artifacts, "rollout-live")
    assert not watched.errors, watched.errors


def test_a_rollout_paused_from_the_ui_shows_paused_in_the_cli(session: Any, demo: Demo, artifacts: Path,
                                                              tmp_path: Path) -> None:
    watched = session()
    page = watched.page
    watched.login(demo.tokens["editor"])
    rollout = demo.push(FLAGS, {"new_checkout": True}, "turn the new checkout on")
    watched.goto(f"/ui/rollouts/{rollout['id']}")
    page.click(".actions >> text=Pause")
    assert "/pause" in page.url, "a confirmation step first"
    assert demo.rollout(rollout["id"])["state"] == "running", "nothing happens before the confirmation"
    page.fill("#reason", "checking the payment graphs first")
    shot(page, artifacts, "pause-confirm")
    page.click("text=Confirm pause")
    page.wait_for_selector(f'{LIVE}[data-state="paused"]')
    shot(page, artifacts, "rollout-paused")

    status = cli(demo, "rollout", "status", rollout["id"], tmp=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "paused" in status.stdout and "checking the payment graphs first" in status.stdout
    # The audit log has it under the editor's name, as for the REST API.
    watched.goto("/ui/audit?action=rollout.pause")
    assert "editor-ada" in page.inner_text("table.audit")
    assert not watched.errors, watched.errors


def test_a_viewer_sees_no_action_buttons_and_is_refused_if_they_post(session: Any, demo: Demo,
                                                                     artifacts: Path) -> None:
    paused = wait_for(lambda: next(iter(demo.get("/v1/rollouts", state="paused")["items"]), None), timeout=10)
    watched = session()
    page = watched.page
    watched.login(demo.tokens["viewer"])
    watched.goto(f"/ui/rollouts/{paused['id']}")
    assert page.locator(".actions").count() == 0
    assert page.locator("form.who input[name=csrf]").count() == 1
    csrf = page.get_attribute("form.who input[name=csrf]", "value")
    shot(page, artifacts, "viewer")
    answer = page.request.post(f"{demo.url}/ui/rollouts/{paused['id']}/resume",
                               form={"csrf": csrf, "reason": "I am only a viewer"})
    assert answer.status == 403
    assert demo.rollout(paused["id"])["state"] == "paused"
    assert not watched.errors, watched.errors


def test_a_post_without_the_csrf_token_is_refused(session: Any, demo: Demo) -> None:
    paused = demo.get("/v1/rollouts", state="paused")["items"][0]
    watched = session()
    watched.login(demo.tokens["admin"])
    request = watched.page.request
    assert request.post(f"{demo.url}/ui/rollouts/{paused['id']}/resume", form={"reason": "x"}).status == 403
    assert request.post(f"{demo.url}/ui/rollouts/{paused['id']}/resume",
                        form={"csrf": "forged", "reason": "x"}).status == 403
    assert demo.rollout(paused["id"])["state"] == "paused"
    with demo.api() as api:  # leave the stage clear for the next change
        api.post(f"/v1/rollouts/{paused['id']}/abort", json={"reason": "done looking"}).raise_for_status()


def test_a_bad_change_is_rolled_back_and_its_incident_page_shows_the_timeline(session: Any, demo: Demo,
                                                                              artifacts: Path) -> None:
    watched = session()
    page = watched.page
    watched.login(demo.tokens["admin"])
    bad = demo.push(CONFIG, {"timeout_ms": 20}, "much tighter")
    watched.goto(f"/ui/rollouts/{bad['id']}")
    page.wait_for_selector(f'{LIVE}[data-state="rolled_back"]', timeout=60_000)
    shot(page, artifacts, "rollout-rolled-back")
    incident = demo.get("/v1/incidents", config=CONFIG)["items"][0]
    watched.goto(f"/ui/incidents/{incident['id']}")
    timeline = page.inner_text("ol.timeline")
    for action in ("config.push", "rollout.start", "rollout.rollback", "incident.open"):
        assert action in timeline
    assert "error_rate" in page.inner_text("ul.reasons")
    assert page.locator("article.postmortem h1").count() == 1, "the draft is rendered, not shown as Markdown"
    shot(page, artifacts, "incident")
    page.fill("#text", "the timeout was meant for the batch jobs only")
    page.click("button[value=resolve]")
    page.wait_for_selector("text=resolved")
    assert "the timeout was meant for the batch jobs only" in page.inner_text("ol.timeline")
    assert demo.get(f"/v1/incidents/{incident['id']}")["state"] == "resolved"
    assert not watched.errors, watched.errors


def test_every_page_loads_without_console_errors(session: Any, demo: Demo, artifacts: Path) -> None:
    watched = session()
    page = watched.page
    watched.login(demo.tokens["admin"])
    rollout = demo.get("/v1/rollouts")["items"][0]["id"]
    incident = demo.get("/v1/incidents")["items"][0]["id"]
    pages = ["/ui/rollouts", f"/ui/rollouts/{rollout}", f"/ui/rollouts/{rollout}/abort", "/ui/configs",
             f"/ui/configs/{CONFIG}", f"/ui/configs/{CONFIG}?from=1&to=3", "/ui/fleet", f"/ui/fleet?config={FLAGS}",
             "/ui/incidents", f"/ui/incidents/{incident}", "/ui/audit", "/ui/audit?actor=controller"]
    for path in pages:
        answer = watched.goto(path)
        assert answer.status == 200, path
        if path == "/ui/fleet":
            assert page.locator("table.instances tbody tr").count() == 12
        name = path.strip("/").replace("/", "-").replace("?", "-").replace("&", "-").replace("=", "-")
        shot(page, artifacts, f"page-{name}")
    page.wait_for_timeout(500)  # a tick of /ui/events and a fragment's refresh, on the last page too
    assert not watched.errors, watched.errors
    assert not [path for path in demo.get("/openapi.json")["paths"] if path.startswith("/ui")]
