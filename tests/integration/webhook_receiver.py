"""A real HTTP server on loopback that receives webhook deliveries, for tests.

It records every request (headers and raw body) and can be told to answer the first N with
500, or to hang on the first one until released (so a test can kill the sender mid-delivery).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def event(self) -> str:
        return self.headers["x-ringfence-event"]

    def signed_by(self, secret: str, *, tolerance: float = 300) -> bool:
        """The check a receiver makes: HMAC-SHA256 over `timestamp.body`, and a fresh timestamp."""
        timestamp = self.headers["x-ringfence-timestamp"]
        expected = hmac.new(secret.encode(), timestamp.encode() + b"." + self.body, hashlib.sha256).hexdigest()
        return (hmac.compare_digest("sha256=" + expected, self.headers["x-ringfence-signature"])
                and abs(time.time() - int(timestamp)) <= tolerance)


class Receiver:
    def __init__(self, *, fail_first: int = 0, hang_first: bool = False) -> None:
        self.fail_first = fail_first
        self.hang_first = hang_first
        self.received: list[Received] = []
        self.release = threading.Event()  # lets a hanging first request finish
        self.hanging = threading.Event()  # set while the first request hangs
        self._lock = threading.Lock()
        self._seen = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver._seen += 1
                    number = receiver._seen
                if number == 1 and receiver.hang_first:
                    receiver.hanging.set()
                    receiver.release.wait(30)
                    return  # never answers: the sender was killed meanwhile
                status = 500 if number <= receiver.fail_first else 200
                with receiver._lock:
                    receiver.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body,
                                                      status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/ringfence"

    def delivered(self, event: str | None = None) -> list[Received]:
        """Requests answered 200, of one event type if given."""
        with self._lock:
            return [r for r in self.received if r.status == 200 and (event is None or r.event == event)]

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def receiving(**options: Any) -> Iterator[Receiver]:
    receiver = Receiver(**options).start()
    try:
        yield receiver
    finally:
        receiver.stop()
