"""Changes across server replicas on PostgreSQL: NOTIFY on every change, LISTEN for the others'.

Each replica's stream hub hears its own changes directly; NOTIFY tells the other
replicas, whose hubs then read the new state from the database, so an instance
connected to any replica gets the change. A lost notification is no lost change:
the next one for that config, or the stream's next reconnect, brings the state.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

import psycopg

from ringfence.store.sql import SqlStore

log = logging.getLogger("ringfence.replicas")
CHANNEL = "ringfence_changes"


class Replicas:
    def __init__(self, store: SqlStore, on_change: Callable[[str], None]) -> None:
        self.url = store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.on_change = on_change
        self.replica = uuid.uuid4().hex[:12]
        self._send_lock = threading.Lock()
        self._sender: Any = None
        self._stop = threading.Event()
        self._running = False  # services used outside a serving app (tests, tools) announce nothing
        self._thread = threading.Thread(target=self._listen, name="ringfence-listen", daemon=True)

    def start(self) -> None:
        self._running = True
        self._thread.start()

    def stop(self) -> None:
        self._running = False
        self._stop.set()
        self._thread.join(5)
        with self._send_lock:
            if self._sender is not None:
                self._sender.close()

    def publish(self, config: str) -> None:
        """Tell the other replicas (called after the change committed)."""
        if not self._running:
            return
        with self._send_lock:
            try:
                if self._sender is None or self._sender.closed:
                    self._sender = psycopg.connect(self.url, autocommit=True)
                self._sender.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"{self.replica} {config}"))
            except psycopg.Error as exc:
                log.warning("could not notify other replicas of a change to %s: %s", config, exc)
                self._sender = None

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    while not self._stop.is_set():
                        for note in connection.notifies(timeout=1.0):
                            sender, _, config = note.payload.partition(" ")
                            if sender != self.replica:
                                self.on_change(config)
            except psycopg.Error as exc:
                log.warning("lost the change feed from other replicas (%s); reconnecting", exc)
                self._stop.wait(1.0)
