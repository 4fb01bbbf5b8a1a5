"""Fixtures shared by the store contract tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ringfence.store.sql import SqlStore, open_store


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStore]:
    """A store opened (and migrated) on a fresh database of each backend."""
    opened = open_store(db_url)
    yield opened
    opened.close()
