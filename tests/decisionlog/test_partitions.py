"""The decision table's daily partitions: made ahead, dropped past retention, and rows no
partition covers deleted from the default one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from ferroscore.decisionlog.partitions import AHEAD_DAYS, maintain, partition_name


def _insert(conn: psycopg.Connection, request_id: str, at: datetime) -> None:
    conn.execute(
        "INSERT INTO decisions (request_id, model, version, features, score, created_at, tenant)"
        " VALUES (%s, 'm', 1, %s, '{0.5}', %s, 'default')",
        (request_id, [1.0], at),
    )


def _where(conn: psycopg.Connection, request_id: str) -> str | None:
    row = conn.execute(
        "SELECT tableoid::regclass::text FROM decisions WHERE request_id = %s", (request_id,)
    ).fetchone()
    return None if row is None else str(row[0])


def test_partitions_are_made_ahead_and_dropped_past_retention(module_database: str) -> None:
    now = datetime(2031, 3, 10, 12, tzinfo=UTC)
    with psycopg.connect(module_database, autocommit=True) as conn:
        conn.execute("TRUNCATE decisions")
        # A row older than any partition lands in the default one.
        _insert(conn, "ancient", now - timedelta(days=40))
        maintain(conn, retention_days=0, now=now - timedelta(days=10))
        maintain(conn, retention_days=0, now=now)
        days = [(now + timedelta(days=d)).date() for d in range(-1, AHEAD_DAYS + 1)]
        for day in days:
            assert conn.execute("SELECT to_regclass(%s)", (partition_name(day),)).fetchone() != (
                None,
            )
        _insert(conn, "today", now)
        _insert(conn, "old", now - timedelta(days=10))
        assert _where(conn, "today") == partition_name(now.date())
        assert _where(conn, "old") == partition_name((now - timedelta(days=10)).date())
        assert _where(conn, "ancient") == "decisions_default"

        # Retention of 7 days: the partition of 10 days ago goes, with its rows, and the
        # default partition's old rows are deleted; today's stay.
        maintain(conn, retention_days=7, now=now)
        assert _where(conn, "old") is None
        assert _where(conn, "ancient") is None
        assert _where(conn, "today") == partition_name(now.date())
        old_day = partition_name((now - timedelta(days=10)).date())
        assert conn.execute("SELECT to_regclass(%s)", (old_day,)).fetchone() == (None,)
        # A replayed decision still finds its row key unique within a partition.
        conn.execute(
            "INSERT INTO decisions (request_id, model, version, features, score, created_at,"
            " tenant) VALUES ('today', 'm', 1, '{}', '{0.5}', %s, 'default')"
            " ON CONFLICT DO NOTHING",
            (now,),
        )
        assert conn.execute("SELECT count(*) FROM decisions WHERE request_id = 'today'"
                            ).fetchone() == (1,)  # fmt: skip
