"""POST /v1/metrics over real HTTP: what a bad report gets back, and that a good one is filed."""

from __future__ import annotations

import time
from typing import Any

import httpx

from ringfence.testing.server import ServerProcess
from tests.integration.fleet_helpers import wait_for

LE = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]


def report(instance: str = "i-1", **window: Any) -> dict[str, Any]:
    now = time.time()
    return {"instance": instance, "windows": [{
        "start": now - 10, "end": now, "revisions": {"shop/limits": 1}, "requests": 10, "errors": 1,
        "latency_ms": {"le": LE, "counts": [0, 2, 3, 5, 0, 0, 0, 0, 0, 0, 0, 0]}, **window}]}


def test_reports_are_checked_like_every_other_request(server: ServerProcess) -> None:
    with server.client() as api:
        api.post("/v1/instances", json={"id": "i-1", "service": "shop"}).raise_for_status()
        sdk = api.post("/v1/tokens", json={"role": "sdk", "scopes": ["*"]}).json()["token"]
        viewer = api.post("/v1/tokens", json={"role": "viewer", "scopes": ["*"]}).json()["token"]
    with httpx.Client(base_url=server.url, timeout=10) as anonymous:
        refused = anonymous.post("/v1/metrics", json=report())
        assert refused.status_code == 401 and refused.headers["content-type"] == "application/problem+json"
        assert anonymous.get("/v1/metrics", headers={"Authorization": f"Bearer {sdk}"}).status_code == 405
    with httpx.Client(base_url=server.url, timeout=10, headers={"Authorization": f"Bearer {sdk}"}) as instance:
        accepted = instance.post("/v1/metrics", json=report())
        assert accepted.status_code == 202 and accepted.json() == {"accepted": 1}

        bad = instance.post("/v1/metrics", json=report(errors=11))
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["pointer"] == "/windows/0/errors"
        assert "errors (11) > requests (10)" in bad.json()["detail"]

        unknown = instance.post("/v1/metrics", json=report("i-404"))
        assert unknown.status_code == 404 and "register it first" in unknown.json()["detail"]

        not_json = instance.post("/v1/metrics", content=b"{nope", headers={"Content-Type": "application/json"})
        assert not_json.status_code == 422 and "not JSON" in not_json.json()["detail"]

        huge = instance.post("/v1/metrics", content=b" " * (2 * 1024 * 1024))
        assert huge.status_code == 413
    with httpx.Client(base_url=server.url, timeout=10, headers={"Authorization": f"Bearer {viewer}"}) as reader:
        assert reader.post("/v1/metrics", json=report()).status_code == 403


def test_a_report_counts_as_a_heartbeat(server: ServerProcess) -> None:
    with server.client() as api:
        api.post("/v1/instances", json={"id": "i-1", "service": "shop"}).raise_for_status()
        before = api.get("/v1/instances/i-1").json()["last_seen"]
        time.sleep(0.05)
        api.post("/v1/metrics", json=report()).raise_for_status()
        wait_for(lambda: api.get("/v1/instances/i-1").json()["last_seen"] > before, timeout=5)
