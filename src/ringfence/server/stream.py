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
        self._encoded: OrderedDict[tuple[str, int, bool], tuple[bytes, bool]] = OrderedDict()

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
                # Read the revisions this view can send once, here, so a thousand subscribers
                # format their message from memory instead of queueing for a database thread.
                await run_in_threadpool(self._warm, view)
                for subscriber in self.subscribers:
                    if subscriber.wants(config):
                        subscriber.offer(view)
                if config not in self._again:
                    return
        finally:
            self._refreshing.discard(config)

    def _warm(self, view: ConfigAssignments) -> None:
        candidates = [view.current_version] if view.rollout is None else [view.rollout.to_version,
                                                                           view.rollout.from_version]
        for version in (v for v in candidates if v is not None):
            if (view.name, version) not in self._payloads:
                with self.store.read() as reader:
                    revision = reader.revision(view.name, version)
                if revision is not None and not revision.deleted:
                    self._remember(view.name, revision.version, {
                        "name": view.name, "version": revision.version, "hash": revision.hash, "seq": revision.seq,
                        "value": revision.value})

    def _remember(self, name: str, version: int, payload: dict[str, Any]) -> None:
        self._payloads[(name, version)] = payload
        if len(self._payloads) > 2048:
            self._payloads.popitem(last=False)

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
            self._remember(view.name, version, cached)
        return {**cached, "rollout": view.rollout_json(instance_id)}

    def cached_payload(self, view: ConfigAssignments, instance_id: str) -> dict[str, Any] | None:
        """The payload from memory, or None when it is not there (then `payload` reads it)."""
        cached = self._payloads.get((view.name, view.version_for(instance_id) or 0))
        return None if cached is None else {**cached, "rollout": view.rollout_json(instance_id)}

    async def _encode(self, view: ConfigAssignments, instance_id: str) -> tuple[bytes, bool]:
        """The message for every member (or every non-member) of this view, and whether it is a
        removal: the same bytes for all of them, encoded once however many subscribers there are.
        A view is identified by its config and seq: the state read at one seq is the same for all."""
        item = self.cached_payload(view, instance_id) or await run_in_threadpool(self.payload, view, instance_id)
        if item is None:
            encoded = (sse("remove", {"seq": view.seq, "name": view.name}, view.seq), True)
        else:
            encoded = (sse("update", {"seq": view.seq, **item}, view.seq), False)
        self._encoded[(view.name, view.seq, instance_id in view.members)] = encoded
        if len(self._encoded) > 256:
            self._encoded.popitem(last=False)
        return encoded

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
                    instance_id = subscriber.instance.id
                    version = view.version_for(instance_id)
                    if view.seq < subscriber.floor or version == subscriber.sent.get(name):
                        continue
                    encoded = self._encoded.get((name, view.seq, instance_id in view.members))
                    message, removal = encoded or await self._encode(view, instance_id)
                    if removal or version is None:
                        subscriber.sent.pop(name, None)
                    else:
                        subscriber.sent[name] = version
                    yield message
        finally:
            metrics.streams.dec()
            self.subscribers.discard(subscriber)
