"""A fleet of instances registered and heartbeating over real HTTP, for rollout tests."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

REGIONS = ("eu-west", "us-east", "ap-south")


def instance_body(index: int, configs: list[str]) -> dict[str, Any]:
    return {
        "id": f"i-{index:04d}", "service": "checkout" if index % 2 else "payments",
        "region": REGIONS[index % 3], "zone": f"{REGIONS[index % 3]}-{'abc'[index % 3]}",
        "labels": {"canary": "true"} if index % 5 == 0 else {}, "configs": configs, "sdk_version": "test",
    }


class Fleet:
    """Registers instances and keeps them alive, except those told to go silent."""

    def __init__(self, url: str, token: str, count: int, configs: list[str]) -> None:
        self.url, self.token = url, token
        self.bodies = [instance_body(i, configs) for i in range(count)]
        self.silenced: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    @property
    def ids(self) -> list[str]:
        return [b["id"] for b in self.bodies]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=10)

    def register(self) -> Fleet:
        with self.client() as api:
            for body in self.bodies:
                api.post("/v1/instances", json=body).raise_for_status()
        return self

    def start(self) -> Fleet:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _beat(self) -> None:
        with self.client() as api:
            while not self._stop.wait(0.3):
                for instance_id in self.ids:
                    if instance_id in self.silenced:
                        continue
                    # The server may be down (crash tests): beat again when it is back.
                    with contextlib.suppress(httpx.TransportError):
                        api.post(f"/v1/instances/{instance_id}/heartbeat")

    def assignments(self, config: str) -> dict[str, int | None]:
        """Instance id -> the version of `config` it must run now."""
        out: dict[str, int | None] = {}
        with self.client() as api:
            for instance_id in self.ids:
                items = api.get(f"/v1/instances/{instance_id}/assignments").json()["items"]
                out[instance_id] = next((a["version"] for a in items if a["name"] == config), None)
        return out


def wait_for(check: Callable[[], Any], timeout: float = 30.0, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s")
