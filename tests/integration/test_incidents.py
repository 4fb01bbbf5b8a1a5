"""Incidents and webhooks end to end: a real server (SQLite and PostgreSQL), a fleet registered and
heartbeating over HTTP, and a webhook receiver on loopback that checks every signature."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ringfence.testing.server import ServerProcess
from tests.integration.fleet_helpers import Fleet, wait_for
from tests.integration.webhook_receiver import Receiver, receiving

POLICY = {
    "stages": [
        {"name": "canary", "select": {"labels": {"canary": "true"}}, "bake": {"min": "1s", "max": "60s"}},
        {"name": "global", "bake": {"min": "1s", "max": "60s"}},
    ],
    "gate": "bake",  # this fleet reports no health: stages pass on bake time and liveness
}
SLOW = {**POLICY, "stages": [{**POLICY["stages"][0], "bake": {"min": "60s", "max": "120s"}},  # type: ignore[index]
                             POLICY["stages"][1]]}  # type: ignore[index]
FAST = {"RINGFENCE_CONTROLLER_INTERVAL": "0.2", "RINGFENCE_INSTANCE_SILENT_AFTER": "2",
        "RINGFENCE_WEBHOOK_BACKOFF": "0.2", "RINGFENCE_WEBHOOK_TIMEOUT": "10"}
FLEET = 12  # canary=true on i-0000, i-0005, i-0010


@pytest.fixture
def rf(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    with ServerProcess(db_url, log_path=tmp_path / "server.log", env=FAST) as server:
        yield server


@pytest.fixture
def fleet(rf: ServerProcess) -> Iterator[Fleet]:
    running = Fleet(rf.url, rf.admin_token, FLEET, ["shop/*"]).register().start()
    yield running
    running.stop()


def subscribe(api: httpx.Client, receiver: Receiver, **extra: Any) -> dict[str, Any]:
    response = api.post("/v1/webhooks", json={"url": receiver.url, "description": "test", **extra})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    assert created["secret"].startswith("whsec_")
    return created


def bind(api: httpx.Client, policy: dict[str, Any]) -> None:
    current = api.get("/v1/policies/shop/*")
    headers = {"If-Match": str(current.json()["version"])} if current.status_code == 200 else {}
    api.put("/v1/policies/shop/*", headers=headers, json={"policy": policy, "message": "rings"}).raise_for_status()


def push(api: httpx.Client, value: Any, expected: int | None, policy: dict[str, Any] = POLICY) -> dict[str, Any]:
    bind(api, policy)
    headers = {"If-Match": str(expected)} if expected else {}
    response = api.put("/v1/configs/shop/limits", headers=headers, json={"value": value, "message": f"limit {value}"})
    assert response.status_code == 201, response.text
    rollout: dict[str, Any] = response.json()["rollout"]
    return rollout


def rollout(api: httpx.Client, rollout_id: str) -> dict[str, Any]:
    return api.get(f"/v1/rollouts/{rollout_id}").json()  # type: ignore[no-any-return]


def canaries(fleet: Fleet) -> set[str]:
    return {b["id"] for b in fleet.bodies if b["labels"].get("canary") == "true"}


def settled(api: httpx.Client, webhook_id: str) -> list[dict[str, Any]] | None:
    """A webhook's deliveries once none is pending (a receiver answers before the sender records it)."""
    items: list[dict[str, Any]] = api.get(f"/v1/webhooks/{webhook_id}/deliveries").json()["items"]
    return items if items and all(d["state"] != "pending" for d in items) else None


def token(api: httpx.Client, role: str) -> str:
    response = api.post("/v1/tokens", json={"role": role, "name": f"{role}-person"})
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


def test_a_rollback_by_hand_opens_an_incident_people_can_work_and_webhooks_tell_the_world(
        rf: ServerProcess, fleet: Fleet) -> None:
    with receiving() as receiver, rf.client() as api:
        webhook = subscribe(api, receiver)
        first = push(api, {"limit": 1}, None)
        wait_for(lambda: rollout(api, first["id"])["state"] == "completed")

        second = push(api, {"limit": 2}, 1, SLOW)
        bad = canaries(fleet)
        reported = sorted(bad)[:2]
        for instance_id in reported:
            api.post(f"/v1/instances/{instance_id}/applied",
                     json={"applied": [{"name": "shop/limits", "version": 2}]}).raise_for_status()
        # Health reports: what the two reporting canaries served on v2 (metric ingestion adds it up).
        now = time.time()
        for instance_id in reported:
            api.post("/v1/metrics", json={"instance": instance_id, "windows": [{
                "start": now - 10, "end": now - 0.5, "revisions": {"shop/limits": 2}, "requests": 1000,
                "errors": 40}]}).raise_for_status()
        wait_for(lambda: rollout(api, second["id"])["verdict"] is not None)  # the controller looked at it
        rolled = api.post(f"/v1/rollouts/{second['id']}/rollback", json={"reason": "checkout errors up"})
        assert rolled.status_code == 200 and rolled.json()["state"] == "rolled_back"

        # The incident exists at once: it was written in the rollback's own transaction.
        listed = api.get("/v1/incidents", params={"state": "mitigated"}).json()["items"]
        assert [i["rollout_id"] for i in listed] == [second["id"]]
        incident_id = listed[0]["id"]
        incident = api.get(f"/v1/incidents/{incident_id}").json()
        assert incident["config"] == "shop/limits" and (incident["from_version"], incident["to_version"]) == (1, 2)
        assert incident["severity"] == "sev3" and "checkout errors up" in incident["summary"]
        assert incident["mitigated_at"] == incident["opened_at"]  # the rollback is the mitigation
        assert incident["evidence"]["latest_verdict"]["verdict"] == "pass"  # what the analysis said last
        assert incident["rollout"]["state"] == "rolled_back" and incident["rollout"]["stage_name"] == "canary"
        assert incident["revisions"]["to"]["message"] == "limit {'limit': 2}"
        assert incident["changes"] == [{"op": "replace", "path": "/limit", "value": 2, "old": 1}]
        actions = [e["action"] for e in incident["timeline"]]
        assert actions[0] == "config.push"
        for action in ("rollout.start", "rollout.rollback", "incident.open", "incident.mitigate"):
            assert action in actions
        assert [e["time"] for e in incident["timeline"]] == sorted(e["time"] for e in incident["timeline"])

        blast = incident["blast_radius"]
        assert {m["instance"] for m in blast["members"]} == bad
        assert blast["instances"] == len(bad) and blast["reported_applied"] == len(reported)
        assert {m["instance"] for m in blast["members"] if m["applied_at"]} == set(reported)
        assert blast["until"] is not None and all(m["until"] == blast["until"] for m in blast["members"])
        assert all(m["seconds"] > 0 for m in blast["members"])

        def measured() -> dict[str, Any] | None:  # ingestion writes reports in a batch each second
            found: dict[str, Any] = api.get(f"/v1/incidents/{incident_id}").json()["blast_radius"]
            return found if found["measured"] else None

        blast = wait_for(measured, timeout=10)
        assert (blast["requests"], blast["errors"], blast["measured_instances"]) == (2000, 80, 2)
        assert {m["instance"]: m["requests"] for m in blast["members"]} == {
            i: 1000 if i in reported else None for i in bad}  # not measured is not zero

        draft = api.get(f"/v1/incidents/{incident_id}/postmortem")
        assert draft.status_code == 200 and draft.headers["content-type"].startswith("text/markdown")
        for part in ("## Timeline", "## What changed", "```diff\n- /limit: 1\n+ /limit: 2\n```", "rollout.rollback",
                     "## Impact", f"**{len(bad)} instance(s)** were given v2", "## Action items",
                     "Requests served on v2: 2,000, of which 80 errors (4.00%) (measured on 2 of 3 instances)"):
            assert part in draft.text

        # People: notes and resolve, by role.
        viewer = token(api, "viewer")
        with rf.client(viewer) as as_viewer:
            assert as_viewer.get(f"/v1/incidents/{incident_id}").status_code == 200
            refused = as_viewer.post(f"/v1/incidents/{incident_id}/notes", json={"text": "hi"})
            assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
        with rf.client(token(api, "sdk")) as as_sdk:
            assert as_sdk.get("/v1/incidents").status_code == 403
        with rf.client(token(api, "editor")) as editor:
            noted = editor.post(f"/v1/incidents/{incident_id}/notes", json={"text": "card limit typo"})
            assert noted.status_code == 201 and noted.json()["author"] == "editor-person"
            assert editor.post(f"/v1/incidents/{incident_id}/resolve", json={}).status_code == 422  # a note is due
            resolved = editor.post(f"/v1/incidents/{incident_id}/resolve", json={"text": "fixed in v3"})
            assert resolved.status_code == 200 and resolved.json()["state"] == "resolved"
            again = editor.post(f"/v1/incidents/{incident_id}/resolve", json={"text": "again"})
            assert again.status_code == 409 and "already resolved" in again.json()["detail"]
        after = api.get(f"/v1/incidents/{incident_id}").json()
        assert [e["action"] for e in after["timeline"]][-2:] == ["note", "incident.resolve"]
        assert api.get("/v1/incidents/999999").status_code == 404

        # The webhook receiver got each event, signed with the secret shown once.
        wait_for(lambda: {"rollout.rolled_back", "incident.opened", "incident.resolved"}
                 <= {r.event for r in receiver.delivered()})
        for received in receiver.delivered():
            assert received.signed_by(webhook["secret"])
            assert not received.signed_by("whsec_not_the_secret_at_all")
            assert received.headers["x-ringfence-event-id"] == received.json["id"]
            assert received.json["type"] == received.event
        rolled_back = receiver.delivered("rollout.rolled_back")[0].json["data"]
        assert rolled_back["rollout"]["id"] == second["id"] and rolled_back["incident_id"] == incident_id
        assert rolled_back["actor"] == "bootstrap-admin" and rolled_back["reason"] == "checkout errors up"
        assert receiver.delivered("incident.opened")[0].json["data"]["incident"]["id"] == incident_id
        assert "secret" not in api.get("/v1/webhooks").json()["items"][0]
        deliveries = wait_for(lambda: settled(api, webhook["id"]))
        assert {d["state"] for d in deliveries} == {"delivered"} and all(d["attempts"] == 1 for d in deliveries)
        assert all(d["log"][0]["status"] == 200 for d in deliveries)

        # What changed in the last hour: both pushes reached instances.
        changes = api.get("/v1/changes", params={"since": "1h"}).json()["items"]
        assert [(c["version"], c["rollout"]["state"]) for c in changes] == [(2, "rolled_back"), (1, "completed")]
        assert changes[0]["instances"] == len(bad) and changes[0]["incidents"] == [incident_id]
        assert changes[1]["instances"] == FLEET


def test_a_failed_canary_rolls_back_by_itself_and_opens_a_mitigated_incident(rf: ServerProcess, fleet: Fleet) -> None:
    policy = {**POLICY, "stages": [{**POLICY["stages"][0], "bake": {"min": "20s", "max": "60s"}},  # type: ignore[index]
                                   POLICY["stages"][1]]}  # type: ignore[index]
    with receiving() as receiver, rf.client() as api:
        webhook = subscribe(api, receiver, events=["rollout.rolled_back", "incident.opened"], configs=["shop/*"])
        change = push(api, {"limit": 1}, None, policy)
        silent = sorted(canaries(fleet))[0]
        fleet.silenced.add(silent)
        wait_for(lambda: rollout(api, change["id"])["state"] == "rolled_back", timeout=30)

        incident = api.get("/v1/incidents").json()["items"][0]
        assert incident["opened_by"] == "controller" and incident["severity"] == "sev2"
        assert incident["state"] == "mitigated" and incident["mitigated_at"] == incident["opened_at"]
        assert incident["evidence"]["verdict"] == "fail" and incident["evidence"]["silent"] == [silent]
        view = api.get(f"/v1/incidents/{incident['id']}").json()
        assert silent in {m["instance"] for m in view["blast_radius"]["members"]}
        assert "rollout.rollback" in [e["action"] for e in view["timeline"]]
        assert "went silent" in api.get(f"/v1/incidents/{incident['id']}/postmortem").text

        wait_for(lambda: {r.event for r in receiver.delivered()} == {"rollout.rolled_back", "incident.opened"})
        assert all(r.signed_by(webhook["secret"]) for r in receiver.delivered())
        assert receiver.delivered("rollout.rolled_back")[0].json["data"]["actor"] == "controller"


def test_a_receiver_that_fails_twice_gets_the_delivery_on_the_third_attempt(rf: ServerProcess) -> None:
    with receiving(fail_first=2) as receiver, rf.client() as api:
        webhook = subscribe(api, receiver, events=["incident.opened"])
        opened = api.post("/v1/incidents", json={"summary": "latency up in eu-west", "config": "shop/limits",
                                                 "severity": "sev2"})
        assert opened.status_code == 201 and opened.json()["state"] == "open"
        wait_for(lambda: receiver.delivered("incident.opened"), timeout=20)
        assert [r.status for r in receiver.received] == [500, 500, 200]
        assert len({r.headers["x-ringfence-event-id"] for r in receiver.received}) == 1  # one event, retried
        assert all(r.signed_by(webhook["secret"]) for r in receiver.received)  # each attempt signed afresh

        delivery = wait_for(lambda: next(iter(api.get(f"/v1/webhooks/{webhook['id']}/deliveries",
                                                      params={"state": "delivered"}).json()["items"]), None))
        assert delivery["attempts"] == 3 and delivery["last_status"] == 200
        assert [a["status"] for a in delivery["log"]] == [500, 500, 200]
        assert delivery["log"][0]["error"] == "HTTP 500 Internal Server Error"


def test_webhooks_are_for_admins_and_checked(rf: ServerProcess) -> None:
    with rf.client() as api:
        bad = api.post("/v1/webhooks", json={"url": "ftp://example.com/x"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["pointer"] == "/url"
        unknown = api.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/x", "events": ["rollout.done"]})
        assert unknown.status_code == 422 and "rollout.done" in unknown.json()["detail"]
        created = api.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/x", "secret": "s" * 20}).json()
        assert created["secret"] == "s" * 20
        with rf.client(token(api, "approver")) as approver:
            assert approver.get("/v1/webhooks").status_code == 403
        assert api.get(f"/v1/webhooks/{created['id']}").json()["url"] == "http://127.0.0.1:9/x"
        assert api.delete(f"/v1/webhooks/{created['id']}").status_code == 200
        assert api.get(f"/v1/webhooks/{created['id']}").status_code == 404
        assert api.get("/v1/webhooks").json()["items"] == []
        audit = api.get("/v1/audit", params={"action": "webhook.create"}).json()["items"]
        assert audit[0]["details"]["host"] == "127.0.0.1" and "s" * 20 not in str(audit)
        with rf.client(token(api, "viewer")) as viewer:  # webhooks are admin business, in the audit log too
            assert viewer.get("/v1/audit", params={"action": "webhook.create"}).json()["items"] == []


def test_a_server_killed_mid_delivery_delivers_after_restart(rf: ServerProcess) -> None:
    with receiving(hang_first=True) as receiver, rf.client() as api:
        webhook = subscribe(api, receiver, events=["incident.opened"])
        opened = api.post("/v1/incidents", json={"summary": "crash me", "config": "shop/limits"}).json()
        assert receiver.hanging.wait(20), "the sender never tried"
        rf.kill()  # kill -9 while the delivery is in flight: nothing recorded it
        receiver.release.set()
        rf.start()
        received = wait_for(lambda: receiver.delivered("incident.opened"), timeout=30)
        assert received[0].json["data"]["incident"]["id"] == opened["id"]
        assert received[0].signed_by(webhook["secret"])
        with rf.client() as again:
            delivery = wait_for(lambda: next(iter(again.get(f"/v1/webhooks/{webhook['id']}/deliveries",
                                                            params={"state": "delivered"}).json()["items"]), None))
        assert delivery["attempts"] == 1  # the attempt cut by the crash left no record; the resend did


def test_a_rollout_the_controller_halts_is_told_to_the_webhooks(rf: ServerProcess, fleet: Fleet) -> None:
    # More instances than the fleet has: the stage cannot pass, and its max bake halts it.
    policy = {**POLICY, "stages": [{**POLICY["stages"][0], "min_instances": 100,  # type: ignore[index]
                                    "bake": {"min": "500ms", "max": "1s"}}, POLICY["stages"][1]]}  # type: ignore[index]
    with receiving() as receiver, rf.client() as api:
        webhook = subscribe(api, receiver, events=["rollout.halted"])
        change = push(api, {"limit": 1}, None, policy)
        halted = wait_for(lambda: receiver.delivered("rollout.halted"), timeout=20)[0]
        assert halted.signed_by(webhook["secret"])
        data = halted.json["data"]
        assert data["rollout"]["id"] == change["id"] and data["rollout"]["state"] == "paused"
        assert data["actor"] == "controller" and "max bake" in data["reason"]
        assert api.get("/v1/incidents").json()["items"] == []  # a halt of this kind is no incident
