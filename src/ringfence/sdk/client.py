"""The client services embed: every config they read, in memory, kept current by one background thread.

Reads (`get`, `value`, `revision`) look up one immutable `Snapshot` held in one
attribute: no lock, no I/O, safe from any thread and from async code. `get` is
one dict subscript; `value` walks a dotted path once per snapshot and then finds
it in the snapshot's memo (see snapshot.py). One daemon
thread talks to the server (stream, or long-poll after repeated stream failures)
and swaps in a new snapshot per message; a second reports health windows,
heartbeats and acknowledgements; a third runs `on_change` callbacks, so a slow or
failing callback never holds up delivery.

Health (`track`, `record`, `gauge`) is recorded in memory, under a lock of the calling
thread's own, and sent by the reporter thread (see health.py, reporter.py); a change of the revisions
this instance runs closes the current window, so each window has one set.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType, TracebackType
from typing import Any, Literal, TypeVar

import httpx

from ringfence.core.names import check_pattern, matches
from ringfence.sdk.backoff import Backoff
from ringfence.sdk.cache import DiskCache, load_bootstrap
from ringfence.sdk.health import Request, Windows
from ringfence.sdk.marker import CrashMarker
from ringfence.sdk.outbox import Outbox
from ringfence.sdk.probes import CHECK_TIMEOUT, HealthChecks
from ringfence.sdk.reporter import FINAL_SEND_TIMEOUT, Reporter
from ringfence.sdk.snapshot import MISSING, Entry, Snapshot
from ringfence.sdk.transport import Identity, Message, PollTransport, StreamTransport, TransportFailure

log = logging.getLogger("ringfence.sdk")

Status = Literal["starting", "ready", "stale", "offline", "closed"]
Callback = Callable[[str, Any, Any], object]
Check = TypeVar("Check", bound=Callable[[], object])

STREAM_FAILURES_BEFORE_POLL = 3
RETRY_STREAM_AFTER = 60.0  # seconds of long-polling before trying to stream again
_SDK_VERSION = "ringfence-python"

_clients: weakref.WeakSet[Client] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # Threads do not survive fork(): each client restarts its own in the child, with the parent's
    # snapshot already in memory so the child serves it at once.
    for client in list(_clients):
        client._restart_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@atexit.register
def _at_exit() -> None:
    # A process that exits normally without close() has stopped, not crashed: say so (stop event, last
    # window, crash marker removed), waiting for the reporter's last send but not for the other threads.
    clients = list(_clients)
    for client in clients:
        client._shutdown()
    deadline = time.monotonic() + FINAL_SEND_TIMEOUT + 0.5
    for client in clients:
        client._beat.join(max(0.0, deadline - time.monotonic()))


def _revisions(snapshot: Snapshot) -> dict[str, int]:
    """`{config: version}` of the revisions in force (bootstrap values, version 0, are no revision)."""
    return {name: e.version for name, e in snapshot.configs.items() if e.version > 0}


class Client:
    """Reads configs from a ringfence server. See docs/stream.md for the protocol underneath."""

    def __init__(
        self, url: str, *, token: str, service: str, labels: Mapping[str, str] | None = None, region: str = "",
        zone: str = "", configs: list[str] | tuple[str, ...] = ("*",), cache_dir: str | os.PathLike[str] | None = None,
        instance_id: str | None = None, bootstrap: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        report_interval: float = 10.0,
    ) -> None:
        if isinstance(report_interval, bool) or not isinstance(report_interval, int | float) or not (
                1.0 <= report_interval <= 3600.0):
            raise ValueError(f"report_interval must be between 1 and 3600 seconds, not {report_interval!r}")
        self._url = url.rstrip("/")
        self._token = token
        self._patterns = tuple(check_pattern(p) for p in configs) or ("*",)
        self._fixed_id = instance_id
        self._identity = Identity(instance_id or self._default_id(service), service, region, zone,
                                  dict(labels or {}), self._patterns)
        self._cache = DiskCache(cache_dir, self._url, service) if cache_dir is not None else None
        self._callbacks: list[tuple[str, Callback]] = []
        self._snapshot = Snapshot()
        self._status: Status = "starting"
        self._has_state = False
        self._closed = False
        self._status_lock = threading.Lock()
        self._start_from_disk(bootstrap)
        self._windows = Windows(float(report_interval), _revisions(self._snapshot))
        self._outbox = Outbox()
        self._checks = HealthChecks()
        self._begin_health()
        self._start_threads()
        _clients.add(self)

    # --- reads: memory only -----------------------------------------------------------
    def get(self, name: str, default: Any = None) -> Any:
        """The value of config `name` (read-only: mappings are MappingProxyType, lists are tuples)."""
        # One attribute read and one dict subscript: a hit costs no more than that (try is free when
        # nothing is raised), a miss pays for the KeyError. See bench/sdk_read.py.
        try:
            return self._snapshot.values[name]
        except KeyError:
            return default

    def value(self, name: str, path: str, default: Any = None) -> Any:
        """A value inside a config by dotted path (`"timeouts.connect_ms"`; digits index lists)."""
        snapshot = self._snapshot  # one snapshot for the whole read
        try:
            found = snapshot.paths[name][path]  # walked before in this snapshot
        except KeyError:
            found = snapshot.resolve(name, path)
        return default if found is MISSING else found

    def revision(self, name: str) -> tuple[int, str] | None:
        """(version, hash) of the revision this instance runs; version 0 means it came from `bootstrap`."""
        found = self._snapshot.configs.get(name)
        return None if found is None else (found.version, found.hash)

    @property
    def status(self) -> Status:
        return self._status

    @property
    def instance_id(self) -> str:
        return self._identity.instance_id

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the server has answered; False on timeout. Never raises for a slow or absent server."""
        self._ready.wait(timeout)
        return self._status == "ready"

    # --- health: memory only, any thread ---------------------------------------------------
    def track(self, name: str) -> Request:
        """Time one request: `with client.track("charge") as request:`; an exception in the block (or
        `request.mark_error()`) makes it an error. Also a decorator, for sync and async functions."""
        if type(name) is not str or not name:
            raise TypeError(f"track(): name must be a non-empty string, not {name!r}")
        return Request(self._windows, name)

    def record(self, requests: int | None = None, errors: int = 0,
               latency_ms: float | Iterable[float] | None = None) -> None:
        """Requests counted by your own code, added to the current window.

        `latency_ms` is a list of one latency per request (`requests` may then be left out), or one
        number for all of them (e.g. their mean): the window's histogram counts every request.
        """
        self._windows.record(requests, errors, latency_ms)

    def gauge(self, name: str, value: float) -> None:
        """Set a gauge for the current window; the last value set in a window is the one reported."""
        self._windows.gauge(name, value)

    def health_check(self, fn: Check, name: str | None = None, *, timeout: float = CHECK_TIMEOUT) -> Check:
        """Run `fn()` at the end of every window on an SDK thread: the gauge `check:<name>` is 1.0 when it
        returns a true value in time, 0.0 when it returns a false one, raises, or takes over `timeout`
        seconds. Returns `fn`, so it can be used as a decorator."""
        self._checks.add(fn, name, timeout)
        return fn

    def on_change(self, pattern: str, callback: Callback) -> None:
        """Call `callback(name, old, new)` on a worker thread when a config matching `pattern` changes.

        `old`/`new` are None when the config appears/disappears. Exceptions are logged, never raised.
        """
        self._callbacks.append((check_pattern(pattern), callback))

    def close(self) -> None:
        if not self._shutdown():
            return
        for thread in (self._loop, self._beat, self._worker):
            if thread is not threading.current_thread():
                thread.join(1.0)

    def _shutdown(self) -> bool:
        """Stop every thread without waiting for them; False if it was done already."""
        with self._status_lock:
            if self._closed:
                return False
            self._closed = True
            self._status = "closed"
        # A clean stop: the last window, cut short, and the stop event, for the reporter's last send.
        self._windows.roll()
        self._outbox.add_event("stop", self._windows.wall(), self._windows.revisions)
        if self._marker is not None:
            self._marker.close()
        self._stop.set()
        self._backoff.stop()
        self._events.put(None)
        self._reporter.wake()
        # The stream thread closes the HTTP client itself when it leaves (at the latest at the
        # server's next 15 s ping): closed from here, under a blocked read, the stream's socket
        # would be left to the garbage collector.
        _clients.discard(self)
        return True

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:  # no token: reprs end up in logs
        return f"<ringfence.Client {self._url} instance={self.instance_id!r} status={self._status}>"

    # --- start-up -----------------------------------------------------------------------
    @staticmethod
    def _default_id(service: str) -> str:
        return f"{service}-{socket.gethostname()}-{os.getpid()}"

    def _start_from_disk(self, bootstrap: str | os.PathLike[str] | Mapping[str, Any] | None) -> None:
        loaded = self._cache.load() if self._cache is not None else None
        if loaded is None and bootstrap is not None:
            loaded = load_bootstrap(bootstrap)
        if loaded is not None:
            self._snapshot = self._within(loaded)
            self._has_state = True
            self._status = "stale"  # something to serve, not yet confirmed by the server

    def _begin_health(self) -> None:
        """The crash a previous process left (when there is a cache directory), then this start."""
        revisions = self._windows.revisions
        self._marker = None
        if self._cache is not None:
            self._marker = CrashMarker(self._cache.directory, self._identity.service, self.instance_id)
            crash = self._marker.previous()
            if crash is not None:
                log.warning("ringfence: the previous process of instance %s stopped without closing; reporting a "
                            "crash", self.instance_id)
                self._outbox.add_event("crash", crash.at, crash.revisions)
            self._marker.write(revisions)
        self._outbox.add_event("start", self._windows.wall(), revisions)

    def _within(self, snapshot: Snapshot) -> Snapshot:
        """Only the configs this client reads (a cache or bootstrap may hold more)."""
        kept = {n: e for n, e in snapshot.configs.items() if any(matches(p, n) for p in self._patterns)}
        return Snapshot(MappingProxyType(kept), snapshot.seq)

    def _start_threads(self) -> None:
        self._http = httpx.Client(base_url=self._url, headers={"Authorization": f"Bearer {self._token}",
                                                               "User-Agent": _SDK_VERSION})
        self._stream = StreamTransport(self._http, self._identity)
        self._poll = PollTransport(self._http, self._identity, _SDK_VERSION)
        self._backoff = Backoff()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._connected = False
        self._events: queue.Queue[tuple[Callback, str, Any, Any] | None] = queue.Queue()
        self._loop = threading.Thread(target=self._run, name="ringfence-stream", daemon=True)
        self._reporter = Reporter(self._http, lambda: self.instance_id, lambda: self._connected, self._stop,
                                  self._windows, self._outbox, self._checks, self._marker)
        self._beat = self._reporter.thread
        self._worker = threading.Thread(target=self._run_callbacks, name="ringfence-callbacks", daemon=True)
        self._loop.start()
        self._reporter.start()
        self._worker.start()

    def _restart_after_fork(self) -> None:
        if self._closed:
            return
        if self._fixed_id is None:
            ident = self._identity
            self._identity = Identity(self._default_id(ident.service), ident.service, ident.region, ident.zone,
                                      ident.labels, ident.configs)
        # The parent's connections belong to the parent: abandon them (closing could disturb its sockets).
        # A lock held by a parent thread at fork time would stay held for ever in the child: start afresh.
        self._status_lock = threading.Lock()
        self._status = "stale" if self._has_state else "starting"
        # The child is a new instance: its own windows and events, its own crash marker (none when it
        # shares the parent's fixed id: the marker is the parent's).
        self._windows.reset(_revisions(self._snapshot))
        self._outbox.reset()
        self._checks.reset()
        if self._fixed_id is None:
            self._begin_health()
        else:
            self._marker = None
            self._outbox.add_event("start", self._windows.wall(), self._windows.revisions)
        self._start_threads()

    # --- the background loop ----------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._serve()
        finally:
            self._beat.join(5.0)  # the reporter shares the HTTP client: let it finish its request
            self._http.close()

    def _serve(self) -> None:
        failures = 0
        polling_until = 0.0
        while not self._stop.is_set():
            polling = time.monotonic() < polling_until
            try:
                have = self._snapshot.have()
                # Until the server has answered since it was lost, a long-poll must not wait for a change:
                # when nothing changed it would hold the answer for 25 s, and the client would say `stale`
                # (and send no heartbeats) all that time, connected and current.
                messages = (self._poll.messages(have, wait=None if self._connected else 0.0) if polling
                            else self._stream.messages(have))
                for message in messages:
                    if self._stop.is_set():
                        return
                    self._apply(message)
                    failures = 0
                    self._backoff.reset()
                if polling:
                    continue  # one long-poll answered; ask again at once
            except TransportFailure as failure:
                if self._stop.is_set():
                    return
                self._lost(str(failure))
                # Only a stream that fails where a request gets through (a proxy that buffers or cuts
                # streams) is a reason to long-poll; a server that is down or restarting is not.
                if not polling and not failure.unreachable:
                    failures += 1
                    if failures >= STREAM_FAILURES_BEFORE_POLL:
                        log.warning("ringfence: streaming failed %d times in a row; long-polling for %.0f s",
                                    failures, RETRY_STREAM_AFTER)
                        polling_until = time.monotonic() + RETRY_STREAM_AFTER
                        failures = 0
                # A refused token will not fix itself in a second: wait at least 30 s between such tries.
                floor = failure.retry_after if failure.retry_after is not None else (30.0 if failure.fatal else None)
                self._backoff.wait(floor)
            except Exception:  # a bug must not kill the thread that keeps configs current
                if self._stop.is_set():
                    return  # close() pulled the HTTP client from under a request: expected
                log.exception("ringfence: unexpected error in the stream loop; reconnecting")
                self._lost("unexpected error")
                self._backoff.wait()

    def _set_status(self, status: Status) -> None:
        # Under a lock so that a status set by the loop thread can never overwrite "closed".
        with self._status_lock:
            if not self._closed:
                self._status = status

    def _lost(self, why: str) -> None:
        self._connected = False
        if self._status == "ready" or self._status == "starting":
            log.warning("ringfence: lost the server (%s); serving what this instance has", why)
        self._set_status("stale" if self._has_state else "offline")
        self._ready.clear()

    def _apply(self, message: Message) -> None:
        old = self._snapshot
        data = message.data
        seq = int(data.get("seq", 0))
        if message.kind == "snapshot":
            new = self._within(old.replaced(data.get("configs", {}), seq))
        elif message.kind == "update":
            name = str(data.get("name"))
            if not any(matches(p, name) for p in self._patterns):
                return
            new = old.updated(name, data, seq)
        else:
            new = old.removed(str(data.get("name")), seq)
        self._snapshot = new  # the one atomic swap readers see
        revisions = _revisions(new)
        if revisions != self._windows.revisions:
            self._windows.roll(revisions)  # each window runs one set of revisions
            self._reporter.wake()
        if self._cache is not None and (new.configs != old.configs or not self._has_state):
            # A long-poll that timed out repeats the same state every 25 s: no need to fsync it again.
            self._cache.save(new, self.instance_id)
        if message.kind == "snapshot":
            self._has_state = True
            self._connected = True
            self._set_status("ready")
            self._ready.set()
            self._reporter.wake()  # acknowledgements held while disconnected can go now
        for name, item in new.configs.items():
            before = old.configs.get(name)
            if item.version > 0 and (before is None or before.version != item.version):
                self._reporter.applied(name, item.version)
        self._notify(old.configs, new.configs)

    def _notify(self, old: Mapping[str, Entry], new: Mapping[str, Entry]) -> None:
        if not self._callbacks:
            return
        for name in sorted(old.keys() | new.keys()):
            before, after = old.get(name), new.get(name)
            if before is not None and after is not None and (before.version, before.hash) == (after.version,
                                                                                              after.hash):
                continue
            for pattern, callback in list(self._callbacks):
                if matches(pattern, name):
                    self._events.put((callback, name, before and before.value, after and after.value))

    def _run_callbacks(self) -> None:
        while (item := self._events.get()) is not None:
            callback, name, old, new = item
            try:
                callback(name, old, new)
            except Exception:
                log.exception("ringfence: an on_change callback for %s raised; carrying on", name)
