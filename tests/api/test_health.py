"""Liveness and readiness over real HTTP."""

from __future__ import annotations

from ferroscore.registry import DEMO_MODEL

from support import ServerProcess


def test_live_and_ready(server: ServerProcess) -> None:
    assert server.request("GET", "/health/live") == (200, {"status": "live"})
    assert server.request("GET", "/health/ready") == (
        200,
        {"status": "ready", "models": [DEMO_MODEL]},
    )
