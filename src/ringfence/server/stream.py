"""The stream hub: every connected instance gets the revision it must run, as state.

One `Subscriber` per open stream. When a config's assignments may have changed, the
hub reads the new assignment view once (not once per subscriber), offers it to the
subscribers that read that config, and wakes them. Each subscriber keeps only the
latest view per config, so a slow reader gets the newest state when it catches up,
never a growing backlog, and never holds up anyone else: every stream is its own task.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from fastapi.concurrency import run_in_threadpool

from ringfence.core.access import in_scope
from ringfence.core.assignment import ConfigAssignments
from ringfence.core.fleet import Instance
from ringfence.core.model import Token
from ringfence.server import metrics
from ringfence.server.fleet import assignment, config_names
from ringfence.store.sql import SqlStore

PING_SECONDS = 15.0


def sse(event: str | None, data: Any, event_id: int | None = None) -> bytes:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event is not None:
        lines.append(f"event: {event}")
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


class Subscriber:
    def __init__(self, instance: Instance, token: Token) -> None:
        self.instance = instance
        self.token = token
        self.sent: dict[str, int] = {}  # config -> version this instance was told to run
        self.pending: dict[str, ConfigAssignments] = {}
        self.floor = 0  # views older than the snapshot already sent are stale
        self.wake = asyncio.Event()

    def wants(self, config: str) -> bool:
        return self.instance.reads(config) and in_scope(self.token, config)

    def offer(self, view: ConfigAssignments) -> None:
        self.pending[view.name] = view  # the latest view replaces an unsent older one
        self.wake.set()


class Hub:
    def __init__(self, store: SqlStore, max_subscribers: int = 10_000, ping_seconds: float = PING_SECONDS) -> None:
        self.store = store
        self.max_subscribers = max_subscribers
        self.ping_seconds = ping_seconds
        self.subscribers: set[Subscriber] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._refreshing: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()  # held so the loop does not drop them half-way
        self._again: set[str] = set()
        self._payloads: OrderedDict[tuple[str, int], dict[str, Any]] = OrderedDict()

    # --- changes ------------------------------------------------------------------------
    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def changed(self, config: str) -> None:
        """Thread-safe: called by services after their transaction committed."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._schedule, config)

    def _schedule(self, config: str) -> None:
        if config in self._refreshing:
            self._again.add(config)  # a refresh is running: one more after it covers every change since
            return
        self._refreshing.add(config)
        task = asyncio.ensure_future(self._refresh(config))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refresh(self, config: str) -> None:
        try:
            while True:
                self._again.discard(config)
                view = await run_in_threadpool(self._view, config)
                for subscriber in self.subscribers:
                    if subscriber.wants(config):
                        subscriber.offer(view)
                if config not in self._again:
                    return
        finally:
            self._refreshing.discard(config)

    def _view(self, config: str) -> ConfigAssignments:
        with self.store.read() as reader:
            return reader.config_assignments(config, reader.last_seq())

    # --- what a subscriber is sent ------------------------------------------------------
    def snapshot(self, subscriber: Subscriber, have: dict[str, int]) -> dict[str, Any]:
        """Every config the instance must run now; values only where `have` differs."""
        instance = subscriber.instance
        with self.store.read() as reader:
            seq = reader.last_seq()
            configs: dict[str, Any] = {}
            for name in config_names(reader, instance.configs):
                if not in_scope(subscriber.token, name):
                    continue
                view = reader.config_assignments(name, seq)
                found = assignment(reader, view, instance.id, with_value=have.get(name) != view.version_for(
                    instance.id))
                if found is not None:
                    configs[name] = found
        subscriber.sent = {name: item["version"] for name, item in configs.items()}
        subscriber.floor = seq
        return {"seq": seq, "configs": configs}

    def payload(self, view: ConfigAssignments, instance_id: str) -> dict[str, Any] | None:
        version = view.version_for(instance_id)
        if version is None:
            return None
        key = (view.name, version)
        cached = self._payloads.get(key)
        if cached is None:
            with self.store.read() as reader:
                found = assignment(reader, view, instance_id, with_value=True)
            if found is None:
                return None
            # Revisions never change, so their payload can be kept; the rollout part is per instance.
            cached = {k: v for k, v in found.items() if k != "rollout"}
            self._payloads[key] = cached
            if len(self._payloads) > 2048:
                self._payloads.popitem(last=False)
        return {**cached, "rollout": view.rollout_json(instance_id)}

    async def stream(self, subscriber: Subscriber, have: dict[str, int]) -> AsyncIterator[bytes]:
        self.subscribers.add(subscriber)
        metrics.streams.inc()
        try:
            first = await run_in_threadpool(self.snapshot, subscriber, have)
            yield sse("snapshot", first, first["seq"])
            while True:
                try:
                    await asyncio.wait_for(subscriber.wake.wait(), timeout=self.ping_seconds)
                except TimeoutError:
                    yield b": ping\n\n"
                    continue
                subscriber.wake.clear()
                pending, subscriber.pending = subscriber.pending, {}
                for name, view in pending.items():
                    if view.seq < subscriber.floor or view.version_for(subscriber.instance.id) == subscriber.sent.get(
                            name):
                        continue
                    item = await run_in_threadpool(self.payload, view, subscriber.instance.id)
                    if item is None:
                        subscriber.sent.pop(name, None)
                        yield sse("remove", {"seq": view.seq, "name": name}, view.seq)
                    else:
                        subscriber.sent[name] = item["version"]
                        yield sse("update", {"seq": view.seq, **item}, view.seq)
        finally:
            metrics.streams.dec()
            self.subscribers.discard(subscriber)
