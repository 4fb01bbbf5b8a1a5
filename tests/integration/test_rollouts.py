"""Rollouts end to end: a real server, 50 instances registered over HTTP, stages advancing by bake time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ringfence.testing.server import ServerProcess
from tests.integration.fleet_helpers import Fleet, wait_for

POLICY = {
    "stages": [
        {"name": "canary", "select": {"labels": {"canary": "true"}}, "bake": {"min": "1s", "max": "60s"}},
        {"name": "early", "percent": 20, "bake": {"min": "1s", "max": "60s"}},
        {"name": "eu", "select": {"region": ["eu-west"]}, "bake": {"min": "1s", "max": "60s"}},
        {"name": "global", "percent": 100, "bake": {"min": "1s", "max": "60s"}},
    ],
    "gate": "bake",  # this fleet reports no health: stages pass on bake time and liveness
}
FAST = {"RINGFENCE_CONTROLLER_INTERVAL": "0.2", "RINGFENCE_INSTANCE_SILENT_AFTER": "2"}


@pytest.fixture
def rollout_server(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    with ServerProcess(db_url, log_path=tmp_path / "server.log", env=FAST) as server:
        yield server


@pytest.fixture
def fleet(rollout_server: ServerProcess) -> Iterator[Fleet]:
    running = Fleet(rollout_server.url, rollout_server.admin_token, 50, ["shop/*"]).register().start()
    yield running
    running.stop()


def push(api: httpx.Client, value: Any, expected: int | None, message: str = "change") -> dict[str, Any]:
    headers = {"If-Match": str(expected)} if expected else {}
    response = api.put("/v1/configs/shop/limits", headers=headers, json={"value": value, "message": message})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def rollout(api: httpx.Client, rollout_id: str) -> dict[str, Any]:
    return api.get(f"/v1/rollouts/{rollout_id}").json()  # type: ignore[no-any-return]


def test_a_revision_walks_the_rings_and_people_can_steer_it(rollout_server: ServerProcess, fleet: Fleet) -> None:
    canaries = {b["id"] for b in fleet.bodies if b["labels"].get("canary") == "true"}
    with rollout_server.client() as api:
        api.put("/v1/policies/shop/*", json={"policy": POLICY, "message": "fast rings"}).raise_for_status()

        first = push(api, {"limit": 1}, None)["rollout"]
        assert first["state"] == "running" and first["stage_name"] == "canary"
        wait_for(lambda: rollout(api, first["id"])["state"] == "completed")
        assert set(fleet.assignments("shop/limits").values()) == {1}

        # A new revision reaches the canary instances only, at once (the push starts stage 0).
        second = push(api, {"limit": 2}, 1)["rollout"]
        api.post(f"/v1/rollouts/{second['id']}/pause", json={"reason": "look first"}).raise_for_status()
        assigned = fleet.assignments("shop/limits")
        assert {i for i, v in assigned.items() if v == 2} == canaries
        assert {v for i, v in assigned.items() if i not in canaries} == {1}
        view = rollout(api, second["id"])
        assert view["state"] == "paused" and view["instances_per_version"] == {"2": 10, "1": 40}

        # Resumed, it walks every ring; the set on the new revision only ever grows.
        api.post(f"/v1/rollouts/{second['id']}/resume", json={}).raise_for_status()
        seen = [len(canaries)]

        def advanced() -> bool:
            view = rollout(api, second["id"])
            seen.append(view["instances_per_version"].get("2", 0))
            return view["state"] == "completed"

        wait_for(advanced)
        assert seen == sorted(seen) and seen[-1] == 50
        events = [e["action"] for e in rollout(api, second["id"])["events"]]
        assert events.count("rollout.pass") == 4 and events[-1] == "rollout.complete"  # one pass per ring
        assert set(fleet.assignments("shop/limits").values()) == {2}

        # Abort: everyone back on the fleet's version; a second abort is illegal.
        third = push(api, {"limit": 3}, 2)["rollout"]
        aborted = api.post(f"/v1/rollouts/{third['id']}/abort", json={"reason": "wrong limit"})
        assert aborted.json()["state"] == "aborted"
        again = api.post(f"/v1/rollouts/{third['id']}/abort", json={"reason": "again"})
        assert again.status_code == 409 and "aborted" in again.json()["detail"]
        assert set(fleet.assignments("shop/limits").values()) == {2}

        # Promote needs a reason; with one it moves to the next ring.
        fourth = push(api, {"limit": 4}, 3)["rollout"]
        assert fourth["from_version"] == 2, "the aborted version never became the fleet's"
        api.post(f"/v1/rollouts/{fourth['id']}/pause", json={}).raise_for_status()
        assert api.post(f"/v1/rollouts/{fourth['id']}/promote", json={}).status_code == 422
        promoted = api.post(f"/v1/rollouts/{fourth['id']}/promote", json={"reason": "verified by hand"}).json()
        assert promoted["stage_name"] == "early"
        assert promoted["outcomes"][0] == {**promoted["outcomes"][0], "how": "promote", "reason": "verified by hand"}

        # Rollback by hand: everyone back, and an incident is opened.
        rolled = api.post(f"/v1/rollouts/{fourth['id']}/rollback", json={"reason": "errors up"}).json()
        assert rolled["state"] == "rolled_back"
        assert set(fleet.assignments("shop/limits").values()) == {2}
        actions = [e["action"] for e in rollout(api, fourth["id"])["events"]]
        assert "incident.open" in actions
        completed = api.post(f"/v1/rollouts/{second['id']}/pause", json={})
        assert completed.status_code == 409 and "new revision" in completed.json()["detail"]


@pytest.mark.parametrize("on_failure", ["rollback", "pause"])
def test_a_canary_that_goes_silent_halts_the_change_and_opens_an_incident(
        rollout_server: ServerProcess, fleet: Fleet, on_failure: str) -> None:
    policy = {"stages": [{"name": "canary", "select": {"labels": {"canary": "true"}},
                          "bake": {"min": "20s", "max": "60s"}}, {"name": "global"}], "gate": "bake",
              "on_failure": on_failure}
    with rollout_server.client() as api:
        api.put("/v1/policies/shop/*", json={"policy": policy, "message": "m"}).raise_for_status()
        api.put("/v1/configs/shop/limits", json={"value": 1, "message": "m"}).raise_for_status()
        first = api.get("/v1/rollouts", params={"config": "shop/limits"}).json()["items"][0]
        api.post(f"/v1/rollouts/{first['id']}/promote", json={"reason": "first version"}).raise_for_status()
        api.post(f"/v1/rollouts/{first['id']}/promote", json={"reason": "first version"}).raise_for_status()

        bad = push(api, {"crash": True}, 1)["rollout"]
        fleet.silenced.add("i-0000")  # a canary (index 0 has the canary label) stops reporting
        ended = wait_for(lambda: (v := rollout(api, bad["id"]))["state"] != "running" and v, timeout=20)
        assert "i-0000" in ended["reason"] and "silent" in ended["reason"]
        assert "incident.open" in [e["action"] for e in ended["events"]]
        (incident,) = [i for i in api.get("/v1/incidents", params={"config": "shop/limits"}).json()["items"]
                       if i["rollout_id"] == bad["id"]]
        assert "silent" in incident["summary"] and incident["evidence"]["verdict"] == "fail"
        if on_failure == "rollback":
            assert ended["state"] == "rolled_back"
            assert incident["state"] == "mitigated"  # the rollback is the mitigation
            assert set(fleet.assignments("shop/limits").values()) == {1}
        else:  # halted where it stands, for a person to decide
            assert ended["state"] == "paused" and incident["state"] == "open"
            assert fleet.assignments("shop/limits")["i-0000"] == 2


def test_fleet_and_assignments_are_visible_with_filters(rollout_server: ServerProcess, fleet: Fleet) -> None:
    with rollout_server.client() as api:
        eu = api.get("/v1/instances", params={"service": "checkout", "region": "eu-west"}).json()["items"]
        assert eu and all(i["service"] == "checkout" and i["region"] == "eu-west" for i in eu)
        assert all(i["liveness"] == "alive" for i in eu)
        canaries = api.get("/v1/instances", params={"label": "canary=true"}).json()["items"]
        assert len(canaries) == 10
        unknown = api.post("/v1/instances/nope/heartbeat")
        assert unknown.status_code == 404 and "register" in unknown.json()["detail"]
        bad = api.post("/v1/instances", json={"id": "bad id!", "service": "x"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["pointer"] == "/id"
