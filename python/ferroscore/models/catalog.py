"""What one serving process serves: an immutable snapshot of endpoints by tenant and model
name, swapped whole. A request reads `Catalog.current()` once and keeps that snapshot, so it
never sees half a swap. A `Listener` re-reads the served state when the registry NOTIFYs, and every
`reconcile_s` in case a notification was missed."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import Any

import orjson

from ferroscore._core import Endpoint, FerroscoreError
from ferroscore.models.registry import CHANNEL, EndpointBuilder, ModelRegistry, ServedState
from ferroscore.processes.listen import Listener

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Served:
    """One model name as served: the champion answers; the shadow, if any, is scored beside
    it on `share` of the requests, after the answer is sent."""

    champion: Endpoint
    shadow: Endpoint | None = None
    share: float = 0.0

    @cached_property
    def schema(self) -> dict[str, Any]:
        """The champion's input schema, parsed once for as long as it is served (the V2
        routes read it on every request). Shared: read it, never change it."""
        parsed: dict[str, Any] = orjson.loads(self.champion.schema)
        return parsed


#: Tenant → model name → what is served.
Snapshot = Mapping[str, Mapping[str, Served]]
#: A tenant that serves nothing.
NOTHING: Mapping[str, Served] = MappingProxyType({})


class Catalog:
    """The current snapshot, kept fresh from the registry."""

    def __init__(
        self, registry: ModelRegistry, build: EndpointBuilder, conninfo: str, reconcile_s: float
    ) -> None:
        self._registry = registry
        self._build = build
        self._snapshot: Snapshot = MappingProxyType({})
        self._state: list[ServedState] | None = None
        # Built endpoints by (tenant, name, version): a swap rebuilds only versions not yet
        # loaded.
        self._built: dict[tuple[str, str, int], Endpoint] = {}
        self._lock = threading.Lock()
        self._listener = Listener(conninfo, CHANNEL, self.refresh, reconcile_s)

    def current(self) -> Snapshot:
        return self._snapshot

    def of(self, tenant: str) -> Mapping[str, Served]:
        """What `tenant` is served now."""
        return self._snapshot.get(tenant, NOTHING)

    @property
    def reconcile_s(self) -> float:
        return self._listener.reconcile_s

    def start(self) -> None:
        self.refresh()
        self._listener.start()

    def stop(self) -> None:
        self._listener.stop()

    def refresh(self) -> bool:
        """Re-reads the served state; swaps the snapshot if it changed. Returns whether it did.
        A version that cannot be built here (its model past this process's limits, say) is
        left out and logged, tried again at the next reconcile, and costs no other model."""
        with self._lock:
            state = self._registry.served()
            if state == self._state:
                return False
            wanted = {(s.tenant, s.name, s.version) for s in state} | {
                (s.tenant, s.name, s.shadow_version) for s in state if s.shadow_version is not None
            }
            built: dict[tuple[str, str, int], Endpoint] = {}
            for key in sorted(wanted):
                try:
                    built[key] = self._endpoint(*key)
                except FerroscoreError as e:
                    log.error("cannot serve %s/%s v%s: %s", *key, e)
            tenants: dict[str, dict[str, Served]] = {}
            for s in state:
                champion = built.get((s.tenant, s.name, s.version))
                if champion is None:
                    continue
                shadow = built.get((s.tenant, s.name, s.shadow_version or 0))
                share = s.shadow_share if shadow is not None else 0.0
                tenants.setdefault(s.tenant, {})[s.name] = Served(champion, shadow, share)
            self._built = built
            self._snapshot = MappingProxyType(
                {t: MappingProxyType(models) for t, models in tenants.items()}
            )
            # With a version left out, the next reconcile tries it again.
            self._state = state if len(built) == len(wanted) else None
            served = [
                f"{t}/{n} v{m.champion.version}" for t, ms in tenants.items() for n, m in ms.items()
            ]
            log.info("serving %s", ", ".join(served) or "no models")
            return True

    def _endpoint(self, tenant: str, name: str, version: int) -> Endpoint:
        endpoint = self._built.get((tenant, name, version))
        if endpoint is None:
            endpoint = self._build(self._registry.scoped(tenant).artifact(name, version))
        return endpoint
