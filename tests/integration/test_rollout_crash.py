"""kill -9 the server at random moments during a rollout: after each restart it carries on
from the persisted state, no stage is repeated or skipped, and no event is lost."""

from __future__ import annotations

import random
import time
from pathlib import Path

import httpx
import pytest

from ringfence.testing.server import ServerProcess
from tests.integration.fleet_helpers import Fleet, wait_for

STAGES = 5
POLICY = {"stages": [{"name": f"ring-{i}", "percent": 20 * (i + 1), "bake": {"min": "0.4s", "max": "120s"}}
                     for i in range(STAGES)], "gate": "bake"}
# Silence is judged by wall-clock heartbeats; restarts must not look like a silent fleet.
ENV = {"RINGFENCE_CONTROLLER_INTERVAL": "0.05", "RINGFENCE_INSTANCE_SILENT_AFTER": "120"}


@pytest.mark.slow
@pytest.mark.parametrize("seed", [11, 12, 13])
def test_kill_9_during_a_rollout_neither_repeats_nor_skips_a_stage(db_url: str, tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    server = ServerProcess(db_url, log_path=tmp_path / "server.log", env=ENV).start()
    fleet = Fleet(server.url, server.admin_token, 20, ["crash/*"]).register().start()
    try:
        with server.client() as api:
            api.put("/v1/policies/crash/*", json={"policy": POLICY, "message": "m"}).raise_for_status()
            rollout_id = api.put("/v1/configs/crash/flag", json={"value": 1, "message": "m"}).json()["rollout"]["id"]
        kills = 0
        while True:
            time.sleep(rng.uniform(0.02, 0.5))
            server.kill()
            kills += 1
            server.start()
            with server.client() as api:
                state = api.get(f"/v1/rollouts/{rollout_id}").json()["state"]
            if state != "running":
                break
            assert kills < 60, "the rollout made no progress across restarts"
        with server.client() as api:
            view = api.get(f"/v1/rollouts/{rollout_id}").json()
            assigned = fleet.assignments("crash/flag")
    finally:
        fleet.stop()
        server.stop()

    assert view["state"] == "completed"
    assert [o["stage"] for o in view["outcomes"]] == list(range(STAGES)), "each stage left once, in order"
    actions = [e["action"] for e in view["events"]]
    assert actions[0] == "rollout.start" and actions.count("rollout.start") == 1
    passes = [e for e in view["events"] if e["action"] == "rollout.pass"]
    assert [e["details"]["from_stage"] for e in passes[:-1]] == list(range(STAGES - 1)), "no stage repeated or skipped"
    assert len(passes) == STAGES, "every stage's pass was recorded with its transition"
    assert actions[-1] == "rollout.complete" and actions.count("rollout.complete") == 1
    stages_of_members = [s["assigned"] for s in view["stages"]]
    assert sum(stages_of_members) == 20 and set(assigned.values()) == {1}
    times = [e["time"] for e in view["events"]]
    assert times == sorted(times)


def test_a_restarted_server_keeps_assignments_it_had_given(db_url: str, tmp_path: Path) -> None:
    with ServerProcess(db_url, log_path=tmp_path / "server.log", env={"RINGFENCE_CONTROLLER_INTERVAL": "0"}) as server:
        fleet = Fleet(server.url, server.admin_token, 20, ["keep/*"]).register()
        with server.client() as api:
            api.put("/v1/configs/keep/flag", json={"value": 1, "message": "m"}).raise_for_status()
        before = fleet.assignments("keep/flag")
        server.kill()
        server.start()
        assert fleet.assignments("keep/flag") == before
        assert sorted(v for v in before.values() if v is not None) == [1], "1% canary with min_instances 1"
        with httpx.Client(base_url=server.url) as anonymous:
            assert anonymous.get("/v1/instances/i-0000/assignments").status_code == 401


def test_an_outage_longer_than_the_silence_threshold_does_not_fail_a_rollout(tmp_path: Path) -> None:
    # While the server is down no instance can report; after the restart the fleet must not look
    # silent for it, or every server outage would roll back whatever was rolling out.
    env = {"RINGFENCE_CONTROLLER_INTERVAL": "0.1", "RINGFENCE_INSTANCE_SILENT_AFTER": "1"}
    policy = {"stages": [{"name": "canary", "select": {"labels": {"canary": "true"}},
                          "bake": {"min": "60s", "max": "120s"}}, {"name": "global"}], "gate": "bake"}
    server = ServerProcess(f"sqlite:///{tmp_path / 'r.db'}", log_path=tmp_path / "server.log", env=env).start()
    fleet = Fleet(server.url, server.admin_token, 10, ["outage/*"]).register().start()
    try:
        with server.client() as api:
            api.put("/v1/policies/outage/*", json={"policy": policy, "message": "m"}).raise_for_status()
            rollout_id = api.put("/v1/configs/outage/flag", json={"value": 1, "message": "m"}).json()["rollout"]["id"]
        server.kill()
        time.sleep(3)  # three times the silence threshold without a heartbeat
        server.start()
        time.sleep(2)  # twenty controller ticks, with the fleet beating again
        with server.client() as api:
            view = api.get(f"/v1/rollouts/{rollout_id}").json()
        assert view["state"] == "running", view["reason"]
        # A canary that stays silent after the restart still fails the stage.
        fleet.silenced.add("i-0000")
        with server.client() as api:
            failed = wait_for(lambda: (v := api.get(f"/v1/rollouts/{rollout_id}").json())["state"] != "running" and v)
        assert failed["state"] == "rolled_back" and "i-0000" in failed["reason"]
    finally:
        fleet.stop()
        server.stop()
