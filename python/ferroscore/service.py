"""The state one serving process holds: its database pool, the endpoints of the active model
versions and its decision log. Built after the fork, in Robyn's startup handler."""

from __future__ import annotations

import logging

from psycopg_pool import ConnectionPool

from ferroscore._core import Endpoint
from ferroscore.config import Settings
from ferroscore.decisions import DecisionLog
from ferroscore.registry import ModelRegistry

log = logging.getLogger(__name__)


class Service:
    """Per-process state, shared by the route handlers."""

    def __init__(self, settings: Settings, conninfo: str) -> None:
        self.settings = settings
        self.conninfo = conninfo
        self.registry = ModelRegistry(conninfo, limits=settings.limits())
        self.endpoints: dict[str, Endpoint] = {}
        self._pool: ConnectionPool | None = None
        self._decisions: DecisionLog | None = None

    @property
    def pool(self) -> ConnectionPool:
        if self._pool is None:
            raise RuntimeError("the service has not started")
        return self._pool

    @property
    def decisions(self) -> DecisionLog:
        if self._decisions is None:
            raise RuntimeError("the service has not started")
        return self._decisions

    def start(self) -> None:
        """Opens the pool, loads the active models and starts the decision writer."""
        self._pool = ConnectionPool(
            self.conninfo,
            min_size=1,
            max_size=self.settings.db_pool_size,
            open=True,
            name="ferroscore",
        )
        self.endpoints = self.registry.load_endpoints()
        self._decisions = DecisionLog(
            self._pool,
            batch_size=self.settings.decision_batch_size,
            flush_interval_s=self.settings.decision_flush_ms / 1000,
        )
        self._decisions.start()
        log.info("serving models: %s", ", ".join(sorted(self.endpoints)) or "none")

    def stop(self) -> None:
        """Writes the queued decisions and closes the pool."""
        if self._decisions is not None:
            self._decisions.close(timeout=10)
        if self._pool is not None:
            self._pool.close()

    def is_ready(self) -> bool:
        """Ready when the models are loaded and the database answers."""
        if self._pool is None or not self.endpoints:
            return False
        try:
            with self._pool.connection(timeout=1.0) as conn:
                conn.execute("SELECT 1")
        except Exception:
            log.warning("readiness: database check failed", exc_info=True)
            return False
        return True
