"""Trust, but canary, end to end: 30 real SDK clients whose health depends on the config they run.

Each client is a `ringfence.Client` reporting request windows every second; its traffic
fails more when the config it runs sets a connection timeout too low, as a real service's
would. A healthy change walks through every stage on the canary analysis; a bad one is
caught on the canary instances, rolled back by itself, and leaves an incident behind.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import ringfence
from ringfence.testing.server import ServerProcess
from tests.integration.fleet_helpers import wait_for
from tests.integration.webhook_receiver import receiving

CONFIG = "shop/backend"
FLEET = 30
CANARIES = 3
POLICY = {
    "stages": [
        {"name": "canary", "select": {"labels": {"canary": "true"}}, "bake": {"min": "5s", "max": "40s"}},
        {"name": "global", "bake": {"min": "2s", "max": "40s"}},
    ],
    "analysis": {"recent": "5s", "warmup": "0s"},
}


def error_rate(value: Any) -> float:
    """A connection timeout under 100 ms times out on a tenth of the requests; 1% fail anyway."""
    timeout = value.get("timeout_ms", 500) if isinstance(value, Mapping) else 500
    return 0.10 if timeout < 100 else 0.01


class Traffic:
    """Requests through every client, each failing by the config that client runs."""

    def __init__(self, clients: list[ringfence.Client], seed: int) -> None:
        self.clients = clients
        self.random = random.Random(seed)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.1):
            for client in self.clients:
                requests = 12 + self.random.randrange(6)
                rate = error_rate(client.get(CONFIG))
                errors = sum(self.random.random() < rate for _ in range(requests))
                client.record(requests=requests, errors=errors,
                              latency_ms=[self.random.lognormvariate(3.4, 0.4) for _ in range(requests)])

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(5)


@pytest.fixture
def canary_server(tmp_path: Path) -> Iterator[ServerProcess]:
    env = {"RINGFENCE_CONTROLLER_INTERVAL": "0.2"}
    with ServerProcess(f"sqlite:///{tmp_path / 'ringfence.db'}", log_path=tmp_path / "server.log",
                       env=env) as server:
        yield server


@pytest.fixture
def fleet(canary_server: ServerProcess) -> Iterator[list[ringfence.Client]]:
    with canary_server.client() as api:
        api.put("/v1/policies/shop/*", json={"policy": POLICY, "message": "fast canary"}).raise_for_status()
        api.put(f"/v1/configs/{CONFIG}", json={"value": {"timeout_ms": 500}, "message": "first"}).raise_for_status()
        first = api.get("/v1/rollouts", params={"config": CONFIG}).json()["items"][0]
        # The very first revision has nothing to compare with: a person promotes it.
        for _ in POLICY["stages"]:
            api.post(f"/v1/rollouts/{first['id']}/promote", json={"reason": "first version"})
        token = api.post("/v1/tokens", json={"role": "sdk", "scopes": ["shop/*"]}).json()["token"]
    clients = [ringfence.Client(canary_server.url, token=token, service="shop", instance_id=f"shop-{i:02d}",
                                labels={"canary": "true"} if i < CANARIES else {},
                                region=("eu-west", "us-east")[i % 2], configs=["shop/*"], report_interval=1.0)
               for i in range(FLEET)]
    try:
        for client in clients:
            assert client.wait_ready(10)
        yield clients
    finally:
        closing = [threading.Thread(target=client.close) for client in clients]  # each waits for its threads
        for thread in closing:
            thread.start()
        for thread in closing:
            thread.join(10)


def push(server: ServerProcess, value: Any, message: str) -> dict[str, Any]:
    with server.client() as api:
        current = api.get(f"/v1/configs/{CONFIG}").json()["version"]
        answer = api.put(f"/v1/configs/{CONFIG}", headers={"If-Match": str(current)},
                         json={"value": value, "message": message})
        answer.raise_for_status()
        return answer.json()["rollout"]  # type: ignore[no-any-return]


def rollout(server: ServerProcess, rollout_id: str) -> dict[str, Any]:
    with server.client() as api:
        return api.get(f"/v1/rollouts/{rollout_id}").json()  # type: ignore[no-any-return]


def test_a_healthy_change_passes_every_stage_and_a_bad_one_is_rolled_back_with_an_incident(
        canary_server: ServerProcess, fleet: list[ringfence.Client]) -> None:
    with receiving() as receiver, Traffic(fleet, seed=7):
        with canary_server.client() as api:
            hook = api.post("/v1/webhooks", json={"url": receiver.url, "description": "on-call"}).json()
        good = push(canary_server, {"timeout_ms": 400}, "a little tighter")
        done = wait_for(lambda: (r := rollout(canary_server, good["id"]))["state"] in ("completed", "paused",
                                                                                       "rolled_back") and r,
                        timeout=90)
        assert done["state"] == "completed", done.get("reason")
        # Both stages were left by the controller's pass, the canary's on the analysis' evidence.
        assert [(o["how"], o["by"]) for o in done["outcomes"]] == [("pass", "controller")] * 2
        assert "error_rate" in done["outcomes"][0]["reason"]
        assert all(c.get(CONFIG) == {"timeout_ms": 400} for c in fleet)

        bad = push(canary_server, {"timeout_ms": 20}, "much tighter")
        failed = wait_for(lambda: (r := rollout(canary_server, bad["id"]))["state"] in ("completed", "paused",
                                                                                        "rolled_back") and r,
                          timeout=90)
        assert failed["state"] == "rolled_back", failed.get("reason")
        assert "error_rate" in failed["reason"]
        # Only canaries ever ran it, and every instance is back on the good revision.
        wait_for(lambda: all(c.get(CONFIG) == {"timeout_ms": 400} for c in fleet), timeout=20)

        # The on-call receiver heard about it, signed with the webhook's secret.
        events = wait_for(lambda: {d.event for d in receiver.delivered() if d.signed_by(hook["secret"])}
                          >= {"rollout.rolled_back", "incident.opened"} and receiver.delivered(), timeout=30)
        assert all(d.signed_by(hook["secret"]) for d in events)

    with canary_server.client() as api:
        incidents = api.get("/v1/incidents", params={"config": CONFIG}).json()["items"]
        assert len(incidents) == 1
        incident = api.get(f"/v1/incidents/{incidents[0]['id']}").json()
    assert incident["rollout_id"] in (bad["id"], int(bad["id"]))
    assert incident["timeline"] and incident["evidence"]
    radius = incident["blast_radius"]
    assert radius["instances"] == CANARIES, "only the canaries ever ran the bad revision"
    assert {m["instance"] for m in radius["members"]} == {f"shop-{i:02d}" for i in range(CANARIES)}
    # What they served on it, from their own reports: about a tenth of it failed.
    assert radius["measured"] and 0.05 < radius["errors"] / radius["requests"] < 0.2
