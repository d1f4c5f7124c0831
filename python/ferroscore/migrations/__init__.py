"""Schema migrations: numbered SQL files applied once each, in order, under an advisory lock
so that several processes starting together migrate exactly once."""

from __future__ import annotations

from importlib import resources

import psycopg

# Any constant shared by every ferroscore process; it names the migration lock.
_LOCK_KEY = 0x66_65_72_72_6F


def _scripts() -> list[tuple[str, str]]:
    files = resources.files(__name__)
    found = sorted(f.name for f in files.iterdir() if f.name.endswith(".sql"))
    return [(name.removesuffix(".sql"), files.joinpath(name).read_text()) for name in found]


def migrate(conninfo: str, until: str | None = None) -> list[str]:
    """Applies the migrations not yet applied (up to `until`'s name, if given: how a database
    of an earlier version is made); returns their names."""
    applied: list[str] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
            for name, sql in _scripts():
                if name in done or (until is not None and name > until):
                    continue
                with conn.transaction():
                    conn.execute(sql.encode())
                    conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (name,))
                applied.append(name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied
