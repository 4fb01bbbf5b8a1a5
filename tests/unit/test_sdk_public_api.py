"""The SDK's public surface, pinned, and its pure parts: SSE parsing, backoff, the disk cache."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType

import httpx
import pytest

import ringfence
from ringfence.sdk import sse
from ringfence.sdk.backoff import Backoff, retry_after
from ringfence.sdk.cache import DiskCache, load_bootstrap
from ringfence.sdk.snapshot import Snapshot, freeze
from ringfence.sdk.transport import Identity, PollTransport, StreamTransport, TransportFailure


# --- the public surface (like httpx's test_exported_members) ------------------------------------
def test_exported_members() -> None:
    assert sorted(ringfence.__all__) == ["Client", "__version__"]
    for name in ringfence.__all__:
        assert getattr(ringfence, name) is not None


def test_client_public_methods() -> None:
    public = {name for name in dir(ringfence.Client) if not name.startswith("_")}
    assert public == {"get", "value", "revision", "on_change", "status", "wait_ready", "close", "instance_id",
                      "track", "record", "gauge", "health_check"}
    assert hasattr(ringfence.Client, "__enter__") and hasattr(ringfence.Client, "__exit__")


# --- SSE -------------------------------------------------------------------------------------------
def test_sse_parses_events_ids_and_skips_comments() -> None:
    lines = ["id: 42", "event: snapshot", 'data: {"seq": 42}', "", ": ping", "",
             "event: update", "data: a", "data: b", "", "data:no-space", "", "event: empty", ""]
    events = list(sse.parse(lines))
    assert events == [sse.Event("snapshot", '{"seq": 42}', "42"), sse.Event("update", "a\nb", "42"),
                      sse.Event("message", "no-space", "42")]


def test_sse_drops_an_unterminated_event() -> None:
    assert list(sse.parse(["event: update", "data: x"])) == []


# --- backoff ---------------------------------------------------------------------------------------
def test_backoff_full_jitter_grows_to_the_cap() -> None:
    backoff = Backoff(base=0.5, cap=8.0, rng=random.Random(7), sleep=lambda _: None)
    delays = [backoff.delay() for _ in range(40)]
    for attempt, delay in enumerate(delays):
        assert 0 <= delay <= min(8.0, 0.5 * 2**attempt)
    assert max(delays[10:]) > 4.0, "capped, but still spread up to the cap"
    assert len({round(d, 6) for d in delays}) == len(delays), "full jitter: no two waits alike"


def test_backoff_honours_retry_after_and_resets() -> None:
    slept: list[float] = []
    backoff = Backoff(base=0.1, cap=1.0, rng=random.Random(1), sleep=slept.append)
    assert backoff.wait(retry_after=5.0) >= 5.0
    assert slept == [pytest.approx(5.0)]
    assert backoff.delay(retry_after=10_000) == 300.0, "an absurd Retry-After is bounded"
    backoff.reset()
    assert backoff.delay() <= 0.1


@pytest.mark.parametrize(("header", "seconds"), [("5", 5.0), (" 2.5 ", 2.5), ("-1", None), ("soon", None),
                                                 (None, None)])
def test_retry_after_header(header: str | None, seconds: float | None) -> None:
    assert retry_after(header) == seconds


# --- snapshot --------------------------------------------------------------------------------------
def test_values_are_frozen_and_snapshots_complete() -> None:
    value = freeze({"a": {"b": [1, {"c": 2}]}})
    assert isinstance(value, MappingProxyType) and isinstance(value["a"], MappingProxyType)
    assert value["a"]["b"] == (1, MappingProxyType({"c": 2}))
    with pytest.raises(TypeError):
        value["a"]["x"] = 1  # type: ignore[index]
    first = Snapshot().replaced({"x/a": {"version": 1, "hash": "h1", "value": 1},
                                 "x/b": {"version": 2, "hash": "h2", "value": 2}}, 10)
    assert first.have() == "x/a@1,x/b@2"
    second = first.replaced({"x/a": {"version": 1, "hash": "h1"}}, 11)  # no value: the one we have
    assert dict(second.configs) == {"x/a": first.configs["x/a"]}, "a snapshot drops what it does not list"


# --- the disk cache --------------------------------------------------------------------------------
SNAP = Snapshot().replaced({"shop/limits": {"version": 3, "hash": "sha256:x", "value": {"limit": [1, 2]}}}, 9)


def test_cache_round_trip(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path / "c", "http://h:1/", "checkout")
    assert cache.load() is None
    assert cache.save(SNAP, "checkout-host-1")
    loaded = DiskCache(tmp_path / "c", "http://h:1", "checkout").load()
    assert loaded == SNAP
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["checkout.json"], "no temp file left behind"


def test_corrupt_cache_is_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = DiskCache(tmp_path, "http://h:1", "checkout")
    cache.save(SNAP, "i")
    doc = json.loads(cache.path.read_text())
    doc["snapshot"]["configs"]["shop/limits"]["value"] = {"limit": 999}  # tampered: checksum no longer matches
    cache.path.write_text(json.dumps(doc))
    with caplog.at_level(logging.WARNING, "ringfence.sdk"):
        assert cache.load() is None
    assert "corrupt" in caplog.text
    cache.path.write_text("{not json")
    assert cache.load() is None


def test_foreign_cache_is_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    DiskCache(tmp_path, "http://other:1", "checkout").save(SNAP, "i")
    with caplog.at_level(logging.WARNING, "ringfence.sdk"):
        assert DiskCache(tmp_path, "http://h:1", "checkout").load() is None
    assert "another server" in caplog.text


def test_unwritable_cache_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    cache = DiskCache(blocker / "sub", "http://h:1", "checkout")  # a directory under a file cannot exist
    with caplog.at_level(logging.WARNING, "ringfence.sdk"):
        assert not cache.save(SNAP, "i")
        assert not cache.save(SNAP, "i")
    assert caplog.text.count("cannot write") == 1


# --- the transport seam, driven by httpx.MockTransport ------------------------------------------------
TOKEN = "rf_secret_token_value"
IDENTITY = Identity("checkout-h-1", "checkout", "eu-west", "", {"canary": "true"}, ("shop/*",))


def _http(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.Client:
    return httpx.Client(base_url="http://rf.test", headers={"Authorization": f"Bearer {TOKEN}"},
                        transport=httpx.MockTransport(handler))


def test_stream_transport_registers_sends_have_and_yields_messages() -> None:
    seen: list[httpx.Request] = []
    body = ('id: 7\nevent: snapshot\ndata: {"seq": 7, "configs": {}}\n\n: ping\n\n'
            'event: future-kind\ndata: {}\n\nid: 8\nevent: remove\ndata: {"seq": 8, "name": "shop/a"}\n\n')

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text=body, headers={"Content-Type": "text/event-stream"})

    with _http(handler) as http:
        stream = StreamTransport(http, IDENTITY).messages("shop/a@3")
        assert [m.kind for m in (next(stream), next(stream))] == ["snapshot", "remove"]
        with pytest.raises(TransportFailure, match="closed the connection"):
            next(stream)
    params = seen[0].url.params
    assert (params["instance"], params["service"], params["have"], params["label"]) == (
        "checkout-h-1", "checkout", "shop/a@3", "canary=true")
    assert TOKEN not in str(seen[0].url), "the token goes in the Authorization header only"


def test_transport_failures_carry_retry_after_and_never_the_token() -> None:
    def busy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": "5"}, json={"title": "Too many streams"})

    with _http(busy) as http, pytest.raises(TransportFailure) as failure:
        next(StreamTransport(http, IDENTITY).messages(""))
    assert failure.value.retry_after == 5.0 and not failure.value.fatal
    assert TOKEN not in str(failure.value)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect (Bearer {TOKEN})", request=request)

    with _http(refused) as http, pytest.raises(TransportFailure) as failure:
        next(StreamTransport(http, IDENTITY).messages(""))
    assert TOKEN not in str(failure.value), "httpx's message is not passed on"


def test_poll_transport_registers_once_then_polls() -> None:
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        if request.method == "POST":
            assert json.loads(request.content)["id"] == "checkout-h-1"
            return httpx.Response(200, json={})
        return httpx.Response(200, json={"seq": 3, "configs": {}})

    with _http(handler) as http:
        poll = PollTransport(http, IDENTITY, "test", wait=0)
        assert [m.kind for m in poll.messages("")] == ["snapshot"]
        assert [m.kind for m in poll.messages("")] == ["snapshot"]
    assert paths == ["/v1/instances", "/v1/poll", "/v1/poll"]


@pytest.mark.parametrize("data", [
    '{"seq": 7}',                                                     # a snapshot without configs: "run nothing"
    '{"seq": "7", "configs": {}}',                                    # a seq that is not a number
    '{"seq": 7, "configs": {"shop/limits": {"version": "two"}}}',     # a config without a version
    '{"seq": 7, "configs": {"shop/limits": 3}}',
    "[1, 2]",
])
def test_a_snapshot_of_the_wrong_shape_is_a_failure_not_a_state(data: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=f"event: snapshot\ndata: {data}\n\n",
                              headers={"Content-Type": "text/event-stream"})

    with _http(handler) as http, pytest.raises(TransportFailure, match="the server sent a snapshot"):
        next(StreamTransport(http, IDENTITY).messages(""))


@pytest.mark.parametrize("event", ['update\ndata: {"seq": 8, "name": "shop/a", "version": 2}',  # no value
                                   'update\ndata: {"seq": 8, "version": 2, "value": 1}',       # no name
                                   'remove\ndata: {"seq": 8}'])
def test_an_update_or_remove_of_the_wrong_shape_is_a_failure(event: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=f"event: {event}\n\n", headers={"Content-Type": "text/event-stream"})

    with _http(handler) as http, pytest.raises(TransportFailure, match="the server sent"):
        next(StreamTransport(http, IDENTITY).messages(""))


def test_a_gateways_json_answer_to_a_poll_is_a_failure() -> None:
    def gateway(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json={})
        return httpx.Response(200, json={"message": "upstream unavailable"})

    with _http(gateway) as http, pytest.raises(TransportFailure, match="poll: the server sent a snapshot with no"):
        next(PollTransport(http, IDENTITY, "test").messages(""))


def test_a_poll_can_be_told_not_to_wait() -> None:
    waits: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        waits.append(request.url.params.get("wait", ""))
        return httpx.Response(200, json={"seq": 3, "configs": {}})

    with _http(handler) as http:
        poll = PollTransport(http, IDENTITY, "test", wait=25)
        next(poll.messages(""))
        next(poll.messages("", wait=0))
    assert waits == ["", "25", "0"], "register (no wait), then a waiting poll, then one that asks at once"


def test_bootstrap_from_a_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = tmp_path / "bootstrap.json"
    source.write_text('{"shop/limits": {"limit": 7}}')
    loaded = load_bootstrap(source)
    assert loaded is not None and loaded.configs["shop/limits"].value["limit"] == 7
    assert loaded.have() == "", "bootstrap values are version 0: the server must send everything"
    source.write_text("[1, 2]")
    with caplog.at_level(logging.WARNING, "ringfence.sdk"):
        assert load_bootstrap(source) is None
    assert "bootstrap" in caplog.text
