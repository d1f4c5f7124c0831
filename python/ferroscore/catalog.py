"""What one serving process serves: an immutable snapshot of endpoints by model name, swapped
whole. A request reads `Catalog.current()` once and keeps that snapshot, so it never sees half
a swap. A thread LISTENs for the registry's NOTIFY and re-reads the served state at once;
every `reconcile_s` it re-reads anyway, in case a notification was missed (a dropped
connection, a database restart)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import psycopg

from ferroscore._core import Endpoint
from ferroscore.registry import CHANNEL, EndpointBuilder, ModelRegistry, ServedState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Served:
    """One model name as served: the champion answers; the shadow, if any, is scored beside
    it on `share` of the requests, after the answer is sent."""

    champion: Endpoint
    shadow: Endpoint | None = None
    share: float = 0.0


Snapshot = Mapping[str, Served]


class Catalog:
    """The current snapshot, kept fresh from the registry."""

    def __init__(
        self, registry: ModelRegistry, build: EndpointBuilder, conninfo: str, reconcile_s: float
    ) -> None:
        self._registry = registry
        self._build = build
        self._conninfo = conninfo
        self.reconcile_s = reconcile_s
        self._snapshot: Snapshot = MappingProxyType({})
        self._state: list[ServedState] | None = None
        # Built endpoints by (name, version): a swap rebuilds only versions not yet loaded.
        self._built: dict[tuple[str, int], Endpoint] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="catalog", daemon=True)

    def current(self) -> Snapshot:
        return self._snapshot

    def start(self) -> None:
        self.refresh()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def refresh(self) -> bool:
        """Re-reads the served state; swaps the snapshot if it changed. Returns whether it did."""
        with self._lock:
            state = self._registry.served()
            if state == self._state:
                return False
            wanted = {(s.name, s.version) for s in state} | {
                (s.name, s.shadow_version) for s in state if s.shadow_version is not None
            }
            built = {key: self._endpoint(*key) for key in sorted(wanted)}
            snapshot = {
                s.name: Served(
                    built[(s.name, s.version)],
                    built[(s.name, s.shadow_version)] if s.shadow_version is not None else None,
                    s.shadow_share,
                )
                for s in state
            }
            self._built = built
            self._snapshot = MappingProxyType(snapshot)
            self._state = state
            log.info(
                "serving %s",
                ", ".join(f"{s.name} v{s.version}" for s in state) or "no models",
            )
            return True

    def _endpoint(self, name: str, version: int) -> Endpoint:
        endpoint = self._built.get((name, version))
        if endpoint is None:
            endpoint = self._build(self._registry.artifact(name, version))
        return endpoint

    def _listen(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
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
                log.warning("catalog: lost the database (%s); retrying in %.1fs", e, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.reconcile_s)

    def _safe_refresh(self) -> None:
        try:
            self.refresh()
        except psycopg.Error:
            raise
        except Exception:
            # A version that no longer builds must not stop the process serving the others.
            log.exception("catalog: could not build the served versions; keeping the old ones")
