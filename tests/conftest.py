"""Shared fixtures: real databases (a SQLite file, a PostgreSQL server started here) and real servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

BACKENDS = [pytest.param("sqlite", id="sqlite"), pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    from ringfence.testing.postgres import TemporaryPostgres

    with TemporaryPostgres() as server:
        yield server


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ringfence.db'}"
    server = request.getfixturevalue("postgres_server")
    return server.create_database()  # type: ignore[attr-defined,no-any-return]


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[object]:
    """A real `ringfence serve` process on a free loopback port, on each backend."""
    from ringfence.testing.server import ServerProcess

    with ServerProcess(db_url, log_path=tmp_path / "server.log") as process:
        yield process
