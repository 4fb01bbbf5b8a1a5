"""What the instance tells the server besides reading: heartbeats and apply acknowledgements.

On its own thread, so the stream thread never waits on a POST. Heartbeats keep a
canary alive in the server's eyes (a rollout fails a stage whose canary goes
silent); acknowledgements say which revision was applied and when, so the server
measures propagation instead of guessing it. Both are best effort: a failed one
is retried with the next, never raised.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable

import httpx

log = logging.getLogger("ringfence.sdk")
HEARTBEAT_SECONDS = 10.0  # well inside the server's silence threshold, so a live canary never looks dead


class Reporter:
    def __init__(self, http: httpx.Client, instance_id: Callable[[], str], connected: Callable[[], bool],
                 stop: threading.Event) -> None:
        self._http = http
        self._instance_id = instance_id
        self._connected = connected
        self._stop = stop
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[int, str]] = {}  # name -> (version, applied_at); the latest wins
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
        next_beat = time.monotonic() + HEARTBEAT_SECONDS
        while not self._stop.is_set():
            self._wake.wait(max(0.0, next_beat - time.monotonic()))
            self._wake.clear()
            if self._stop.is_set() or not self._connected():
                next_beat = max(next_beat, time.monotonic())
                continue
            self._acknowledge()
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + HEARTBEAT_SECONDS
                self._post("heartbeat", None)

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
