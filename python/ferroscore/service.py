"""The state one serving process holds: its database pool, the model registry, the live
catalog, the decision log and the shadow scorer. Built after the fork, in the adapter's
startup hook."""

from __future__ import annotations

import logging
import queue
import threading

from psycopg_pool import ConnectionPool

from ferroscore._core import Endpoint, Model, RequestError
from ferroscore.catalog import Catalog
from ferroscore.config import Settings
from ferroscore.decisions import DecisionLog
from ferroscore.registry import Artifact, ModelRegistry

log = logging.getLogger(__name__)

#: Shadow requests waiting to be scored; past this, new ones are skipped (and counted).
SHADOW_QUEUE = 1024


class ShadowScorer:
    """Scores challenger versions on a thread of its own, after the champion has answered,
    and logs their decisions with the role "shadow"."""

    def __init__(self, decisions: DecisionLog) -> None:
        self._decisions = decisions
        self._queue: queue.Queue[tuple[Endpoint, bytes | str, bool, bool, str] | None] = (
            queue.Queue(SHADOW_QUEUE)
        )
        self._thread = threading.Thread(target=self._run, name="shadow", daemon=True)
        self.skipped = 0

    def start(self) -> None:
        self._thread.start()

    def submit(
        self, endpoint: Endpoint, body: bytes | str, ndjson: bool, partial: bool, request_id: str
    ) -> None:
        try:
            self._queue.put_nowait((endpoint, body, ndjson, partial, request_id))
        except queue.Full:
            self.skipped += 1

    def close(self, timeout: float | None = None) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            endpoint, body, ndjson, partial, request_id = item
            try:
                _, decision = endpoint.score(
                    body, ndjson=ndjson, partial=partial, request_id=request_id
                )
            except RequestError:
                # The challenger's schema refuses what the champion accepted: nothing to log.
                continue
            except Exception:
                log.exception("shadow scoring of %s v%s failed", endpoint.name, endpoint.version)
                continue
            self._decisions.record(decision, role="shadow")


class Service:
    """Per-process state, shared by the route handlers."""

    def __init__(self, settings: Settings, conninfo: str) -> None:
        self.settings = settings
        self.conninfo = conninfo
        self._pool: ConnectionPool | None = None
        self._registry: ModelRegistry | None = None
        self._catalog: Catalog | None = None
        self._decisions: DecisionLog | None = None
        self._shadow: ShadowScorer | None = None

    def build_endpoint(self, a: Artifact) -> Endpoint:
        """A served endpoint, with this process's request limits."""
        model = Model.load(a.artifact, a.format)
        return Endpoint(
            a.name,
            a.version,
            model,
            a.input_schema,
            thresholds=a.thresholds,
            **self.settings.limits(),
        )

    @property
    def pool(self) -> ConnectionPool:
        if self._pool is None:
            raise RuntimeError("the service has not started")
        return self._pool

    @property
    def registry(self) -> ModelRegistry:
        if self._registry is None:
            raise RuntimeError("the service has not started")
        return self._registry

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            raise RuntimeError("the service has not started")
        return self._catalog

    @property
    def decisions(self) -> DecisionLog:
        if self._decisions is None:
            raise RuntimeError("the service has not started")
        return self._decisions

    @property
    def shadow(self) -> ShadowScorer:
        if self._shadow is None:
            raise RuntimeError("the service has not started")
        return self._shadow

    def start(self) -> None:
        """Opens the pool, loads the catalog, starts the decision writer and shadow scorer."""
        s = self.settings
        self._pool = ConnectionPool(
            self.conninfo, min_size=1, max_size=s.db_pool_size, open=True, name="ferroscore"
        )
        self._registry = ModelRegistry(self._pool, self.build_endpoint)
        self._catalog = Catalog(
            self._registry, self.build_endpoint, self.conninfo, s.catalog_reconcile_s
        )
        self._catalog.start()
        self._decisions = DecisionLog(
            self._pool,
            batch_size=s.decision_batch_size,
            flush_interval_s=s.decision_flush_ms / 1000,
        )
        self._decisions.start()
        self._shadow = ShadowScorer(self._decisions)
        self._shadow.start()

    def stop(self) -> None:
        """Scores the queued shadows, writes the queued decisions and closes the pool."""
        if self._catalog is not None:
            self._catalog.stop()
        if self._shadow is not None:
            self._shadow.close(timeout=5)
        if self._decisions is not None:
            self._decisions.close(timeout=10)
        if self._pool is not None:
            self._pool.close()

    def is_ready(self) -> bool:
        """Ready when the models are loaded and the database answers."""
        if self._pool is None or self._catalog is None or not self._catalog.current():
            return False
        try:
            with self._pool.connection(timeout=1.0) as conn:
                conn.execute("SELECT 1")
        except Exception:
            log.warning("readiness: database check failed", exc_info=True)
            return False
        return True
