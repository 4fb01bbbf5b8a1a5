"""`ringfence policy`, `push`'s rollout line, `ringfence rollout` and `ringfence fleet`, run as
subprocesses against a real server whose controller ticks every 0.2 s, with instances registered
and heartbeating over real HTTP.

One server and one fleet serve the module; every test uses its own config prefix and policy,
so the tests do not depend on each other's order.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from ringfence.testing.server import ServerProcess
from tests.integration.fleet_helpers import Fleet, wait_for
from tests.integration.test_cli import ADMIN, Result, closed_url, ringfence, write

FLEET_SIZE = 12  # canary=true on i-0000, i-0005, i-0010; checkout in eu-west: i-0003, i-0009
SLOW_BAKES = """\
    stages:
      - {name: canary, select: {labels: {canary: "true"}}, bake: {min: 60s, max: 120s}}
      - {name: half, percent: 50, bake: {min: 60s, max: 120s}}
      - {name: global, bake: {min: 60s, max: 120s}}
    gate: bake
    """
FAST_BAKES = """\
    stages:
      - name: canary
        select: {labels: {canary: "true"}}
        bake: {min: 1s, max: 60s}
      - {name: early, percent: 50, bake: {min: 1s, max: 60s}}
      - {name: global, bake: {min: 1s, max: 60s}}
    gate: bake
    """


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("cli-rollouts")
    with ServerProcess(f"sqlite:///{root / 'ringfence.db'}", admin_token=ADMIN, log_path=root / "server.log",
                       env={"RINGFENCE_CONTROLLER_INTERVAL": "0.2"}) as process:
        yield process


@pytest.fixture(scope="module")
def fleet(server: ServerProcess) -> Iterator[Fleet]:
    # Heartbeats every 0.3 s for the whole module: no instance goes silent, so no stage fails.
    running = Fleet(server.url, ADMIN, FLEET_SIZE, ["*"]).register().start()
    yield running
    running.stop()


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "home").mkdir()
    return tmp_path


def cli(server: ServerProcess, work: Path) -> Callable[..., Result]:
    def run(*args: str) -> Result:
        return ringfence(*args, cwd=work, url=server.url)
    return run


def status(server: ServerProcess, work: Path, rollout_id: str) -> dict[str, object]:
    result = ringfence("rollout", "status", rollout_id, "--json", cwd=work, url=server.url)
    assert result.code == 0, result.err
    data: dict[str, object] = result.json
    return data


def start_rollout(server: ServerProcess, work: Path, prefix: str, policy: str) -> tuple[str, Result]:
    """Bind `policy` to `prefix/*`, push `prefix/limits`: the id of the rollout it starts, and the push."""
    rf = cli(server, work)
    write(work / "policy.yaml", policy)
    bound = rf("policy", "set", f"{prefix}/*", "policy.yaml", "-m", "rings for the test")
    assert bound.code == 0, bound.err
    write(work / prefix / "limits.yaml", "card: 1000\n")
    pushed = rf("push", f"{prefix}/limits.yaml", "-m", "first limits")
    assert pushed.code == 0, pushed.err
    line = next(x for x in pushed.out.splitlines() if x.startswith("rollout "))
    return line.split()[1], pushed


def test_a_bad_policy_is_refused_locally_with_every_problem_located(work: Path) -> None:
    write(work / "bad.yaml", """\
        stages:
          - name: canary
            select: {labels: {canary: "true"}, colour: blue}
            percent: 120
          - {name: global}
        """)
    # No server at that address: the file is checked before anything is sent.
    result = ringfence("policy", "set", "shop/*", "bad.yaml", cwd=work, url=closed_url())
    assert result.code == 1, result.err
    assert "bad.yaml:3:" in result.err and "/stages/0/select/colour: unknown key 'colour'" in result.err
    assert "bad.yaml:4:" in result.err and "/stages/0/percent: percent must be a number above 0" in result.err
    assert "Traceback" not in result.err


def test_policy_set_get_history_unset(server: ServerProcess, work: Path) -> None:
    rf = cli(server, work)
    write(work / "policy.yaml", FAST_BAKES)
    first = rf("policy", "set", "misc/*", "policy.yaml", "-m", "fast rings")
    assert first.code == 0, first.err
    assert "policy for misc/*: version 1" in first.out
    write(work / "policy.json", json.dumps({"stages": [{"name": "all", "bake": {"min": "1s", "max": "5s"}}]}))
    second = rf("policy", "set", "misc/*", "policy.json", "-m", "one ring")  # bound already: sent with If-Match
    assert second.code == 0, second.err
    assert "policy for misc/*: version 2" in second.out

    got = rf("policy", "get", "misc/*", "--version", "1")
    assert got.code == 0, got.err
    assert [s["name"] for s in yaml.safe_load(got.out)["stages"]] == ["canary", "early", "global"]
    history = rf("policy", "history", "misc/*")
    assert history.code == 0 and "fast rings" in history.out and "one ring" in history.out

    unset = rf("policy", "unset", "misc/*", "-m", "back to the default")
    assert unset.code == 0, unset.err
    assert "unset at version 3" in unset.out
    assert rf("policy", "get", "misc/*").code == 3


def test_push_starts_a_rollout_people_can_steer(server: ServerProcess, fleet: Fleet, work: Path) -> None:
    rf = cli(server, work)
    # Minute-long bakes: the controller never advances a stage here, only people do.
    rollout_id, pushed = start_rollout(server, work, "steer", SLOW_BAKES)
    assert "steer/limits: version 1" in pushed.out
    assert f"rollout {rollout_id} started: canary → half → global (policy steer/*@1)" in pushed.out

    running = rf("rollout", "list", "--state", "running")
    assert running.code == 0, running.err
    row = next(x for x in running.out.splitlines() if "steer/limits" in x)
    assert rollout_id in row and "none → v1" in row and "canary" in row
    assert "completed" not in running.out

    paused = rf("rollout", "pause", rollout_id, "--reason", "looking at graphs")
    assert paused.code == 0, paused.err
    assert "paused at stage 1/3 canary: looking at graphs" in paused.out
    seen = status(server, work, rollout_id)
    assert seen["state"] == "paused" and seen["reason"] == "looking at graphs"
    again = rf("rollout", "pause", rollout_id)
    assert again.code == 5 and "it is paused" in again.err

    assert rf("rollout", "resume", rollout_id).code == 0
    assert status(server, work, rollout_id)["state"] == "running"
    wait_for(lambda: status(server, work, rollout_id).get("verdict"))
    verdict = rf("rollout", "status", rollout_id)
    assert "verdict: pass" in verdict.out and "alive" in verdict.out, verdict.out

    no_reason = rf("rollout", "promote", rollout_id)
    assert no_reason.code == 2 and "--reason" in no_reason.err
    promoted = rf("rollout", "promote", rollout_id, "--reason", "verified by hand")
    assert promoted.code == 0, promoted.err
    assert "running at stage 2/3 half" in promoted.out
    shown = rf("rollout", "status", rollout_id)
    assert shown.code == 0, shown.err
    assert "promoted by" in shown.out and "verified by hand" in shown.out
    assert "pending" in shown.out and "bake" in shown.out

    aborted = rf("rollout", "abort", rollout_id, "--reason", "wrong limits")
    assert aborted.code == 0, aborted.err
    assert "aborted" in aborted.out
    twice = rf("rollout", "abort", rollout_id, "--reason", "still wrong")
    assert twice.code == 5
    assert f"cannot abort rollout {rollout_id}: it is aborted" in twice.err


def test_watch_exits_when_the_rollout_completes(server: ServerProcess, fleet: Fleet, work: Path) -> None:
    rollout_id, _ = start_rollout(server, work, "watch", FAST_BAKES)
    watched = ringfence("rollout", "status", rollout_id, "--watch", cwd=work, url=server.url)
    assert watched.code == 0, watched.err
    assert "completed" in watched.out
    assert f"instances: v1: {FLEET_SIZE}" in watched.out
    assert status(server, work, rollout_id)["state"] == "completed"


def test_emergency_push_is_marked(server: ServerProcess, fleet: Fleet, work: Path) -> None:
    write(work / "urgent" / "limits.yaml", "card: 1\n")
    pushed = cli(server, work)("push", "urgent/limits.yaml", "-m", "stop the bleeding", "--emergency")
    assert pushed.code == 0, pushed.err
    assert "(policy default) [emergency: short bakes]" in pushed.out


def test_fleet_filters_by_service_and_region(server: ServerProcess, fleet: Fleet, work: Path) -> None:
    listed = cli(server, work)("fleet", "--service", "checkout", "--region", "eu-west", "--json")
    assert listed.code == 0, listed.err
    items = listed.json["items"]
    assert sorted(i["id"] for i in items) == ["i-0003", "i-0009"]
    assert {(i["service"], i["region"], i["liveness"]) for i in items} == {("checkout", "eu-west", "alive")}

    table = cli(server, work)("fleet", "--service", "checkout", "--region", "eu-west", "--liveness", "alive")
    assert table.code == 0, table.err
    assert "i-0003" in table.out and "i-0009" in table.out and "i-0001" not in table.out
    bad = cli(server, work)("fleet", "--label", "canary")
    assert bad.code == 2 and "name=value" in bad.err


def test_fleet_shows_each_instance_revision_and_ring_for_a_config(server: ServerProcess, fleet: Fleet,
                                                                   work: Path) -> None:
    rf = cli(server, work)
    write(work / "ringed" / "flag.json", '{"on": false}\n')
    assert rf("push", "ringed/flag.json", "-m", "first").code == 0
    rollout_id = str(rf("rollout", "list", "--config", "ringed/flag", "--json").json["items"][0]["id"])
    assert rf("rollout", "pause", rollout_id).code == 0
    listed = rf("fleet", "--config", "ringed/flag", "--json").json["items"]
    canaries = [i for i in listed if i["assignment"]["ring"] is not None]
    assert canaries and all(
        i["assignment"] == {"version": 1, "ring": "canary", "rollout": rollout_id, "applied": None}
        for i in canaries), "assigned, not yet reported applied"
    assert all(i["assignment"]["version"] is None for i in listed if i not in canaries), "new config: not there yet"
    table = rf("fleet", "--config", "ringed/flag")
    assert table.code == 0 and "canary" in table.out and "baseline" in table.out and "v1" in table.out
