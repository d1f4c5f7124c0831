"""The state one serving process holds: its database pool, the model registry, the live
catalog, the decision log and the shadow scorer. Built after the fork, in the adapter's
startup hook."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from psycopg_pool import ConnectionPool

from ferroscore import hooks
from ferroscore._core import Decision, Endpoint, Model, RequestError
from ferroscore.access import keys
from ferroscore.access.jwts import Verifier
from ferroscore.access.ratelimit import RateLimits
from ferroscore.config import Settings
from ferroscore.decisionlog.flusher import DecisionLog
from ferroscore.models import sandbox
from ferroscore.models.catalog import Catalog
from ferroscore.models.registry import Artifact, ModelRegistry
from ferroscore.observability.logs import AccessLog, json_lines
from ferroscore.observability.metrics import Metrics
from ferroscore.pipeline import Caller
from ferroscore.processes.board import Board
from ferroscore.serving.loop_pools import LoopPools

log = logging.getLogger(__name__)

#: Shadow requests waiting to be scored; past this, new ones are skipped (and counted).
SHADOW_QUEUE = 1024
#: Seconds between two checks that the database answers, for readiness.
DATABASE_CHECK_S = 1.0


#: A shadow version's scoring, run after the champion answered: the decision to log, if any.
ShadowJob = Callable[[], "Decision | None"]


class ShadowScorer:
    """Scores challenger versions on a thread of its own, after the champion has answered,
    and logs their decisions with the role "shadow"."""

    def __init__(self, decisions: DecisionLog) -> None:
        self._decisions = decisions
        self._queue: queue.Queue[tuple[Endpoint, ShadowJob, str] | None] = queue.Queue(SHADOW_QUEUE)
        self._thread = threading.Thread(target=self._run, name="shadow", daemon=True)
        self.skipped = 0

    def start(self) -> None:
        self._thread.start()

    def submit(self, endpoint: Endpoint, job: ShadowJob, tenant: str) -> None:
        """Queues `job`, the scoring of `tenant`'s `endpoint`; skips it (counted) when the
        queue is full."""
        try:
            self._queue.put_nowait((endpoint, job, tenant))
        except queue.Full:
            self.skipped += 1

    def close(self, timeout: float | None = None) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            endpoint, job, tenant = item
            try:
                decision = job()
            except RequestError:
                # The challenger's schema refuses what the champion accepted: nothing to log.
                continue
            except hooks.HookRefusal as e:
                log.warning("shadow %s v%s not scored: %s", endpoint.name, endpoint.version, e)
                continue
            except Exception:
                log.exception("shadow scoring of %s v%s failed", endpoint.name, endpoint.version)
                continue
            if decision is not None:
                self._decisions.record(decision, "shadow", tenant)


class Service:
    """Per-process state, shared by the route handlers. Built before Robyn forks (nothing
    opened, no thread started), started in each serving process after it."""

    def __init__(self, settings: Settings, conninfo: str, metrics_dir: Path | None = None) -> None:
        """`metrics_dir`: where the serving processes of one server leave their metrics
        snapshots (made before the fork); None keeps this process's to itself."""
        self.settings = settings
        self.conninfo = conninfo
        # The flushers' connections come on top: a busy decision log never makes the registry
        # or a read route wait for one.
        self.pool = ConnectionPool(
            conninfo, min_size=1, max_size=settings.db_pool_size + settings.decision_flushers,
            open=False, name="ferroscore",
            **settings.pool_options(),
        )  # fmt: skip
        listen_url = settings.session_url(conninfo)
        self.registry = ModelRegistry(self.pool, self.build_endpoint, check=self.check_upload)
        self.catalog = Catalog(
            self.registry, self.build_endpoint, listen_url, settings.catalog_reconcile_s
        )
        self.decisions = DecisionLog(
            self.pool,
            database=conninfo,
            mode=settings.decision_log.lower(),
            directory=settings.spool_directory(),
            max_bytes=settings.spool_max_mb << 20,
            flush_interval_s=settings.decision_flush_ms / 1000,
            flushers=settings.decision_flushers,
            retention_days=settings.decision_retention_days,
            commit_window_us=settings.commit_window_us,
        )
        self.shadow = ShadowScorer(self.decisions)
        self.hooks = hooks.load(settings.hooks)
        self.hook_runner = hooks.Runner(settings.hook_budget_ms)
        self.hook_cache = hooks.TTLCache()
        #: Async connections for `async def` hooks, per event loop (see `Context.connection`).
        self.loop_pools = LoopPools(conninfo, settings.db_pool_size, settings.pool_options())
        self.keys = keys.KeyRing(self.pool, listen_url, settings.catalog_reconcile_s)
        self.jwt = Verifier(settings)
        # Made before the fork, so that every serving process shares it.
        self.rate_limits = RateLimits()
        self.board = Board()
        #: This process's place on the board (set by the supervisor's child before it starts).
        self.slot = 0
        self._draining = False
        self.metrics = Metrics(metrics_dir, self.metrics_snapshot, lambda: self.board.restarts)
        self.access = AccessLog(json_lines(settings.log_format))
        self.started = False
        self.database_ok = False
        self._stopping = threading.Event()
        self._watcher = threading.Thread(target=self._watch_database, name="readiness", daemon=True)

    def hook_context(
        self,
        request_id: str,
        model: str | None = None,
        version: int | None = None,
        *,
        caller: Caller | None = None,
        shadow: bool = False,
    ) -> hooks.Context:
        """What a hook of this process knows of its request."""
        tenant, key_id = (caller.tenant, caller.key_id) if caller is not None else (None, None)
        started = self.started
        return hooks.Context(
            request_id, model, version, tenant, key_id, self.pool if started else None,
            self.hook_cache, shadow, self.loop_pools if started else None,
        )  # fmt: skip

    def check_upload(self, a: Artifact) -> None:
        """Loads and exercises an uploaded artifact in a limited child process (see
        `ferroscore.models.sandbox`) before this process loads it."""
        s = self.settings
        upload = sandbox.Upload(
            a.artifact, a.format, a.input_schema, a.thresholds, s.model_limits(), s.limits()
        )
        sandbox.check(upload, s.upload_memory_mb, s.upload_cpu_s)

    def build_endpoint(self, a: Artifact) -> Endpoint:
        """A served endpoint, with this process's model and request limits."""
        model = Model.load(a.artifact, a.format, self.settings.model_limits())
        return Endpoint(
            a.name,
            a.version,
            model,
            a.input_schema,
            thresholds=a.thresholds,
            classes=list(a.labels) if a.labels else None,
            **self.settings.limits(),
        )

    def start(self) -> None:
        """Opens the pool, loads the catalog, starts the decision writer and shadow scorer."""
        self.pool.open()
        self.catalog.start()
        if self.settings.auth:
            self.keys.start()
        self.decisions.start()
        self.shadow.start()
        self.metrics.start()
        if self.access_logged:
            self.access.start()
        self.database_ok = self._database_answers()
        self._watcher.start()
        self.started = True

    def stop(self) -> None:
        """Scores the queued shadows, writes the queued decisions and closes the pool."""
        if not self.started:
            return
        self._stopping.set()
        self.metrics.stop()
        self.catalog.stop()
        self.keys.stop()
        self.shadow.close(timeout=5)
        self.decisions.close(timeout=10)
        self.loop_pools.close()
        self.hook_runner.close()
        self.pool.close()
        self.access.stop()

    @property
    def access_logged(self) -> bool:
        """Access lines are INFO: written when asked for and the level lets INFO through."""
        return self.settings.access_log and self.settings.log_level in ("DEBUG", "INFO")

    def metrics_snapshot(self) -> dict[str, Any]:
        """What this process counts besides requests: each served version's scores (from
        Rust), the decision log's queue and the pool."""
        scores = []
        for tenant, models in self.catalog.current().items():
            for name, served in models.items():
                for role, endpoint in (("champion", served.champion), ("shadow", served.shadow)):
                    if endpoint is not None:
                        labels = [tenant, name, str(endpoint.version), role]
                        scores.append([labels, *endpoint.stats()])
        gauges = {"ferroscore_decision_spool_bytes": self.decisions.backlog_bytes(),
                  "ferroscore_decision_flush_lag_seconds": self.decisions.lag_s(),
                  "ferroscore_decision_rows_quarantined": self.decisions.quarantined,
                  "ferroscore_serving_processes": 1}  # fmt: skip
        if self.started:
            pool = self.pool.get_stats()
            gauges |= {"ferroscore_db_pool_connections": pool.get("pool_size", 0),
                       "ferroscore_db_pool_available": pool.get("pool_available", 0),
                       "ferroscore_db_pool_waiting": pool.get("requests_waiting", 0)}  # fmt: skip
        return {"scores": scores, "gauges": gauges}

    @property
    def draining(self) -> bool:
        """This process drains, or its supervisor told every process to."""
        return self._draining or self.board.draining

    def drain(self) -> None:
        self._draining = True

    def is_ready(self) -> bool:
        """Ready when the models are loaded, the database answered its last check and the
        service is not draining. Read from state threads keep fresh, so a probe never waits
        on the database (and never holds up the scoring that shares its worker)."""
        if self.draining:
            return False
        return self.started and self.database_ok and bool(self.catalog.current())

    def _database_answers(self) -> bool:
        try:
            with self.pool.connection(timeout=DATABASE_CHECK_S) as conn:
                conn.execute("SELECT 1")
        except Exception as e:
            if self.database_ok:
                log.warning("readiness: the database does not answer (%s)", e)
            return False
        return True

    def _watch_database(self) -> None:
        while not self._stopping.wait(DATABASE_CHECK_S):
            ok = self._database_answers()
            if ok and not self.database_ok:
                log.info("readiness: the database answers again")
            self.database_ok = ok
