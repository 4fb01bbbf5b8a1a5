"""The store: SQL written once with SQLAlchemy Core, run on SQLite or PostgreSQL.

Services open a unit of work and compose reads and writes inside it:

    with store.write() as tx:          # one transaction; writers are serialised
        head = tx.head(name)
        ...
        tx.insert_revision(..., seq=tx.seq)
        tx.append_event(...)            # the audit event commits with the change, or neither does

`store.read()` gives the same read methods outside a write. Per-dialect code is
limited to the engine set-up (engine.py) and error translation here.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from ringfence.core.canonical import canonical_json
from ringfence.core.model import AuditEvent, Binding, Revision, Token
from ringfence.core.names import MATCH_ALL, most_specific
from ringfence.errors import Conflict, InvalidInput, RingfenceError
from ringfence.store import rows
from ringfence.store import tables as t
from ringfence.store.engine import WRITE, make_engine
from ringfence.store.fleet import FleetReads, FleetWrites
from ringfence.store.incidents import IncidentReads, IncidentWrites
from ringfence.store.migrate import upgrade
from ringfence.store.observations import ObservationReads, ObservationWrites
from ringfence.store.reach import ReachReads
from ringfence.store.rollouts import RolloutReads, RolloutWrites
from ringfence.store.sessions import SessionReads, SessionWrites
from ringfence.store.webhooks import WebhookReads, WebhookWrites


class StoreUnavailable(RingfenceError):
    title = "Store unavailable"


@dataclass(frozen=True, slots=True)
class ConfigHead:
    name: str
    version: int
    deleted: bool
    updated_at: dt.datetime


def candidate_patterns(name: str) -> list[str]:
    """Every pattern that could bind `name`: itself, each parent prefix, and `*`."""
    parts = name.split("/")
    return [name, *("/".join(parts[:i]) + "/*" for i in range(len(parts) - 1, 0, -1)), MATCH_ALL]


# Hot-path statements are built once: SQLAlchemy then reuses their compiled form and cache key.
_HEAD = select(t.configs).where(t.configs.c.name == bindparam("name"))
_REVISION = select(t.revisions).where(t.revisions.c.name == bindparam("name"),
                                      t.revisions.c.version == bindparam("version"))
_CURRENT = select(t.revisions).join(
    t.configs, (t.configs.c.name == t.revisions.c.name) & (t.configs.c.current_version == t.revisions.c.version)
).where(t.configs.c.name == bindparam("name"))
_B, _BR = t.bindings, t.binding_revisions
_LIVE_BINDINGS = select(_BR).join(
    _B, (_B.c.kind == _BR.c.kind) & (_B.c.pattern == _BR.c.pattern) & (_B.c.current_version == _BR.c.version)
).where(_B.c.kind == bindparam("kind"), _B.c.deleted.is_(False))
_BINDINGS_FOR = _LIVE_BINDINGS.where(_B.c.pattern.in_(bindparam("patterns", expanding=True)))
_TOKEN_BY_HASH = select(t.tokens).where(t.tokens.c.secret_hash == bindparam("secret_hash"))
_INSERT_HEAD = insert(t.configs)
_ADVANCE_HEAD = (update(t.configs)
                 .where(t.configs.c.name == bindparam("b_name"), t.configs.c.current_version == bindparam("parent"))
                 .values(current_version=bindparam("b_version"), deleted=bindparam("b_deleted"),
                         updated_us=bindparam("b_updated_us")))
_INSERT_REVISION = insert(t.revisions)
_INSERT_EVENT = insert(t.audit_events)
_TAKE_SEQ = (update(t.seq_counter).where(t.seq_counter.c.id == 1)
             .values(value=t.seq_counter.c.value + 1).returning(t.seq_counter.c.value))


class Reader(FleetReads, IncidentReads, WebhookReads, ReachReads, RolloutReads, ObservationReads, SessionReads):
    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    # --- configs ---------------------------------------------------------------------
    def head(self, name: str) -> ConfigHead | None:
        row = self.connection.execute(_HEAD, {"name": name}).first()
        if row is None:
            return None
        return ConfigHead(row.name, row.current_version, bool(row.deleted), rows.from_us(row.updated_us))

    def revision(self, name: str, version: int) -> Revision | None:
        row = self.connection.execute(_REVISION, {"name": name, "version": version}).first()
        return rows.revision(row) if row else None

    def current(self, name: str) -> Revision | None:
        row = self.connection.execute(_CURRENT, {"name": name}).first()
        return rows.revision(row) if row else None

    def history(self, name: str, *, before: int | None = None, limit: int = 50) -> list[Revision]:
        query = select(t.revisions).where(t.revisions.c.name == name)
        if before is not None:
            query = query.where(t.revisions.c.version < before)
        query = query.order_by(t.revisions.c.version.desc()).limit(limit)
        return [rows.revision(r, with_value=False) for r in self.connection.execute(query)]

    def heads(
        self, *, prefix: str = "", after: str | None = None, limit: int = 100,
        include_deleted: bool = False,
    ) -> list[ConfigHead]:
        query = select(t.configs)
        if prefix:
            query = query.where(t.configs.c.name.startswith(prefix, autoescape=True))
        if after is not None:
            query = query.where(t.configs.c.name > after)
        if not include_deleted:
            query = query.where(t.configs.c.deleted.is_(False))
        query = query.order_by(t.configs.c.name).limit(limit)
        return [
            ConfigHead(r.name, r.current_version, bool(r.deleted), rows.from_us(r.updated_us))
            for r in self.connection.execute(query)
        ]

    def revision_count(self) -> int:
        return int(self.connection.execute(select(func.count()).select_from(t.revisions)).scalar_one())

    def last_seq(self) -> int:
        return int(self.connection.execute(select(t.seq_counter.c.value)).scalar_one())

    # --- bindings (schemas, policies) -------------------------------------------------
    def binding(self, kind: str, pattern: str, version: int | None = None) -> Binding | None:
        """A version of what is bound to `pattern` (the current one by default), tombstones included."""
        if version is None:
            current = self.connection.execute(
                select(_B.c.current_version).where(_B.c.kind == kind, _B.c.pattern == pattern)
            ).scalar()
            if current is None:
                return None
            version = int(current)
        row = self.connection.execute(
            select(_BR).where(_BR.c.kind == kind, _BR.c.pattern == pattern, _BR.c.version == version)
        ).first()
        return rows.binding(row) if row else None

    def binding_for(self, kind: str, name: str) -> Binding | None:
        """What binds config `name` now: the most specific live binding of that kind."""
        bound = {
            row.pattern: row
            for row in self.connection.execute(_BINDINGS_FOR, {"kind": kind, "patterns": candidate_patterns(name)})
        }
        pattern = most_specific(bound, name)
        return rows.binding(bound[pattern]) if pattern else None

    def bindings(self, kind: str) -> list[Binding]:
        """Every live binding of a kind, by pattern."""
        query = _LIVE_BINDINGS.order_by(_B.c.pattern)
        return [rows.binding(r) for r in self.connection.execute(query, {"kind": kind})]

    def binding_history(self, kind: str, pattern: str, *, limit: int = 50) -> list[Binding]:
        query = (select(_BR).where(_BR.c.kind == kind, _BR.c.pattern == pattern)
                 .order_by(_BR.c.version.desc()).limit(limit))
        return [rows.binding(r) for r in self.connection.execute(query)]

    # --- audit -----------------------------------------------------------------------
    def audit(
        self, *, subject: str | None = None, subject_prefix: str | None = None,
        actor: str | None = None, action: str | None = None,
        since: dt.datetime | None = None, until: dt.datetime | None = None,
        before_id: int | None = None, rollout_id: int | None = None, limit: int = 100,
    ) -> list[AuditEvent]:
        c = t.audit_events.c
        query = select(t.audit_events)
        if rollout_id is not None:
            query = query.where(c.rollout_id == rollout_id)
        if subject is not None:
            query = query.where(c.subject == subject)
        if subject_prefix:
            query = query.where(c.subject.startswith(subject_prefix, autoescape=True))
        if actor is not None:
            query = query.where(c.actor == actor)
        if action is not None:
            query = query.where(c.action == action)
        if since is not None:
            query = query.where(c.time_us >= rows.to_us(since))
        if until is not None:
            query = query.where(c.time_us < rows.to_us(until))
        if before_id is not None:
            query = query.where(c.id < before_id)
        query = query.order_by(c.id.desc()).limit(limit)
        return [rows.audit_event(r) for r in self.connection.execute(query)]

    # --- tokens ----------------------------------------------------------------------
    def token_by_hash(self, secret_hash: str) -> Token | None:
        row = self.connection.execute(_TOKEN_BY_HASH, {"secret_hash": secret_hash}).first()
        return rows.token(row) if row else None

    def token(self, token_id: str) -> Token | None:
        row = self.connection.execute(select(t.tokens).where(t.tokens.c.id == token_id)).first()
        return rows.token(row) if row else None

    def tokens(self) -> list[Token]:
        return [rows.token(r) for r in self.connection.execute(select(t.tokens).order_by(t.tokens.c.created_us))]

    def token_count(self) -> int:
        return int(self.connection.execute(select(func.count()).select_from(t.tokens)).scalar_one())


class Writer(Reader, FleetWrites, IncidentWrites, WebhookWrites, RolloutWrites, ObservationWrites,
             SessionWrites):
    """Reads and writes inside one write transaction."""

    seq: int
    wrote = False

    def take_seq(self) -> None:
        """Take this transaction's global seq, first thing.

        The counter row stays locked until commit, which serialises writers: every check a
        write makes (current version, bound schema) still holds when it commits, and commit
        order is seq order. A transaction that stores nothing leaves a gap, never a repeat.
        """
        self.seq = int(self.connection.execute(_TAKE_SEQ).scalar_one())

    def insert_revision(self, revision: Revision) -> None:
        self.wrote = True
        head = {"name": revision.name, "current_version": revision.version, "deleted": revision.deleted,
                "updated_us": rows.to_us(revision.created_at)}
        if revision.version == 1:
            self.connection.execute(_INSERT_HEAD, head)
        elif self.connection.execute(_ADVANCE_HEAD, {
            "b_name": revision.name, "parent": revision.version - 1, "b_version": revision.version,
            "b_deleted": revision.deleted, "b_updated_us": head["updated_us"],
        }).rowcount != 1:
            # Cannot happen under the seq lock; the guard keeps history linear regardless.
            raise Conflict(f"{revision.name} changed while this write was being made; retry")
        self.connection.execute(_INSERT_REVISION, {
            "name": revision.name,
            "version": revision.version,
            "hash": revision.hash,
            "value": None if revision.deleted else canonical_json(revision.value),
            "deleted": revision.deleted,
            "author": revision.author,
            "message": revision.message,
            "parent": revision.parent,
            "created_us": rows.to_us(revision.created_at),
            "seq": revision.seq,
        })

    def insert_binding(self, binding: Binding) -> None:
        self.wrote = True
        key = {"kind": binding.kind, "pattern": binding.pattern}
        if binding.version == 1:
            self.connection.execute(insert(_B).values(**key, current_version=1, deleted=binding.deleted))
        else:
            self.connection.execute(
                update(_B).where(_B.c.kind == binding.kind, _B.c.pattern == binding.pattern)
                .values(current_version=binding.version, deleted=binding.deleted)
            )
        self.connection.execute(insert(_BR).values(
            **key,
            version=binding.version,
            hash=binding.hash,
            document=None if binding.deleted else canonical_json(binding.document),
            deleted=binding.deleted,
            author=binding.author,
            message=binding.message,
            created_us=rows.to_us(binding.created_at),
            seq=binding.seq,
        ))

    def append_event(
        self, *, seq: int, time: dt.datetime, actor: str, action: str, subject: str,
        message: str = "", before_hash: str | None = None, after_hash: str | None = None,
        details: dict[str, Any] | None = None, rollout_id: int | None = None,
    ) -> None:
        self.wrote = True
        self.connection.execute(_INSERT_EVENT, {
            "seq": seq, "time_us": rows.to_us(time), "actor": actor, "action": action, "subject": subject,
            "message": message, "before_hash": before_hash, "after_hash": after_hash,
            "details": json.dumps(details or {}, sort_keys=True), "rollout_id": rollout_id,
        })

    def insert_token(self, token: Token, secret_hash: str) -> None:
        self.wrote = True
        self.connection.execute(
            insert(t.tokens).values(
                id=token.id, name=token.name, secret_hash=secret_hash, role=token.role.value,
                scopes=json.dumps(list(token.scopes)), created_us=rows.to_us(token.created_at),
                created_by=token.created_by,
            )
        )

    def revoke_token(self, token_id: str, now: dt.datetime) -> None:
        self.wrote = True
        self.connection.execute(
            update(t.tokens).where(t.tokens.c.id == token_id, t.tokens.c.revoked_us.is_(None))
            .values(revoked_us=rows.to_us(now))
        )


def _out_of_range(exc: DataError) -> InvalidInput:
    # The database refused a value the API let through (a number past its column's range, a
    # NUL in a PostgreSQL string): the input is wrong, not the server.
    return InvalidInput(f"a value in the request cannot be stored or searched: {str(exc.orig).splitlines()[0]}")


class SqlStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._write_engine = engine.execution_options(**{WRITE: True})
        # SQLite has one writer at a time anyway; queueing writers on a lock in
        # this process beats having them poll SQLite's busy handler.
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else None

    @contextmanager
    def read(self) -> Iterator[Reader]:
        try:
            with self.engine.connect() as connection:
                yield Reader(connection)
                connection.rollback()
        except DataError as exc:
            raise _out_of_range(exc) from None
        except OperationalError as exc:
            raise StoreUnavailable(f"the database cannot be reached: {exc.orig}") from None

    @contextmanager
    def write(self, *, sequenced: bool = True) -> Iterator[Writer]:
        """A write transaction. `sequenced=False` is for bookkeeping that is not a change
        (heartbeats): it takes no seq, so it never queues behind the writers of changes on
        PostgreSQL (SQLite has one writer whatever we do)."""
        if self._write_lock is not None:
            self._write_lock.acquire()
        try:
            with self._write_engine.connect() as connection, connection.begin() as transaction:
                writer = Writer(connection)
                if sequenced:
                    writer.take_seq()
                yield writer
                if not writer.wrote:
                    transaction.rollback()  # nothing stored: give the seq back
        except IntegrityError as exc:
            # Two writers raced past our checks (e.g. two first versions of one name):
            # the database's constraints caught it; the loser sees a conflict.
            raise Conflict(f"a concurrent write got there first ({exc.orig.__class__.__name__}); retry") from None
        except DataError as exc:
            raise _out_of_range(exc) from None
        except OperationalError as exc:
            raise StoreUnavailable(f"the database cannot be reached: {exc.orig}") from None
        finally:
            if self._write_lock is not None:
                self._write_lock.release()

    def close(self) -> None:
        self.engine.dispose()


def open_store(url: str, *, synchronous: str = "FULL") -> SqlStore:
    """Open the database at `url`, migrating it to the newest schema first."""
    engine = make_engine(url, synchronous=synchronous)
    try:
        upgrade(engine)
    except OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0]
        hint = ("check that the directory exists and is writable" if engine.dialect.name == "sqlite"
                else "check that PostgreSQL is running and the URL, user and database are right")
        raise StoreUnavailable(f"cannot open the database {describe(url)}: {reason}; {hint}") from None
    return SqlStore(engine)


def describe(url: str) -> str:
    """`url` with any password hidden, for logs."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


__all__: Sequence[str] = ["ConfigHead", "Reader", "SqlStore", "StoreUnavailable", "Writer", "open_store"]
