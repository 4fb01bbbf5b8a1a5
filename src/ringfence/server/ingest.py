"""Metric ingestion: health reports in, observations of running rollouts out.

A request only checks the report and queues it, so an instance's report costs the
server a parse, not a transaction. Once a second a flusher thread writes the batch in
one transaction: every reporting instance counts as seen (a report is a heartbeat),
each window and event of an instance in a rollout is filed under the rollout's stage
and the instance's service as canary or baseline, and what each instance served on a
rollout's revisions is added up for the blast radius. The controller reads the filed
observations (server/analysis.py); the database, not this process's memory, is what
every replica shares and what survives a restart.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ringfence.core.access import Action, require
from ringfence.core.model import Token
from ringfence.core.reports import Report, event_record, group_of, window_record
from ringfence.core.rollout import Rollout, State
from ringfence.errors import NotFound
from ringfence.server import metrics
from ringfence.store.sql import SqlStore

log = logging.getLogger("ringfence.ingest")
Clock = Callable[[], dt.datetime]

FLUSH_SECONDS = 1.0
MAX_QUEUED = 200_000  # reports; past this the oldest are dropped (and counted) rather than the server's memory
TRAFFIC_AFTER_END = dt.timedelta(hours=1)  # a rolled-back revision's stragglers still count in its blast radius
PRUNE_EVERY = 60.0


@dataclass(frozen=True, slots=True)
class _Rollout:
    id: int
    config: str
    from_version: int | None
    to_version: int
    stage_start: float | None  # Unix seconds; None unless running a stage
    stage_started_us: int


def _brief(rollout: Rollout) -> _Rollout:
    start = rollout.stage_started_at if rollout.state is State.RUNNING else None
    return _Rollout(int(rollout.id), rollout.config, rollout.from_version, rollout.to_version,
                    start.timestamp() if start is not None else None,
                    int(start.timestamp() * 1_000_000) if start is not None else 0)


class Ingest:
    def __init__(self, store: SqlStore, clock: Clock, retention: dt.timedelta) -> None:
        self.store = store
        self.clock = clock
        self.retention = retention
        self._queue: list[Report] = []
        self._lock = threading.Lock()
        self._services: dict[str, str] = {}  # instance id -> service, for instances known to be registered
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_prune = 0.0
        self._learned_at = 0.0

    # --- requests ---------------------------------------------------------------------
    def knows(self, instance_id: str) -> bool:
        return instance_id in self._services

    def learn(self, instance_id: str) -> None:
        """Learn which instances are registered (a worker thread): the whole fleet in one read, at
        most once a second, so a server that restarts under a large fleet does not look each one
        up on its own. Reports from unregistered instances are refused."""
        if self.clock().timestamp() - self._learned_at >= 1.0:
            self._learned_at = self.clock().timestamp()
            with self.store.read() as reader:
                self._services.update(reader.instance_services())
        if instance_id not in self._services:
            with self.store.read() as reader:
                instance = reader.instance(instance_id)
            if instance is None:
                raise NotFound(f"instance {instance_id!r} is not registered: register it first "
                               "(POST /v1/instances, or connect to /v1/stream with service=)")
            self._services[instance_id] = instance.service

    def accept(self, token: Token, report: Report) -> int:
        """Queue a checked report of a known instance (no I/O). Returns how many windows and events it holds."""
        require(token, Action.REGISTER)
        with self._lock:
            self._queue.append(report)
            if len(self._queue) > MAX_QUEUED:
                del self._queue[: len(self._queue) - MAX_QUEUED]
                metrics.reports_dropped.inc()
        metrics.reports.inc()
        return len(report.windows) + len(report.events)

    # --- the flusher ------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ringfence-ingest", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.flush()  # what was accepted is written before the process ends

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            try:
                self.flush()
            except Exception:  # a failed flush keeps nothing half-written; the next one goes on
                log.exception("writing metric reports failed")

    def flush(self) -> int:
        """Write what is queued in one transaction. Returns the number of observations filed."""
        with self._lock:
            batch, self._queue = self._queue, []
        if not batch:
            self._prune()
            return 0
        now = self.clock()
        with self.store.write(sequenced=False) as tx:
            rollouts = [_brief(r) for r in tx.rollouts_touched_since(now - TRAFFIC_AFTER_END)]
            by_config: dict[str, list[_Rollout]] = {}
            for rollout in rollouts:
                by_config.setdefault(rollout.config, []).append(rollout)
            filed: list[tuple[int, int, str, str]] = []
            served: dict[tuple[int, str, int], tuple[int, int, int, int]] = {}
            for report in batch:
                service = self._services.get(report.instance, "")
                self._file(report, service, by_config, filed, served)
            tx.touch_many({report.instance for report in batch}, now)
            tx.add_observations(filed, now)
            tx.add_traffic(served)
        self._prune()
        return len(filed)

    def _file(self, report: Report, service: str, by_config: dict[str, list[_Rollout]],
              filed: list[tuple[int, int, str, str]],
              served: dict[tuple[int, str, int], tuple[int, int, int, int]]) -> None:
        for window in report.windows:
            for config, version in window.revisions.items():
                for rollout in by_config.get(config, ()):
                    group = group_of(version, rollout.to_version, rollout.from_version)
                    if group is None:
                        continue
                    if version == rollout.to_version:
                        key = (rollout.id, report.instance, version)
                        before = served.get(key, (0, 0, int(window.start * 1e6), 0))
                        served[key] = (before[0] + window.requests, before[1] + window.errors, before[2],
                                       int(window.end * 1e6))
                    if rollout.stage_start is None:
                        continue
                    line = window_record(window, report.instance, group, rollout.stage_start)
                    if line is not None:
                        filed.append((rollout.id, rollout.stage_started_us, service, json.dumps(line)))
        for event in report.events:
            for config, version in event.revisions.items():
                for rollout in by_config.get(config, ()):
                    group = group_of(version, rollout.to_version, rollout.from_version)
                    if group is None or rollout.stage_start is None:
                        continue
                    line = event_record(event, report.instance, group, rollout.stage_start)
                    if line is not None:
                        filed.append((rollout.id, rollout.stage_started_us, service, json.dumps(line)))

    def _prune(self) -> None:
        now = self.clock()
        if now.timestamp() - self._last_prune < PRUNE_EVERY:
            return
        self._last_prune = now.timestamp()
        with self.store.write(sequenced=False) as tx:
            tx.prune_observations(now - self.retention)

