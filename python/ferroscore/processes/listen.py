"""Keeping per-process state fresh from PostgreSQL: LISTEN on a channel, re-read at once when
a NOTIFY arrives, and re-read anyway every `reconcile_s` in case one was missed (a dropped
connection, a database restart). The catalog and the key ring both live on it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import psycopg

log = logging.getLogger(__name__)


class Listener:
    """A daemon thread that calls `refresh` on each NOTIFY on `channel` and every
    `reconcile_s`, reconnecting with a backoff while the database is away."""

    def __init__(
        self, conninfo: str, channel: str, refresh: Callable[[], object], reconcile_s: float
    ) -> None:
        self._conninfo = conninfo
        self._channel = channel
        self._refresh = refresh
        self.reconcile_s = reconcile_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, name=f"listen-{channel}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _listen(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {self._channel}")
                    # Anything changed while we were not listening.
                    self._safe_refresh()
                    backoff = 0.1
                    while not self._stop.is_set():
                        deadline = time.monotonic() + self.reconcile_s
                        heard = False
                        for _ in conn.notifies(timeout=self.reconcile_s):
                            heard = True
                            break
                        if heard or time.monotonic() >= deadline:
                            self._safe_refresh()
            except psycopg.Error as e:
                log.warning("%s: lost the database (%s); retrying in %.1fs", self._channel, e,
                            backoff)  # fmt: skip
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.reconcile_s)

    def _safe_refresh(self) -> None:
        try:
            self._refresh()
        except psycopg.Error:
            raise
        except Exception:
            # What no longer builds must not stop the process serving what it has.
            log.exception("%s: could not refresh; keeping the state before", self._channel)
