"""The webhook sender: a thread in the server that empties the delivery outbox.

Each pending delivery whose time has come is POSTed, signed afresh for every attempt
(ringfence.core.webhook). A 2xx answer delivers it; anything else (another status, a
timeout, a refused connection) is recorded as an attempt and retried with exponential
backoff, up to `webhook_max_attempts`; then the delivery is `failed`, visible in
`GET /v1/webhooks/{id}/deliveries` with every attempt's outcome.

Delivery is at least once: the outbox row commits with the event, so a crash loses
nothing, and a crash between a send and its record sends it again (receivers
deduplicate on the event id). On PostgreSQL every replica runs a sender; each claims
rows with `SELECT … FOR UPDATE SKIP LOCKED` and holds them while it sends, so two
replicas never send the same attempt. SQLite has one server process and one sender,
which sends outside any transaction so that it never holds up the single writer.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from ringfence.core import webhook as hooks
from ringfence.core.webhook import Delivery
from ringfence.store.sql import SqlStore, Writer

log = logging.getLogger("ringfence.webhooks")
BATCH = 20
MAX_ERROR = 300
USER_AGENT = "ringfence-webhooks"


class Sender:
    def __init__(self, store: SqlStore, clock: Callable[[], dt.datetime], *, timeout: float = 5.0,
                 backoff: float = 30.0, max_backoff: float = 3600.0, max_attempts: int = 8,
                 interval: float = 1.0, transport: httpx.BaseTransport | None = None) -> None:
        self.store = store
        self.clock = clock
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_attempts = max_attempts
        self.interval = interval
        self._http = httpx.Client(timeout=timeout, follow_redirects=False, transport=transport,
                                  headers={"User-Agent": USER_AGENT})
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ringfence-webhooks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=15)
        self._http.close()

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                while self.run_once() and not self._stop.is_set():
                    pass
                pause = self._pause()
            except Exception:
                # The database may be down for a while: keep the thread, try again later.
                log.exception("webhook sender pass failed")
                pause = self.interval
            self._wake.wait(pause)
            self._wake.clear()

    def _pause(self) -> float:
        """Until the next delivery is due, at most `interval` (deliveries other replicas queue)."""
        with self.store.read() as reader:
            due = reader.next_due()
        if due is None:
            return self.interval
        return min(self.interval, max(0.01, (due - self.clock()).total_seconds()))

    def run_once(self) -> int:
        """Send what is due now; returns how many attempts were made."""
        if self.store.dialect == "postgresql":
            with self.store.write(sequenced=False) as tx:
                due = tx.due_deliveries(self.clock(), BATCH)
                for delivery, url, secret in due:
                    self._record(tx, delivery, self._send(delivery, url, secret))
            return len(due)
        with self.store.read() as reader:
            due = reader.due_deliveries(self.clock(), BATCH)
        for delivery, url, secret in due:
            attempt = self._send(delivery, url, secret)
            with self.store.write(sequenced=False) as tx:
                self._record(tx, delivery, attempt)
        return len(due)

    def _send(self, delivery: Delivery, url: str, secret: str) -> dict[str, Any]:
        body = delivery.payload.encode("utf-8")
        now = self.clock()
        headers = hooks.headers(secret, delivery.event_id, delivery.event, int(now.timestamp()), body)
        started = time.perf_counter()
        status: int | None = None
        error = ""
        try:
            response = self._http.post(url, content=body, headers=headers)
            status = response.status_code
            if not response.is_success:
                error = f"HTTP {status} {response.reason_phrase}".strip()
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR] if str(exc) else type(exc).__name__
        return {"attempt": delivery.attempts + 1, "at": now.isoformat(), "status": status, "error": error,
                "ms": round(1000 * (time.perf_counter() - started), 1)}

    def _record(self, tx: Writer, delivery: Delivery, attempt: dict[str, Any]) -> None:
        now = self.clock()
        number = attempt["attempt"]
        if not attempt["error"]:
            tx.record_attempt(delivery, attempt, state="delivered", next_attempt_at=now, delivered_at=now)
            return
        if number >= self.max_attempts:
            log.warning("webhook %s gave up on event %s (%s) after %d attempts: %s", delivery.webhook_id,
                        delivery.event_id, delivery.event, number, attempt["error"])
            tx.record_attempt(delivery, attempt, state="failed", next_attempt_at=now, delivered_at=None)
            return
        wait = hooks.backoff(number, self.backoff, self.max_backoff, delivery.event_id)
        tx.record_attempt(delivery, attempt, state="pending", next_attempt_at=now + dt.timedelta(seconds=wait),
                          delivered_at=None)
