"""Hundreds of stream clients in one process, made of the SDK's own parts, watched through a server restart.

    python stream_fleet.py URL TOKEN FIRST COUNT TARGET_VERSION

Each client is one thread running the SDK's stream loop without the rest of
`ringfence.Client`: the SDK's `StreamTransport` (sdk/transport.py) over one
shared httpx client, and the SDK's `Backoff` (sdk/backoff.py), reset after every
message and waited on after every failure with the server's Retry-After, as the
client does. What is left out: heartbeats and apply reports (a thousand of them
would load the server with writes the test is not about), the disk cache, and
the long-poll fallback.

It prints `ready` once every client holds version 1 of shop/limits, then one
JSON line when every client has reconnected after losing the server and holds
TARGET_VERSION (or after GIVE_UP_AFTER seconds): for each client, the wall-clock
time it lost the stream, the time of its first snapshot after that (and how many
attempts failed in between), the time it first held TARGET_VERSION, and every
version it held, in order.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx

from ringfence.sdk.backoff import Backoff
from ringfence.sdk.transport import Identity, StreamTransport, TransportFailure

CONFIG = "shop/limits"
GIVE_UP_AFTER = 60.0  # seconds; the backoff alone may keep a client away 30 s


class StreamClient:
    def __init__(self, http: httpx.Client, instance_id: str, target: int) -> None:
        identity = Identity(instance_id, "fleet", "", "", {}, ("shop/*",))
        self.transport = StreamTransport(http, identity)
        self.instance_id = instance_id
        self.target = target
        self.backoff = Backoff()
        self.version = 0
        self.versions: list[int] = []
        self.lost: float | None = None
        self.back: float | None = None
        self.converged: float | None = None
        self.failed_attempts = 0  # between losing the stream and getting it back
        self.ready = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            try:
                have = f"{CONFIG}@{self.version}" if self.version else ""
                for message in self.transport.messages(have):
                    self._apply(message.kind, message.data)
                    self.backoff.reset()
            except TransportFailure as failure:
                if self.ready.is_set() and self.lost is None:
                    self.lost = time.time()
                self.backoff.wait(failure.retry_after)

    def _apply(self, kind: str, data: Mapping[str, Any]) -> None:
        now = time.time()
        if kind == "snapshot":
            item = data["configs"].get(CONFIG)
            version = item["version"] if item else 0
            if self.lost is not None and self.back is None:
                self.back = now
                self.failed_attempts = self.backoff.failures
        elif data.get("name") == CONFIG:
            version = data["version"] if kind == "update" else 0
        else:
            return
        if version != self.version:
            self.version = version
            self.versions.append(version)
        if version == 1:
            self.ready.set()
        if version == self.target and self.converged is None:
            self.converged = now
        if self.back is not None and self.converged is not None:
            self.done.set()


def main(url: str, token: str, first: int, count: int, target: int) -> None:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, limits=limits)
    clients = [StreamClient(http, f"fleet-{first + i:04d}", target) for i in range(count)]
    for client in clients:
        client.thread.start()
    deadline = time.monotonic() + GIVE_UP_AFTER
    for client in clients:
        if not client.ready.wait(max(0.0, deadline - time.monotonic())):
            sys.exit(f"{client.instance_id} did not get version 1")
    print("ready", flush=True)
    deadline = time.monotonic() + GIVE_UP_AFTER
    for client in clients:
        client.done.wait(max(0.0, deadline - time.monotonic()))
    print(json.dumps([{"id": c.instance_id, "lost": c.lost, "back": c.back, "converged": c.converged,
                       "versions": c.versions, "failed_attempts": c.failed_attempts} for c in clients]), flush=True)
    os._exit(0)  # the streams end with the process; the server sees them close


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
