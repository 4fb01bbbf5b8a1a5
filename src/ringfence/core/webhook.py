"""Webhooks, the pure part: event names, the envelope, the signature, the retry schedule.

A delivery is an HTTP POST of a JSON envelope

    {"id": "evt_…", "type": "incident.opened", "created_at": "2026-…Z", "data": {…}}

with these headers:

    X-Ringfence-Event-Id:  evt_…       the same on every retry of one event: deduplicate on it
    X-Ringfence-Event:     incident.opened
    X-Ringfence-Timestamp: 1767268800  Unix seconds when this attempt was signed
    X-Ringfence-Signature: sha256=<hex HMAC-SHA256, keyed with the webhook's secret, of
                           "<timestamp>." followed by the raw body bytes>

Signing the timestamp with the body (as Stripe does) lets a receiver refuse a replayed
delivery: check the signature, then that the timestamp is recent (`verify` allows 5 minutes).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ringfence.core.names import matches
from ringfence.errors import InvalidInput, Problem

EVENTS = ("rollout.halted", "rollout.rolled_back", "incident.opened", "incident.mitigated", "incident.resolved")
EVENT_ID_HEADER = "X-Ringfence-Event-Id"
EVENT_HEADER = "X-Ringfence-Event"
TIMESTAMP_HEADER = "X-Ringfence-Timestamp"
SIGNATURE_HEADER = "X-Ringfence-Signature"
TOLERANCE = 300.0  # seconds a receiver should accept a timestamp from the past or the future
MAX_URL = 2000


def signed_material(timestamp: int, body: bytes) -> bytes:
    return str(timestamp).encode("ascii") + b"." + body


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Ringfence-Signature` value of `body` sent at `timestamp` (Unix seconds)."""
    digest = hmac.new(secret.encode("utf-8"), signed_material(timestamp, body), hashlib.sha256).hexdigest()
    return "sha256=" + digest


def verify(secret: str, body: bytes, timestamp: str, signature: str, now: float,
           tolerance: float = TOLERANCE) -> bool:
    """What a receiver does: the signature matches, and the timestamp is within `tolerance` of `now`."""
    if not timestamp.isdigit():
        return False
    expected = sign(secret, int(timestamp), body)
    return hmac.compare_digest(expected, signature) and abs(now - int(timestamp)) <= tolerance


def headers(secret: str, event_id: str, event: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        EVENT_ID_HEADER: event_id,
        EVENT_HEADER: event,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }


def envelope(event_id: str, event: str, created_at: str, data: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": event_id, "type": event, "created_at": created_at, "data": dict(data)}


def backoff(attempt: int, base: float, cap: float, key: str = "") -> float:
    """Seconds to wait after failed attempt number `attempt` (1, 2, …): base·2^(attempt-1),
    capped, less up to a quarter by a jitter drawn from `key` (the event id), so that the
    deliveries held up by one outage do not all come back at the same instant."""
    delay = min(cap, base * 2.0 ** max(0, attempt - 1))
    spread = int.from_bytes(hashlib.sha256(f"{key}:{attempt}".encode()).digest()[:2], "big") / 65535.0
    return delay * (1.0 - 0.25 * spread)


def check_url(value: Any) -> str:
    """An absolute http(s) URL with a host: where deliveries go."""
    problem = [Problem("/url", "expected an absolute http:// or https:// URL", "request")]
    if not isinstance(value, str) or not value or len(value) > MAX_URL or any(c.isspace() for c in value):
        raise InvalidInput("url must be an absolute http:// or https:// URL", problem)
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises ValueError on a port that is not a number
    except ValueError:
        raise InvalidInput(f"url {value[:100]!r} is not a valid URL", problem) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"url {value[:100]!r} must be an absolute http:// or https:// URL", problem)
    return value


def check_events(value: Any) -> tuple[str, ...]:
    choices = ", ".join(EVENTS)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"events must be a non-empty list of event types: {choices}",
                           [Problem("/events", "expected a non-empty list of strings", "request")])
    unknown = [v for v in value if v not in EVENTS]
    if unknown:
        raise InvalidInput(f"unknown event type {unknown[0]!r}; use {choices}",
                           [Problem(f"/events/{value.index(unknown[0])}", "unknown event type", "request")])
    return tuple(e for e in EVENTS if e in value)


@dataclass(frozen=True)
class Webhook:
    """A subscription: where to POST which events, for which configs. The secret is not here:
    it is read only to sign, and returned only once, when the webhook is created."""

    id: str
    url: str
    events: tuple[str, ...]
    configs: tuple[str, ...]  # name patterns; `*` for every config
    description: str
    created_at: dt.datetime
    created_by: str
    deleted_at: dt.datetime | None = None

    def wants(self, event: str, config: str) -> bool:
        return self.deleted_at is None and event in self.events and any(matches(p, config) for p in self.configs)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "url": self.url, "events": list(self.events), "configs": list(self.configs),
                "description": self.description, "created_at": self.created_at.isoformat(),
                "created_by": self.created_by}


@dataclass(frozen=True)
class Delivery:
    """One event for one webhook, and every attempt to deliver it."""

    id: int
    webhook_id: str
    event_id: str
    event: str
    payload: str  # the exact body sent, every time
    state: str  # pending, delivered, failed (gave up) or cancelled (webhook deleted)
    attempts: int
    next_attempt_at: dt.datetime
    created_at: dt.datetime
    delivered_at: dt.datetime | None = None
    last_status: int | None = None
    last_error: str = ""
    log: tuple[dict[str, Any], ...] = ()  # {at, status, error, ms} per attempt

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "webhook_id": self.webhook_id, "event_id": self.event_id, "event": self.event,
            "state": self.state, "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at.isoformat() if self.state == "pending" else None,
            "created_at": self.created_at.isoformat(),
            "delivered_at": self.delivered_at.isoformat() if self.delivered_at else None,
            "last_status": self.last_status, "last_error": self.last_error, "log": list(self.log),
        }
