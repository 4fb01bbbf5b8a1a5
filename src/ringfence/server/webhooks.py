"""Webhooks over the store: admins subscribe URLs to events; events queue deliveries.

`emit` runs inside the transaction of the change that caused the event and writes one outbox
row per subscribed webhook, so the event and its deliveries commit together or not at all;
`ringfence.server.outbox` sends them. The secret is generated here (or given by the admin),
returned once by `create`, and afterwards only ever read by the sender to sign.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from ringfence.core import webhook as hooks
from ringfence.core.access import Action, require
from ringfence.core.model import Token
from ringfence.core.names import MATCH_ALL, check_pattern
from ringfence.core.webhook import Delivery, Webhook
from ringfence.errors import InvalidInput, NotFound, Problem
from ringfence.server.configs import Clock
from ringfence.store.sql import SqlStore, Writer

SECRET_PREFIX = "whsec_"
MIN_SECRET = 16
MAX_SECRET = 200
MAX_DESCRIPTION = 500


class WebhookService:
    def __init__(self, store: SqlStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._listeners: list[Callable[[], None]] = []

    def on_commit(self, listener: Callable[[], None]) -> None:
        """`listener` (the sender) is told after a transaction that may have queued deliveries commits."""
        self._listeners.append(listener)

    def committed(self) -> None:
        for listener in self._listeners:
            listener()

    # --- events -------------------------------------------------------------------------
    def emit(self, tx: Writer, event: str, config: str, data: dict[str, Any], now: dt.datetime) -> int:
        """Queue `event` for every live webhook that wants it, in the caller's transaction."""
        if event not in hooks.EVENTS:
            raise ValueError(f"unknown webhook event {event!r}")
        wanted = [w for w in tx.webhooks() if w.wants(event, config)]
        if not wanted:
            return 0
        event_id = "evt_" + secrets.token_hex(12)
        body = json.dumps(hooks.envelope(event_id, event, now.isoformat(), data), sort_keys=True,
                          separators=(",", ":"), default=str)
        for webhook in wanted:
            tx.enqueue_delivery(webhook.id, event_id, event, body, now)
        return len(wanted)

    # --- admins -------------------------------------------------------------------------
    def create(self, token: Token, body: dict[str, Any]) -> tuple[Webhook, str]:
        require(token, Action.MANAGE_WEBHOOKS)
        url = hooks.check_url(body.get("url"))
        events = hooks.check_events(body.get("events", list(hooks.EVENTS)))
        configs = _patterns(body.get("configs", [MATCH_ALL]))
        description = body.get("description") or ""
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
            raise InvalidInput(f"description must be a string of at most {MAX_DESCRIPTION} characters",
                               [Problem("/description", "expected a short string", "request")])
        secret = _secret(body.get("secret"))
        now = self.clock()
        webhook = Webhook("wh_" + secrets.token_hex(8), url, events, configs, description, now, token.name)
        with self.store.write() as tx:
            tx.insert_webhook(webhook, secret)
            # The URL may itself be a credential (chat webhooks are): the audit log keeps its host only.
            tx.append_event(seq=tx.seq, time=now, actor=token.name, action="webhook.create",
                            subject=f"webhook:{webhook.id}", message=description,
                            details={"host": urlsplit(url).hostname, "events": list(events),
                                     "configs": list(configs)})
        return webhook, secret

    def all(self, token: Token) -> list[Webhook]:
        require(token, Action.MANAGE_WEBHOOKS)
        with self.store.read() as reader:
            return reader.webhooks()

    def get(self, token: Token, webhook_id: str) -> Webhook:
        require(token, Action.MANAGE_WEBHOOKS)
        with self.store.read() as reader:
            return _found(reader.webhook(webhook_id), webhook_id)

    def delete(self, token: Token, webhook_id: str) -> Webhook:
        require(token, Action.MANAGE_WEBHOOKS)
        with self.store.write() as tx:
            webhook = _found(tx.webhook(webhook_id), webhook_id)
            now = self.clock()
            cancelled = tx.delete_webhook(webhook_id, now)
            tx.append_event(seq=tx.seq, time=now, actor=token.name, action="webhook.delete",
                            subject=f"webhook:{webhook_id}", details={"cancelled_deliveries": cancelled})
        return webhook

    def deliveries(self, token: Token, webhook_id: str, *, state: str | None, before: int | None,
                   limit: int) -> list[Delivery]:
        require(token, Action.MANAGE_WEBHOOKS)
        with self.store.read() as reader:
            _found(reader.webhook(webhook_id), webhook_id)
            return reader.deliveries(webhook_id, state=state, before=before, limit=limit)


def _found(webhook: Webhook | None, webhook_id: str) -> Webhook:
    if webhook is None:
        raise NotFound(f"there is no webhook {webhook_id!r}; `ringfence webhook list` shows them")
    return webhook


def _patterns(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(p, str) for p in value):
        raise InvalidInput("configs must be a non-empty list of name patterns, e.g. [\"payments/*\"]",
                           [Problem("/configs", "expected a list of name patterns", "request")])
    return tuple(check_pattern(p) for p in value)


def _secret(value: Any) -> str:
    if value is None:
        return SECRET_PREFIX + secrets.token_urlsafe(32)
    if not isinstance(value, str) or not MIN_SECRET <= len(value) <= MAX_SECRET or not value.isprintable():
        raise InvalidInput(f"secret must be {MIN_SECRET} to {MAX_SECRET} printable characters (leave it out and "
                           "the server makes one)", [Problem("/secret", "too short or too long", "request")])
    return value
