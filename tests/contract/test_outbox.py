"""The webhook outbox on every backend: deliveries commit with their event, the sender retries on a
schedule and gives up after its attempts, and on PostgreSQL two senders never claim the same row."""

from __future__ import annotations

import datetime as dt
import json
import threading

import httpx
import pytest

from ringfence.core import webhook as hooks
from ringfence.core.model import Role, Token
from ringfence.server.outbox import Sender
from ringfence.server.webhooks import WebhookService
from ringfence.store.sql import SqlStore, open_store

ADMIN = Token("tok_admin", "alice", Role.ADMIN, ("*",), dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "test")


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def emit(store: SqlStore, webhooks: WebhookService, clock: Clock, event: str = "incident.opened",
         config: str = "shop/limits") -> int:
    with store.write() as tx:
        queued = webhooks.emit(tx, event, config, {"incident": {"id": "1"}}, clock())
        tx.append_event(seq=tx.seq, time=clock(), actor="test", action="test.event", subject=config)
    return queued


def test_an_event_queues_one_delivery_per_webhook_that_wants_it(store: SqlStore) -> None:
    clock = Clock()
    webhooks = WebhookService(store, clock)
    wanted, _ = webhooks.create(ADMIN, {"url": "http://127.0.0.1:9/a", "events": ["incident.opened"]})
    webhooks.create(ADMIN, {"url": "http://127.0.0.1:9/b", "events": ["incident.resolved"]})
    webhooks.create(ADMIN, {"url": "http://127.0.0.1:9/c", "configs": ["payments/*"]})
    assert emit(store, webhooks, clock) == 1
    with store.read() as reader:
        [(delivery, url, secret)] = reader.due_deliveries(clock(), 10)
    assert (delivery.webhook_id, delivery.event, delivery.state, url) == (wanted.id, "incident.opened", "pending",
                                                                         "http://127.0.0.1:9/a")
    assert secret.startswith("whsec_")
    body = json.loads(delivery.payload)
    assert body["id"] == delivery.event_id and body["type"] == "incident.opened" and body["data"]["incident"]


def test_a_failed_write_queues_nothing(store: SqlStore) -> None:
    clock = Clock()
    webhooks = WebhookService(store, clock)
    webhooks.create(ADMIN, {"url": "http://127.0.0.1:9/a"})


    def failing_change() -> None:
        with store.write() as tx:
            webhooks.emit(tx, "incident.opened", "shop/limits", {}, clock())
            raise RuntimeError("the change failed after its event was queued")

    with pytest.raises(RuntimeError):
        failing_change()
    with store.read() as reader:
        assert reader.due_deliveries(clock(), 10) == []


def test_the_sender_retries_with_backoff_then_delivers_signed(store: SqlStore) -> None:
    clock = Clock()
    webhooks = WebhookService(store, clock)
    webhook, secret = webhooks.create(ADMIN, {"url": "http://receiver.test/hook"})
    answers = [503, 500, 204]
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(answers[len(seen) - 1])

    sender = Sender(store, clock, backoff=10, max_backoff=60, max_attempts=8, transport=httpx.MockTransport(answer))
    emit(store, webhooks, clock)
    assert sender.run_once() == 1
    assert sender.run_once() == 0  # not due yet: the first retry waits 7.5 to 10 s
    clock.advance(10)
    assert sender.run_once() == 1
    clock.advance(15)
    assert sender.run_once() == 0  # the second retry waits 15 to 20 s
    clock.advance(5)
    assert sender.run_once() == 1
    sender.stop()

    [delivery] = webhooks.deliveries(ADMIN, webhook.id, state=None, before=None, limit=10)
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("delivered", 3, 204)
    assert [a["status"] for a in delivery.log] == [503, 500, 204]
    assert delivery.log[0]["error"] == "HTTP 503 Service Unavailable" and delivery.log[2]["error"] == ""
    for request in seen:
        assert request.headers["x-ringfence-event-id"] == delivery.event_id
        assert hooks.verify(secret, request.content, request.headers["x-ringfence-timestamp"],
                            request.headers["x-ringfence-signature"], now=clock().timestamp())


def test_the_sender_gives_up_after_its_attempts_and_says_why(store: SqlStore) -> None:
    clock = Clock()
    webhooks = WebhookService(store, clock)
    webhook, _ = webhooks.create(ADMIN, {"url": "http://receiver.test/hook"})

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    sender = Sender(store, clock, backoff=1, max_backoff=1, max_attempts=3, transport=httpx.MockTransport(refuse))
    emit(store, webhooks, clock)
    for _ in range(3):
        assert sender.run_once() == 1
        clock.advance(1)
    assert sender.run_once() == 0
    sender.stop()
    [delivery] = webhooks.deliveries(ADMIN, webhook.id, state="failed", before=None, limit=10)
    assert delivery.attempts == 3 and delivery.last_status is None
    assert delivery.last_error == "ConnectError: connection refused"


def test_deleting_a_webhook_cancels_what_it_still_had_to_deliver(store: SqlStore) -> None:
    clock = Clock()
    webhooks = WebhookService(store, clock)
    webhook, _ = webhooks.create(ADMIN, {"url": "http://receiver.test/hook"})
    emit(store, webhooks, clock)
    webhooks.delete(ADMIN, webhook.id)
    with store.read() as reader:
        assert reader.due_deliveries(clock(), 10) == []
        [cancelled] = reader.deliveries(webhook.id)
    assert cancelled.state == "cancelled"
    assert emit(store, webhooks, clock) == 0  # a deleted webhook wants nothing


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)  # SQLite is one process, hence one sender
def test_two_senders_on_postgresql_never_claim_the_same_delivery(db_url: str) -> None:
    clock = Clock()
    first, second = open_store(db_url), open_store(db_url)
    try:
        webhooks = WebhookService(first, clock)
        webhooks.create(ADMIN, {"url": "http://receiver.test/hook"})
        for _ in range(3):
            emit(first, webhooks, clock)
        claimed, other = threading.Event(), threading.Event()
        seen: dict[str, list[int]] = {}

        def hold() -> None:
            with first.write(sequenced=False) as tx:
                seen["first"] = [d.id for d, _, _ in tx.due_deliveries(clock(), 2)]
                claimed.set()
                other.wait(10)  # keep the rows locked while the other sender looks

        holder = threading.Thread(target=hold)
        holder.start()
        assert claimed.wait(10)
        with second.write(sequenced=False) as tx:
            seen["second"] = [d.id for d, _, _ in tx.due_deliveries(clock(), 10)]
        other.set()
        holder.join(10)
        assert len(seen["first"]) == 2 and len(seen["second"]) == 1
        assert not set(seen["first"]) & set(seen["second"])
    finally:
        first.close()
        second.close()
