"""The decision table's daily partitions: made a few days ahead, and dropped whole once older
than the retention (`FERROSCORE_DECISION_RETENTION_DAYS`), which costs PostgreSQL nothing
like a DELETE of the same rows. Rows no daily partition covers (written before the table was
partitioned, or replayed from a spool after a very long outage) sit in `decisions_default`,
where retention deletes them row by row.

Every serving process runs `maintain` from its decision flusher; a transaction-level advisory
lock lets one do it at a time."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from psycopg import Connection, sql

log = logging.getLogger(__name__)

#: Days of partitions made ahead of today (and one behind, for clocks a little late).
AHEAD_DAYS = 3
_LOCK = 0x66726473  # "frds"
_PREFIX = "decisions_p"


def partition_name(day: date) -> str:
    return f"{_PREFIX}{day:%Y%m%d}"


def maintain(conn: Connection[Any], retention_days: int, now: datetime | None = None) -> None:
    """Makes the daily partitions from yesterday to `AHEAD_DAYS` ahead, and drops those older
    than `retention_days` (0: keep everything)."""
    now = now or datetime.now(UTC)
    today = now.astimezone(UTC).date()
    with conn.transaction():
        locked = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (_LOCK,)).fetchone()
        if not locked or not locked[0]:
            return  # another process is at it
        existing = _partitions(conn)
        for offset in range(-1, AHEAD_DAYS + 1):
            day = today + timedelta(days=offset)
            if partition_name(day) not in existing:
                _create(conn, day)
        if retention_days > 0:
            cutoff = today - timedelta(days=retention_days)
            for name, day in sorted(existing.items()):
                if day < cutoff:
                    conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
                    log.info("decision log: dropped partition %s (retention %d days)",
                             name, retention_days)  # fmt: skip
            start = datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=UTC)
            conn.execute("DELETE FROM decisions_default WHERE created_at < %s", (start,))


def _partitions(conn: Connection[Any]) -> dict[str, date]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'decisions'::regclass AND c.relname LIKE %s",
        (_PREFIX + "%",),
    ).fetchall()
    out = {}
    for (name,) in rows:
        try:
            out[name] = datetime.strptime(name.removeprefix(_PREFIX), "%Y%m%d").date()
        except ValueError:
            continue  # not one of ours
    return out


def _create(conn: Connection[Any], day: date) -> None:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    statement = sql.SQL(
        "CREATE TABLE {} PARTITION OF decisions FOR VALUES FROM ({}) TO ({})"
    ).format(sql.Identifier(partition_name(day)), start, start + timedelta(days=1))
    try:
        with conn.transaction():
            conn.execute(statement)
    except psycopg.errors.CheckViolation:
        # The default partition already holds rows of that day: they stay there, and the day
        # goes on in it (retention still deletes them).
        log.warning("decision log: no partition for %s: the default one holds its rows", day)
