"""The controller: the single writer of rollout state after the push, ticking every second.

On SQLite there is one server process, so it always leads. On PostgreSQL several
replicas may run; one at a time holds a session advisory lock and drives the
rollouts, and when it dies its connection (and the lock) goes with it, so another
replica takes over at its next tick.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import text

from ringfence.server.rollouts import RolloutService
from ringfence.store.sql import SqlStore

log = logging.getLogger("ringfence.controller")
_LEADER_KEY = 0x52494E48  # any constant shared by every replica


class Leadership:
    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self._connection: Any = None

    def held(self) -> bool:
        if self.store.dialect != "postgresql":
            return True
        try:
            if self._connection is None:
                self._connection = self.store.engine.connect()
                self._connection.execution_options(isolation_level="AUTOCOMMIT")
            if self._connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _LEADER_KEY}).scalar():
                return True
        except Exception:  # the database went away: drop the session, and the lock with it
            self.release()
            raise
        return False

    def release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None


class Controller:
    def __init__(self, rollouts: RolloutService, store: SqlStore, interval: float = 1.0) -> None:
        self.rollouts = rollouts
        self.interval = interval
        self.leadership = Leadership(store)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ringfence-controller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.leadership.release()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if self.leadership.held():
                    self.rollouts.tick_all()
            except Exception:
                # One bad tick must not stop rollouts for good: log it and try again next tick.
                log.exception("controller tick failed")
