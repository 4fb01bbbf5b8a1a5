"""Migrations carry data forward: a database made by an older release opens with its history intact."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from ringfence.store.engine import make_engine
from ringfence.store.sql import open_store

MIGRATIONS = Path(__file__).resolve().parents[2] / "src" / "ringfence" / "store" / "migrations"


def test_schema_bindings_made_before_0002_survive_the_move_to_generic_bindings(db_url: str) -> None:
    engine = make_engine(db_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(text("INSERT INTO schemas (pattern, current_version, deleted) VALUES ('a/*', 2, false)"))
        for version, schema in ((1, '{"type":"object"}'), (2, '{"required":["x"],"type":"object"}')):
            connection.execute(text(
                "INSERT INTO schema_revisions (pattern, version, hash, schema, deleted, author, message, "
                "created_us, seq) VALUES ('a/*', :v, 'sha256:x', :s, false, 'alice', 'why', 1, :v)"
            ), {"v": version, "s": schema})
    engine.dispose()

    store = open_store(db_url)
    with store.read() as reader:
        history = reader.binding_history("schema", "a/*")
        bound = reader.binding_for("schema", "a/b")
    store.close()
    assert [b.version for b in history] == [2, 1]
    assert bound is not None
    assert bound.document == {"required": ["x"], "type": "object"}
    assert (bound.author, bound.message) == ("alice", "why")
