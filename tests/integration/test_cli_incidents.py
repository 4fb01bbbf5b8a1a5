"""`ringfence changes`, `ringfence incident` and `ringfence webhook`, run as subprocesses against a real
server whose controller ticks every 0.2 s, with instances registered and heartbeating over HTTP.

One server and one fleet serve the module; each test uses its own config prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ringfence.testing.server import ServerProcess
from tests.integration.fleet_helpers import Fleet, wait_for
from tests.integration.test_cli import ADMIN, Result, ringfence
from tests.integration.webhook_receiver import receiving

FLEET_SIZE = 6  # canary=true on i-0000 (payments) and i-0005 (checkout)
POLICY = {"stages": [{"name": "canary", "select": {"labels": {"canary": "true"}},
                      "bake": {"min": "60s", "max": "120s"}},
                     {"name": "global", "bake": {"min": "1s", "max": "60s"}}], "gate": "bake"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("cli-incidents")
    with ServerProcess(f"sqlite:///{root / 'ringfence.db'}", admin_token=ADMIN, log_path=root / "server.log",
                       env={"RINGFENCE_CONTROLLER_INTERVAL": "0.2", "RINGFENCE_WEBHOOK_BACKOFF": "0.2"}) as process:
        yield process


@pytest.fixture(scope="module")
def fleet(server: ServerProcess) -> Iterator[Fleet]:
    running = Fleet(server.url, ADMIN, FLEET_SIZE, ["shop/*", "cli/*"]).register().start()
    yield running
    running.stop()


@pytest.fixture
def rf(server: ServerProcess, tmp_path: Path) -> Callable[..., Result]:
    (tmp_path / "home").mkdir()

    def run(*args: str, token: str = ADMIN) -> Result:
        return ringfence(*args, cwd=tmp_path, url=server.url, token=token)
    return run


def push(api: httpx.Client, name: str, value: Any, expected: int | None = None) -> dict[str, Any]:
    headers = {"If-Match": str(expected)} if expected else {}
    response = api.put(f"/v1/configs/{name}", headers=headers, json={"value": value, "message": f"set {value}"})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def bound(api: httpx.Client, prefix: str) -> None:
    api.put(f"/v1/policies/{prefix}/*", json={"policy": POLICY, "message": "slow canary"}).raise_for_status()


def test_changes_lists_a_push_that_reached_instances_and_not_one_that_reached_none(
        server: ServerProcess, fleet: Fleet, rf: Callable[..., Result]) -> None:
    with server.client() as api:
        bound(api, "shop")
        push(api, "shop/limits", 1)
        push(api, "nobody/reads", 1)  # no instance reads nobody/*: the rollout reaches no one

    listed = rf("changes", "--since", "2h")
    assert listed.code == 0, listed.err
    assert "shop/limits" in listed.out and "nobody/reads" not in listed.out
    assert "canary" in listed.out and "running" in listed.out and "bootstrap-admin" in listed.out

    data = rf("changes", "--since", "2h", "--json").json
    item = next(i for i in data["items"] if i["config"] == "shop/limits")
    assert item["version"] == 1 and item["instances"] == 2 and item["rollout"]["stage_name"] == "canary"
    assert item["author"] == "bootstrap-admin" and item["message"] == "set 1"
    assert all(i["config"] != "nobody/reads" for i in data["items"])

    payments = rf("changes", "--since", "2h", "--service", "payments", "--json").json["items"]
    assert [i["instances"] for i in payments if i["config"] == "shop/limits"] == [1]  # i-0000; i-0005 is checkout
    assert rf("changes", "--since", "2h", "--service", "nothing-like-it", "--json").json["items"] == []

    since_iso = rf("changes", "--since", data["since"], "--json")
    assert since_iso.code == 0 and any(i["config"] == "shop/limits" for i in since_iso.json["items"])
    bad = rf("changes", "--since", "yesterday-ish")
    assert bad.code == 1 and "duration" in bad.err


def test_incident_commands_follow_a_rollback_from_list_to_postmortem(
        server: ServerProcess, fleet: Fleet, rf: Callable[..., Result]) -> None:
    with server.client() as api:
        bound(api, "cli")
        first = push(api, "cli/limits", {"limit": 1})["rollout"]
        for _ in range(2):  # the fleet runs v1: promoted through both rings
            api.post(f"/v1/rollouts/{first['id']}/promote", json={"reason": "known good"}).raise_for_status()
        rollout = push(api, "cli/limits", {"limit": 2}, 1)["rollout"]
    rolled = rf("rollout", "rollback", rollout["id"], "--reason", "timeouts in checkout")
    assert rolled.code == 0, rolled.err

    listed = rf("incident", "list", "--state", "mitigated", "--json").json["items"]
    incident = next(i for i in listed if i["config"] == "cli/limits")
    incident_id = incident["id"]
    table = rf("incident", "list")
    assert table.code == 0 and "cli/limits v1 → v2" in table.out and "timeouts in checkout" in table.out

    shown = rf("incident", "show", incident_id)
    assert shown.code == 0, shown.err
    for part in (f"incident {incident_id}", "mitigated", "~ /limit: 1 → 2", "requests not measured", "timeline",
                 "blast radius: 2 instance(s) (checkout 1, payments 1)", "rollout.rollback", "incident.open"):
        assert part in shown.out

    noted = rf("incident", "note", incident_id, "the limit was a typo")
    assert noted.code == 0 and f"noted on incident {incident_id}" in noted.out
    assert rf("incident", "resolve", incident_id).code == 2  # --note is required
    resolved = rf("incident", "resolve", incident_id, "--note", "fixed by v3")
    assert resolved.code == 0 and "resolved" in resolved.out
    again = rf("incident", "resolve", incident_id, "--note", "again")
    assert again.code == 5 and "already resolved" in again.err

    draft = rf("incident", "postmortem", incident_id)
    assert draft.code == 0 and draft.out.startswith(f"# Post-mortem: incident {incident_id}")
    assert "```diff\n- /limit: 1\n+ /limit: 2\n```" in draft.out
    assert "the limit was a typo" in draft.out and "incident.resolve" in draft.out

    assert rf("incident", "show", "999999").code == 3
    by_hand = rf("incident", "open", "--config", "cli/limits", "--summary", "slow pages", "--severity", "sev2",
                 "--json")
    assert by_hand.code == 0 and by_hand.json["state"] == "open" and by_hand.json["severity"] == "sev2"
    mitigated = rf("incident", "mitigate", by_hand.json["id"], "--note", "drained the region")
    assert mitigated.code == 0 and "mitigated" in mitigated.out


def test_webhook_commands_add_list_show_deliveries_and_remove(server: ServerProcess, rf: Callable[..., Result]) -> None:
    with receiving() as receiver:
        added = rf("webhook", "add", receiver.url, "--event", "incident.opened", "--config", "hooks/*",
                   "--description", "pager")
        assert added.code == 0, added.err
        secret = next(line for line in added.out.splitlines() if line.startswith("whsec_"))
        assert "shown only now" in added.err
        hook = next(w for w in rf("webhook", "list", "--json").json["items"] if w["description"] == "pager")
        assert hook["events"] == ["incident.opened"] and "whsec_" not in rf("webhook", "list").out

        opened = rf("incident", "open", "--config", "hooks/thing", "--summary", "ping the pager", "--json")
        assert opened.code == 0, opened.err
        received = wait_for(lambda: receiver.delivered("incident.opened"))
        assert received[0].signed_by(secret)
        wait_for(lambda: "delivered" in rf("webhook", "deliveries", hook["id"]).out)
        deliveries = rf("webhook", "deliveries", hook["id"], "--json").json["items"]
        assert deliveries[0]["event"] == "incident.opened" and deliveries[0]["last_status"] == 200

        with server.client() as api:
            viewer = api.post("/v1/tokens", json={"role": "viewer"}).json()["token"]
        assert rf("webhook", "list", token=viewer).code == 4
        removed = rf("webhook", "remove", hook["id"])
        assert removed.code == 0 and hook["id"] in removed.out
        assert rf("webhook", "remove", hook["id"]).code == 3
