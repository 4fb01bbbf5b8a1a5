"""Webhooks, the pure part: the signature a receiver checks, the retry schedule, input checks."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import pytest

from ringfence.core import webhook as hooks
from ringfence.errors import InvalidInput

SECRET = "whsec_test_secret_0123456789"
BODY = b'{"data":{},"id":"evt_1","type":"incident.opened"}'


def test_the_signature_is_hmac_sha256_of_the_timestamp_a_dot_and_the_raw_body() -> None:
    expected = hmac.new(SECRET.encode(), b"1767268800." + BODY, hashlib.sha256).hexdigest()
    assert hooks.sign(SECRET, 1767268800, BODY) == "sha256=" + expected


def test_headers_carry_the_event_id_type_timestamp_and_signature() -> None:
    headers = hooks.headers(SECRET, "evt_1", "incident.opened", 1767268800, BODY)
    assert headers["X-Ringfence-Event-Id"] == "evt_1"
    assert headers["X-Ringfence-Event"] == "incident.opened"
    assert headers["X-Ringfence-Timestamp"] == "1767268800"
    assert headers["X-Ringfence-Signature"] == hooks.sign(SECRET, 1767268800, BODY)
    assert headers["Content-Type"] == "application/json"


def test_verify_accepts_a_fresh_signed_body() -> None:
    signature = hooks.sign(SECRET, 1000, BODY)
    assert hooks.verify(SECRET, BODY, "1000", signature, now=1000 + 299)


@pytest.mark.parametrize(("secret", "body", "timestamp", "now"), [
    ("another secret, long enough", BODY, "1000", 1000),  # wrong secret
    (SECRET, BODY + b" ", "1000", 1000),  # body changed
    (SECRET, BODY, "1001", 1001),  # timestamp changed: it is signed too
    (SECRET, BODY, "1000", 1000 + 301),  # a replay, too late
    (SECRET, BODY, "x1000", 1000),  # not a number
])
def test_verify_refuses_anything_else(secret: str, body: bytes, timestamp: str, now: float) -> None:
    assert not hooks.verify(secret, body, timestamp, hooks.sign(SECRET, 1000, BODY), now=now)


def test_backoff_doubles_up_to_the_cap_with_at_most_a_quarter_of_jitter() -> None:
    for attempt, full in ((1, 30), (2, 60), (3, 120), (7, 1920), (8, 3600), (20, 3600)):
        wait = hooks.backoff(attempt, 30, 3600, "evt_1")
        assert 0.75 * full <= wait <= full
    assert hooks.backoff(3, 30, 3600, "evt_1") == hooks.backoff(3, 30, 3600, "evt_1")  # deterministic
    assert len({hooks.backoff(3, 30, 3600, f"evt_{i}") for i in range(20)}) > 10  # spread over events


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/hook", "https://hooks.example.com/x?a=1"])
def test_urls_that_can_receive(url: str) -> None:
    assert hooks.check_url(url) == url


@pytest.mark.parametrize("url", ["", "ftp://example.com/", "/relative", "http://", "https://a b/", "http://h:port/",
                                 None, 5, "x" * 3000])
def test_urls_that_cannot(url: object) -> None:
    with pytest.raises(InvalidInput):
        hooks.check_url(url)


def test_events_are_checked_and_kept_in_a_stable_order() -> None:
    assert hooks.check_events(["incident.opened", "rollout.rolled_back"]) == ("rollout.rolled_back",
                                                                              "incident.opened")
    with pytest.raises(InvalidInput, match=r"unknown event type 'rollout\.done'"):
        hooks.check_events(["rollout.done"])
    with pytest.raises(InvalidInput):
        hooks.check_events([])


def test_a_webhook_wants_its_events_for_the_configs_it_names() -> None:
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    webhook = hooks.Webhook("wh_1", "http://x/", ("incident.opened",), ("payments/*",), "", when, "admin")
    assert webhook.wants("incident.opened", "payments/limits")
    assert not webhook.wants("incident.opened", "shop/limits")
    assert not webhook.wants("rollout.halted", "payments/limits")
    gone = hooks.Webhook("wh_1", "http://x/", ("incident.opened",), ("*",), "", when, "admin", deleted_at=when)
    assert not gone.wants("incident.opened", "payments/limits")
