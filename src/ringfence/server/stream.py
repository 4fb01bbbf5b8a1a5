"""The stream hub: every connected instance gets the revision it must run, as state.

One `Subscriber` per open stream or long-poll. When a config's assignments may have
changed, the hub reads the new assignment view once (not once per subscriber), and
offers it to the subscribers that read that config. Each subscriber keeps only the
latest view per config, so a slow reader gets the newest state when it catches up,
never a growing backlog.

Streams are written from the hub itself, in one pass over the subscribers, with the
bytes of each message encoded once per view (see `send_now`): a change reaches ten
thousand open streams without waking ten thousand tasks. A stream whose connection is
full finishes its write in a task of its own, and is skipped until then.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import Awaitable
from typing import Any

from fastapi.concurrency import run_in_threadpool
from starlette.types import Send

from ringfence.core.access import in_scope
from ringfence.core.assignment import ConfigAssignments
from ringfence.core.fleet import Instance
from ringfence.core.model import Token
from ringfence.server import metrics
from ringfence.server.fleet import assignment, config_names
from ringfence.server.send_now import send_now
from ringfence.store.sql import SqlStore

PING_SECONDS = 15.0
PING = b": ping\n\n"


def sse(event: str | None, data: Any, event_id: int | None = None) -> bytes:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event is not None:
        lines.append(f"event: {event}")
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


def body(data: bytes) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": True}


class Subscriber:
    """An instance listening for the revisions it must run: a long-poll waits on `changed`."""

    def __init__(self, instance: Instance, token: Token) -> None:
        self.instance = instance
        self.token = token
        self.sent: dict[str, int] = {}  # config -> version this instance was told to run
        self.pending: dict[str, ConfigAssignments] = {}
        self.floor = 0  # views older than the snapshot already sent are stale
        self.changed = asyncio.Event()
        self._wants: dict[str, bool] = {}

    def wants(self, config: str) -> bool:
        found = self._wants.get(config)
        if found is None:
            found = self._wants[config] = self.instance.reads(config) and in_scope(self.token, config)
        return found

    def offer(self, view: ConfigAssignments) -> None:
        self.pending[view.name] = view  # the latest view replaces an unsent older one
        self.changed.set()


class StreamSubscriber(Subscriber):
    """A subscriber with an open event stream, written to by the hub."""

    def __init__(self, instance: Instance, token: Token, hub: Hub) -> None:
        super().__init__(instance, token)
        self.hub = hub
        self.send: Send | None = None  # set once the snapshot went out
        self.writing = False  # a write or a database read for this stream is in flight

    def offer(self, view: ConfigAssignments) -> None:
        self.pending[view.name] = view
        self.hub.flush(self)


class Hub:
    def __init__(self, store: SqlStore, max_subscribers: int = 10_000, ping_seconds: float = PING_SECONDS) -> None:
        self.store = store
        self.max_subscribers = max_subscribers
        self.ping_seconds = ping_seconds
        self.subscribers: set[Subscriber] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pinger: asyncio.TimerHandle | None = None
        self._refreshing: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()  # held so the loop does not drop them half-way
        self._again: set[str] = set()
        # (config, version) -> what an update carries; None for a deleted config's tombstone.
        self._payloads: OrderedDict[tuple[str, int], dict[str, Any] | None] = OrderedDict()
        # (config, seq, member?) -> the message, and whether it tells the instance to stop running the config.
        self._encoded: OrderedDict[tuple[str, int, bool], tuple[bytes, bool]] = OrderedDict()

    # --- changes ------------------------------------------------------------------------
    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._pinger = loop.call_later(self.ping_seconds, self._ping)

    def close(self) -> None:
        if self._pinger is not None:
            self._pinger.cancel()

    def changed(self, config: str) -> None:
        """Thread-safe: called by services after their transaction committed."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._schedule, config)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _schedule(self, config: str) -> None:
        if config in self._refreshing:
            self._again.add(config)  # a refresh is running: one more after it covers every change since
            return
        self._refreshing.add(config)
        self._spawn(self._refresh(config))

    async def _refresh(self, config: str) -> None:
        try:
            while True:
                self._again.discard(config)
                view = await run_in_threadpool(self._view, config)
                # Read the revisions this view can send once, here, so a thousand subscribers
                # format their message from memory instead of queueing for a database thread.
                await run_in_threadpool(self._warm, view)
                for subscriber in list(self.subscribers):
                    if subscriber.wants(config):
                        subscriber.offer(view)
                if config not in self._again:
                    return
        finally:
            self._refreshing.discard(config)

    def _warm(self, view: ConfigAssignments) -> None:
        candidates = [view.current_version] if view.rollout is None else [view.rollout.to_version,
                                                                           view.rollout.from_version]
        for version in candidates:
            if version is not None and (view.name, version) not in self._payloads:
                self._read_payload(view.name, version)

    def _remember(self, name: str, version: int, payload: dict[str, Any] | None) -> None:
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

    def _read_payload(self, name: str, version: int) -> None:
        """Put one revision into the payload cache (in a worker thread). Revisions never
        change, so their payload can be kept; the rollout part is per instance."""
        with self.store.read() as reader:
            revision = reader.revision(name, version)
        self._remember(name, version, None if revision is None or revision.deleted else {
            "name": name, "version": version, "hash": revision.hash, "seq": revision.seq, "value": revision.value})

    def _message(self, view: ConfigAssignments, instance_id: str) -> tuple[bytes, bool] | None:
        """The message for every member (or every non-member) of this view, and whether it is a
        removal: the same bytes for all of them, encoded once however many subscribers there are.
        A view is identified by its config and seq: the state read at one seq is the same for all.
        None when the revision is not in memory (then `_read_payload` fetches it)."""
        key = (view.name, view.seq, instance_id in view.members)
        message = self._encoded.get(key)
        if message is not None:
            return message
        version = view.version_for(instance_id)
        if version is not None and (view.name, version) not in self._payloads:
            return None
        payload = None if version is None else self._payloads[(view.name, version)]
        if payload is None:  # not assigned here, or deleted
            message = (sse("remove", {"seq": view.seq, "name": view.name}, view.seq), True)
        else:
            message = (sse("update", {"seq": view.seq, **payload, "rollout": view.rollout_json(instance_id)},
                           view.seq), False)
        self._encoded[key] = message
        if len(self._encoded) > 256:
            self._encoded.popitem(last=False)
        return message

    # --- writing to streams ---------------------------------------------------------------
    def flush(self, subscriber: StreamSubscriber) -> None:
        """Send what is pending, as far as it goes without waiting: a full connection or a
        revision to read from the database continues in a task, and later offers wait for it."""
        if subscriber.writing or subscriber.send is None:
            return  # the write in flight, or the snapshot about to go, picks the pending views up
        instance_id = subscriber.instance.id
        while subscriber.pending:
            name = min(subscriber.pending, key=lambda n: subscriber.pending[n].seq)
            view = subscriber.pending.pop(name)
            version = view.version_for(instance_id)
            if view.seq < subscriber.floor or version == subscriber.sent.get(name):
                continue
            found = self._message(view, instance_id)
            if found is None:
                subscriber.pending.setdefault(name, view)
                subscriber.writing = True
                self._spawn(self._read_then_flush(subscriber, view, version))
                return
            message, removal = found
            if removal or version is None:
                subscriber.sent.pop(name, None)
            else:
                subscriber.sent[name] = version
            if not self._write(subscriber, message):
                return

    def _write(self, subscriber: StreamSubscriber, message: bytes) -> bool:
        """True when the message went out at once; False when it finishes in a task."""
        assert subscriber.send is not None
        try:
            rest = send_now(subscriber.send, body(message))
        except OSError:
            self.detach(subscriber)  # the connection is gone; its request task ends on the disconnect
            return False
        if rest is None:
            return True
        subscriber.writing = True
        self._spawn(self._finish_write(subscriber, rest))
        return False

    async def _finish_write(self, subscriber: StreamSubscriber, rest: Awaitable[None]) -> None:
        try:
            await rest
        except OSError:
            self.detach(subscriber)
            return
        finally:
            subscriber.writing = False
        self.flush(subscriber)

    async def _read_then_flush(self, subscriber: StreamSubscriber, view: ConfigAssignments,
                               version: int | None) -> None:
        try:
            if version is not None:
                await run_in_threadpool(self._read_payload, view.name, version)
        finally:
            subscriber.writing = False
        self.flush(subscriber)

    def _ping(self) -> None:
        """One comment line to every idle stream, so proxies keep it open and clients can
        time out a dead connection."""
        for subscriber in list(self.subscribers):
            if isinstance(subscriber, StreamSubscriber) and subscriber.send is not None and not subscriber.writing:
                self._write(subscriber, PING)
        if self._loop is not None:
            self._pinger = self._loop.call_later(self.ping_seconds, self._ping)

    # --- open streams ---------------------------------------------------------------------
    def attach(self, subscriber: Subscriber) -> None:
        self.subscribers.add(subscriber)
        if isinstance(subscriber, StreamSubscriber):
            metrics.streams.inc()

    def detach(self, subscriber: Subscriber) -> None:
        if subscriber in self.subscribers:
            self.subscribers.discard(subscriber)
            if isinstance(subscriber, StreamSubscriber):
                metrics.streams.dec()
                subscriber.send = None
