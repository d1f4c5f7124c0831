"""A serving process's state: readiness answers from state kept fresh in the background, so a
probe never waits on the database."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from ferroscore.config import Settings
from ferroscore.models.registry import ModelRegistry
from ferroscore.serving.service import DATABASE_CHECK_S, Service


def test_readiness_never_waits_on_the_database(
    registry: ModelRegistry, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.ensure_demo()
    service = Service(Settings.from_env({"DATABASE_URL": database_url}), database_url)
    service.start()
    try:
        assert service.is_ready()

        @contextmanager
        def stalled(timeout: float | None = None) -> Iterator[Any]:
            time.sleep(timeout or 0)
            raise TimeoutError("the database does not answer")
            yield  # pragma: no cover

        # The database stalls: every check now takes its whole timeout, then fails.
        monkeypatch.setattr(service.pool, "connection", stalled)
        started = time.monotonic()
        service.is_ready()
        assert time.monotonic() - started < 0.01
        deadline = time.monotonic() + 4 * DATABASE_CHECK_S
        while service.is_ready():
            assert time.monotonic() < deadline, "readiness never saw the stalled database"
            time.sleep(0.05)
        monkeypatch.undo()
        deadline = time.monotonic() + 4 * DATABASE_CHECK_S
        while not service.is_ready():
            assert time.monotonic() < deadline, "readiness never saw the database come back"
            time.sleep(0.05)
    finally:
        service.stop()
