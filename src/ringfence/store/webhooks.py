"""Webhook reads and writes: subscriptions, and the outbox of deliveries with every attempt."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import Connection, insert, select, update

from ringfence.core.webhook import Delivery, Webhook
from ringfence.store import rows
from ringfence.store import tables as t

_W, _D = t.webhooks, t.webhook_deliveries


def _webhook(row: Any) -> Webhook:
    return Webhook(
        id=row.id, url=row.url, events=tuple(json.loads(row.events)), configs=tuple(json.loads(row.configs)),
        description=row.description, created_at=rows.from_us(row.created_us), created_by=row.created_by,
        deleted_at=rows.from_us(row.deleted_us) if row.deleted_us is not None else None,
    )


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row.id, webhook_id=row.webhook_id, event_id=row.event_id, event=row.event, payload=row.payload,
        state=row.state, attempts=row.attempts, next_attempt_at=rows.from_us(row.next_attempt_us),
        created_at=rows.from_us(row.created_us),
        delivered_at=rows.from_us(row.delivered_us) if row.delivered_us is not None else None,
        last_status=row.last_status, last_error=row.last_error, log=tuple(json.loads(row.log)),
    )


class WebhookReads:
    connection: Connection

    def webhook(self, webhook_id: str) -> Webhook | None:
        """A live webhook (deleted ones are gone for readers)."""
        row = self.connection.execute(
            select(_W).where(_W.c.id == webhook_id, _W.c.deleted_us.is_(None))).first()
        return _webhook(row) if row else None

    def webhooks(self) -> list[Webhook]:
        query = select(_W).where(_W.c.deleted_us.is_(None)).order_by(_W.c.created_us, _W.c.id)
        return [_webhook(r) for r in self.connection.execute(query)]

    def deliveries(self, webhook_id: str, *, state: str | None = None, before: int | None = None,
                   limit: int = 100) -> list[Delivery]:
        query = select(_D).where(_D.c.webhook_id == webhook_id)
        if state is not None:
            query = query.where(_D.c.state == state)
        if before is not None:
            query = query.where(_D.c.id < before)
        return [_delivery(r) for r in self.connection.execute(query.order_by(_D.c.id.desc()).limit(limit))]

    def due_deliveries(self, now: dt.datetime, limit: int) -> list[tuple[Delivery, str, str]]:
        """Pending deliveries whose time has come, oldest first, each with its URL and secret.

        On PostgreSQL the rows are locked until the transaction ends, skipping rows another
        replica holds: two replicas never send the same attempt. SQLite has one process, and
        ignores the clause.
        """
        query = (
            select(_D, _W.c.url, _W.c.secret).join(_W, _W.c.id == _D.c.webhook_id)
            .where(_D.c.state == "pending", _D.c.next_attempt_us <= rows.to_us(now))
            .order_by(_D.c.next_attempt_us, _D.c.id).limit(limit)
            .with_for_update(skip_locked=True, of=_D)
        )
        return [(_delivery(r), r.url, r.secret) for r in self.connection.execute(query)]

    def next_due(self) -> dt.datetime | None:
        """When the soonest pending delivery is due, if any."""
        query = select(_D.c.next_attempt_us).where(_D.c.state == "pending").order_by(_D.c.next_attempt_us).limit(1)
        us = self.connection.execute(query).scalar()
        return None if us is None else rows.from_us(us)


class WebhookWrites(WebhookReads):
    wrote: bool

    def insert_webhook(self, webhook: Webhook, secret: str) -> None:
        self.wrote = True
        self.connection.execute(insert(_W).values(
            id=webhook.id, url=webhook.url, events=json.dumps(list(webhook.events)),
            configs=json.dumps(list(webhook.configs)), description=webhook.description, secret=secret,
            created_us=rows.to_us(webhook.created_at), created_by=webhook.created_by, deleted_us=None,
        ))

    def delete_webhook(self, webhook_id: str, now: dt.datetime) -> int:
        """Mark it deleted and cancel what it still had to deliver; returns how many were cancelled."""
        self.wrote = True
        self.connection.execute(update(_W).where(_W.c.id == webhook_id).values(deleted_us=rows.to_us(now)))
        done = self.connection.execute(
            update(_D).where(_D.c.webhook_id == webhook_id, _D.c.state == "pending")
            .values(state="cancelled", last_error="the webhook was deleted"))
        return int(done.rowcount)

    def enqueue_delivery(self, webhook_id: str, event_id: str, event: str, payload: str, now: dt.datetime) -> None:
        self.wrote = True
        self.connection.execute(insert(_D).values(
            webhook_id=webhook_id, event_id=event_id, event=event, payload=payload, state="pending", attempts=0,
            next_attempt_us=rows.to_us(now), created_us=rows.to_us(now), delivered_us=None, last_status=None,
            last_error="", log="[]",
        ))

    def record_attempt(self, delivery: Delivery, attempt: dict[str, Any], *, state: str,
                       next_attempt_at: dt.datetime, delivered_at: dt.datetime | None) -> None:
        self.wrote = True
        log = [*delivery.log, attempt]
        self.connection.execute(
            update(_D).where(_D.c.id == delivery.id, _D.c.state == "pending")
            .values(state=state, attempts=delivery.attempts + 1, next_attempt_us=rows.to_us(next_attempt_at),
                    delivered_us=rows.to_us(delivered_at) if delivered_at else None,
                    last_status=attempt.get("status"), last_error=attempt.get("error") or "", log=json.dumps(log)))
