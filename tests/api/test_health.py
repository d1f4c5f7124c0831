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


def test_the_score_route_skips_robyns_python_wrapper(server: ServerProcess) -> None:
    # adapters/robyn.py falls back to the wrapper, with this warning, if its internals moved.
    assert "route internals changed" not in server.log()
