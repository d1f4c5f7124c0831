"""Liveness and readiness, for load balancers and orchestrators."""

from __future__ import annotations

from robyn import Response, Robyn

from ferroscore.http import json_response
from ferroscore.service import Service


def register(app: Robyn, service: Service) -> None:
    @app.get("/health/live")
    def live() -> Response:
        return json_response(200, {"status": "live"})

    @app.get("/health/ready")
    def ready() -> Response:
        if service.is_ready():
            return json_response(200, {"status": "ready", "models": sorted(service.endpoints)})
        return json_response(503, {"status": "not_ready"})
