"""Persistence behind one interface: SQLite (default) and PostgreSQL, same SQL."""

from ringfence.store.sql import SqlStore, open_store

__all__ = ["SqlStore", "open_store"]
