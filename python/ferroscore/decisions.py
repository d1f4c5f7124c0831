"""The decision log: the one component that owns "record this decision". Requests hand it
their decision and move on; a background thread writes batches to PostgreSQL with COPY."""

from __future__ import annotations

import logging
import queue
import threading
import time

import psycopg
from psycopg_pool import ConnectionPool

from ferroscore._core import Decision

log = logging.getLogger(__name__)

_COPY = (
    "COPY decisions (request_id, row_index, model, version, features, score, created_at,"
    " decision, role, tenant) FROM STDIN"
)
_MAX_BACKOFF_S = 5.0


class _Stop:
    """Sentinel: write what came before, then end the writer."""


#: (decision, role, tenant): a plain tuple, as it is built on the request path.
_Logged = tuple[Decision, str, str]


class DecisionLog:
    """Queues decisions and writes them in batches, retrying while the database is away.

    Decisions are held in memory until written; the crash-proof spool is a later step, and
    this class is the seam where it goes.
    """

    def __init__(self, pool: ConnectionPool, *, batch_size: int, flush_interval_s: float) -> None:
        self._pool = pool
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self._queue: queue.SimpleQueue[_Logged | threading.Event | _Stop] = queue.SimpleQueue()
        self._writing_since_ns = 0
        self._last_lag_s = 0.0
        self._thread = threading.Thread(target=self._run, name="decision-log", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def record(self, decision: Decision, role: str, tenant: str) -> None:
        """Accepts one decision of `tenant`'s model; never blocks on the database. `role` is
        "champion" for the version that answered, "shadow" for a challenger scored beside
        it."""
        self._queue.put((decision, role, tenant))

    def lag_s(self) -> float:
        """How far behind the writer is: the age of the decisions it is writing now, else
        the age the last batch had when it was written."""
        since = self._writing_since_ns
        if since:
            return max(0.0, (time.time_ns() - since) / 1e9)
        return self._last_lag_s

    def queued(self) -> int:
        """Decisions accepted and not yet written (roughly: the writer takes batches)."""
        return self._queue.qsize()

    def flush(self, timeout: float | None = None) -> bool:
        """Waits until every decision recorded before this call is written."""
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Writes what is queued and stops the writer."""
        if self._thread.is_alive():
            self._queue.put(_Stop())
            self._thread.join(timeout)

    def _run(self) -> None:
        batch: list[_Logged] = []
        waiters: list[threading.Event] = []
        stopping = False
        while not stopping:
            try:
                item = self._queue.get(timeout=self.flush_interval_s)
            except queue.Empty:
                continue
            while True:
                if isinstance(item, tuple):
                    batch.append(item)
                elif isinstance(item, threading.Event):
                    waiters.append(item)
                else:
                    stopping = True
                if len(batch) >= self.batch_size or stopping:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._writing_since_ns = batch[0][0].scored_at_ns
                self._write_with_retry(batch)
                self._last_lag_s = max(0.0, (time.time_ns() - self._writing_since_ns) / 1e9)
                self._writing_since_ns = 0
                batch = []
            for w in waiters:
                w.set()
            waiters = []

    def _write_with_retry(self, batch: list[_Logged]) -> None:
        backoff = 0.05
        while True:
            try:
                self._copy(batch)
                return
            except psycopg.OperationalError as e:
                log.warning(
                    "decision log: database unavailable (%s); retrying in %.2fs", e, backoff
                )
                time.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
            except psycopg.Error:
                log.exception("decision log: batch refused; writing its rows one by one")
                self._write_one_by_one(batch)
                return

    def _write_one_by_one(self, batch: list[_Logged]) -> None:
        for d in batch:
            try:
                self._copy([d])
            except psycopg.Error:
                log.exception("decision log: could not write decision %s", d[0].request_id)

    def _copy(self, batch: list[_Logged]) -> None:
        # The rows are formatted as COPY text in Rust; Python only hands the bytes over.
        data = b"".join(decision.copy_rows(role, tenant) for decision, role, tenant in batch)
        with self._pool.connection() as conn, conn.cursor() as cur, cur.copy(_COPY) as copy:
            copy.write(data)
