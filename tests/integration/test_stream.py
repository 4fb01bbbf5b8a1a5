"""The stream: each instance gets exactly the revision it must run, pushed as the rollout moves."""

from __future__ import annotations

import gc
import json
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ringfence.testing.server import ServerProcess
from tests.integration.fleet_helpers import Fleet

BAKE = {"min": "60s", "max": "120s"}  # long: only people move these rollouts
POLICY = {"stages": [{"name": "canary", "select": {"labels": {"canary": "true"}}, "bake": BAKE},
                     {"name": "global", "bake": BAKE}]}


class StreamReader:
    """Reads one SSE stream in a thread; events arrive in a queue as (event, data)."""

    def __init__(self, url: str, token: str, params: dict[str, Any]) -> None:
        self.events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.status: int | None = None
        self._client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                                    timeout=httpx.Timeout(5, read=30))
        self._params = params
        self._response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            with self._client.stream("GET", "/v1/stream", params=self._params) as response:
                self._response = response
                self.status = response.status_code
                event, data = "message", ""
                for line in response.iter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: "):
                        data = line[6:]
                    elif line == "" and data:
                        self.events.put((event, json.loads(data)))
                        event, data = "message", ""
        except httpx.HTTPError:
            pass
        finally:
            # Closed here, by the thread that used it, once its stream ended (at the latest when
            # the server stops): closing it from the test thread would leave its socket to the GC.
            self._client.close()

    def next(self, timeout: float = 5.0) -> tuple[str, dict[str, Any]]:
        return self.events.get(timeout=timeout)

    def quiet(self, seconds: float) -> bool:
        try:
            self.events.get(timeout=seconds)
        except queue.Empty:
            return True
        return False

    def close(self) -> None:
        # Ends the stream under the reading thread, which then closes its client.
        if self._response is not None:
            self._response.close()


@pytest.fixture(autouse=True)
def collect_garbage() -> Iterator[None]:
    # Stream sockets are closed by their reading threads; collecting here makes any socket this
    # module leaked show up in this module's tests, not in whichever test runs next.
    yield
    gc.collect()


@pytest.fixture
def setup(db_url: str, tmp_path: Path) -> Iterator[tuple[ServerProcess, Fleet]]:
    env = {"RINGFENCE_CONTROLLER_INTERVAL": "0.2", "RINGFENCE_MAX_STREAMS": "4"}
    with ServerProcess(db_url, log_path=tmp_path / "server.log", env=env) as server:
        fleet = Fleet(server.url, server.admin_token, 10, ["shop/*"]).register().start()
        with server.client() as api:
            api.put("/v1/policies/shop/*", json={"policy": POLICY, "message": "m"}).raise_for_status()
            rollout = api.put("/v1/configs/shop/limits", json={"value": {"limit": 1}, "message": "m"}).json()["rollout"]
            for _ in range(2):
                api.post(f"/v1/rollouts/{rollout['id']}/promote", json={"reason": "first"}).raise_for_status()
        yield server, fleet
        fleet.stop()


def push(api: httpx.Client, value: Any, expected: int) -> dict[str, Any]:
    response = api.put("/v1/configs/shop/limits", headers={"If-Match": str(expected)},
                       json={"value": value, "message": "m"})
    response.raise_for_status()
    return response.json()["rollout"]  # type: ignore[no-any-return]


def test_each_instance_gets_its_revision_as_the_rollout_moves(setup: tuple[ServerProcess, Fleet]) -> None:
    server, _fleet = setup
    canary = StreamReader(server.url, server.admin_token, {"instance": "i-0000"})
    baseline = StreamReader(server.url, server.admin_token, {"instance": "i-0001"})
    try:
        for reader in (canary, baseline):
            event, data = reader.next()
            assert event == "snapshot"
            assert data["configs"]["shop/limits"]["version"] == 1
            assert data["configs"]["shop/limits"]["value"] == {"limit": 1}
        with server.client() as api:
            sent = time.monotonic()
            second = push(api, {"limit": 2}, 1)
            event, data = canary.next()
            assert (event, data["name"], data["version"], data["value"]) == ("update", "shop/limits", 2, {"limit": 2})
            assert time.monotonic() - sent < 1.0, "the push itself starts the canary stage: no tick to wait for"
            assert data["rollout"]["member"] is True
            assert baseline.quiet(1.0), "an instance outside the canary ring hears nothing"

            api.post(f"/v1/rollouts/{second['id']}/promote", json={"reason": "looks good"}).raise_for_status()
            event, data = baseline.next()
            assert (event, data["version"]) == ("update", 2)
            api.post(f"/v1/rollouts/{second['id']}/promote", json={"reason": "done"}).raise_for_status()
            assert baseline.quiet(0.5), "completing changes nobody's revision: nothing to send"

            third = push(api, {"limit": 3}, 2)
            assert canary.next()[1]["version"] == 3
            api.post(f"/v1/rollouts/{third['id']}/rollback", json={"reason": "errors"}).raise_for_status()
            event, data = canary.next()
            assert (event, data["version"], data["value"]) == ("update", 2, {"limit": 2}), "rolled back, told so"
            assert baseline.quiet(0.5)
    finally:
        canary.close()
        baseline.close()


def test_a_reconnect_gets_values_only_for_what_it_missed(setup: tuple[ServerProcess, Fleet]) -> None:
    server, _fleet = setup
    reader = StreamReader(server.url, server.admin_token, {"instance": "i-0003", "have": "shop/limits@1"})
    try:
        event, data = reader.next()
        assert event == "snapshot" and data["configs"]["shop/limits"]["version"] == 1
        assert "value" not in data["configs"]["shop/limits"]
    finally:
        reader.close()


def test_a_stalled_reader_does_not_hold_up_the_others(setup: tuple[ServerProcess, Fleet]) -> None:
    server, _fleet = setup
    stalled = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.admin_token}"})
    response = stalled.send(stalled.build_request("GET", "/v1/stream", params={"instance": "i-0000"}), stream=True)
    reader = StreamReader(server.url, server.admin_token, {"instance": "i-0005"})
    try:
        assert reader.next()[0] == "snapshot"
        with server.client() as api:
            for version in range(1, 6):
                sent = time.monotonic()
                push(api, {"limit": version + 1, "pad": "x" * 50_000}, version)
                event, data = reader.next()
                assert (event, data["version"]) == ("update", version + 1)
                assert time.monotonic() - sent < 1.0
    finally:
        response.close()
        stalled.close()
        reader.close()


def test_streams_need_a_token_in_scope_and_are_capped(setup: tuple[ServerProcess, Fleet]) -> None:
    server, _fleet = setup
    assert httpx.get(f"{server.url}/v1/stream", params={"instance": "i-0000"}).status_code == 401
    with server.client() as api:
        other = api.post("/v1/tokens", json={"role": "sdk", "scopes": ["other/*"]}).json()["token"]
        unknown = api.get("/v1/stream", params={"instance": "i-9999"})
        assert unknown.status_code == 404 and "register" in unknown.json()["detail"]
    scoped = StreamReader(server.url, other, {"instance": "i-0007"})
    readers = [StreamReader(server.url, server.admin_token, {"instance": f"i-000{i}"}) for i in range(3)]
    try:
        assert scoped.next()[1]["configs"] == {}, "nothing outside the token's scopes"
        for reader in readers:
            assert reader.next()[0] == "snapshot"
        with server.client() as api:
            refused = api.get("/v1/stream", params={"instance": "i-0009"})
        assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
    finally:
        for reader in (scoped, *readers):
            reader.close()


def test_long_poll_answers_when_something_changes(setup: tuple[ServerProcess, Fleet]) -> None:
    server, _fleet = setup
    with server.client() as api:
        current = api.get("/v1/poll", params={"instance": "i-0000", "wait": 0}).json()
        assert current["configs"]["shop/limits"]["version"] == 1

        def later() -> None:
            time.sleep(0.5)
            with server.client() as writer:
                push(writer, {"limit": 9}, 1)

        threading.Thread(target=later).start()
        started = time.monotonic()
        changed = api.get("/v1/poll", params={"instance": "i-0000", "have": "shop/limits@1", "wait": 20}).json()
        assert changed["configs"]["shop/limits"]["version"] == 2
        assert 0.4 < time.monotonic() - started < 5


def test_applied_revisions_are_kept_and_their_propagation_measured(setup: tuple[ServerProcess, Fleet]) -> None:
    server, _fleet = setup
    reader = StreamReader(server.url, server.admin_token, {"instance": "i-0000"})
    try:
        assert reader.next()[0] == "snapshot"
        with server.client() as api:
            push(api, {"limit": 2}, 1)
            _event, data = reader.next()
            acked = api.post("/v1/instances/i-0000/applied",
                             json={"applied": [{"name": data["name"], "version": data["version"]}]})
            assert acked.json() == {"recorded": 1}
            shown = api.get("/v1/instances/i-0000").json()["applied"]
            assert shown["shop/limits"]["version"] == 2
            rings = api.get("/v1/instances", params={"config": "shop/limits"}).json()["items"]
            assert {i["id"]: i["assignment"]["applied"] for i in rings}["i-0000"] == 2
            text = api.get("/metrics").text
            count = next(line for line in text.splitlines()
                         if line.startswith("ringfence_propagation_seconds_count"))
            assert float(count.split()[-1]) >= 1
            assert "ringfence_open_streams 1.0" in text
            bad = api.post("/v1/instances/i-0000/applied", json={"applied": [{"name": "x"}]})
            assert bad.status_code == 422
        assert httpx.get(f"{server.url}/metrics").status_code == 401
    finally:
        reader.close()


@pytest.mark.postgres
def test_a_change_made_on_one_replica_reaches_streams_on_another(postgres_server: Any, tmp_path: Path) -> None:
    url = postgres_server.create_database()
    env = {"RINGFENCE_CONTROLLER_INTERVAL": "0.2"}
    with ServerProcess(url, log_path=tmp_path / "a.log", env=env) as first, \
            ServerProcess(url, log_path=tmp_path / "b.log", env=env) as second:
        Fleet(first.url, first.admin_token, 3, ["shop/*"]).register()
        with first.client() as api:
            api.put("/v1/policies/shop/*", json={"policy": {"stages": [{"name": "all"}]}, "message": "m"})
            api.put("/v1/configs/shop/limits", json={"value": 1, "message": "m"}).raise_for_status()
        reader = StreamReader(second.url, second.admin_token, {"instance": "i-0001"})
        try:
            assert reader.next()[1]["configs"]["shop/limits"]["version"] == 1
            with first.client() as api:
                sent = time.monotonic()
                push(api, 2, 1)
            event, data = reader.next()
            assert (event, data["version"]) == ("update", 2)
            assert time.monotonic() - sent < 2.0
        finally:
            reader.close()
