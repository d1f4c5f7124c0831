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
        assert migrate(url, until="0012_binary_decisions") == ["0012_binary_decisions"]
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


def test_one_index_serves_the_list_and_monitoring_counts(postgres_server: str) -> None:
    """Migration 0013 leaves the decision table one index in time order for both readers: a
    monitoring window is counted from the index alone (model, version and role are in its
    entries), and the list's newest page is read from its end, backwards."""
    from ferroscore.decisionlog.monitoring import _WINDOW
    from ferroscore.serving.routes.decisions import NEWEST_FIRST

    window = {"tenant": "t", "model": "m1", "version": 1, "since": "2026-01-01T00:00:00Z",
              "until": "2027-01-01T00:00:00Z"}  # fmt: skip
    with fresh_database(postgres_server) as url, psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO decisions (request_id, row_index, model, version, features, score,"
            " created_at, role, tenant) SELECT 'r' || i, 0, 'm' || i % 3, 1, '{1}', '{0.5}',"
            " '2026-06-01'::timestamptz + i * interval '1 s', 'champion', 't'"
            " FROM generate_series(1, 3000) i"
        )
        conn.execute("VACUUM (ANALYZE) decisions")
        conn.execute("SET enable_seqscan = off")
        conn.execute("SET enable_bitmapscan = off")

        def plan(query: str, params: object) -> str:
            rows = conn.execute(f"EXPLAIN {query}", params).fetchall()  # type: ignore[call-overload]
            return "\n".join(r[0] for r in rows)

        counted = plan(f"SELECT count(*) FROM decisions WHERE {_WINDOW}", window)
        newest = plan(f"SELECT * FROM decisions WHERE tenant = %s AND model = %s"
                      f" ORDER BY {NEWEST_FIRST} LIMIT 10", ("t", "m1"))  # fmt: skip
        names = {r[0] for r in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'decisions'")}  # fmt: skip
    assert "Index Only Scan using decisions_default_tenant_created_at" in counted, counted
    assert "Index Scan Backward using decisions_default_tenant_created_at" in newest, newest
    assert "decisions_model_created_at" not in names
