"""Closed windows and events waiting to be sent: bounded, oldest dropped first, drops counted.

When the server cannot be reached the outbox holds up to `max_windows` windows
(an hour of 10 s windows by default); past that each new window pushes out the
oldest, and `dropped` counts it, so the server learns how many it will never
get. A batch is a copy: what arrives meanwhile is kept, and `sent()` removes
exactly what the server accepted.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_WINDOWS = 360
MAX_EVENTS = 100
BATCH_WINDOWS = 60  # per POST: ~25 KB, far below the server's body limit


@dataclass(frozen=True)
class Batch:
    windows: list[dict[str, Any]]
    events: list[dict[str, Any]]
    dropped: int
    last_window: int  # sequence numbers of the last window and event in the batch (-1: none)
    last_event: int

    def body(self, instance: str) -> dict[str, Any]:
        return {"instance": instance, "windows": self.windows, "events": self.events, "dropped": self.dropped}


class Outbox:
    def __init__(self, max_windows: int = MAX_WINDOWS, max_events: int = MAX_EVENTS) -> None:
        self.max_windows = max_windows
        self.max_events = max_events
        self.reset()

    def reset(self) -> None:
        self._lock = threading.Lock()
        self._windows: deque[tuple[int, dict[str, Any]]] = deque()
        self._events: deque[tuple[int, dict[str, Any]]] = deque()
        self._seq = 0
        self.dropped = 0  # windows lost since the last successful send
        # Windows of the batch in flight pushed out meanwhile: lost only if that send fails.
        self._in_flight = -1
        self._pushed_out_in_flight = 0

    def add_window(self, window: dict[str, Any]) -> None:
        with self._lock:
            self._seq += 1
            self._windows.append((self._seq, window))
            while len(self._windows) > self.max_windows:
                seq, _ = self._windows.popleft()
                if seq <= self._in_flight:
                    self._pushed_out_in_flight += 1
                else:
                    self.dropped += 1

    def add_event(self, event: str, at: float, revisions: Mapping[str, int]) -> None:
        with self._lock:
            self._seq += 1
            self._events.append((self._seq, {"at": at, "event": event, "revisions": dict(revisions)}))
            while len(self._events) > self.max_events:
                self._events.popleft()  # a crash loop this long has been reported many times over

    def __len__(self) -> int:
        return len(self._windows) + len(self._events)

    def batch(self, max_windows: int = BATCH_WINDOWS) -> Batch | None:
        """The oldest windows (up to `max_windows`) and every event, or None when there is nothing to send."""
        with self._lock:
            if not self._windows and not self._events:
                return None
            windows = [window for _, (_, window) in zip(range(max_windows), self._windows, strict=False)]
            last_window = self._windows[len(windows) - 1][0] if windows else -1
            events = [event for _, event in self._events]
            last_event = self._events[-1][0] if events else -1
            self._in_flight = last_window
            self._pushed_out_in_flight = 0
            return Batch(windows, events, self.dropped, last_window, last_event)

    def sent(self, batch: Batch) -> None:
        """The server accepted `batch`: forget it, and the drops it reported."""
        with self._lock:
            self._forget(batch)
            self.dropped = max(0, self.dropped - batch.dropped)

    def failed(self, batch: Batch) -> None:
        """The send failed and will be retried: keep the batch (what was pushed out meanwhile is lost)."""
        with self._lock:
            self._end_flight()

    def discard(self, batch: Batch) -> None:
        """The server refused `batch` for good (a 4xx that retrying will not fix): its windows count as dropped."""
        with self._lock:
            self.dropped += len(batch.windows)  # the ones pushed out meanwhile included: none arrived
            self._forget(batch)

    def _forget(self, batch: Batch) -> None:
        while self._windows and self._windows[0][0] <= batch.last_window:
            self._windows.popleft()
        while self._events and self._events[0][0] <= batch.last_event:
            self._events.popleft()
        self._in_flight = -1
        self._pushed_out_in_flight = 0

    def _end_flight(self) -> None:
        self.dropped += self._pushed_out_in_flight
        self._in_flight = -1
        self._pushed_out_in_flight = 0
