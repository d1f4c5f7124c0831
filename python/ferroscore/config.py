"""Settings from the environment, validated once at start-up: a bad value stops the service
with a message naming the variable, never a surprise later."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict


class ConfigError(ValueError):
    """An environment variable holds a value the service cannot run with."""


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment. See the README's table."""

    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str | None = None
    data_dir: Path = Path(".ferroscore")
    processes: int = 1
    workers: int = 1
    max_body_bytes: int = 1 << 20
    max_depth: int = 32
    max_string_bytes: int = 4096
    max_features: int = 1024
    max_rows: int = 10_000
    decision_batch_size: int = 500
    decision_flush_ms: int = 200
    db_pool_size: int = 4
    log_level: str = "INFO"

    def limits(self) -> dict[str, int]:
        """The request limits, as `Endpoint` takes them."""
        return {
            "max_body_bytes": self.max_body_bytes,
            "max_depth": self.max_depth,
            "max_string_bytes": self.max_string_bytes,
            "max_features": self.max_features,
            "max_rows": self.max_rows,
        }

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Reads `FERROSCORE_*` variables and `DATABASE_URL`; raises ConfigError on bad values."""
        env = os.environ if env is None else env
        defaults = cls()

        def integer(name: str, default: int, low: int, high: int) -> int:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                value = int(raw)
            except ValueError:
                raise ConfigError(f"{name}={raw!r} is not an integer") from None
            if not low <= value <= high:
                raise ConfigError(f"{name}={value} is outside {low}..{high}")
            return value

        level = env.get("FERROSCORE_LOG_LEVEL", defaults.log_level).upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ConfigError(
                f"FERROSCORE_LOG_LEVEL={level!r} is not DEBUG, INFO, WARNING or ERROR"
            )
        database_url = env.get("DATABASE_URL") or None
        if database_url is not None:
            try:
                conninfo_to_dict(database_url)
            except psycopg.ProgrammingError as e:
                raise ConfigError(
                    f"DATABASE_URL is not a PostgreSQL connection string: {e}"
                ) from None
        return cls(
            host=env.get("FERROSCORE_HOST", defaults.host),
            port=integer("FERROSCORE_PORT", defaults.port, 1, 65535),
            database_url=database_url,
            data_dir=Path(env.get("FERROSCORE_DATA_DIR", str(defaults.data_dir))),
            processes=integer("FERROSCORE_PROCESSES", defaults.processes, 1, 64),
            workers=integer("FERROSCORE_WORKERS", defaults.workers, 1, 64),
            max_body_bytes=integer(
                "FERROSCORE_MAX_BODY_BYTES", defaults.max_body_bytes, 64, 1 << 30
            ),
            decision_batch_size=integer(
                "FERROSCORE_DECISION_BATCH_SIZE", defaults.decision_batch_size, 1, 100_000
            ),
            decision_flush_ms=integer(
                "FERROSCORE_DECISION_FLUSH_MS", defaults.decision_flush_ms, 1, 60_000
            ),
            db_pool_size=integer("FERROSCORE_DB_POOL_SIZE", defaults.db_pool_size, 1, 100),
            log_level=level,
        )
