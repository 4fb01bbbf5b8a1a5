"""Dashboard sessions live in the database: shared by replicas, kept over restarts, ended by logout and idling."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from ringfence.core.model import Role, Token
from ringfence.server.ui import session
from ringfence.store import tables as t
from ringfence.store.sql import SqlStore, open_store


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def token() -> Token:
    return Token("tok_1", "ada", Role.VIEWER, ("*",), dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "test")


def test_a_session_made_by_one_replica_is_known_to_another_and_outlives_a_restart(store: SqlStore,
                                                                                   db_url: str) -> None:
    clock = Clock()
    sid = session.Sessions(store, clock).create(token())
    again = open_store(db_url)  # another replica, or the same server after a restart
    try:
        found = session.Sessions(again, clock).get(sid)
        assert found is not None and found.token_id == "tok_1" and len(found.csrf) >= 32
    finally:
        again.close()
    with store.read() as reader:
        keys = [r.key for r in reader.connection.execute(select(t.ui_sessions.c.key))]
    assert keys and sid not in keys, "the database keeps only the id's hash"
    assert session.Sessions(store, clock).get("a guess") is None


def test_sessions_end_on_logout_after_idling_and_at_their_longest(store: SqlStore) -> None:
    clock = Clock()
    sessions = session.Sessions(store, clock)
    sid = sessions.create(token())
    clock.now += session.IDLE - dt.timedelta(minutes=1)
    assert sessions.get(sid) is not None          # used in time: its idle clock restarts
    clock.now += session.IDLE - dt.timedelta(minutes=1)
    assert sessions.get(sid) is not None
    clock.now += session.IDLE + dt.timedelta(seconds=1)
    assert sessions.get(sid) is None              # idle too long

    kept = sessions.create(token())
    for _ in range(4):                            # busy all day, but no session lasts past LONGEST
        clock.now += session.LONGEST / 4 + dt.timedelta(seconds=1)
        found = sessions.get(kept)
    assert found is None

    other = sessions.create(token())
    sessions.drop(other)
    assert sessions.get(other) is None


def test_logging_in_forgets_the_expired_sessions_of_everyone(store: SqlStore) -> None:
    clock = Clock()
    sessions = session.Sessions(store, clock)
    for _ in range(3):
        sessions.create(token())
    clock.now += session.LONGEST + dt.timedelta(seconds=1)
    sessions.create(token())
    with store.read() as reader:
        assert len(list(reader.connection.execute(select(t.ui_sessions.c.key)))) == 1


def test_one_token_holds_a_bounded_number_of_sessions_and_keeps_its_newest(store: SqlStore) -> None:
    clock = Clock()
    sessions = session.Sessions(store, clock)
    made = []
    for _ in range(session.MAX_PER_TOKEN + 5):
        clock.now += dt.timedelta(seconds=1)
        made.append(sessions.create(token()))
    alive = [sid for sid in made if sessions.get(sid) is not None]
    assert alive == made[-session.MAX_PER_TOKEN:]
    other = Token("tok_2", "bo", Role.VIEWER, ("*",), dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "test")
    assert sessions.get(sessions.create(other)) is not None   # another token's login ends none of these
    assert all(sessions.get(sid) is not None for sid in alive)
