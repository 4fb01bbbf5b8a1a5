"""Database engines: SQLite tuned for one writer in WAL mode, or PostgreSQL via psycopg 3."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from ringfence.errors import InvalidInput

WRITE = "ringfence_write"  # execution option that marks a write transaction


def normalise_url(url: str) -> str:
    """Accept the URLs people type (`postgresql://…`) and pick our drivers."""
    try:
        parsed = make_url(url)
    except Exception:
        raise InvalidInput(
            f"{url!r} is not a database URL; use sqlite:///path/to/file.db or "
            "postgresql://user@host:port/dbname"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return str(parsed.set(drivername="sqlite+pysqlite"))
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise InvalidInput(f"unsupported database {backend!r}: ringfence runs on sqlite or postgresql")


def make_engine(url: str, *, synchronous: str = "FULL") -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url, synchronous)
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def _sqlite_engine(url: str, synchronous: str) -> Engine:
    # A pool as large as the request thread pool: a connection opened past the pool is closed
    # after use, and reopening one costs its PRAGMAs every time.
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=40,
                           max_overflow=10)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to us (the `begin` hook) instead of pysqlite's guesswork.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A writer takes the write lock up front; a deferred BEGIN that later
        # upgrades to a writer can fail with SQLITE_BUSY instead of waiting.
        write = connection.get_execution_options().get(WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
