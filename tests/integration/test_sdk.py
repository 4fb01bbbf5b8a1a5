"""ringfence.Client against a real server process: reads, pushes, outages, the disk cache, fork."""

from __future__ import annotations

import gc
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

import ringfence
from ringfence.sdk import reporter
from ringfence.sdk.transport import Message, StreamTransport, TransportFailure
from ringfence.testing.ports import free_port
from ringfence.testing.server import ServerProcess


@pytest.fixture(autouse=True)
def collect_garbage() -> Iterator[None]:
    # A socket an SDK client failed to close shows up here, in the test that leaked it.
    yield
    gc.collect()

ONE_STAGE = {"stages": [{"name": "all", "bake": {"min": "60s"}}]}  # a push assigns every instance at once
CONFIG = "shop/limits"


class Server:
    """The server process plus what the tests do to it: tokens and pushes."""

    def __init__(self, tmp_path: Path) -> None:
        self.process = ServerProcess(f"sqlite:///{tmp_path / 'ringfence.db'}", log_path=tmp_path / "server.log",
                                     env={"RINGFENCE_CONTROLLER_INTERVAL": "0.2"})
        self.version = 0

    def start(self) -> Server:
        self.process.start()
        return self

    def setup(self) -> str:
        with self.process.client() as api:
            api.put("/v1/policies/shop/*", json={"policy": ONE_STAGE, "message": "one stage"}).raise_for_status()
            created = api.post("/v1/tokens", json={"role": "sdk", "scopes": ["*"]})
            created.raise_for_status()
        self.push({"limit": 1, "timeouts": {"connect_ms": 250}})
        return str(created.json()["token"])

    def push(self, value: Any) -> None:
        headers = {"If-Match": str(self.version)} if self.version else {}
        with self.process.client() as api:
            api.put(f"/v1/configs/{CONFIG}", headers=headers, json={"value": value, "message": "m"}).raise_for_status()
        self.version += 1


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path).start()
    yield running
    running.process.stop()


@pytest.fixture
def token(server: Server, caplog: pytest.LogCaptureFixture) -> Iterator[str]:
    caplog.set_level(logging.DEBUG)
    secret = server.setup()
    yield secret
    assert secret not in caplog.text, "a token reached the logs"


def client(server: Server, token: str, cache_dir: Path | None = None, **kwargs: Any) -> ringfence.Client:
    return ringfence.Client(server.process.url, token=token, service="checkout", configs=["shop/*"],
                            region="eu-west", labels={"canary": "true"}, cache_dir=cache_dir, **kwargs)


def eventually(check: Callable[[], bool], timeout: float = 15.0) -> float:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, "condition not met in time"
        time.sleep(0.01)
    return time.monotonic() - start


def ready(sdk: ringfence.Client) -> bool:
    """Ready, and holding the config: an instance that joins during a rollout is placed at the next
    controller tick (0.2 s here), so its first snapshot may come before its assignment does."""
    if not sdk.wait_ready(timeout=5.0):
        return False
    eventually(lambda: sdk.get(CONFIG) is not None, timeout=3.0)
    return True


def test_reads_pushes_and_callbacks(server: Server, token: str, tmp_path: Path) -> None:
    seen: queue.Queue[tuple[str, Any, Any, str]] = queue.Queue()

    def broken(name: str, old: Any, new: Any) -> None:
        raise RuntimeError("a bug in the application's callback")

    with client(server, token, tmp_path / "cache") as sdk:
        sdk.on_change("shop/*", broken)
        sdk.on_change("shop/*", lambda name, old, new: seen.put((name, old, new, threading.current_thread().name)))
        assert ready(sdk)
        assert sdk.status == "ready"
        limits = sdk.get(CONFIG)
        assert isinstance(limits, MappingProxyType) and limits["limit"] == 1
        assert sdk.value(CONFIG, "timeouts.connect_ms", default=500) == 250
        assert sdk.value(CONFIG, "timeouts.missing", default=500) == 500
        assert sdk.get("shop/absent", "fallback") == "fallback"
        version, digest = sdk.revision(CONFIG) or (0, "")
        assert version == 1 and digest.startswith("sha256:")

        sent = time.monotonic()
        server.push({"limit": 2})
        eventually(lambda: sdk.get(CONFIG)["limit"] == 2, timeout=1.0)
        assert time.monotonic() - sent < 1.0, "a push reaches the client in well under a second"
        appeared = seen.get(timeout=2.0)
        assert appeared[:2] == (CONFIG, None) and appeared[2]["limit"] == 1, "None before: the config appeared"
        name, old, new, thread = seen.get(timeout=2.0)
        assert (name, old["limit"], dict(new)) == (CONFIG, 1, {"limit": 2})
        assert thread == "ringfence-callbacks", "callbacks run on their own worker, off the stream thread"

        server.push({"limit": 3})  # the broken callback raised before: delivery goes on
        assert seen.get(timeout=2.0)[2]["limit"] == 3
        assert sdk.revision(CONFIG) == (3, sdk.revision(CONFIG)[1])  # type: ignore[index]
    assert sdk.status == "closed"


def test_server_killed_then_restarted(server: Server, token: str, tmp_path: Path) -> None:
    with client(server, token, tmp_path / "cache") as sdk:
        assert ready(sdk)
        server.process.kill()
        eventually(lambda: sdk.status == "stale", timeout=5.0)
        assert sdk.get(CONFIG)["limit"] == 1, "keeps serving what it has"
        server.start()
        server.push({"limit": 2})
        eventually(lambda: sdk.status == "ready" and sdk.get(CONFIG)["limit"] == 2, timeout=20.0)


def test_started_while_server_down_serves_the_cache(server: Server, token: str, tmp_path: Path) -> None:
    with client(server, token, tmp_path / "cache") as first:
        assert ready(first)
    server.process.kill()
    with client(server, token, tmp_path / "cache") as sdk:
        assert sdk.status == "stale", "the disk cache is served at once"
        assert sdk.get(CONFIG)["limit"] == 1
        assert not sdk.wait_ready(0.3)
        server.start()
        server.push({"limit": 2})
        eventually(lambda: sdk.status == "ready" and sdk.get(CONFIG)["limit"] == 2, timeout=20.0)


def test_corrupt_cache_is_ignored(server: Server, token: str, tmp_path: Path,
                                  caplog: pytest.LogCaptureFixture) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "checkout.json").write_text('{"format": 1, "snapshot": {"configs": ')
    with client(server, token, cache) as sdk:
        assert sdk.status == "starting"
        assert ready(sdk)
        assert sdk.get(CONFIG)["limit"] == 1
    assert "corrupt" in caplog.text


def test_unwritable_cache_dir(server: Server, token: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with client(server, token, blocker / "cache") as sdk:
        assert ready(sdk)
        server.push({"limit": 2})
        eventually(lambda: sdk.get(CONFIG)["limit"] == 2, timeout=2.0)
        assert sdk.status == "ready"
    assert caplog.text.count("cannot write the config cache") == 1


def test_forked_child_sees_the_value_and_streams(server: Server, token: str) -> None:
    with client(server, token) as sdk:
        assert ready(sdk)
        parent_id = sdk.instance_id
        pid = os.fork()
        if pid == 0:  # the child: report through the exit code, never return into pytest
            code = 1
            try:
                if sdk.get(CONFIG)["limit"] == 1 and sdk.instance_id != parent_id and sdk.wait_ready(5.0):
                    code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0


def test_no_server_no_state_is_offline_and_bootstrap_is_stale(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with ringfence.Client(url, token="rf_x", service="checkout") as sdk:
        assert not sdk.wait_ready(0.5), "never raises for an absent server"
        eventually(lambda: sdk.status == "offline", timeout=5.0)
    with ringfence.Client(url, token="rf_x", service="checkout", bootstrap={CONFIG: {"limit": 7}}) as sdk:
        assert sdk.status == "stale"
        assert sdk.get(CONFIG)["limit"] == 7 and sdk.revision(CONFIG) == (0, "")


def test_a_server_that_is_down_is_no_reason_to_long_poll(caplog: pytest.LogCaptureFixture) -> None:
    # Connections refused say nothing about streaming: after an outage the whole fleet would
    # otherwise long-poll for a minute. Full-jitter backoff from 0.2 s fails 3+ times in 3 s.
    url = f"http://127.0.0.1:{free_port()}"
    with caplog.at_level(logging.WARNING, logger="ringfence.sdk"), \
            ringfence.Client(url, token="rf_x", service="checkout") as sdk:
        time.sleep(3.0)
        assert sdk.status == "offline"
    assert not [r for r in caplog.records if "long-polling" in r.getMessage()]


def test_falls_back_to_long_poll_when_streams_fail(server: Server, token: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(self: StreamTransport, have: str) -> Iterator[Message]:
        raise TransportFailure("stream: HTTP 502")  # a proxy that breaks every stream

    monkeypatch.setattr(StreamTransport, "messages", refused)
    with client(server, token) as sdk:
        assert ready(sdk), "three failed streams, then long-poll"
        server.push({"limit": 2})
        eventually(lambda: sdk.get(CONFIG)["limit"] == 2, timeout=2.0)
        assert sdk.status == "ready"


def test_heartbeats_and_apply_acknowledgements(server: Server, token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reporter, "HEARTBEAT_SECONDS", 0.2)
    with client(server, token) as sdk, server.process.client() as api:
        assert ready(sdk)

        def last_seen() -> str:
            return str(api.get(f"/v1/instances/{sdk.instance_id}").json()["last_seen"])

        first = last_seen()
        eventually(lambda: last_seen() > first, timeout=3.0)

        def applied() -> Any:
            return api.get(f"/v1/instances/{sdk.instance_id}").json()["applied"].get(CONFIG, {}).get("version")

        eventually(lambda: applied() == 1, timeout=3.0)
        server.push({"limit": 2})
        eventually(lambda: applied() == 2, timeout=3.0)
