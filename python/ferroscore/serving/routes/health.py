"""Liveness and readiness, for load balancers and orchestrators."""

from __future__ import annotations

from ferroscore.pipeline import Call, Handler, Reply, json_reply
from ferroscore.serving.service import Service


def live(_: Call) -> Reply:
    return json_reply(200, {"status": "live"})


def ready(service: Service) -> Handler:
    def handle(_: Call) -> Reply:
        if service.is_ready():
            # The count, not the names: this route is public, and names belong to tenants.
            served = sum(map(len, service.catalog.current().values()))
            return json_reply(200, {"status": "ready", "models": served})
        return json_reply(503, {"status": "draining" if service.draining else "not_ready"})

    return handle
