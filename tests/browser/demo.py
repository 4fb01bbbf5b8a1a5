"""A small demo-like run for the browser tests: a real server, real SDK clients, live traffic.

Twelve `ringfence.Client`s over loopback HTTP, in two services, report request windows every
second. Their traffic fails more, and is slower, when the config they run sets a connection
timeout too low, as a real service's would; so a healthy change walks through the rings on the
canary analysis and a bad one is caught on the canaries and rolled back with an incident.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx

import ringfence
from ringfence.testing.server import ServerProcess

ADMIN = "rf_browser_admin_secret_0123456789"
CONFIG = "shop/backend"
FLAGS = "shop/flags"
FLEET = 12
CANARIES = 4  # two per service
POLICY = {
    "stages": [
        {"name": "canary", "select": {"labels": {"canary": "true"}}, "bake": {"min": "4s", "max": "20s"}},
        {"name": "half", "percent": 50, "bake": {"min": "3s", "max": "20s"}},
        {"name": "global", "bake": {"min": "2s", "max": "20s"}},
    ],
    "analysis": {"recent": "4s", "warmup": "0s"},
}
T = TypeVar("T")


def wait_for(check: Callable[[], T], timeout: float, every: float = 0.2) -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s")
        time.sleep(every)


def health(value: Any) -> tuple[float, float]:
    """(error rate, latency median in ms) for what a client runs: a timeout under 100 ms hurts."""
    timeout = value.get("timeout_ms", 500) if isinstance(value, Mapping) else 500
    return (0.12, 70.0) if timeout < 100 else (0.01, 30.0)


class Demo:
    def __init__(self, root: Path) -> None:
        self.server = ServerProcess(f"sqlite:///{root / 'ringfence.db'}", admin_token=ADMIN,
                                    log_path=root / "server.log", env={"RINGFENCE_CONTROLLER_INTERVAL": "0.2"})
        self.clients: list[ringfence.Client] = []
        self.tokens: dict[str, str] = {"admin": ADMIN}
        self._stop = threading.Event()
        self._traffic = threading.Thread(target=self._run, daemon=True, name="demo-traffic")
        self._random = random.Random(11)

    @property
    def url(self) -> str:
        return self.server.url

    def api(self, role: str = "admin") -> httpx.Client:
        return self.server.client(self.tokens[role])

    def start(self) -> Demo:
        self.server.start()
        with self.api() as api:
            api.put("/v1/policies/shop/*", json={"policy": POLICY, "message": "fast rings for the demo"}
                    ).raise_for_status()
            for name, value in ((CONFIG, {"timeout_ms": 500}), (FLAGS, {"new_checkout": False})):
                answer = api.put(f"/v1/configs/{name}", json={"value": value, "message": "first version"})
                answer.raise_for_status()
                for _ in POLICY["stages"]:  # the first revision has nothing to compare with: a person promotes it
                    api.post(f"/v1/rollouts/{answer.json()['rollout']['id']}/promote",
                             json={"reason": "first version"})
            for role in ("viewer", "editor", "sdk"):
                created = api.post("/v1/tokens", json={"role": role, "scopes": ["*"], "name": f"{role}-ada"})
                self.tokens[role] = created.raise_for_status().json()["token"]
        self.clients = [
            ringfence.Client(self.url, token=self.tokens["sdk"], service=("shop", "cart")[i % 2],
                             instance_id=f"{('shop', 'cart')[i % 2]}-{i:02d}",
                             labels={"canary": "true"} if i < CANARIES else {},
                             region=("eu-west", "us-east", "ap-south")[i % 3], configs=["shop/*"],
                             report_interval=1.0)
            for i in range(FLEET)]
        for client in self.clients:
            assert client.wait_ready(15)
        self._traffic.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            for client in self.clients:
                rate, median = health(client.get(CONFIG))
                for _ in range(8):  # ~2,000 requests a second per instance, in chunks of one latency each
                    errors = sum(self._random.random() < rate for _ in range(25))
                    client.record(requests=25, errors=errors, latency_ms=median * self._random.lognormvariate(0, 0.35))

    def push(self, name: str, value: Any, message: str, role: str = "admin") -> dict[str, Any]:
        with self.api(role) as api:
            current = api.get(f"/v1/configs/{name}").json()["version"]
            answer = api.put(f"/v1/configs/{name}", headers={"If-Match": str(current)},
                             json={"value": value, "message": message})
            answer.raise_for_status()
            return answer.json()["rollout"]  # type: ignore[no-any-return]

    def get(self, path: str, **params: str) -> Any:
        with self.api() as api:
            answer = api.get(path, params=params)
            answer.raise_for_status()
            return answer.json()

    def rollout(self, rollout_id: str) -> dict[str, Any]:
        return self.get(f"/v1/rollouts/{rollout_id}")  # type: ignore[no-any-return]

    def stop(self) -> None:
        self._stop.set()
        if self._traffic.is_alive():
            self._traffic.join(5)
        closing = [threading.Thread(target=client.close) for client in self.clients]
        for thread in closing:
            thread.start()
        for thread in closing:
            thread.join(10)
        self.server.stop()
