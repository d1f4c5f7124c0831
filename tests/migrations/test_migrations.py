"""Migrations apply once, in order, on a real PostgreSQL."""

from __future__ import annotations

import psycopg
from psycopg.types.json import Jsonb

from ferroscore.migrations import migrate

from support import fresh_database


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


def test_the_decision_rows_of_earlier_versions_are_converted(postgres_server: str) -> None:
    """Migration 0012 turns each logged row's jsonb features into the float8[] of its
    version's names (by column; missing values NULL) and its context fields into `context`,
    also for a version deleted since (its names read from its rows)."""
    schema = {"type": "object", "properties": {
        "b": {"type": ["number", "null"], "x-ferroscore-column": 1},
        "a": {"type": "number", "x-ferroscore-column": 0},
        "note": {"type": "string", "x-ferroscore-source": "context"}}}  # fmt: skip
    insert = (
        "INSERT INTO decisions (request_id, row_index, model, version, features, score,"
        " created_at, role, tenant) VALUES (%s, 0, %s, %s, %s, '{0.5}', now(), 'champion', 't')"
    )
    with fresh_database(postgres_server, until="0011_class_labels") as url:
        with psycopg.connect(url) as conn:
            conn.execute(
                "INSERT INTO models (tenant, name, version, format, artifact, input_schema)"
                " VALUES ('t', 'm', 1, 'xgboost-json', '', %s)", (Jsonb(schema),)
            )  # fmt: skip
            conn.execute(insert, ("r1", "m", 1, Jsonb({"a": 1.5, "b": None, "note": "x"})))
            conn.execute(insert, ("r2", "m", 1, Jsonb({"a": 2, "b": 3, "note": None})))
            conn.execute(insert, ("r3", "gone", 4, Jsonb({"z": 1, "y": 2, "id": "q"})))
        assert migrate(url) == ["0012_binary_decisions"]
        with psycopg.connect(url) as conn:
            names = conn.execute(
                "SELECT name, version, features, context FROM version_features ORDER BY 1"
            ).fetchall()
            rows = dict(
                (r[0], r[1:])
                for r in conn.execute("SELECT request_id, features, context FROM decisions")
            )
    assert names == [("gone", 4, ["y", "z"], ["id"]), ("m", 1, ["a", "b"], ["note"])]
    assert rows == {
        "r1": ([1.5, None], {"note": "x"}),
        "r2": ([2.0, 3.0], {"note": None}),
        "r3": ([2.0, 1.0], {"id": "q"}),
    }
