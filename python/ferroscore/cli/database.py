"""The database the operator's commands work on: DATABASE_URL, or the embedded one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click
import psycopg

from ferroscore.config import ConfigError, Settings

T = TypeVar("T")


def with_database(work: Callable[[psycopg.Connection[Any]], T]) -> T:
    """Runs `work` on an autocommit connection to the migrated database; a configuration or
    database error is a one-line CLI error."""
    from ferroscore.cli.serve import database_url
    from ferroscore.migrations import migrate

    try:
        settings = Settings.from_env()
        conninfo = database_url(settings)
        migrate(settings.session_url(conninfo))
        with psycopg.connect(conninfo, autocommit=True) as conn:
            return work(conn)
    except ConfigError as e:
        raise click.ClickException(f"configuration error: {e}") from None
    except psycopg.Error as e:
        raise click.ClickException(f"database: {e}") from None
