"""Migrations apply once, in order, on a real PostgreSQL."""

from __future__ import annotations

import psycopg

from ferroscore.migrations import migrate


def test_migrations_are_idempotent(database_url: str) -> None:
    # The session fixture has migrated already: a second run has nothing to do.
    assert migrate(database_url) == []
    with psycopg.connect(database_url) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        }
    assert {"models", "active_models", "decisions", "schema_migrations"} <= tables
