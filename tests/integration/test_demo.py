"""`ringfence demo` as a newcomer runs it: a real process that starts a real server and a fleet of real
SDK clients, tells the story on stderr and prints its summary as JSON on stdout."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_demo_completes_a_healthy_change_and_rolls_back_a_bad_one_caught_on_the_canaries() -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "ringfence.cli.main", "demo", "--instances", "12", "--json", "--seed", "1"],
        capture_output=True, text=True, timeout=200, check=False)
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["ok"] is True
    assert summary["fleet"]["instances"] == 12
    canaries = set(summary["fleet"]["canaries"])
    assert len(canaries) == 2  # one per service

    healthy = summary["healthy"]
    assert healthy["state"] == "completed"
    assert [s["name"] for s in healthy["stages"]] == ["canary", "eu-west", "global"]
    assert all(s["outcome"] == "pass" and s["by"] == "controller" for s in healthy["stages"])
    assert healthy["stages"][-1]["instances"] == 12

    bad = summary["bad"]
    assert bad["state"] == "rolled_back"
    assert bad["stage"] == "canary"  # caught before it left the canaries
    incident = bad["incident"]
    assert incident["id"] and incident["opened_by"] == "controller"
    assert incident["time_to_detect_seconds"] is not None and incident["time_to_detect_seconds"] < 30
    radius = incident["blast_radius"]
    assert radius["instances"] > 0
    assert radius["canaries_only"] and set(radius["members"]) <= canaries
    # What they served on it, from their own reports: the 40 ms timeout failed a good share of it.
    assert radius["requests"] > 0 and radius["errors"] > 0

    # The story is on stderr, stdout holds the JSON alone.
    assert "A bad change" in done.stderr and "post-mortem" in done.stderr
    assert took < 150, f"the demo took {took:.0f} s"


def test_the_demo_refuses_a_fleet_too_small_to_tell_the_story() -> None:
    done = subprocess.run([sys.executable, "-m", "ringfence.cli.main", "demo", "--instances", "2"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "--instances" in done.stderr
