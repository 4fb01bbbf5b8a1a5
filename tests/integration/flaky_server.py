"""A real HTTP server on loopback in front of a real ringfence server, that can be told to answer garbage.

It stands where a broken server, a misconfigured proxy or an API gateway in
maintenance mode would: the SDK talks to it over real sockets exactly as it
would talk to ringfence. It forwards every request, streams included, to the
upstream server byte for byte, until told to answer garbage: then each request,
for as many as it was told, gets the next bad answer from the list for its kind
(stream, long-poll, anything else), and forwarding resumes after them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import cycle

import httpx


@dataclass(frozen=True)
class Garbage:
    name: str
    status: int
    content_type: str
    body: bytes


# Each list is cycled through for its kind of request; the names show up in assertion messages. A client
# streams three times before it long-polls for a while, so three of each reach it first.
STREAM_GARBAGE = (
    Garbage("500", 500, "text/plain", b"Internal Server Error"),
    # Valid SSE and JSON of the wrong shape: a snapshot without configs would mean "run nothing".
    Garbage("sse-snapshot-without-configs", 200, "text/event-stream", b'event: snapshot\ndata: {"seq": 7}\n\n'),
    Garbage("sse-wrong-types", 200, "text/event-stream",
            b'event: snapshot\ndata: {"seq": "x", "configs": {"shop/limits": {"version": "two"}}}\n\n'),
)
POLL_GARBAGE = (
    # What an API gateway answers when its upstream is down: 200, JSON, and nothing we asked for.
    Garbage("json-gateway-message", 200, "application/json", b'{"message": "upstream unavailable"}'),
    Garbage("200-not-json", 200, "text/html", b"<html><body>Down for maintenance</body></html>"),
    Garbage("502-html", 502, "text/html", b"<html><body>Bad Gateway</body></html>"),
)
OTHER_GARBAGE = (Garbage("200-html", 200, "text/html", b"<html><body>Down for maintenance</body></html>"),)

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class FlakyServer:
    def __init__(self, upstream: str) -> None:
        """Forwards everything to `upstream` until told to answer garbage."""
        self.bad_answers_left = 0.0
        self.served: list[tuple[str, str]] = []  # (path, garbage name or "forwarded"), in order
        self._lock = threading.Lock()
        self._garbage: dict[str, Iterator[Garbage]] = {
            "/v1/stream": cycle(STREAM_GARBAGE), "/v1/poll": cycle(POLL_GARBAGE), "": cycle(OTHER_GARBAGE)}
        self._http = httpx.Client(base_url=upstream, timeout=httpx.Timeout(5.0, read=60.0))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="flaky-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def garbage_served(self) -> set[str]:
        with self._lock:
            return {what for _, what in self.served if what != "forwarded"}

    def answer_garbage(self, requests: float = float("inf")) -> None:
        """The next `requests` requests get garbage (inf: all of them); the ones after are forwarded."""
        with self._lock:
            self.bad_answers_left = requests

    def start(self) -> FlakyServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._http.close()

    def __enter__(self) -> FlakyServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _next(self, path: str) -> Garbage | None:
        with self._lock:
            if self.bad_answers_left <= 0:
                self.served.append((path, "forwarded"))
                return None
            self.bad_answers_left -= 1
            garbage = next(self._garbage.get(path, self._garbage[""]))
            self.served.append((path, garbage.name))
            return garbage

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        flaky = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.0: every response ends by closing the connection, so a forwarded stream needs no
            # chunked encoding and ends when the upstream's does.
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet: the test reads `served` instead

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def _answer(self) -> None:
                path = self.path.partition("?")[0]
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                garbage = flaky._next(path)
                if garbage is not None:
                    self.send_response(garbage.status)
                    self.send_header("Content-Type", garbage.content_type)
                    self.end_headers()
                    self.wfile.write(garbage.body)
                    return
                self._forward(body)

            def _forward(self, body: bytes) -> None:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                try:
                    with flaky._http.stream(self.command, self.path, headers=headers, content=body) as upstream:
                        self.send_response(upstream.status_code)
                        for key, value in upstream.headers.items():
                            if key.lower() not in HOP_BY_HOP:
                                self.send_header(key, value)
                        self.end_headers()
                        for chunk in upstream.iter_raw():
                            self.wfile.write(chunk)
                            self.wfile.flush()
                except (httpx.HTTPError, OSError):
                    pass  # the upstream or the client went away: closing the connection tells the client

        return Handler
