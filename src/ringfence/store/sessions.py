"""Dashboard sessions, kept by the hash of their id so that every replica shares them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, or_, select, update

from ringfence.store import rows
from ringfence.store import tables as t

_S = t.ui_sessions


@dataclass(frozen=True, slots=True)
class UiSession:
    token_id: str
    csrf: str
    created: dt.datetime
    seen: dt.datetime


class SessionReads:
    connection: Connection

    def ui_session(self, key: str) -> UiSession | None:
        row = self.connection.execute(select(_S).where(_S.c.key == key)).first()
        if row is None:
            return None
        return UiSession(row.token_id, row.csrf, rows.from_us(row.created_us), rows.from_us(row.seen_us))


class SessionWrites(SessionReads):
    wrote: bool

    def add_ui_session(self, key: str, session: UiSession) -> None:
        self.wrote = True
        self.connection.execute(insert(_S).values(key=key, token_id=session.token_id, csrf=session.csrf,
                                                  created_us=rows.to_us(session.created),
                                                  seen_us=rows.to_us(session.seen)))

    def touch_ui_session(self, key: str, seen: dt.datetime) -> None:
        self.wrote = True
        self.connection.execute(update(_S).where(_S.c.key == key).values(seen_us=rows.to_us(seen)))

    def drop_ui_session(self, key: str) -> None:
        self.wrote = True
        self.connection.execute(delete(_S).where(_S.c.key == key))

    def keep_newest_ui_sessions(self, token_id: str, keep: int) -> int:
        """Forget all but the `keep` most recently created sessions of one token."""
        newest = (select(_S.c.key).where(_S.c.token_id == token_id)
                  .order_by(_S.c.created_us.desc(), _S.c.key).limit(keep))
        kept = {r.key for r in self.connection.execute(newest)}
        self.wrote = True
        query = delete(_S).where(_S.c.token_id == token_id)
        if kept:
            query = query.where(_S.c.key.not_in(kept))
        return int(self.connection.execute(query).rowcount)

    def prune_ui_sessions(self, *, idle_since: dt.datetime, created_before: dt.datetime) -> int:
        """Forget sessions idle since `idle_since` or older than `created_before`."""
        self.wrote = True
        query = delete(_S).where(or_(_S.c.seen_us < rows.to_us(idle_since),
                                     _S.c.created_us < rows.to_us(created_before)))
        return int(self.connection.execute(query).rowcount)
