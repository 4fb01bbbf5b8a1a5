"""The SDK's read path: `get` and `value` from the snapshot's values and its memo of dotted paths."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from types import MappingProxyType

import pytest

import ringfence
from ringfence.sdk.snapshot import MAX_PATHS, MISSING, Snapshot, freeze, walk
from ringfence.sdk.transport import Message
from ringfence.testing.ports import free_port

DOC = {"timeouts": {"connect_ms": 250, "read_ms": None}, "hosts": ["a", {"name": "b"}], "a.b": 1, "7": "seven"}


def snapshot(value: object = DOC, name: str = "shop/http", version: int = 1) -> Snapshot:
    return Snapshot().replaced({name: {"version": version, "hash": f"h{version}", "value": value}}, version)


@pytest.mark.parametrize(("path", "expected"), [
    ("timeouts.connect_ms", 250),
    ("timeouts.read_ms", None),  # a null the config holds is a value, not "missing"
    ("hosts.0", "a"),
    ("hosts.1.name", "b"),
    ("7", "seven"),  # digits name a mapping's key when the value is a mapping
    ("", freeze(DOC)),  # no path: the whole config
    ("hosts.2", MISSING),
    ("hosts.x", MISSING),
    ("hosts.-1", MISSING),
    ("timeouts.connect_ms.more", MISSING),  # below a scalar
    ("a.b", MISSING),  # a dot always separates keys
    ("timeouts.absent", MISSING),
])
def test_walk(path: str, expected: object) -> None:
    assert walk(freeze(DOC), path) == expected


def test_values_mirror_the_configs_and_do_not_change_equality() -> None:
    first = snapshot()
    assert first.values == {"shop/http": first.configs["shop/http"].value}
    first.resolve("shop/http", "timeouts.connect_ms")
    assert first == snapshot(), "the memo is not part of a snapshot's identity"


def test_resolve_remembers_per_snapshot_so_nothing_goes_stale() -> None:
    first = snapshot()
    assert first.resolve("shop/http", "timeouts.connect_ms") == 250
    assert first.resolve("shop/http", "timeouts.absent") is MISSING
    assert first.paths == {"shop/http": {"timeouts.connect_ms": 250, "timeouts.absent": MISSING}}
    second = first.updated("shop/http", {"version": 2, "hash": "h2", "value": {"timeouts": {"connect_ms": 90}}}, 2)
    assert second.paths == {}, "a new snapshot starts an empty memo"
    assert second.resolve("shop/http", "timeouts.connect_ms") == 90
    assert first.resolve("shop/http", "timeouts.connect_ms") == 250


def test_resolve_does_not_remember_absent_configs_and_is_bounded() -> None:
    first = snapshot({"users": {str(i): i for i in range(MAX_PATHS + 10)}})
    assert first.resolve("shop/absent", "x") is MISSING
    assert "shop/absent" not in first.paths
    for i in range(MAX_PATHS + 10):
        assert first.resolve("shop/http", f"users.{i}") == i
    assert len(first.paths["shop/http"]) == MAX_PATHS, "paths made at run time cannot grow the memo for ever"


def test_racing_readers_share_one_memo() -> None:
    first = snapshot()
    barrier = threading.Barrier(8)
    results: list[object] = []

    def read() -> None:
        barrier.wait()
        results.extend(first.resolve("shop/http", f"hosts.{i % 2}") for i in range(200))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("a") == results.count(freeze({"name": "b"})) == 800
    assert first.paths == {"shop/http": {"hosts.0": "a", "hosts.1": freeze({"name": "b"})}}


@pytest.fixture
def client() -> Iterator[ringfence.Client]:
    # Nothing listens on the port: every read is served from the bootstrap.
    boot = {"shop/http": DOC, "shop/null": None}
    with ringfence.Client(f"http://127.0.0.1:{free_port()}", token="rf_x", service="shop", bootstrap=boot) as sdk:
        yield sdk


def test_client_get(client: ringfence.Client) -> None:
    limits = client.get("shop/http")
    assert isinstance(limits, MappingProxyType) and limits["hosts"] == ("a", MappingProxyType({"name": "b"}))
    assert client.get("shop/null", "fallback") is None, "a config whose value is null is not absent"
    assert client.get("shop/absent") is None
    assert client.get("shop/absent", "fallback") == "fallback"


def test_client_value(client: ringfence.Client) -> None:
    for _ in range(2):  # the first read walks, the second finds the memo: same answers
        assert client.value("shop/http", "timeouts.connect_ms", default=500) == 250
        assert client.value("shop/http", "timeouts.read_ms", default=500) is None
        assert client.value("shop/http", "timeouts.absent", default=500) == 500
        assert client.value("shop/http", "hosts.1.name") == "b"
        assert client.value("shop/absent", "x", default=3) == 3
        assert client.value("shop/http", "") == client.get("shop/http")


def test_client_reads_follow_a_new_snapshot(client: ringfence.Client) -> None:
    assert client.value("shop/http", "timeouts.connect_ms") == 250
    client._apply(Message("update", {"name": "shop/http", "version": 2, "hash": "h2", "seq": 5,
                                     "value": {"timeouts": {"connect_ms": 90}}}))
    assert client.value("shop/http", "timeouts.connect_ms") == 90
    assert client.get("shop/http") == {"timeouts": {"connect_ms": 90}}
    client._apply(Message("remove", {"name": "shop/http", "seq": 6}))
    assert client.get("shop/http", "gone") == "gone"
    assert client.value("shop/http", "timeouts.connect_ms", default=1) == 1
