"""The I/O seam under the client: how messages from the server arrive.

A transport turns HTTP into `Message`s (snapshot, update, remove) and knows
nothing of caching, status or callbacks: that policy lives in the client. Two
transports produce the same messages: `StreamTransport` holds one Server-Sent
Events stream (`GET /v1/stream`), `PollTransport` long-polls (`GET /v1/poll`)
for networks that break streams. Tests can drive either against a real server,
or give the client any object with the same `messages()` method.

Errors are raised as `TransportFailure`, whose message names what went wrong
but never a header or a token.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from ringfence.sdk import sse
from ringfence.sdk.backoff import retry_after

# Connect fast, but read longer than the server's 15 s ping so a healthy idle stream never times out
# while a dead one is noticed within 30 s.
TIMEOUT = httpx.Timeout(5.0, read=30.0)
POLL_WAIT = 25.0


@dataclass(frozen=True, slots=True)
class Message:
    kind: str  # "snapshot" | "update" | "remove"
    data: Mapping[str, Any]


class TransportFailure(Exception):
    def __init__(self, message: str, retry_after: float | None = None, *, fatal: bool = False,
                 unreachable: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.fatal = fatal  # the server refused us (401/403): retrying soon will not help
        self.unreachable = unreachable  # no connection at all: long-polling would not get through either


class Transport(Protocol):
    def messages(self, have: str) -> Iterator[Message]:
        """Messages until the connection ends; raises TransportFailure on any error."""
        ...


@dataclass(frozen=True, slots=True)
class Identity:
    """Who this instance is, sent so the server can register it while it connects."""

    instance_id: str
    service: str
    region: str
    zone: str
    labels: Mapping[str, str]
    configs: tuple[str, ...]

    def params(self) -> list[tuple[str, str]]:
        params = [("instance", self.instance_id), ("service", self.service), ("region", self.region),
                  ("zone", self.zone), ("configs", ",".join(self.configs))]
        return params + [("label", f"{k}={v}") for k, v in sorted(self.labels.items())]

    def body(self, sdk_version: str) -> dict[str, Any]:
        return {"id": self.instance_id, "service": self.service, "region": self.region, "zone": self.zone,
                "labels": dict(self.labels), "configs": list(self.configs), "sdk_version": sdk_version}


def _check(response: httpx.Response, what: str) -> None:
    if response.status_code < 400:
        return
    if response.is_stream_consumed is False:
        response.read()
    fatal = response.status_code in (401, 403)
    raise TransportFailure(f"{what}: HTTP {response.status_code}", retry_after(response.headers.get("Retry-After")),
                           fatal=fatal)


def _failure(what: str, error: Exception) -> TransportFailure:
    # The class name is enough to act on; httpx messages can carry URLs, which we keep out of logs by habit.
    return TransportFailure(f"{what}: {type(error).__name__}",
                            unreachable=isinstance(error, httpx.ConnectError | httpx.ConnectTimeout))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shape_problem(kind: str, data: dict[str, Any]) -> str | None:
    """What makes `data` not a `kind` message of docs/stream.md, or None.

    Checked before anything is applied: JSON of the wrong shape (an API gateway's
    `{"message": "upstream unavailable"}` with a 200, a broken proxy, a bug) must
    fail like any bad answer. Applied, a snapshot without `configs` would tell the
    client to run nothing, and overwrite its last known good on disk with nothing.
    """
    if not _is_int(data.get("seq", 0)):
        return "a seq that is not a number"
    if kind == "snapshot":
        configs = data.get("configs")
        if not isinstance(configs, dict):
            return "no configs"
        for item in configs.values():
            if not isinstance(item, dict) or not _is_int(item.get("version")):
                return "a config without a version"
        return None
    if not isinstance(data.get("name"), str):
        return "no config name"
    if kind == "update" and (not _is_int(data.get("version")) or "value" not in data):
        return "no version or no value"
    return None


def _message(kind: str, data: object, what: str) -> Message:
    if not isinstance(data, dict):
        raise TransportFailure(f"{what}: the server sent a {kind} that is not an object")
    problem = _shape_problem(kind, data)
    if problem is not None:
        raise TransportFailure(f"{what}: the server sent a {kind} with {problem}")
    return Message(kind, data)


def _event_message(event: sse.Event) -> Message | None:
    if event.event not in ("snapshot", "update", "remove"):
        return None  # a newer server's event this client does not know: skipping it is safe
    try:
        data = json.loads(event.data)
    except ValueError:
        raise TransportFailure(f"stream: the server sent a {event.event} that is not JSON") from None
    return _message(event.event, data, "stream")


class StreamTransport:
    def __init__(self, http: httpx.Client, identity: Identity) -> None:
        self.http = http
        self.identity = identity

    def messages(self, have: str) -> Iterator[Message]:
        params = httpx.QueryParams([*self.identity.params(), ("have", have)])
        try:
            with self.http.stream("GET", "/v1/stream", params=params, timeout=TIMEOUT,
                                  headers={"Accept": "text/event-stream"}) as response:
                _check(response, "stream")
                for event in sse.parse(response.iter_lines()):
                    message = _event_message(event)
                    if message is not None:
                        yield message
        except httpx.HTTPError as error:
            raise _failure("stream", error) from None
        raise TransportFailure("stream: the server closed the connection")


class PollTransport:
    """One long-poll per `messages()` call: the client calls again with what it now has."""

    def __init__(self, http: httpx.Client, identity: Identity, sdk_version: str, wait: float = POLL_WAIT) -> None:
        self.http = http
        self.identity = identity
        self.sdk_version = sdk_version
        self.wait = wait
        self._registered = False

    def register(self) -> None:
        # /v1/poll does not register (the stream does): an instance that never streamed registers here.
        try:
            response = self.http.post("/v1/instances", json=self.identity.body(self.sdk_version), timeout=TIMEOUT)
        except httpx.HTTPError as error:
            raise _failure("register", error) from None
        _check(response, "register")
        self._registered = True

    def messages(self, have: str, wait: float | None = None) -> Iterator[Message]:
        """`wait`: seconds the server may hold the answer for a change (default: the transport's)."""
        if not self._registered:
            self.register()
        wait = self.wait if wait is None else wait
        params = {"instance": self.identity.instance_id, "have": have, "wait": str(wait)}
        try:
            response = self.http.get("/v1/poll", params=params,
                                     timeout=httpx.Timeout(5.0, read=wait + 30.0))
        except httpx.HTTPError as error:
            raise _failure("poll", error) from None
        if response.status_code == 404:
            self._registered = False  # the server forgot us (a new database): register again next time
        _check(response, "poll")
        try:
            data = response.json()
        except ValueError:
            raise TransportFailure("poll: the server sent a body that is not JSON") from None
        yield _message("snapshot", data, "poll")
