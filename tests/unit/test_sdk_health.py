"""SDK health reporting: the window accumulator, tracked requests, the outbox, crash markers, checks, sending.

Time is moved by hand (`Clock`), never slept on; the few tests that make a real
`ringfence.Client` point it at a closed loopback port and never need the server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import ringfence
from ringfence.sdk import client as client_module
from ringfence.sdk import marker as marker_module
from ringfence.sdk.health import LE, Request, Windows
from ringfence.sdk.marker import CrashMarker
from ringfence.sdk.outbox import Outbox
from ringfence.sdk.probes import HealthChecks, rss_mb
from ringfence.sdk.reporter import Reporter
from ringfence.sdk.transport import Message
from ringfence.testing.ports import free_port


class Clock:
    """A hand-moved clock for wall, monotonic and CPU time at once."""

    def __init__(self, wall: float = 1_733_350_000.0) -> None:
        self.now = wall
        self.mono = 100.0
        self.cpu = 5.0

    def advance(self, seconds: float, cpu: float = 0.0) -> None:
        self.now += seconds
        self.mono += seconds
        self.cpu += cpu

    def windows(self, revisions: dict[str, int] | None = None, interval: float = 10.0) -> Windows:
        return Windows(interval, revisions or {}, wall=lambda: self.now, clock=lambda: self.mono,
                       cpu=lambda: self.cpu)

    def current(self, windows: Windows) -> dict[str, Any]:
        """The window being filled, as it would be sent (closed half a second later)."""
        self.advance(0.5)
        windows.roll()
        (closed,) = windows.take_closed()
        return closed.to_wire()


@pytest.fixture
def clock() -> Clock:
    return Clock()




# --- the histogram -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("latency", "bucket"), [
    (0.0, 0), (5.0, 0), (5.000001, 1), (10, 1), (10.5, 2), (25, 2), (99.99, 4), (100, 4), (100.01, 5),
    (9999.9, 10), (10000, 10), (10000.001, 11), (1e9, 11),
])
def test_buckets_are_upper_bounds_inclusive(clock: Clock, latency: float, bucket: int) -> None:
    windows = clock.windows()
    windows.observe(latency, False)
    windows.record(latency_ms=[latency])
    windows.record(requests=3, latency_ms=latency)
    counts = clock.current(windows)["latency_ms"]["counts"]
    assert len(counts) == len(LE) + 1
    assert counts[bucket] == 5 and sum(counts) == 5


def test_track_times_the_block_and_counts_errors(clock: Clock) -> None:
    windows = clock.windows()
    with Request(windows, "charge"):
        clock.advance(0.030)  # 30 ms

    def declined() -> None:
        with Request(windows, "charge"):
            clock.advance(0.002)
            raise ValueError("declined")

    with pytest.raises(ValueError, match="declined"):
        declined()
    with Request(windows, "charge") as request:
        request.mark_error()
    with pytest.raises(KeyboardInterrupt), Request(windows, "charge"):
        raise KeyboardInterrupt  # a cancellation ends the request, it does not fail it
    window = clock.current(windows)
    assert (window["requests"], window["errors"]) == (4, 2)
    assert window["latency_ms"]["counts"] == [3, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]


def test_record_with_a_list_a_single_latency_and_errors(clock: Clock) -> None:
    windows = clock.windows()
    windows.record(requests=120, errors=3, latency_ms=42.0)
    windows.record(errors=1, latency_ms=[1, 7, 300, 20_000])
    windows.record(requests=2, latency_ms=(4, 6))
    windows.record()  # nothing at all: fine
    window = clock.current(windows)
    assert (window["requests"], window["errors"]) == (126, 4)
    assert window["latency_ms"]["counts"] == [2, 2, 0, 120, 0, 0, 1, 0, 0, 0, 0, 1]


@pytest.mark.parametrize(("kwargs", "error", "says"), [
    ({"requests": 3, "latency_ms": [1, 2]}, ValueError, "2 values for 3 requests"),
    ({"requests": 2, "errors": 3, "latency_ms": 1.0}, ValueError, r"errors \(3\) > requests \(2\)"),
    ({"requests": 5}, TypeError, "give latency_ms for the 5 requests"),
    ({"latency_ms": 5.0}, TypeError, "give requests="),
    ({"requests": -1, "latency_ms": 1.0}, ValueError, "requests must be an integer >= 0"),
    ({"requests": 1.5, "latency_ms": 1.0}, ValueError, "requests must be an integer"),
    ({"requests": True, "latency_ms": 1.0}, ValueError, "requests must be an integer"),
    ({"requests": 1, "latency_ms": -2.0}, ValueError, "finite number of milliseconds"),
    ({"latency_ms": [1.0, math.nan]}, ValueError, "finite number of milliseconds"),
    ({"requests": 1, "latency_ms": math.inf}, ValueError, "finite number of milliseconds"),
    ({"requests": 1, "latency_ms": "5"}, TypeError, "not str"),
])
def test_record_says_what_is_wrong(clock: Clock, kwargs: dict[str, Any], error: type[Exception], says: str) -> None:
    windows = clock.windows()
    with pytest.raises(error, match=says):
        windows.record(**kwargs)
    assert clock.current(windows)["requests"] == 0, "a refused call records nothing"


def test_gauges_last_value_wins_per_window_and_reserved_names(clock: Clock) -> None:
    windows = clock.windows()
    windows.gauge("queue_depth", 17)
    windows.gauge("queue_depth", 4)
    for name in ("cpu", "rss_mb", "check:db"):
        with pytest.raises(ValueError, match="reported by the SDK itself"):
            windows.gauge(name, 1.0)
    for value in (math.nan, "3", True):
        with pytest.raises(ValueError, match="finite number"):
            windows.gauge("queue_depth", value)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="non-empty string"):
        windows.gauge("", 1.0)
    clock.advance(1.0)
    assert clock.current(windows)["gauges"]["queue_depth"] == 4.0
    clock.advance(1.0)
    assert "queue_depth" not in clock.current(windows)["gauges"], "a gauge belongs to the window it was set in"


def test_too_many_gauge_names_are_left_out_with_one_warning(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    windows = clock.windows()
    with caplog.at_level(logging.WARNING, "ringfence.sdk"):
        for i in range(60):
            windows.gauge(f"g{i}", i)
    windows.gauge("g0", 100)  # a name it already has is still set
    clock.advance(1.0)
    gauges = clock.current(windows)["gauges"]
    assert len(gauges) == 48 + 1 and gauges["g0"] == 100.0  # + cpu
    assert caplog.text.count("gauge names") == 1


# --- windows ------------------------------------------------------------------------------------------
def test_windows_end_on_the_wall_clock_grid_with_cpu(clock: Clock) -> None:
    clock.now = 1_733_350_003.5
    windows = clock.windows({"payments/limits": 3})
    assert windows.next_end() == 1_733_350_010.0
    clock.advance(6.0, cpu=1.5)
    assert not windows.roll_if_due()
    clock.advance(0.5, cpu=0.1)
    assert windows.roll_if_due()
    clock.advance(10.0, cpu=10.0)
    assert windows.roll_if_due()
    first, second = (w.to_wire() for w in windows.take_closed())
    assert (first["start"], first["end"]) == (1_733_350_003.5, 1_733_350_010.0), "the first window is partial"
    assert (second["start"], second["end"]) == (1_733_350_010.0, 1_733_350_020.0)
    assert first["gauges"]["cpu"] == pytest.approx(1.6 / 6.5, abs=1e-4)
    assert second["gauges"]["cpu"] == 1.0
    assert first["revisions"] == second["revisions"] == {"payments/limits": 3}
    assert set(first) == {"start", "end", "revisions", "requests", "errors", "latency_ms", "gauges"}
    assert first["latency_ms"]["le"] == [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]
    json.dumps(first)  # the wire form is plain JSON


def test_a_revision_change_splits_the_window(clock: Clock) -> None:
    windows = clock.windows({"payments/limits": 3})
    windows.observe(1.0, False)
    clock.advance(4.0)
    windows.roll({"payments/limits": 4})
    windows.observe(1.0, True)
    windows.observe(1.0, True)
    clock.advance(6.0)
    windows.roll_if_due()
    old, new = (w.to_wire() for w in windows.take_closed())
    assert (old["revisions"], old["requests"], old["errors"]) == ({"payments/limits": 3}, 1, 0)
    assert (new["revisions"], new["requests"], new["errors"]) == ({"payments/limits": 4}, 2, 2)
    assert old["end"] == new["start"] and new["end"] == windows.next_end() - 10.0


def test_windows_never_end_when_they_start(clock: Clock) -> None:
    windows = clock.windows({})
    windows.roll({"payments/limits": 3})  # no time, nothing recorded: retagged, not closed
    assert windows.take_closed() == [] and windows.revisions == {"payments/limits": 3}
    windows.observe(1.0, False)
    clock.now -= 5.0  # the wall clock stepped back
    windows.roll()
    (closed,) = windows.take_closed()
    assert 0 < closed.end - closed.start < 1e-6 and closed.requests == 1
    windows.observe(1.0, False)
    clock.advance(7200.0)  # the process was suspended for two hours
    windows.roll()
    (closed,) = windows.take_closed()
    assert closed.end - closed.start == pytest.approx(3600.0), "the server takes windows of at most an hour"


def test_many_threads_exact_counts_across_window_rolls(clock: Clock) -> None:
    windows = clock.windows()
    threads, per_thread = 8, 5_000
    start = threading.Barrier(threads + 1)
    stop = threading.Event()

    def work(n: int) -> None:
        start.wait()
        for i in range(per_thread):
            with Request(windows, "x") as request:
                if (i + n) % 10 == 0:
                    request.mark_error()
            windows.record(requests=1, errors=i % 2, latency_ms=30.0)

    def roller() -> None:
        start.wait()
        while not stop.is_set():
            clock.advance(0.5)
            windows.roll()
            time.sleep(0.001)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    rolling = threading.Thread(target=roller)
    for thread in [*workers, rolling]:
        thread.start()
    for thread in workers:
        thread.join()
    stop.set()
    rolling.join()
    windows.roll()
    closed = [w.to_wire() for w in windows.take_closed()]
    assert len(closed) > 1, "windows were rolled while requests were counted"
    assert sum(w["requests"] for w in closed) == threads * per_thread * 2
    assert sum(w["errors"] for w in closed) == threads * per_thread // 10 + threads * per_thread // 2
    assert all(sum(w["latency_ms"]["counts"]) == w["requests"] for w in closed)


def test_threads_that_ended_keep_their_counts_and_leave_no_shard(clock: Clock) -> None:
    windows = clock.windows()

    def one_request() -> None:
        windows.observe(1.0, True)

    for _ in range(20):  # a thread per request, as socketserver's ThreadingMixIn does
        thread = threading.Thread(target=one_request)
        thread.start()
        thread.join()
    windows.observe(1.0, False)  # this thread's shard stays: it lives on
    window = clock.current(windows)
    assert (window["requests"], window["errors"]) == (21, 20)
    assert len(windows._shards) == 1


# --- the decorator ------------------------------------------------------------------------------------
def test_decorator_sync_and_async(clock: Clock) -> None:
    windows = clock.windows()

    @Request(windows, "charge")
    def charge(amount: int) -> int:
        """Charge a card."""
        clock.advance(0.2)
        if amount < 0:
            raise ValueError("negative")
        return amount

    @Request(windows, "refund")
    async def refund(amount: int) -> int:
        await asyncio.sleep(0)
        clock.advance(0.007)
        if amount < 0:
            raise ValueError("negative")
        return amount

    assert charge(5) == 5 and charge.__name__ == "charge" and charge.__doc__ == "Charge a card."
    with pytest.raises(ValueError, match="negative"):
        charge(-1)
    assert asyncio.run(refund(3)) == 3
    with pytest.raises(ValueError, match="negative"):
        asyncio.run(refund(-3))
    window = clock.current(windows)
    assert (window["requests"], window["errors"]) == (4, 2)
    assert window["latency_ms"]["counts"] == [0, 2, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0]


def test_decorator_refuses_generators_and_non_functions(clock: Clock) -> None:
    windows = clock.windows()

    def numbers() -> Iterator[int]:
        yield 1

    with pytest.raises(TypeError, match="generator"):
        Request(windows, "x")(numbers)
    with pytest.raises(TypeError, match="decorates a function"):
        Request(windows, "x")(42)  # type: ignore[type-var]


# --- the outbox ---------------------------------------------------------------------------------------
def test_outbox_drops_the_oldest_and_counts_until_a_send_succeeds() -> None:
    box = Outbox(max_windows=3)
    box.add_event("start", 1.0, {"a/b": 1})
    for i in range(5):
        box.add_window({"n": i})
    batch = box.batch()
    assert batch is not None
    assert [w["n"] for w in batch.windows] == [2, 3, 4] and batch.dropped == 2
    assert batch.body("i-1") == {"instance": "i-1", "windows": batch.windows,
                                 "events": [{"at": 1.0, "event": "start", "revisions": {"a/b": 1}}], "dropped": 2}
    box.failed(batch)  # kept for the next try
    box.add_window({"n": 5})  # pushes out 2: three drops now
    retry = box.batch()
    assert retry is not None and [w["n"] for w in retry.windows] == [3, 4, 5] and retry.dropped == 3
    box.add_window({"n": 6})  # arrives while the batch is in flight, and pushes out 3, which is in it
    box.sent(retry)
    assert box.dropped == 0, "3 reached the server after all"
    last = box.batch()
    assert last is not None and [w["n"] for w in last.windows] == [6] and last.events == []
    box.sent(last)
    assert box.batch() is None and len(box) == 0


def test_outbox_a_lost_in_flight_window_is_counted_and_a_refused_batch_too() -> None:
    box = Outbox(max_windows=2)
    box.add_window({"n": 0})
    box.add_window({"n": 1})
    batch = box.batch()
    assert batch is not None
    box.add_window({"n": 2})  # pushes out 0, which is in flight
    box.failed(batch)
    assert box.dropped == 1, "the send failed: 0 is lost"
    refused = box.batch(max_windows=1)
    assert refused is not None and [w["n"] for w in refused.windows] == [1]
    box.discard(refused)
    assert box.dropped == 2
    rest = box.batch()
    assert rest is not None and [w["n"] for w in rest.windows] == [2] and rest.dropped == 2


def test_outbox_events_are_bounded() -> None:
    box = Outbox(max_events=3)
    for i in range(5):
        box.add_event("crash", float(i), {})
    batch = box.batch()
    assert batch is not None and [e["at"] for e in batch.events] == [2.0, 3.0, 4.0]


# --- the crash marker ---------------------------------------------------------------------------------
def test_crash_marker_left_behind_is_a_crash_with_the_old_revisions(tmp_path: Path) -> None:
    old = CrashMarker(tmp_path, "checkout", "checkout-1", wall=lambda: 1000.0)
    old.write({"payments/limits": 3})
    old.write({"payments/limits": 4})  # refreshed at each window
    assert [p.name for p in tmp_path.iterdir()] == ["checkout--checkout-1.running"], "no temp file left"
    new = CrashMarker(tmp_path, "checkout", "checkout-1", wall=lambda: 1030.0)
    assert new.previous() == marker_module.Crash(1000.0, {"payments/limits": 4})
    assert new.previous() is None, "reported once"
    assert CrashMarker(tmp_path, "checkout", "checkout-2").previous() is None, "per instance"


def test_clean_close_leaves_no_marker(tmp_path: Path) -> None:
    marker = CrashMarker(tmp_path, "checkout", "c-1")
    marker.write({})
    marker.close()
    marker.write({"a/b": 1})  # a refresh racing with close() must not bring it back
    assert list(tmp_path.iterdir()) == []
    assert CrashMarker(tmp_path, "checkout", "c-1").previous() is None


def test_old_unreadable_and_foreign_markers(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    CrashMarker(tmp_path, "checkout", "c-1", wall=lambda: 0.0).write({})
    assert CrashMarker(tmp_path, "checkout", "c-1", wall=lambda: 7200.0).previous() is None, "too old"
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "checkout--c-1.running").write_text("{torn")
    with caplog.at_level(logging.WARNING, "ringfence.sdk"):
        assert CrashMarker(tmp_path, "checkout", "c-1").previous() is None
    assert "unreadable" in caplog.text
    # Another live process on this host runs under the same id: not a crash, and not ours to touch.
    parent = CrashMarker(tmp_path, "checkout", "c-1")
    monkeypatch.setattr(os, "getpid", lambda: os.getppid())
    parent.write({})
    monkeypatch.undo()
    second = CrashMarker(tmp_path, "checkout", "c-1")
    with caplog.at_level(logging.WARNING, "ringfence.sdk"):
        assert second.previous() is None
    assert "give each process its own instance_id" in caplog.text
    second.write({"a/b": 9})
    second.close()
    assert json.loads((tmp_path / "checkout--c-1.running").read_text())["pid"] == os.getppid()


# --- health checks ------------------------------------------------------------------------------------
def test_health_checks_pass_fail_raise_and_time_out() -> None:
    release = threading.Event()
    calls: list[str] = []
    checks = HealthChecks()

    def hanging() -> bool:
        calls.append("hanging")
        release.wait(5.0)
        return True

    def broken() -> bool:
        raise ConnectionError("db down")

    checks.add(lambda: True, "ok", 1.0)
    checks.add(lambda: 0, "falsy", 1.0)
    checks.add(broken, None, 1.0)
    checks.add(hanging, None, 0.05)
    started = time.monotonic()
    assert checks.run() == {"check:ok": 1.0, "check:falsy": 0.0, "check:broken": 0.0, "check:hanging": 0.0}
    assert time.monotonic() - started < 1.0, "a hanging check cannot stall reporting"
    assert checks.run()["check:hanging"] == 0.0
    assert calls == ["hanging"], "a check still running is not started again"
    release.set()
    time.sleep(0.05)
    assert checks.run()["check:hanging"] == 1.0


@pytest.mark.parametrize(("args", "says"), [
    ((42, "x", 1.0), "must be a function"),
    ((lambda: True, None, 1.0), "give the check a name="),
    ((lambda: True, "x", 0), "timeout must be"),
])
def test_health_check_arguments(args: tuple[Any, ...], says: str) -> None:
    with pytest.raises((TypeError, ValueError), match=says):
        HealthChecks().add(*args)


def test_health_check_names_are_unique_and_coroutines_refused() -> None:
    checks = HealthChecks()
    checks.add(lambda: True, "db", 1.0)
    with pytest.raises(ValueError, match="registered already"):
        checks.add(lambda: True, "db", 1.0)

    async def ping() -> bool:
        return True

    with pytest.raises(TypeError, match="coroutine"):
        checks.add(ping, None, 1.0)


def test_rss_is_a_plausible_number_of_mib() -> None:
    rss = rss_mb()
    assert rss is not None and 5.0 < rss < 100_000.0


# --- the reporter's sending, driven by httpx.MockTransport ---------------------------------------------
TOKEN = "rf_secret_token_value"


class Server:
    """Answers /v1/metrics with the next status of a script (202 when the script is done)."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        if request.url.path != "/v1/metrics":
            return httpx.Response(200, json={})
        body = json.loads(request.content)
        self.bodies.append(body)
        status = self.statuses.pop(0) if self.statuses else 202
        return httpx.Response(status, json={"accepted": len(body["windows"])} if status == 202 else {},
                              headers={"Retry-After": "30"} if status == 429 else {})


@pytest.fixture
def reporting(clock: Clock, tmp_path: Path) -> Iterator[Callable[[Server], Reporter]]:
    made: list[httpx.Client] = []

    def make(server: Server) -> Reporter:
        http = httpx.Client(base_url="http://rf.test", headers={"Authorization": f"Bearer {TOKEN}"},
                            transport=httpx.MockTransport(server))
        made.append(http)
        windows = clock.windows({"payments/limits": 3})
        outbox = Outbox()
        outbox.add_event("start", clock.now, windows.revisions)
        marker = CrashMarker(tmp_path, "checkout", "i-1", wall=lambda: clock.now)
        return Reporter(http, lambda: "i-1", lambda: True, threading.Event(), windows, outbox, HealthChecks(),
                        marker, clock=lambda: clock.mono)

    yield make
    for http in made:
        http.close()


def tick(reporter: Reporter, clock: Clock, seconds: float = 10.0) -> None:
    """What the reporter thread does at a window's end."""
    clock.advance(seconds)
    reporter._windows.roll_if_due()
    reporter._collect(run_checks=True)
    reporter._send(1.0)


def test_reports_in_the_wire_format(reporting: Callable[[Server], Reporter], clock: Clock, tmp_path: Path,
                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = Server()
    reporter = reporting(server)
    reporter._checks.add(lambda: True, "db", 1.0)
    reporter._windows.record(requests=10, errors=1, latency_ms=12.0)
    reporter._windows.gauge("queue_depth", 17)
    tick(reporter, clock)
    (body,) = server.bodies
    assert set(body) == {"instance", "windows", "events", "dropped"}
    assert (body["instance"], body["dropped"]) == ("i-1", 0)
    assert body["events"] == [{"at": 1_733_350_000.0, "event": "start", "revisions": {"payments/limits": 3}}]
    (window,) = body["windows"]
    assert (window["requests"], window["errors"], window["revisions"]) == (10, 1, {"payments/limits": 3})
    assert window["latency_ms"] == {"le": list(LE), "counts": [0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0]}
    assert set(window["gauges"]) == {"queue_depth", "cpu", "rss_mb", "check:db"}
    assert window["gauges"]["check:db"] == 1.0 and window["end"] - window["start"] == 10.0
    marker = json.loads((tmp_path / "checkout--i-1.running").read_text())
    assert (marker["updated"], marker["revisions"]) == (clock.now, {"payments/limits": 3}), "refreshed"
    tick(reporter, clock)
    assert len(server.bodies) == 2 and server.bodies[1]["events"] == [], "sent once"
    assert server.bodies[1]["windows"][0]["requests"] == 0, "empty windows are sent too"
    assert TOKEN not in caplog.text


@pytest.mark.parametrize("status", [500, 503, 404, 429])
def test_failed_sends_keep_the_batch(reporting: Callable[[Server], Reporter], clock: Clock, status: int) -> None:
    server = Server(status)
    reporter = reporting(server)
    tick(reporter, clock)
    if status == 429:
        tick(reporter, clock)  # Retry-After: 30 s: nothing sent before
        assert len(server.bodies) == 1
        tick(reporter, clock, 25.0)
    else:
        tick(reporter, clock)
    first, second = server.bodies
    assert second["windows"][: len(first["windows"])] == first["windows"]
    assert second["events"] == first["events"] and second["dropped"] == 0


def test_a_refused_batch_is_dropped_and_counted(reporting: Callable[[Server], Reporter], clock: Clock) -> None:
    server = Server(400)
    reporter = reporting(server)
    tick(reporter, clock)
    tick(reporter, clock)
    first, second = server.bodies
    assert len(second["windows"]) == 1 and second["windows"][0]["start"] == first["windows"][0]["end"]
    assert second["events"] == [] and second["dropped"] == 1


def test_transport_errors_keep_the_batch_and_the_buffer_is_bounded(clock: Clock) -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"no (Bearer {TOKEN})", request=request)

    with httpx.Client(base_url="http://rf.test", transport=httpx.MockTransport(refused)) as http:
        windows = clock.windows()
        outbox = Outbox(max_windows=5)
        reporter = Reporter(http, lambda: "i-1", lambda: True, threading.Event(), windows, outbox, HealthChecks(),
                            None, clock=lambda: clock.mono)
        for _ in range(8):
            tick(reporter, clock)
    batch = outbox.batch()
    assert batch is not None and len(batch.windows) == 5 and batch.dropped == 3


def test_heartbeats_only_when_metrics_do_not_get_through(reporting: Callable[[Server], Reporter], clock: Clock,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from ringfence.sdk import reporter as reporter_module

    monkeypatch.setattr(reporter_module, "HEARTBEAT_SECONDS", 0.05)
    server = Server(*([404] * 1000))  # a server without /v1/metrics
    reporter = reporting(server)
    reporter._clock = time.monotonic  # a real thread, on real time
    reporter.start()
    try:
        deadline = time.monotonic() + 5.0
        while "/v1/instances/i-1/heartbeat" not in server.paths:
            assert time.monotonic() < deadline, "no heartbeat while metrics fail"
            reporter.wake()
            time.sleep(0.01)
        server.statuses.clear()  # now every metrics post is accepted
        monkeypatch.setattr(reporter_module, "HEARTBEAT_SECONDS", 1.0)
        reporter.wake()
        time.sleep(0.2)
        server.paths.clear()
        for _ in range(10):
            reporter._outbox.add_event("start", clock.now, {})
            reporter.wake()
            time.sleep(0.02)
        assert "/v1/metrics" in server.paths
        assert "/v1/instances/i-1/heartbeat" not in server.paths, "a metrics post is a heartbeat"
    finally:
        reporter._stop.set()
        reporter.wake()
        reporter.thread.join(2.0)


def test_a_disconnected_reporter_waits_instead_of_spinning(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    from ringfence.sdk import reporter as reporter_module

    monkeypatch.setattr(reporter_module, "HEARTBEAT_SECONDS", 0.02)
    asked: list[float] = []

    def connected() -> bool:
        asked.append(time.monotonic())
        return False

    with httpx.Client(base_url="http://rf.test", transport=httpx.MockTransport(Server())) as http:
        reporter = Reporter(http, lambda: "i-1", connected, threading.Event(), clock.windows(), Outbox(),
                            HealthChecks(), None)
        reporter.start()
        time.sleep(0.5)
        reporter._stop.set()
        reporter.wake()
        reporter.thread.join(2.0)
    assert len(asked) < 60, f"{len(asked)} turns of the loop in 0.5 s: it spins"


# --- the client's wiring -------------------------------------------------------------------------------
NOWHERE = f"http://127.0.0.1:{free_port()}"


def offline_client(tmp_path: Path | None = None, **kwargs: Any) -> ringfence.Client:
    """A client whose server never answers: everything below is memory and the cache directory."""
    logging.getLogger("ringfence.sdk").setLevel(logging.CRITICAL)
    return ringfence.Client(NOWHERE, token=TOKEN, service="checkout", cache_dir=tmp_path, **kwargs)


@pytest.fixture(autouse=True)
def restore_log_level() -> Iterator[None]:
    yield
    logging.getLogger("ringfence.sdk").setLevel(logging.NOTSET)


def events(client: ringfence.Client) -> list[tuple[str, dict[str, int]]]:
    batch = client._outbox.batch()
    return [] if batch is None else [(e["event"], e["revisions"]) for e in batch.events]


def snapshot(version: int) -> Message:
    return Message("snapshot", {"seq": version, "configs": {
        "payments/limits": {"version": version, "hash": f"h{version}", "value": {"limit": version}}}})


def test_client_track_record_gauge_and_a_window_per_revision() -> None:
    with offline_client(report_interval=3600) as client:
        with client.track("charge") as request:
            request.mark_error()
        client._apply(snapshot(3))
        with pytest.raises(RuntimeError), client.track("charge"):
            raise RuntimeError("declined")
        client.record(requests=2, latency_ms=[1.0, 2.0])
        client.gauge("queue_depth", 17)

        @client.track("refund")
        def refund() -> str:
            return "ok"

        assert refund() == "ok"
        client._apply(snapshot(3))  # the same revisions again: the window goes on
        client._apply(snapshot(4))
    # Closed: every window is in the outbox (never sent: there is no server), the last one cut short.
    batch = client._outbox.batch()
    assert batch is not None
    by_revisions: dict[str, list[int]] = {}
    for window in batch.windows:
        assert sum(window["latency_ms"]["counts"]) == window["requests"]
        totals = by_revisions.setdefault(json.dumps(window["revisions"]), [0, 0])
        totals[0] += window["requests"]
        totals[1] += window["errors"]
        if window["revisions"] == {"payments/limits": 3} and window["requests"]:
            assert window["gauges"]["queue_depth"] == 17.0
    assert by_revisions == {"{}": [1, 1], '{"payments/limits": 3}': [4, 1], '{"payments/limits": 4}': [0, 0]}
    assert [e["event"] for e in batch.events] == ["start", "stop"]
    with pytest.raises(TypeError, match="non-empty string"):
        client.track(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="report_interval"):
        offline_client(report_interval=0.5)


def test_client_start_crash_and_stop_events(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = offline_client(cache, instance_id="checkout-1", bootstrap={"payments/limits": {"limit": 1}})
    first._apply(snapshot(3))
    first._marker.write(first._windows.revisions)  # as at every window's end  # type: ignore[union-attr]
    assert events(first) == [("start", {})], "bootstrap values (version 0) are no revision"
    # The process "dies": its threads end, and nothing closes it (no close(), no exit handler).
    client_module._clients.discard(first)
    first._stop.set()
    first._backoff.stop()
    first._events.put(None)
    first._reporter.wake()
    for thread in (first._loop, first._beat, first._worker):
        thread.join(2.0)

    with offline_client(cache, instance_id="checkout-1") as second:
        assert events(second) == [("crash", {"payments/limits": 3}), ("start", {"payments/limits": 3})]
        second.health_check(lambda: True, name="db")
    assert events(second)[-1] == ("stop", {"payments/limits": 3})
    assert not any(p.suffix == ".running" for p in cache.iterdir()), "closed cleanly: no marker"
    with offline_client(cache, instance_id="checkout-1") as third:
        assert [e for e, _ in events(third)] == ["start"], "no crash after a clean close"
    with offline_client(instance_id="checkout-1") as no_cache:
        assert [e for e, _ in events(no_cache)] == ["start"], "no cache_dir: no crash detection"
