"""SDK health reports against a real server: windows are filed as canary or baseline observations by
the revisions they carry, and a killed process is reported as a crash by the next start of its instance."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import ringfence
from ringfence.sdk import reporter
from ringfence.store.sql import open_store
from ringfence.testing.server import ServerProcess

CONFIG = "shop/backend"
POLICY = {
    "stages": [
        # The canary stage bakes long enough for the test to look at it while it runs.
        {"name": "canary", "select": {"labels": {"canary": "true"}}, "bake": {"min": "120s", "max": "240s"}},
        {"name": "global", "bake": {"min": "1s"}},
    ],
    "analysis": {"recent": "5s", "warmup": "0s"},
}


def eventually(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)
    return found


@pytest.fixture
def token(server: ServerProcess, caplog: pytest.LogCaptureFixture) -> Iterator[str]:
    caplog.set_level(logging.DEBUG)
    with server.client() as api:
        api.put("/v1/policies/shop/*", json={"policy": POLICY, "message": "slow canary"}).raise_for_status()
        api.put(f"/v1/configs/{CONFIG}", json={"value": {"limit": 1}, "message": "first"}).raise_for_status()
        first = api.get("/v1/rollouts", params={"config": CONFIG}).json()["items"][0]
        for _ in POLICY["stages"]:  # the first revision has nothing to compare with: a person promotes it
            api.post(f"/v1/rollouts/{first['id']}/promote", json={"reason": "first version"})
        secret = str(api.post("/v1/tokens", json={"role": "sdk", "scopes": ["shop/*"]}).json()["token"])
    yield secret
    assert secret not in caplog.text, "a token reached the logs"


def client(server: ServerProcess, token: str, name: str, **kwargs: Any) -> ringfence.Client:
    return ringfence.Client(server.url, token=token, service="shop", instance_id=name, configs=["shop/*"],
                            report_interval=1.0, **kwargs)


def reports_accepted(server: ServerProcess) -> float:
    with server.client() as api:
        text = api.get("/metrics").text
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("ringfence_metric_reports_total"))


def filed(db_url: str, rollout_id: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The observations the server filed for a rollout, and the requests each instance served on its new revision."""
    store = open_store(db_url)
    try:
        with store.read() as reader:
            lines = [json.loads(row.record) for row in reader.observations(rollout_id)]
            served = {t.instance_id: t.requests for t in reader.traffic(rollout_id)}
    finally:
        store.close()
    return lines, served


def test_windows_are_filed_as_canary_and_baseline_by_their_revisions(server: ServerProcess, db_url: str,
                                                                    token: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reporter, "HEARTBEAT_SECONDS", 3600.0)  # only metrics posts keep the instances alive
    canary = client(server, token, "shop-canary", labels={"canary": "true"})
    baseline = client(server, token, "shop-baseline")
    stop = threading.Event()

    def traffic() -> None:
        while not stop.wait(0.02):
            for sdk in (canary, baseline):
                with sdk.track("charge"):
                    pass
                sdk.record(requests=10, errors=1, latency_ms=[20.0] * 10)

    worker = threading.Thread(target=traffic, daemon=True)
    try:
        assert canary.wait_ready(10) and baseline.wait_ready(10)
        before = reports_accepted(server)
        worker.start()
        with server.client() as api:
            current = api.get(f"/v1/configs/{CONFIG}").json()["version"]
            pushed = api.put(f"/v1/configs/{CONFIG}", headers={"If-Match": str(current)},
                             json={"value": {"limit": 2}, "message": "canary me"})
            pushed.raise_for_status()
            rollout_id = int(pushed.json()["rollout"]["id"])
        eventually(lambda: canary.revision(CONFIG) == (2, canary.revision(CONFIG)[1]))  # type: ignore[index]
        assert baseline.revision(CONFIG) == (1, baseline.revision(CONFIG)[1])  # type: ignore[index]

        def both_sides() -> list[dict[str, Any]] | None:
            lines, _ = filed(db_url, rollout_id)
            sides = {(line["instance"], line["group"]) for line in lines if line.get("requests")}
            return lines if {("shop-canary", "canary"), ("shop-baseline", "baseline")} <= sides else None

        eventually(both_sides, timeout=30.0)
        time.sleep(2.5)  # a few more windows of each
        lines, served = filed(db_url, rollout_id)
    finally:
        stop.set()
        if worker.is_alive():
            worker.join(5)
        canary.close()
        baseline.close()
    windows = [line for line in lines if "event" not in line]
    assert {line["group"] for line in windows if line["instance"] == "shop-baseline"} == {"baseline"}
    on_canary = [line for line in windows if line["instance"] == "shop-canary"]
    # Once the canary switched, it reports canary windows only: a window never mixes two revisions
    # (its windows on the old revision that ended after the stage began are baseline ones).
    groups = [line["group"] for line in on_canary]
    assert groups[groups.index("canary"):] == ["canary"] * (len(groups) - groups.index("canary"))
    assert sum(line["requests"] for line in on_canary if line["group"] == "canary") >= 100
    for line in windows:
        assert sum(line["latency_ms"]["counts"]) == line["requests"] and line["errors"] <= line["requests"]
        assert {"cpu", "rss_mb"} <= set(line["gauges"]) and line["dt"] > 0
    assert served.get("shop-canary", 0) >= 100 and "shop-baseline" not in served, "traffic on the new revision"
    assert reports_accepted(server) > before


def test_a_killed_process_is_reported_as_a_crash_by_the_next_start(server: ServerProcess, token: str,
                                                                   tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[dict[str, Any], int | None]] = []
    post = reporter.Reporter._post_metrics

    def recording(self: reporter.Reporter, body: dict[str, Any], timeout: float) -> tuple[int | None, float | None]:
        answer = post(self, body, timeout)
        sent.append((body, answer[0]))
        return answer

    monkeypatch.setattr(reporter.Reporter, "_post_metrics", recording)
    cache = tmp_path / "cache"
    # A process that dies without closing its client (as a SIGKILL or an out-of-memory kill would).
    script = textwrap.dedent(f"""
        import os, time, ringfence
        sdk = ringfence.Client({server.url!r}, token={token!r}, service="shop", instance_id="shop-crashy",
                               configs=["shop/*"], cache_dir={str(cache)!r}, report_interval=1.0)
        assert sdk.wait_ready(10)
        time.sleep(1.5)  # a window ends: the marker now holds the revision it runs
        os._exit(3)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 3, done.stderr
    assert (cache / "shop--shop-crashy.running").exists(), "the dead process left its marker"

    with client(server, token, "shop-crashy", cache_dir=cache) as sdk:
        assert sdk.wait_ready(10)
        eventually(lambda: any(status == 202 and body["events"] for body, status in sent), timeout=10.0)
    events = [(e["event"], e["revisions"]) for body, status in sent if status == 202 for e in body["events"]]
    assert events == [("crash", {CONFIG: 1}), ("start", {CONFIG: 1}), ("stop", {CONFIG: 1})]
    crash = next(e for body, _ in sent for e in body["events"] if e["event"] == "crash")
    assert crash["at"] < time.time() - 0.5, "timed when the dead process last wrote its marker"
    assert not (cache / "shop--shop-crashy.running").exists(), "closed cleanly: no marker left"
