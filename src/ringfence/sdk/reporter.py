"""What the instance tells the server besides reading: health windows, heartbeats and apply acknowledgements.

On its own thread, so neither the application nor the stream thread ever waits
on a POST. At the end of each window it closes the window, samples the process
gauges and runs the health checks, refreshes the crash marker, and sends every
closed window and event in one `POST /v1/metrics` (see health.py and outbox.py).
Acknowledgements say which revision was applied and when, so the server
measures propagation instead of guessing it. Heartbeats keep a canary alive in
the server's eyes (a rollout fails a stage whose canary goes silent); a metrics
post counts as one, so a heartbeat is sent only when no metrics post got
through for `HEARTBEAT_SECONDS`. All of it is best effort: a failed send is
retried with the next, never raised.

Which failures are retried: transport errors, 5xx, 404 (a server that does not
know the instance yet, or has no metrics endpoint yet) and 429 (after its
`Retry-After`) keep the batch; any other 4xx drops it with a debug log, since a
body the server refuses will not get better. Logs name the status or the
exception class, never a header.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from ringfence.sdk.backoff import retry_after
from ringfence.sdk.health import Windows
from ringfence.sdk.marker import CrashMarker
from ringfence.sdk.outbox import Outbox
from ringfence.sdk.probes import HealthChecks, rss_mb

log = logging.getLogger("ringfence.sdk")
HEARTBEAT_SECONDS = 10.0  # well inside the server's silence threshold, so a live canary never looks dead
SEND_TIMEOUT = 5.0
FINAL_SEND_TIMEOUT = 1.0  # the last send, from close() or the interpreter's exit: bounded, as close() is
MAX_RETRY_AFTER = 300.0


class Reporter:
    def __init__(self, http: httpx.Client, instance_id: Callable[[], str], connected: Callable[[], bool],
                 stop: threading.Event, windows: Windows, outbox: Outbox, checks: HealthChecks,
                 marker: CrashMarker | None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._http = http
        self._clock = clock
        self._instance_id = instance_id
        self._connected = connected
        self._stop = stop
        self._windows = windows
        self._outbox = outbox
        self._checks = checks
        self._marker = marker
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[int, str]] = {}  # name -> (version, applied_at); the latest wins
        self._last_sent = float("-inf")  # monotonic time of the last metrics post the server accepted
        self._not_before = float("-inf")  # no metrics post before this (a 429's Retry-After)
        self.thread = threading.Thread(target=self._run, name="ringfence-reporter", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def applied(self, name: str, version: int) -> None:
        with self._lock:
            self._pending[name] = (version, dt.datetime.now(dt.UTC).isoformat())
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        now = self._clock
        next_beat = now() + HEARTBEAT_SECONDS
        while not self._stop.is_set():
            until_window_end = self._windows.next_end() - self._windows.wall()
            self._wake.wait(max(0.0, min(next_beat - now(), until_window_end)))
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self._windows.roll_if_due()
                self._collect(run_checks=True)
                if not self._connected():
                    # Nothing to beat for while the stream is down (reconnecting registers the instance
                    # anew); `max(next_beat, now)` here once made this loop spin without waiting.
                    next_beat = now() + HEARTBEAT_SECONDS
                    continue
                self._acknowledge()
                self._send(SEND_TIMEOUT)
                if now() >= next_beat:
                    next_beat = now() + HEARTBEAT_SECONDS
                    if now() - self._last_sent >= HEARTBEAT_SECONDS:
                        self._post("heartbeat", None)
            except Exception:  # a bug here must not end reporting for the life of the process
                log.exception("ringfence: unexpected error in the reporter; carrying on")
        self._finish()

    def _finish(self) -> None:
        """Stopping: the last window (closed by close()) and the stop event go out now if they can."""
        try:
            self._collect(run_checks=False)  # an application shutting down fails its checks: not news
            if self._connected():
                self._acknowledge()
                self._send(FINAL_SEND_TIMEOUT)
        except Exception:
            log.exception("ringfence: unexpected error in the reporter's last send")

    # --- health windows ----------------------------------------------------------------------
    def _collect(self, run_checks: bool) -> None:
        """Closed windows, with the gauges sampled now, into the outbox; the crash marker refreshed."""
        closed = self._windows.take_closed()
        if not closed:
            return
        gauges: dict[str, float] = {}
        rss = rss_mb()
        if rss is not None:
            gauges["rss_mb"] = rss
        if run_checks and self._checks:
            gauges.update(self._checks.run())
        for window in closed:
            self._outbox.add_window(window.to_wire(gauges))
        if self._marker is not None:
            self._marker.write(self._windows.revisions)

    def _send(self, timeout: float) -> None:
        while self._clock() >= self._not_before and (batch := self._outbox.batch()) is not None:
            status, wait = self._post_metrics(batch.body(self._instance_id()), timeout)
            if status is not None and 200 <= status < 300:
                self._outbox.sent(batch)
                self._last_sent = self._clock()
                continue
            if status is not None and 400 <= status < 500 and status not in (404, 429):
                log.debug("ringfence: the server refused %d windows and %d events with HTTP %d; dropping them",
                          len(batch.windows), len(batch.events), status)
                self._outbox.discard(batch)
            else:
                self._outbox.failed(batch)
                if status == 429:
                    self._not_before = self._clock() + min(wait if wait is not None else 10.0, MAX_RETRY_AFTER)
            return

    def _post_metrics(self, body: dict[str, Any], timeout: float) -> tuple[int | None, float | None]:
        try:
            response = self._http.post("/v1/metrics", json=body, timeout=timeout)
        except (httpx.HTTPError, RuntimeError) as error:  # RuntimeError: the client was closed under us
            log.debug("ringfence: metrics failed (%s)", type(error).__name__)
            return None, None
        if response.status_code >= 300:
            log.debug("ringfence: metrics answered HTTP %d", response.status_code)
        return response.status_code, retry_after(response.headers.get("Retry-After"))

    # --- acknowledgements and heartbeats -----------------------------------------------------------
    def _acknowledge(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        items = [{"name": n, "version": v, "applied_at": at} for n, (v, at) in sorted(pending.items())]
        if not self._post("applied", {"applied": items}):
            with self._lock:  # keep them for the next try, unless a newer one came meanwhile
                self._pending = {**pending, **self._pending}

    def _post(self, what: str, body: object) -> bool:
        try:
            response = self._http.post(f"/v1/instances/{self._instance_id()}/{what}", json=body, timeout=5.0)
        except (httpx.HTTPError, RuntimeError) as error:  # RuntimeError: the client was closed under us
            log.debug("ringfence: %s failed (%s)", what, type(error).__name__)
            return False
        if response.status_code >= 400:
            log.debug("ringfence: %s answered HTTP %d", what, response.status_code)
            return response.status_code < 500 and response.status_code != 404  # a 4xx body will not get better
        return True
