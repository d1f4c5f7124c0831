"""Settings refuse bad values at start-up, naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferroscore.config import ConfigError, Settings


def test_defaults_bind_to_loopback() -> None:
    s = Settings.from_env({})
    assert (s.host, s.port, s.database_url, s.data_dir) == (
        "127.0.0.1",
        8000,
        None,
        Path(".ferroscore"),
    )


def test_values_are_read() -> None:
    s = Settings.from_env(
        {
            "FERROSCORE_PORT": "9001",
            "FERROSCORE_PROCESSES": "2",
            "DATABASE_URL": "postgresql://u@h/db",
            "FERROSCORE_LOG_LEVEL": "debug",
        }
    )
    assert (s.port, s.processes, s.database_url, s.log_level) == (
        9001,
        2,
        "postgresql://u@h/db",
        "DEBUG",
    )


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"FERROSCORE_PORT": "eighty"}, "FERROSCORE_PORT"),
        ({"FERROSCORE_PORT": "70000"}, "FERROSCORE_PORT"),
        ({"FERROSCORE_PROCESSES": "0"}, "FERROSCORE_PROCESSES"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"DATABASE_URL": "host=/tmp port"}, "DATABASE_URL"),
        ({"FERROSCORE_LOG_LEVEL": "loud"}, "FERROSCORE_LOG_LEVEL"),
    ],
)
def test_bad_values_are_refused(env: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Settings.from_env(env)
